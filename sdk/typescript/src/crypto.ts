/**
 * Cryptography of the protocol: hashes, P-256 keys and ECDH (§2), the session key (§4),
 * envelopes (§5), low-s ECDSA signatures (§1). WebCrypto for everything it has;
 * AES-256-GCM-SIV from `@noble/ciphers`; point decompression from `@noble/curves`.
 * @module
 */
import { gcmsiv } from '@noble/ciphers/aes.js';
import { p256 } from '@noble/curves/nist.js';
import { concat, fromBase64Url, fromHex, own, toBase64Url, toHex, u32be, utf8, uuidBytes } from './bytes.js';
import { VerifyError } from './errors.js';

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available');
  return s;
}

/** SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', own(data)));
}

/** SHA-384 of `data`. */
export async function sha384(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-384', own(data)));
}

/** SHA-512 of `data`. */
export async function sha512(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-512', own(data)));
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** The P-256 group order n (SEC 2). */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = P256_N >> 1n;

function bigFrom(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

function bigTo32(n: bigint): Uint8Array {
  return fromHex(n.toString(16).padStart(64, '0'));
}

/** Whether a 64-byte `r || s` signature is low-s: `0 < s <= n/2` (§1). */
export function isLowS(sig: Uint8Array): boolean {
  if (sig.length !== 64) return false;
  const s = bigFrom(sig.subarray(32));
  return s > 0n && s <= HALF_N;
}

/** The low-s form of a 64-byte `r || s` signature: `s` replaced by `n - s` when above n/2. */
export function normaliseLowS(sig: Uint8Array): Uint8Array {
  if (sig.length !== 64) throw new TypeError('a signature is 64 bytes r || s');
  const s = bigFrom(sig.subarray(32));
  return s > HALF_N ? concat(sig.subarray(0, 32), bigTo32(P256_N - s)) : own(sig);
}

/**
 * A SEC1 P-256 public key (33 compressed or 65 uncompressed bytes) in its uncompressed
 * 65-byte form (§2). Off-curve points and the identity are refused.
 */
export function uncompressedPublicKey(key: Uint8Array | string): Uint8Array {
  const bytes = typeof key === 'string' ? fromHex(key, 'public key') : key;
  if (!(bytes.length === 33 && (bytes[0] === 2 || bytes[0] === 3)) && !(bytes.length === 65 && bytes[0] === 4)) {
    throw new TypeError('a P-256 public key is 33 (compressed) or 65 (uncompressed) SEC1 bytes');
  }
  const point = p256.Point.fromBytes(bytes);
  point.assertValidity();
  return new Uint8Array(point.toBytes(false));
}

/**
 * A client's P-256 key pair: it opens sessions (ECDH, §4) and signs as an agent owner
 * (ECDSA, §17). The private scalar stays inside this object.
 */
export class ClientKey {
  /** The public key, SEC1 uncompressed (65 bytes). */
  readonly publicKey: Uint8Array;
  readonly #jwk: JsonWebKey;
  #ecdh?: CryptoKey;
  #ecdsa?: CryptoKey;

  private constructor(jwk: JsonWebKey) {
    this.#jwk = { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, d: jwk.d! };
    this.publicKey = concat(new Uint8Array([4]), fromBase64Url(jwk.x!), fromBase64Url(jwk.y!));
  }

  /** A fresh random key pair (WebCrypto). */
  static async generate(): Promise<ClientKey> {
    const pair = (await subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair;
    return new ClientKey(await subtle().exportKey('jwk', pair.privateKey));
  }

  /** The key pair of a private scalar (32 bytes, hex or bytes). */
  static fromPrivateKey(scalar: Uint8Array | string): ClientKey {
    const d = typeof scalar === 'string' ? fromHex(scalar, 'private key', 32) : scalar;
    if (d.length !== 32) throw new TypeError('a P-256 private key is 32 bytes');
    const pub = p256.getPublicKey(d, false);
    return new ClientKey({ kty: 'EC', crv: 'P-256', d: toBase64Url(d), x: toBase64Url(pub.subarray(1, 33)), y: toBase64Url(pub.subarray(33)) });
  }

  /** The public key in hex (uncompressed). */
  get publicKeyHex(): string {
    return toHex(this.publicKey);
  }

  /** The x-coordinate of ECDH(this, peer) (32 bytes). */
  async sharedX(peer: Uint8Array): Promise<Uint8Array> {
    this.#ecdh ??= await subtle().importKey('jwk', this.#jwk, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const pub = await subtle().importKey('raw', own(uncompressedPublicKey(peer)), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    return new Uint8Array(await subtle().deriveBits({ name: 'ECDH', public: pub }, this.#ecdh, 256));
  }

  /** ECDSA P-256 / SHA-256 over `message`: 64 bytes `r || s`, low-s (§1). */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    this.#ecdsa ??= await subtle().importKey('jwk', this.#jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const sig = new Uint8Array(await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, this.#ecdsa, own(message)));
    return normaliseLowS(sig);
  }
}

/**
 * Whether `signature` (64 bytes `r || s`) is a valid ECDSA P-256 / SHA-256 signature of
 * `message` by `publicKey` **and** low-s. High-s twins are refused (§1).
 */
export async function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (!isLowS(signature)) return false;
  const r = bigFrom(signature.subarray(0, 32));
  if (r === 0n || r >= P256_N) return false;
  let key: CryptoKey;
  try {
    key = await subtle().importKey('raw', own(uncompressedPublicKey(publicKey)), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  } catch {
    return false;
  }
  return subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, key, own(signature), own(message));
}

const HKDF_SALT = utf8('wasm-hypervisor/v1/hkdf-salt');
const HKDF_INFO = utf8('wasm-hypervisor/v1/aes-256-gcm-siv');
const AAD_LABEL = utf8('wasm-hypervisor/v1/aad');

/** The HKDF salt of §4: the label and the session id's 16 bytes. */
export function hkdfSalt(sessionId: string): Uint8Array {
  return concat(HKDF_SALT, uuidBytes(sessionId));
}

/** The HKDF info of §4: the label and both uncompressed public keys. */
export function hkdfInfo(clientPublic: Uint8Array, serverPublic: Uint8Array): Uint8Array {
  return concat(HKDF_INFO, uncompressedPublicKey(clientPublic), uncompressedPublicKey(serverPublic));
}

/** The session key of §4 from the ECDH shared x-coordinate. */
export async function deriveSessionKey(
  sharedX: Uint8Array,
  sessionId: string,
  clientPublic: Uint8Array,
  serverPublic: Uint8Array,
): Promise<Uint8Array> {
  const ikm = await subtle().importKey('raw', own(sharedX), 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: own(hkdfSalt(sessionId)), info: own(hkdfInfo(clientPublic, serverPublic)) },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

/** Envelope roles (§5). */
export const Role = {
  Program: 0x01,
  Argument: 0x02,
  Stdin: 0x03,
  Result: 0x04,
  Event: 0x05,
  AgentComponent: 0x06,
  WalletKey: 0x07,
  AgentConfig: 0x08,
  StateExport: 0x09,
  AgentJs: 0x0a,
  StateImport: 0x0b,
} as const;
/** One of {@link Role}'s bytes. */
export type RoleByte = (typeof Role)[keyof typeof Role];

/** The associated data of an envelope (§5). */
export function envelopeAad(sessionId: string, role: number, index = 0): Uint8Array {
  return concat(AAD_LABEL, uuidBytes(sessionId), new Uint8Array([role]), u32be(index));
}

/** Seals `plaintext` (§5): `nonce || AES-256-GCM-SIV(key, nonce, plaintext, aad)`. */
export function seal(
  key: Uint8Array,
  sessionId: string,
  role: number,
  index: number,
  plaintext: Uint8Array,
  nonce: Uint8Array = randomBytes(12),
): Uint8Array {
  if (nonce.length !== 12) throw new TypeError('an envelope nonce is 12 bytes');
  const ct = gcmsiv(key, nonce, envelopeAad(sessionId, role, index)).encrypt(plaintext);
  return concat(nonce, ct);
}

/**
 * Opens an envelope (§5).
 * @throws VerifyError (`Decryption`) when it does not authenticate for this key, session,
 * role and index.
 */
export function open(key: Uint8Array, sessionId: string, role: number, index: number, envelope: Uint8Array): Uint8Array {
  if (envelope.length < 28) throw new VerifyError('Decryption', 'envelope shorter than 28 bytes');
  try {
    return gcmsiv(key, envelope.subarray(0, 12), envelopeAad(sessionId, role, index)).decrypt(envelope.subarray(12));
  } catch {
    throw new VerifyError('Decryption', `the ${roleName(role)} envelope does not authenticate (wrong key, session or field, or tampered)`);
  }
}

function roleName(role: number): string {
  for (const [k, v] of Object.entries(Role)) if (v === role) return k;
  return `0x${role.toString(16)}`;
}
