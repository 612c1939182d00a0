/**
 * Byte helpers: hex, concatenation, big-endian integers, constant-time comparison, base64,
 * UTF-8 and UUIDs (PROTOCOL §1). No Node APIs: works in browsers too.
 * @module
 */

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Decodes hex as §1 writes it: digits only, either case, no `0x` prefix, even length.
 * @throws TypeError naming `field` when it is not hex (or not `length` bytes, when given).
 */
export function fromHex(hex: string, field = 'hex', length?: number): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`\`${field}\` is not hex`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (length !== undefined && out.length !== length) {
    throw new TypeError(`\`${field}\` must be ${length} bytes (${length * 2} hex digits)`);
  }
  return out;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A copy of `bytes` backed by a plain ArrayBuffer (what WebCrypto's types ask for). */
export function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/** `u32be(n)`: 4 bytes, unsigned big-endian. */
export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`u32 out of range: ${n}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** `u64be(n)`: 8 bytes, unsigned big-endian (a safe integer or a bigint). */
export function u64be(n: number | bigint): Uint8Array {
  const v = typeof n === 'bigint' ? n : BigInt(n);
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`u64 not a safe integer: ${n}`);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${n}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, false);
  return out;
}

/** Little-endian u32 (the TCG event type in §12c's runtime digest). */
export function u32le(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

/**
 * Constant-time equality (the time depends on the lengths only). §12: verifiers compare
 * REPORTDATA and all hashes in constant time.
 */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/** `bytes` as UTF-8 text; throws on invalid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string {
  return strictDecoder.decode(bytes);
}

/** Standard padded base64 (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(bin);
}

/** Decodes standard base64. */
export function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** base64url without padding (RFC 4648 §5, as JWS and JWK write it). */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes base64url, padded or not; throws a `TypeError` on anything else. */
export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*=*$/.test(text)) throw new TypeError('not base64url');
  const std = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  try {
    return fromBase64(std + '='.repeat((4 - (std.length % 4)) % 4));
  } catch {
    throw new TypeError('not base64url');
  }
}

/**
 * The 16 bytes of a UUID in RFC 9562 order, from any of its text forms (hyphenated, 32 hex
 * digits, `{braced}`, `urn:uuid:`, any case), as §1 says hosts read them.
 */
export function uuidBytes(id: string): Uint8Array {
  let s = id.trim();
  if (s.toLowerCase().startsWith('urn:uuid:')) s = s.slice(9);
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  const plain = s.length === 36 && /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)
    ? s.replace(/-/g, '')
    : s;
  if (!/^[0-9a-fA-F]{32}$/.test(plain)) throw new TypeError(`not a UUID: ${id}`);
  return fromHex(plain);
}

/** The canonical (hyphenated, lowercase) text form of a UUID. */
export function uuidText(id: string | Uint8Array): string {
  const h = toHex(typeof id === 'string' ? uuidBytes(id) : id);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
