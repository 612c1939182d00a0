/**
 * Agent owner statements and the deploy detail (§17).
 * @module
 */
import { toHex, utf8 } from './bytes.js';
import { sha256, type ClientKey } from './crypto.js';
import { canonicalJsonBytes } from './jcs.js';
import type { Limits } from './types.js';

/** Owner actions (§17, §18, §23). */
export type OwnerAction =
  | 'deploy'
  | 'delete'
  | 'logs'
  | 'read-executions'
  | 'grants'
  | 'read-grants'
  | 'wallet'
  | 'read-wallet'
  | 'calls'
  | string;

/** The fields of a deployment the deploy detail covers (the request as sent). */
export interface DeploySettings {
  public?: boolean;
  price?: string;
  ttl_seconds?: number;
  limits?: Limits;
  charge?: 'success' | 'always';
  /** Handler agents' JSON Schemas (`{"input"?, "output"?}`), signed as the SHA-256 of their JCS. */
  schemas?: { input?: object; output?: object };
}

function field(v: boolean | number | string | undefined): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a decimal without sign: ${v}`);
    return String(v);
  }
  if (!/^[0-9]+$/.test(v)) throw new RangeError(`not a decimal: ${v}`);
  return v;
}

/**
 * The deploy detail (§17): the component's SHA-256 and the settings as sent, one per line.
 * (`grants` is not supported by this SDK.)
 */
export async function deployDetail(componentSha256Hex: string, s: DeploySettings): Promise<string> {
  const l = s.limits;
  const lines = [
    componentSha256Hex.toLowerCase(),
    'public=' + field(s.public),
    'price=' + field(s.price),
    'ttl_seconds=' + field(s.ttl_seconds),
    'limits=' + (l ? [field(l.time_ms), field(l.memory_bytes), field(l.fuel)].join(',') : '-,-,-'),
  ];
  if (s.charge !== undefined) lines.push('charge=' + s.charge);
  if (s.schemas !== undefined) lines.push('schemas=' + toHex(await sha256(canonicalJsonBytes(s.schemas))));
  return lines.join('\n');
}

/** The owner statement (§17), UTF-8: what an owner signs. */
export function ownerMessage(
  audience: string,
  action: OwnerAction,
  name: string,
  signedAt: number,
  sequence: number | bigint,
  detail: string,
): Uint8Array {
  return utf8(['wasm-hypervisor/v2/agent-owner', audience, action, name, String(signedAt), String(sequence), detail].join('\n'));
}

let lastSequence = 0;

/** The next owner sequence: Unix time in microseconds, pushed past the last one used. */
export function nextSequence(): number {
  const now = Date.now() * 1000;
  lastSequence = Math.max(now, lastSequence + 1);
  return lastSequence;
}

/** An owner signature with its signing time and sequence. */
export interface OwnerSignature {
  signature: string;
  signed_at: number;
  sequence: number;
}

/** Signs an owner statement now, with a fresh sequence (low-s, hex `r || s`). */
export async function ownerSignature(
  owner: ClientKey,
  audience: string,
  action: OwnerAction,
  name: string,
  detail: string,
): Promise<OwnerSignature> {
  const signedAt = Math.floor(Date.now() / 1000);
  const sequence = nextSequence();
  const sig = await owner.sign(ownerMessage(audience, action, name, signedAt, sequence, detail));
  return { signature: toHex(sig), signed_at: signedAt, sequence };
}
