/**
 * Agent owner statements and the deploy detail (§17).
 * @module
 */
import { toHex, utf8 } from './bytes.js';
import { sha256, type ClientKey } from './crypto.js';
import { canonicalJsonBytes } from './jcs.js';
import { decodeReferenceSet, referenceSetDigest, type ReferenceValues } from './reference.js';
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
  | 'config'
  | 'read-config'
  | 'export-state'
  | 'import-state'
  | 'wipe-state'
  | string;

/** How a metered agent charges a run (§6b): `min(price, fixed + ceil(fuel × per_million_fuel / 10^6) + ms × per_ms + ceil(bytes × per_kib_out / 1024))`. */
export interface Tariff {
  fixed?: string;
  per_million_fuel?: string;
  per_ms?: string;
  per_kib_out?: string;
}

/** The fields of a deployment the deploy detail covers (the request as sent). */
export interface DeploySettings {
  public?: boolean;
  price?: string;
  ttl_seconds?: number;
  limits?: Limits;
  charge?: 'success' | 'always';
  /**
   * A metered agent's tariff (x402 `upto`, §6b): decimal strings of atomic units (absent = "0");
   * `price` is then the most a run costs. Signed as the line `tariff=<fixed>,<per_million_fuel>,<per_ms>,<per_kib_out>`.
   */
  tariff?: Tariff;
  /** Handler agents' JSON Schemas (`{"input"?, "output"?}`), signed as the SHA-256 of their JCS. */
  schemas?: { input?: object; output?: object };
  /** The agent's grants (§18), signed as {@link grantsDetail} after the settings. */
  grants?: Grants;
}

/** An agent named by its name and owner key (§18). */
export interface AgentRef {
  name: string;
  /** The owner's P-256 public key, SEC1 hex. */
  owner_key: string;
}

/** A remote hypervisor an agent may call, pinned by reference sets or measurements (§18). */
export interface HypervisorGrant {
  origin: string;
  reference_values?: ReferenceValues[];
  measurements?: string[];
  allow_simulated?: boolean;
}

/** What an agent may do (§18): agents it may call, HTTP origins, search, its callers, remote hypervisors. */
export interface Grants {
  agents?: AgentRef[];
  origins?: string[];
  search?: boolean;
  /** Who may call the agent (absent: anyone). */
  callers?: AgentRef[] | null;
  hypervisors?: HypervisorGrant[];
  /** Who may call the agent without paying, signing in with x402 sign-in-with-x (§6b). */
  sign_in?: SignInGrant | null;
}

/** Access to a paid agent without paying (§6b, x402 sign-in-with-x). */
export interface SignInGrant {
  /** EVM addresses that may call without paying. */
  wallets?: string[];
  /** How long after a paid call its payer may call again without paying (0: never). */
  after_payment_seconds?: number;
}

/** An agent wallet's spending policy (§18): amounts in atomic units, decimal strings. */
export interface WalletPolicy {
  networks: string[];
  assets: string[];
  max_per_call: string;
  max_per_day: string;
  max_total: string;
  /** Who may be paid (absent: anyone). */
  payees?: string[] | null;
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
  if (s.tariff !== undefined) {
    const t = s.tariff;
    lines.push('tariff=' + [t.fixed, t.per_million_fuel, t.per_ms, t.per_kib_out].map((v) => field(v ?? '0')).join(','));
  }
  if (s.grants !== undefined && s.grants !== null) lines.push(await grantsDetail(s.grants));
  if (s.schemas !== undefined) lines.push('schemas=' + toHex(await sha256(canonicalJsonBytes(s.schemas))));
  return lines.join('\n');
}

function refs(items: AgentRef[] | null | undefined): string {
  return (items ?? []).map((r) => `${r.name}:${String(r.owner_key).toLowerCase()}`).join(',');
}

/**
 * The grants detail (§18): the four lines (then `hypervisors` and `sign_in` when present) an owner signs for an
 * agent's grants; each hypervisor's reference sets by their digests (§12b).
 */
export async function grantsDetail(grants: Grants): Promise<string> {
  const lines = [
    'agents=' + refs(grants.agents),
    'origins=' + (grants.origins ?? []).join(','),
    'search=' + (grants.search ? 'true' : 'false'),
    'callers=' + (grants.callers === undefined || grants.callers === null ? '-' : refs(grants.callers)),
  ];
  const hypervisors = grants.hypervisors ?? [];
  if (hypervisors.length > 0) {
    const entries: string[] = [];
    for (const h of hypervisors) {
      const pins: string[] = [];
      const sets = h.reference_values ?? [];
      for (let i = 0; i < sets.length; i++) {
        decodeReferenceSet(sets[i], i);
        pins.push('ref:' + (await referenceSetDigest(sets[i]!)));
      }
      for (const m of h.measurements ?? []) pins.push(String(m).toLowerCase());
      entries.push(`${h.origin}|${pins.join('+')}|${h.allow_simulated ? 'true' : 'false'}`);
    }
    lines.push('hypervisors=' + entries.join(','));
  }
  if (grants.sign_in !== undefined && grants.sign_in !== null) {
    const wallets = (grants.sign_in.wallets ?? []).map((w) => String(w).toLowerCase());
    lines.push(`sign_in=${field(grants.sign_in.after_payment_seconds ?? 0)}|${wallets.join(',')}`);
  }
  return lines.join('\n');
}

/** The wallet detail (§18): the address and the spending policy's six lines. */
export function walletDetail(address: string, policy: WalletPolicy): string {
  return [
    'address=' + address.toLowerCase(),
    'networks=' + policy.networks.join(','),
    'assets=' + policy.assets.map((a) => a.toLowerCase()).join(','),
    'max_per_call=' + String(policy.max_per_call),
    'max_per_day=' + String(policy.max_per_day),
    'max_total=' + String(policy.max_total),
    'payees=' + (policy.payees === undefined || policy.payees === null ? '-' : policy.payees.map((p) => p.toLowerCase()).join(',')),
  ].join('\n');
}

/** §23.2: how the host names a configuration value without returning it (hex SHA-256). */
export async function valueHash(agent: string, name: string, value: string): Promise<string> {
  return toHex(await sha256(utf8(`wasm-hypervisor/v1/config-value\0${agent}\0${name}\0${value}`)));
}

/** The detail of a configuration change (§23.2): hex SHA-256 of the plaintext sealed. */
export async function configDetail(plaintext: Uint8Array): Promise<string> {
  return toHex(await sha256(plaintext));
}

/** The detail of a state import (§23.3): hex SHA-256 of the plaintext sealed, then `replace=`. */
export async function importDetail(plaintext: Uint8Array, replace: boolean): Promise<string> {
  return toHex(await sha256(plaintext)) + '\nreplace=' + (replace ? 'true' : 'false');
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
