/**
 * Reference value sets (§12b): decoding, the digest (SHA-256 of RFC 8785 JCS of the set as
 * decoded), and the comparison with what a verifier measured, in the order of §12b.
 * @module
 */
import { ctEqual, fromHex, toHex } from './bytes.js';
import { sha256 } from './crypto.js';
import { VerifyError } from './errors.js';
import { canonicalJson, canonicalJsonBytes } from './jcs.js';

/** A reference value set as written (JSON). */
export interface ReferenceValues {
  version: number;
  name?: string;
  tee: 'tdx' | 'sev-snp' | 'simulated' | string;
  tdx?: {
    mrtd: string;
    rtmr0: string;
    rtmr1: string;
    rtmr2: string;
    app: { compose_hash?: string; app_id?: string; host_event?: boolean };
  };
  sev_snp?: { measurement: string; host_data?: string; id_key_digest?: string };
  host_measurements: string[];
  tcb?: { tdx_statuses?: string[]; snp_minimum?: string };
}

/** A decoded, checked set. */
export interface ReferenceSet {
  /** The set's name, or `#N` for an unnamed one. */
  name: string;
  tee: string;
  tdx?: {
    mrtd: Uint8Array;
    rtmrs: [Uint8Array, Uint8Array, Uint8Array];
    composeHash?: Uint8Array;
    appId?: Uint8Array;
    hostEvent: boolean;
  };
  snp?: { measurement: Uint8Array; hostData?: Uint8Array; idKeyDigest?: Uint8Array };
  hostMeasurements: Uint8Array[];
  tdxStatuses: string[];
  snpMinimum?: [number, number, number, number];
}

/** What a verifier measured (the verified evidence, the replayed identity, the host's claim). */
export interface Measured {
  tee: string;
  mrtd?: Uint8Array;
  rtmrs?: Uint8Array[];
  composeHash?: Uint8Array;
  appId?: Uint8Array;
  hostEvent?: Uint8Array;
  snpMeasurement?: Uint8Array;
  hostData?: Uint8Array;
  idKeyDigest?: Uint8Array;
  tcbStatus?: string;
  snpTcb?: [number, number, number, number];
  hostMeasurement: Uint8Array;
}

function only(obj: Record<string, unknown>, allowed: string[], where: string, fail: (why: string) => never): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(`unknown field \`${where}${k}\``);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Decodes and checks a set (`index` names an unnamed one `#index`).
 * @throws VerifyError (`BadReference`) naming the set and the field.
 */
