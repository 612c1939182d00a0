/**
 * The length-prefixed encoding of §12, REPORTDATA, statements (§13 session, §14 receipt,
 * §15 component) and their signatures.
 * @module
 */
import { concat, fromHex, u32be, u64be, utf8, uuidBytes } from './bytes.js';
import { sha512, verifySignature } from './crypto.js';
import type { Receipt } from './types.js';

const REPORT_DATA_LABEL = utf8('wasm-hypervisor/v1/report-data');
const STATEMENT_LABEL = utf8('wasm-hypervisor/v1/statement');

/** Statement kinds (§12-§15, §19). */
export const StatementKind = { Session: 0x01, Receipt: 0x02, Component: 0x03, TlsChannel: 0x04 } as const;

/** REPORTDATA purposes (§12, §19). */
export const ReportDataPurpose = { SigningKey: 0x01, TlsCertificate: 0x02 } as const;

/** `encode(label, purpose, fields)` of §12. */
export function encode(label: Uint8Array, purpose: number, fields: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [label, new Uint8Array([purpose])];
  for (const f of fields) parts.push(u32be(f.length), f);
  return concat(...parts);
}

/** The REPORTDATA preimage: `encode("wasm-hypervisor/v1/report-data", purpose, fields)`. */
export function reportDataPreimage(purpose: number, fields: Uint8Array[]): Uint8Array {
  return encode(REPORT_DATA_LABEL, purpose, fields);
}

/** `report_data(purpose, fields)`: SHA-512 of the preimage (64 bytes). */
export async function reportData(purpose: number, fields: Uint8Array[]): Promise<Uint8Array> {
  return sha512(reportDataPreimage(purpose, fields));
}

/** The REPORTDATA binding a signing key (purpose 0x01, §12). */
export async function signingKeyReportData(signingKey: Uint8Array, hostMeasurement: Uint8Array, keyCreatedAt: number): Promise<Uint8Array> {
  return reportData(0x01, [signingKey, hostMeasurement, u64be(keyCreatedAt)]);
}

/**
 * The REPORTDATA of an RA-TLS certificate's evidence (purpose 0x02, §19): the SHA-256 of the
 * certificate's SubjectPublicKeyInfo, then the signing key, host measurement and creation time.
 */
export async function certificateReportData(
  spkiSha256: Uint8Array,
  signingKey: Uint8Array,
  hostMeasurement: Uint8Array,
  createdAt: number,
): Promise<Uint8Array> {
  return reportData(0x02, [spkiSha256, signingKey, hostMeasurement, u64be(createdAt)]);
}

/**
 * The fields of a channel binding statement (kind 0x04, §19): the connection's TLS exporter
 * value, the client's nonce, the SHA-256 of the certificate shown, the audience (UTF-8).
 */
export function channelStatementFields(exporter: Uint8Array, nonce: Uint8Array, certificateSha256: Uint8Array, audience: string): Uint8Array[] {
  return [exporter, nonce, certificateSha256, utf8(audience)];
}

/** `statement(kind, fields)`: the bytes signed. */
export function statement(kind: number, fields: Uint8Array[]): Uint8Array {
  return encode(STATEMENT_LABEL, kind, fields);
}

/** The fields of a session statement (§13). */
export function sessionStatementFields(
  sessionId: string,
  sessionPubkey: Uint8Array,
  clientPubkey: Uint8Array,
  createdAt: number,
  expiresAt: number,
): Uint8Array[] {
  return [uuidBytes(sessionId), sessionPubkey, clientPubkey, u64be(createdAt), u64be(expiresAt)];
}

function hash32(field: string, hex: string): Uint8Array {
  return fromHex(hex, field, 32);
}

/**
 * The signed fields of a receipt (§14), in order. Every hash must be exactly 32 bytes.
 * @throws TypeError on a malformed field.
 */
export function receiptFields(r: Receipt): Uint8Array[] {
  const fuel = r.limits.fuel;
  const fields: Uint8Array[] = [
    uuidBytes(r.session_id),
    u64be(r.sequence),
    utf8(r.route),
    hash32('program_sha256', r.program_sha256),
    concat(...r.argument_sha256.map((h, i) => hash32(`argument_sha256[${i}]`, h))),
    hash32('stdin_sha256', r.stdin_sha256),
    hash32('result_commitment', r.result_commitment),
    utf8(r.status),
    u64be(r.limits.time_ms ?? 0),
    u64be(r.limits.memory_bytes ?? 0),
    fuel === undefined || fuel === null ? new Uint8Array() : u64be(fuel),
    u64be(r.issued_at),
    utf8(r.policy ?? ''),
    utf8(r.payment ?? ''),
  ];
  if (r.version >= 2) fields.push(utf8(r.tee), hash32('evidence_sha256', r.evidence_sha256));
  if (r.version >= 3) fields.push(utf8(r.replica ?? ''));
  if (r.calls !== undefined && r.calls !== null) {
    fields.push(
      utf8(
        r.calls
          .map((c) => `${c.callee}\n${c.callee_execution ?? '-'}\n${c.response_sha256}\n${c.transaction ?? '-'}\n`)
          .join(''),
      ),
    );
  }
  return fields;
}

/** Whether `signature` is the low-s signature by `signingKey` of `statement(kind, fields)`. */
export async function verifyStatement(signingKey: Uint8Array, kind: number, fields: Uint8Array[], signature: Uint8Array): Promise<boolean> {
  return verifySignature(signingKey, statement(kind, fields), signature);
}
