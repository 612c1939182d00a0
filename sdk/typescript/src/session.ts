/**
 * A session (§3, §4, §13): its id, both keys, the derived session key (kept private) and, for
 * a verifiable session, the verified signing key.
 * @module
 */
import { fromHex, uuidBytes, uuidText } from './bytes.js';
import { ClientKey, deriveSessionKey, open, seal, uncompressedPublicKey } from './crypto.js';
import type { SessionQuote } from './types.js';
import type { VerifiedKey } from './verify.js';

/** An open session with a host. */
export class Session {
  /** The session id, canonical text form. */
  readonly id: string;
  /** The client's key pair for this session. */
  readonly clientKey: ClientKey;
  /** The host's session public key, uncompressed. */
  readonly serverPublicKey: Uint8Array;
  /** Seconds until the host forgets the session (as it said at creation). */
  readonly expiresInSeconds: number;
  /** The verified signing key (verifiable sessions only). */
  readonly verified: VerifiedKey | undefined;
  /** The session quote the verification checked (verifiable sessions only). */
  readonly quote: SessionQuote | undefined;
  readonly #key: Uint8Array;

  private constructor(
    id: string,
    clientKey: ClientKey,
    serverPublicKey: Uint8Array,
    key: Uint8Array,
    expiresInSeconds: number,
    verified?: VerifiedKey,
    quote?: SessionQuote,
  ) {
    this.id = id;
    this.clientKey = clientKey;
    this.serverPublicKey = serverPublicKey;
    this.#key = key;
    this.expiresInSeconds = expiresInSeconds;
    this.verified = verified;
    this.quote = quote;
  }

  /**
   * Derives the session key (§4) from the client's key and the host's answer. Verification of
   * a verifiable session's quote is the caller's job and must come first
   * ({@link Client.createVerifiableSession} does it).
   */
  static async establish(
    clientKey: ClientKey,
    sessionId: string,
    serverPublicKey: Uint8Array | string,
    expiresInSeconds: number,
    verified?: VerifiedKey,
    quote?: SessionQuote,
  ): Promise<Session> {
    const id = uuidText(uuidBytes(sessionId));
    const server = uncompressedPublicKey(typeof serverPublicKey === 'string' ? fromHex(serverPublicKey, 'session_pubkey') : serverPublicKey);
    const shared = await clientKey.sharedX(server);
    const key = await deriveSessionKey(shared, id, clientKey.publicKey, server);
    return new Session(id, clientKey, server, key, expiresInSeconds, verified, quote);
  }

  /** Whether this is a verifiable session whose quote was verified. */
  get isVerifiable(): boolean {
    return this.verified !== undefined;
  }

  /** Seals `plaintext` for this session in `role` at `index` (§5). */
  seal(role: number, index: number, plaintext: Uint8Array, nonce?: Uint8Array): Uint8Array {
    return seal(this.#key, this.id, role, index, plaintext, nonce);
  }

  /** Opens an envelope of this session (§5); throws `VerifyError` (`Decryption`). */
  open(role: number, index: number, envelope: Uint8Array): Uint8Array {
    return open(this.#key, this.id, role, index, envelope);
  }
}