export function decodeReferenceSet(raw: unknown, index = 0): ReferenceSet {
  const s = raw as Record<string, unknown>;
  const rawName = isObject(s) && typeof s['name'] === 'string' ? s['name'] : '';
  const name = rawName === '' ? `#${index}` : rawName;
  const fail = (why: string): never => {
    throw new VerifyError('BadReference', `reference set \`${name}\`: ${why}`);
  };
  if (!isObject(s)) fail('a reference set is a JSON object');
  only(s, ['version', 'name', 'tee', 'tdx', 'sev_snp', 'host_measurements', 'tcb'], '', fail);
  if (s['version'] !== 1) fail(`version ${String(s['version'])} (this verifier reads version 1)`);
  if (s['name'] !== undefined && typeof s['name'] !== 'string') fail('`name` must be a string');
  // eslint-disable-next-line no-control-regex
  if (new TextEncoder().encode(rawName).length > 200 || /[\u0000-\u001f\u007f-\u009f]/.test(rawName)) {
    fail('`name` is at most 200 bytes (UTF-8) with no control characters');
  }
  const hex = (field: string, value: unknown, n: number): Uint8Array => {
    if (typeof value !== 'string' || !/^[0-9a-fA-F]*$/.test(value) || value.length % 2) fail(`\`${field}\` is not hex`);
    const b = fromHex(value as string);
    if (b.length !== n) fail(`\`${field}\` must be ${n} bytes (${n * 2} hex digits)`);
    return b;
  };
  const tee = s['tee'];
  const out: ReferenceSet = { name, tee: String(tee), hostMeasurements: [], tdxStatuses: [] };
  if (tee === 'tdx' || tee === 'simulated') {
    if (s['sev_snp'] !== undefined) fail('a TDX or simulated set has no `sev_snp` section');
    const t = s['tdx'];
    if (!isObject(t)) fail('a TDX or simulated set needs its `tdx` registers');
    const tt = t as Record<string, unknown>;
    only(tt, ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'app'], 'tdx.', fail);
    const app = tt['app'];
    if (!isObject(app)) fail('`tdx.app` is required');
    const a = app as Record<string, unknown>;
    only(a, ['compose_hash', 'app_id', 'host_event'], 'tdx.app.', fail);
    const composeHash = a['compose_hash'] === undefined ? undefined : hex('tdx.app.compose_hash', a['compose_hash'], 32);
    let appId: Uint8Array | undefined;
    if (a['app_id'] !== undefined) {
      const v = a['app_id'];
      if (typeof v !== 'string' || !/^[0-9a-fA-F]*$/.test(v) || v.length % 2 || v.length < 2 || v.length > 128) {
        fail('`tdx.app.app_id` is 1 to 64 bytes of hex');
      }
      appId = fromHex(v as string);
    }
    if (a['host_event'] !== undefined && typeof a['host_event'] !== 'boolean') fail('`tdx.app.host_event` is a boolean');
    const hostEvent = a['host_event'] === true;
    if (composeHash === undefined && !hostEvent) {
      fail(
        '`tdx.app` pins no application identity: set `compose_hash` (dstack) or `host_event` (a launcher in the image ' +
          'pinned by RTMR1-2 extends RTMR3 with the host binary); MRTD and RTMR0-2 alone measure the VM, not the code it runs',
      );
    }
    out.tdx = {
      mrtd: hex('tdx.mrtd', tt['mrtd'], 48),
      rtmrs: [hex('tdx.rtmr0', tt['rtmr0'], 48), hex('tdx.rtmr1', tt['rtmr1'], 48), hex('tdx.rtmr2', tt['rtmr2'], 48)],
      hostEvent,
      ...(composeHash ? { composeHash } : {}),
      ...(appId ? { appId } : {}),
    };
  } else if (tee === 'sev-snp') {
    if (s['tdx'] !== undefined) fail('an SEV-SNP set has no `tdx` section');
    const p = s['sev_snp'];
    if (!isObject(p)) fail('an SEV-SNP set needs its `sev_snp` values');
    const pp = p as Record<string, unknown>;
    only(pp, ['measurement', 'host_data', 'id_key_digest'], 'sev_snp.', fail);
    out.snp = { measurement: hex('sev_snp.measurement', pp['measurement'], 48) };
    if (pp['host_data'] !== undefined) out.snp.hostData = hex('sev_snp.host_data', pp['host_data'], 32);
    if (pp['id_key_digest'] !== undefined) out.snp.idKeyDigest = hex('sev_snp.id_key_digest', pp['id_key_digest'], 48);
  } else {
    fail(`\`tee\` is \`${String(tee)}\`: expected tdx, sev-snp or simulated`);
  }
  const hm = s['host_measurements'];
  if (!Array.isArray(hm) || hm.length === 0 || hm.length > 32) {
    fail('`host_measurements` lists 1 to 32 host binaries (SHA-256) this build may claim');
  }
  out.hostMeasurements = (hm as unknown[]).map((m) => hex('host_measurements', m, 32));
  const tcb = s['tcb'];
  if (tcb !== undefined) {
    if (!isObject(tcb)) fail('`tcb` is an object');
    const c = tcb as Record<string, unknown>;
    only(c, ['tdx_statuses', 'snp_minimum'], 'tcb.', fail);
    const st = c['tdx_statuses'];
    if (st !== undefined) {
      if (!Array.isArray(st)) fail('`tcb.tdx_statuses` is a list');
      const list = st as unknown[];
      if (list.length > 0 && tee !== 'tdx') fail('`tcb.tdx_statuses` applies to TDX sets only');
      if (list.length > 8 || list.some((x) => typeof x !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(x))) {
        fail('`tcb.tdx_statuses` holds at most 8 statuses of 1-64 letters and digits');
      }
      out.tdxStatuses = list as string[];
    }
    const min = c['snp_minimum'];
    if (min !== undefined) {
      if (tee !== 'sev-snp') fail('`tcb.snp_minimum` applies to SEV-SNP sets only');
      const parts = typeof min === 'string' ? min.split(',').map((x) => x.trim()) : [];
      if (parts.length !== 4 || parts.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) {
        fail(`\`tcb.snp_minimum\` ${JSON.stringify(min)}: expected BOOTLOADER,TEE,SNP,MICROCODE`);
      }
      out.snpMinimum = parts.map(Number) as [number, number, number, number];
    }
  }
  return out;
}

/**
 * The set as its digest sees it (§12b): hex lowercased, fields holding their defaults left
 * out. The set must decode.
 */
