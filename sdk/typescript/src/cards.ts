/**
 * A2A agent cards signed by the host's attested key (§21.1): the detached JWS over the card's
 * canonical payload, checked against a key whose evidence was verified first, so that the
 * card's URLs can be handed to the official A2A and MCP SDKs knowing which host answers there.
 * @module
 */
import { ctEqual, fromBase64Url, fromUtf8, toBase64Url, toHex, utf8 } from './bytes.js';
import { sha256, verifySignature } from './crypto.js';
import { VerifyError } from './errors.js';
import { canonicalJsonBytes } from './jcs.js';
import { isObject, parseJson } from './json.js';
import type { VerifiedKey } from './verify.js';

/** The URI of the card extension that names the host's attested signing key. */
export const ATTESTED_KEY_EXTENSION = 'https://wasm-hypervisor.dev/a2a/extensions/attested-signing-key/v1';
/** Fields only A2A 0.3 clients read, left out of the signed payload. */
export const UNSIGNED_CARD_FIELDS = ['signatures', 'url', 'protocolVersion', 'preferredTransport'] as const;

/** An A2A agent card as JSON (A2A 1.0 fields, plus the 0.3 ones). */
export type AgentCardJson = Record<string, unknown>;

/** base64url without padding (RFC 7515). */
export const b64url = toBase64Url;

/** Decodes base64url (padded or not); throws `VerifyError` kind `Card` otherwise. */
export function b64urlDecode(text: string): Uint8Array {
  try {
    return fromBase64Url(text);
  } catch {
    throw new VerifyError('Card', 'not base64url');
  }
}

/** The P-256 key (65-byte uncompressed SEC1) as a JWK. */
export function jwk(sec1: Uint8Array): { crv: 'P-256'; kty: 'EC'; x: string; y: string } {
  return { crv: 'P-256', kty: 'EC', x: b64url(sec1.subarray(1, 33)), y: b64url(sec1.subarray(33, 65)) };
}

/** RFC 7638: SHA-256 of the JWK's required members in canonical form, base64url. */
export async function thumbprint(sec1: Uint8Array): Promise<string> {
  return b64url(await sha256(canonicalJsonBytes(jwk(sec1))));
}

function isEmpty(v: unknown): boolean {
  if (v === '' || v === null || v === undefined) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(prune).filter((v) => !isEmpty(v));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const p = prune(v);
      if (!isEmpty(p)) out[k] = p;
    }
    return out;
  }
  return value;
}

/**
 * The signed payload (§21.1): the card without its unsigned fields, empty strings, arrays,
 * objects and `null`s removed recursively, in RFC 8785 canonical JSON (UTF-8).
 */
export function cardPayload(card: AgentCardJson): Uint8Array {
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(card)) if (!(UNSIGNED_CARD_FIELDS as readonly string[]).includes(k)) rest[k] = v;
  return canonicalJsonBytes(prune(rest));
}


/**
 * Refuses (`VerifyError` kind `Card`) a card that no ES256 signature of the attested key
 * `key` covers, or whose attested-key extension names another key or evidence, or mislabels
 * simulated evidence.
 */
export async function verifyCard(card: AgentCardJson, key: VerifiedKey): Promise<void> {
  const sigs = card['signatures'];
  if (!Array.isArray(sigs) || sigs.length === 0) throw new VerifyError('Card', 'the card is not signed');
  const kid = await thumbprint(key.signingKey);
  const body = b64url(cardPayload(card));
  let verified = false;
  for (const entry of sigs) {
    if (!isObject(entry)) continue;
    const { protected: protectedHeader, signature } = entry;
    if (typeof protectedHeader !== 'string' || typeof signature !== 'string') continue;
    let header: unknown;
    try {
      header = parseJson(fromUtf8(b64urlDecode(protectedHeader)));
    } catch {
      continue;
    }
    if (!isObject(header) || header['alg'] !== 'ES256' || header['kid'] !== kid) continue;
    let sig: Uint8Array;
    try {
      sig = b64urlDecode(signature);
    } catch {
      continue;
    }
    if (sig.length === 64 && (await verifySignature(key.signingKey, utf8(`${protectedHeader}.${body}`), sig))) {
      verified = true;
      break;
    }
  }
  if (!verified) throw new VerifyError('Card', 'no signature on the card verifies under the attested key');
  const caps = card['capabilities'];
  const extensions = isObject(caps) && Array.isArray(caps['extensions']) ? caps['extensions'] : [];
  for (const ext of extensions) {
    if (!isObject(ext) || ext['uri'] !== ATTESTED_KEY_EXTENSION) continue;
    const params = ext['params'];
    if (!isObject(params)) throw new VerifyError('Card', 'the attested-key extension has no params');
    const named = typeof params['signingKey'] === 'string' ? params['signingKey'].toLowerCase() : '';
    const evidence = typeof params['evidenceSha256'] === 'string' ? params['evidenceSha256'].toLowerCase() : '';
    if (named !== toHex(key.signingKey) || !ctEqual(utf8(evidence), utf8(toHex(key.evidenceSha256)))) {
      throw new VerifyError('Card', "the card's attested-key extension names another key or evidence");
    }
    if (params['keyId'] !== undefined && params['keyId'] !== kid) {
      throw new VerifyError('Card', "the card's attested-key extension names another key id");
    }
    if (Boolean(params['simulated'] ?? false) !== key.simulated) {
      throw new VerifyError('Card', "the card's attested-key extension mislabels the evidence");
    }
  }
}

/** A card whose signature verified under the attested key `verified`. */
export class VerifiedCard {
  /** The card as the host served it: hand it to the official A2A SDK. */
  readonly card: AgentCardJson;
  /** The host's attested key, verified under the policy. */
  readonly verified: VerifiedKey;

  constructor(card: AgentCardJson, verified: VerifiedKey) {
    this.card = card;
    this.verified = verified;
  }

  /** The preferred interface's URL (A2A 1.0, JSON-RPC). */
  get url(): string {
    const interfaces = this.card['supportedInterfaces'];
    for (const i of Array.isArray(interfaces) ? interfaces : []) {
      if (isObject(i) && i['protocolVersion'] === '1.0' && typeof i['url'] === 'string') return i['url'];
    }
    throw new VerifyError('Card', 'the card has no A2A 1.0 interface');
  }

  /** The MCP endpoint of the host that signed this (host) card: its `/a2a` interface's origin with `/mcp` (§20). */
  get mcpUrl(): string {
    const url = this.url;
    if (!url.endsWith('/a2a') || /\/agents\/[^/]+\/a2a$/.test(url)) {
      throw new VerifyError('Card', "the MCP endpoint is read from the host's card (interface /a2a)");
    }
    return url.slice(0, -'/a2a'.length) + '/mcp';
  }
}
