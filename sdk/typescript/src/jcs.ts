/**
 * RFC 8785 (JCS) canonical JSON for the documents the protocol hashes (reference sets, tool
 * schemas, v2 runtime events): objects with keys sorted by UTF-16 code units, no whitespace,
 * ECMAScript number and string serialisation (which RFC 8785 adopts).
 * @module
 */
import { utf8 } from './bytes.js';

/** The canonical JSON text of `value`. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS: numbers must be finite');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
    }
    default:
      throw new TypeError(`JCS: cannot serialise a ${typeof value}`);
  }
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}
