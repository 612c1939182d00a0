/**
 * JSON from a host, parsed with a nesting bound, and the small shape checks every answer goes
 * through: whatever a host answers ends in a typed error.
 * @module
 */
import { MAX_JSON_DEPTH, ProtocolError } from './errors.js';

/** The deepest nesting of `[` / `{` outside strings in `text`. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * `JSON.parse(text)`, refusing nesting deeper than {@link MAX_JSON_DEPTH} levels before it
 * parses (`ProtocolError`). Other malformed JSON throws as `JSON.parse` does (`SyntaxError`);
 * callers turn that into their own typed error.
 */
export function parseJson(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw new ProtocolError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return JSON.parse(text);
}

/** Whether `v` is a JSON object (not an array, not `null`). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value from an answer, for a message: never throws (a JSON object can hold `toString`). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? typeof v : s.length > 200 ? s.slice(0, 200) + '…' : s;
  } catch {
    return typeof v;
  }
}

/** Whether `v` is an integer a u64 field can hold that JavaScript numbers hold exactly. */
export function isU64(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Whether `s` holds a lone surrogate (text that is not encodable as UTF-8). */
export function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** `body` when it is a JSON object, else `ProtocolError` naming `what` answered. */
export function objectAnswer(body: unknown, what: string): Record<string, unknown> {
  if (!isObject(body)) throw new ProtocolError(`${what} did not answer a JSON object`);
  return body;
}

/** `body[name]` of a JSON object answer when it is an array, else `ProtocolError`. */
export function arrayField(body: unknown, name: string, what: string): unknown[] {
  const v = objectAnswer(body, what)[name];
  if (!Array.isArray(v)) throw new ProtocolError(`${what}: the answer has no \`${name}\` list`);
  return v;
}
