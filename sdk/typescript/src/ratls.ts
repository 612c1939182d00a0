/**
 * RA-TLS certificates (§19): the `id-pe-cmw` extension of a host's self-generated certificate,
 * its CMW evidence record, and the evidence verified under a policy and bound to the
 * certificate's public key. Pure JavaScript (a minimal DER reader): no Node APIs.
 * @module
 */
import { fromBase64Url, fromUtf8, toHex } from './bytes.js';
import { sha256 } from './crypto.js';
import { VerifyError } from './errors.js';
import { isObject, parseJson } from './json.js';
import type { Attestation } from './types.js';
import { verifyAttestation, type Policy, type VerifiedKey } from './verify.js';

/** The OID of the RATS Conceptual Message Wrapper's X.509 extension, `1.3.6.1.5.5.7.1.35`. */
export const CMW_EXTENSION_OID = '1.3.6.1.5.5.7.1.35';
/** The CMW media type of the host's certificate evidence. */
export const CMW_EVIDENCE_TYPE = 'application/vnd.wasm-hypervisor.certificate-evidence+json';
const CMW_OID_BYTES = '2b060105050701' + '23';
const EVIDENCE_FORMATS: Record<string, string> = {
  'simulated-not-for-production': 'simulated',
  'tdx-dcap-quote': 'tdx',
  'sev-snp-report': 'sev-snp',
};

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset just past the contents. */
  end: number;
}

function notDer(why: string): never {
  throw new VerifyError('Evidence', `the host's certificate does not parse: ${why}`);
}

function tlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) notDer('truncated');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) notDer('a high tag number');
  let length = der[at + 1]!;
  let body = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || body + n > limit) notDer('a bad length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[body + i]!;
    body += n;
  }
  if (body + length > limit) notDer('a length past the end');
  return { tag, start: at, body, end: body + length };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const t = tlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** A verified channel binding (§19): the attested key, the certificate it vouched for, the audience. */
export interface BoundChannel {
  /** The attested signing key, verified under the client's policy. */
  verified: VerifiedKey;
  /** The host's certificate (DER) the binding named, the only one pinned connections accept. */
  certificate: Uint8Array;
  /** The host's audience (§17), signed by the attested key in the binding. */
  audience: string;
}

/** The parts of a DER X.509 certificate the binding needs. */
export interface CertificateParts {
  /** The SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  /** The value (contents of extnValue) of the `id-pe-cmw` extension, if the certificate has one. */
  cmwExtension?: Uint8Array;
}

/** Reads the SubjectPublicKeyInfo and the RA-TLS extension of a DER certificate. */
export function certificateParts(der: Uint8Array): CertificateParts {
  const cert = tlv(der, 0, der.length);
  if (cert.tag !== 0x30 || cert.end !== der.length) notDer('not a SEQUENCE');
  const tbs = children(der, cert)[0];
  if (tbs === undefined || tbs.tag !== 0x30) notDer('no tbsCertificate');
  const fields = children(der, tbs);
  const first = fields[0]?.tag === 0xa0 ? 1 : 0;
  const spki = fields[first + 5];
  if (spki === undefined || spki.tag !== 0x30) notDer('no SubjectPublicKeyInfo');
  const out: CertificateParts = { spki: der.slice(spki.start, spki.end) };
  const extensions = fields.slice(first + 6).find((f) => f.tag === 0xa3);
  if (extensions) {
    const list = children(der, extensions)[0];
    if (list === undefined || list.tag !== 0x30) notDer('extensions are not a SEQUENCE');
    for (const ext of children(der, list)) {
      if (ext.tag !== 0x30) notDer('an extension is not a SEQUENCE');
      const parts = children(der, ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (oid?.tag !== 0x06 || value?.tag !== 0x04) notDer('an extension without an OID or value');
      if (toHex(der.subarray(oid.body, oid.end)) === CMW_OID_BYTES) {
        if (out.cmwExtension) notDer('two RA-TLS extensions');
        out.cmwExtension = der.slice(value.body, value.end);
      }
    }
  }
  return out;
}

/** The JSON message of an RA-TLS extension value (a CMW record in a DER UTF8String, §19). */
export function certificateMessage(extensionValue: Uint8Array): Record<string, unknown> {
  let message: unknown;
  try {
    const s = tlv(extensionValue, 0, extensionValue.length);
    if (s.tag !== 0x0c || s.end !== extensionValue.length) throw new TypeError('not a DER UTF8String');
    const record = parseJson(fromUtf8(extensionValue.subarray(s.body, s.end)));
    if (!Array.isArray(record) || record.length !== 3 || record[0] !== CMW_EVIDENCE_TYPE || record[2] !== 4 || typeof record[1] !== 'string') {
      throw new VerifyError('Evidence', 'the RA-TLS extension is not our CMW evidence record');
    }
    message = parseJson(fromUtf8(fromBase64Url(record[1])));
  } catch (e) {
    if (e instanceof VerifyError && e.kind === 'Evidence') throw e;
    throw new VerifyError('Evidence', `the RA-TLS extension does not parse: ${(e as Error).message}`);
  }
  if (!isObject(message) || message['version'] !== 1) throw new VerifyError('Evidence', 'the RA-TLS message is not version 1');
  return message;
}

/**
 * Verifies the RA-TLS evidence of a DER certificate (§12a under `policy`, its REPORTDATA bound
 * to the certificate's public key, purpose 0x02); `undefined` when the certificate carries no
 * RA-TLS extension.
 * @throws VerifyError at the first failure.
 */
export async function verifyCertificate(der: Uint8Array, policy: Policy): Promise<VerifiedKey | undefined> {
  const parts = certificateParts(der);
  if (parts.cmwExtension === undefined) return undefined;
  const m = certificateMessage(parts.cmwExtension);
  const format = m['evidence_format'];
  const tee = typeof format === 'string' && Object.hasOwn(EVIDENCE_FORMATS, format) ? EVIDENCE_FORMATS[format] : undefined;
  const att: Record<string, unknown> = {
    evidence_format: format,
    tee,
    simulated: tee === 'simulated',
    evidence: m['evidence'],
    signing_key: m['signing_key'],
    host_measurement: m['host_measurement'],
    key_created_at: m['created_at'],
  };
  if (m['event_log'] !== undefined && m['event_log'] !== null) att['event_log'] = m['event_log'];
  return verifyAttestation(att as unknown as Attestation, policy, { certificateSpkiSha256: await sha256(parts.spki) });
}