export function normalisedReferenceSet(set: ReferenceValues): Record<string, unknown> {
  decodeReferenceSet(set);
  const out: Record<string, unknown> = { version: 1, tee: set.tee };
  if (set.name) out['name'] = set.name;
  if (set.tdx) {
    const app: Record<string, unknown> = {};
    if (set.tdx.app.compose_hash !== undefined) app['compose_hash'] = set.tdx.app.compose_hash.toLowerCase();
    if (set.tdx.app.app_id !== undefined) app['app_id'] = set.tdx.app.app_id.toLowerCase();
    if (set.tdx.app.host_event) app['host_event'] = true;
    out['tdx'] = {
      mrtd: set.tdx.mrtd.toLowerCase(),
      rtmr0: set.tdx.rtmr0.toLowerCase(),
      rtmr1: set.tdx.rtmr1.toLowerCase(),
      rtmr2: set.tdx.rtmr2.toLowerCase(),
      app,
    };
  }
  if (set.sev_snp) {
    const snp: Record<string, unknown> = { measurement: set.sev_snp.measurement.toLowerCase() };
    if (set.sev_snp.host_data !== undefined) snp['host_data'] = set.sev_snp.host_data.toLowerCase();
    if (set.sev_snp.id_key_digest !== undefined) snp['id_key_digest'] = set.sev_snp.id_key_digest.toLowerCase();
    out['sev_snp'] = snp;
  }
  out['host_measurements'] = set.host_measurements.map((m) => m.toLowerCase());
  const tcb: Record<string, unknown> = {};
  if (set.tcb?.tdx_statuses && set.tcb.tdx_statuses.length > 0) tcb['tdx_statuses'] = set.tcb.tdx_statuses;
  if (set.tcb?.snp_minimum !== undefined) tcb['snp_minimum'] = set.tcb.snp_minimum;
  if (Object.keys(tcb).length > 0) out['tcb'] = tcb;
  return out;
}

/** The canonical JSON a set's digest hashes. */
export function referenceSetCanonical(set: ReferenceValues): string {
  return canonicalJson(normalisedReferenceSet(set));
}

/** `SHA-256(JCS(set))`, hex: the name grants sign (`ref:<digest>`, §18). */
export async function referenceSetDigest(set: ReferenceValues): Promise<string> {
  return toHex(await sha256(canonicalJsonBytes(normalisedReferenceSet(set))));
}

function differs(register: string, expected: Uint8Array, found: Uint8Array | undefined): string | undefined {
  if (found !== undefined && ctEqual(expected, found)) return undefined;
  return `${register} differs: expected ${toHex(expected)}, the evidence has ${found === undefined ? 'none' : toHex(found)}`;
}

/** The first difference between `set` and `m` in §12b's order, or `undefined` when it matches. */
export function firstDifference(set: ReferenceSet, m: Measured): string | undefined {
  if (set.tee !== m.tee) return `tee differs: expected ${set.tee}, the evidence has ${m.tee}`;
  if (set.tdx) {
    const t = set.tdx;
    const d =
      differs('MRTD', t.mrtd, m.mrtd) ??
      differs('RTMR0', t.rtmrs[0], m.rtmrs?.[0]) ??
      differs('RTMR1', t.rtmrs[1], m.rtmrs?.[1]) ??
      differs('RTMR2', t.rtmrs[2], m.rtmrs?.[2]) ??
      (t.composeHash ? differs('compose-hash (RTMR3 event log)', t.composeHash, m.composeHash) : undefined) ??
      (t.appId ? differs('app-id (RTMR3 event log)', t.appId, m.appId) : undefined) ??
      (t.hostEvent
        ? differs('hypervisor-host-sha256 (RTMR3 event log) vs the claimed host_measurement', m.hostMeasurement, m.hostEvent)
        : undefined);
    if (d) return d;
  }
  if (set.snp) {
    const p = set.snp;
    const d =
      differs('SNP launch measurement', p.measurement, m.snpMeasurement) ??
      (p.hostData ? differs('SNP HOST_DATA', p.hostData, m.hostData) : undefined) ??
      (p.idKeyDigest ? differs('SNP ID key digest', p.idKeyDigest, m.idKeyDigest) : undefined);
    if (d) return d;
  }
  if (!set.hostMeasurements.some((h) => ctEqual(h, m.hostMeasurement))) {
    return `host_measurement (claimed by the host) differs: expected one of ${set.hostMeasurements.map(toHex).join(', ')}, the evidence has ${toHex(m.hostMeasurement)}`;
  }
  if (set.tee === 'tdx') {
    const status = m.tcbStatus ?? '';
    if (!set.tdxStatuses.includes(status)) {
      return `TDX TCB status differs: expected one of ${set.tdxStatuses.join(', ')}, the evidence has ${status}`;
    }
  }
  if (set.snpMinimum) {
    const tcb = m.snpTcb ?? [0, 0, 0, 0];
    if (!tcb.every((v, i) => v >= set.snpMinimum![i]!)) {
      return `SNP reported TCB differs: expected at least ${set.snpMinimum.join(',')}, the evidence has ${tcb.join(',')}`;
    }
  }
  return undefined;
}

/**
 * The name of the first set that matches `m`.
 * @throws VerifyError (`Reference`) with each set's first difference.
 */
export function matchAny(sets: ReferenceSet[], m: Measured): string {
  const why: string[] = [];
  for (const s of sets) {
    const d = firstDifference(s, m);
    if (d === undefined) return s.name;
    why.push(`reference set \`${s.name}\`: ${d}`);
  }
  throw new VerifyError('Reference', `the platform's measurements match no pinned reference set: ${why.join('; ')}`);
}
