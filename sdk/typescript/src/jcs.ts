/**
 * RFC 8785 (JCS) canonical JSON for the documents the protocol hashes (reference sets, tool
 * schemas, agent cards, v2 runtime events), by the RFC's reference implementation (npm
 * `canonicalize`): keys sorted by UTF-16 code units, no whitespace, ECMAScript number and
 * string serialisation.
 * @module
 */
import canonicalize from 'canonicalize';
import { utf8 } from './bytes.js';

/** The canonical JSON text of `value` (numbers must be finite, strings well-formed). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError(`JCS: cannot serialise a ${typeof value}`);
  return text;
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}
