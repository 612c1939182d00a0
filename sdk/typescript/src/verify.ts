/**
 * Verifying a host (§12a, in order): labels, pins, evidence, event log, binding, host filter,
 * reference sets; then statements (§13-§15) and receipts (§14).
 * @module
 */
import { ctEqual, fromHex, fromUtf8, toHex } from './bytes.js';
import { sha256, uncompressedPublicKey } from './crypto.js';
import { VerifyError } from './errors.js';
import { replayAgainst } from './eventlog.js';
import { isObject, isU64, parseJson, show } from './json.js';
import { decodeReferenceSet, matchAny, type Measured, type ReferenceSet, type ReferenceValues } from './reference.js';
import {
  certificateReportData,
  receiptFields,
  sessionStatementFields,
  signingKeyReportData,
  StatementKind,
  verifyStatement,
} from './statements.js';
import { verifyTdxQuote } from './tdx.js';
import type { Attestation, Receipt, SessionQuote } from './types.js';

/** What a verifier accepts. The default accepts nothing: pin reference sets. */
export interface Policy {
  /**
   * The reference value sets accepted (§12b), tried in order: the platform's measurements
   * must match one. The only pin that says what runs.
   */
  referenceValues?: ReferenceValues[];
  /** Accept simulated evidence (development only). Default false. */
  allowSimulated?: boolean;
  /**
   * Accept a host whatever it runs when no reference set is pinned (explicit opt-out; a
   * warning is written with `console.warn` each time it is used).
   */
  acceptAnyMeasurement?: boolean;
  /** Extra filter: the claimed host measurement (hex SHA-256) must be one of these. Never a pin alone. */
  expectedHostMeasurements?: string[];
  /** Accepted TDX TCB statuses (default `["UpToDate"]`). */
  tdxStatuses?: string[];
  /** TDX DCAP collateral (`QuoteCollateralV3` JSON object or text). */
  collateral?: object | string;
  /** Fetch TDX collateral from this PCCS / Intel PCS base URL when `collateral` is not given. */
  pccsUrl?: string;
  /** Verification time, Unix seconds (default now). */
  now?: number;
  /** Accept debug TDs (never in production). */
  allowDebug?: boolean;
}

/** A signing key whose evidence chain verified. Labels come from the evidence format, never from claims. */
export interface VerifiedKey {
  /** The attested key, uncompressed (65 bytes). */
  signingKey: Uint8Array;
  /** `tdx` or `simulated` (from the verified evidence's format). */
  tee: string;
  simulated: boolean;
  /** The host's claimed SHA-256 of its binary. */
  hostMeasurement: Uint8Array;
  /** TDX TCB status. */
  tcbStatus?: string;
  /** Intel advisories that apply (reported, not refused). */
  advisoryIds: string[];
  /** SHA-256 of the verified evidence bytes (receipts name it). */
  evidenceSha256: Uint8Array;
  /** What was measured. */
  measured: Measured;
  /** The name of the reference set that matched (`undefined` with `acceptAnyMeasurement`). */
  reference?: string;
}

const FORMATS: Record<string, string> = {
  'simulated-not-for-production': 'simulated',
  'tdx-dcap-quote': 'tdx',
  'sev-snp-report': 'sev-snp',
};

function malformed(what: string): never {
  throw new VerifyError('Malformed', `malformed ${what}`);
}

function hexField(name: string, value: unknown, length?: number): Uint8Array {
  if (typeof value !== 'string') malformed(`${name} (not a string)`);
  try {
    return fromHex(value as string, name, length);
  } catch (e) {
    malformed(`${name}: ${(e as Error).message}`);
  }
}

/**
 * What REPORTDATA binds besides the signing key: by default purpose 0x01 (§12); an RA-TLS
 * certificate's evidence (§19) binds purpose 0x02 with the SHA-256 of the certificate's
 * SubjectPublicKeyInfo first, and has no `report_data` field of its own.
 */
export interface EvidenceBinding {
  /** SHA-256 of the certificate's SubjectPublicKeyInfo (DER). */
  certificateSpkiSha256: Uint8Array;
}

/**
 * Verifies an attestation (§12a steps 1-7): the evidence under `policy` and the REPORTDATA
 * binding of the signing key (or, with `binding`, of an RA-TLS certificate, §19). Returns the
 * verified key.
 * @throws VerifyError at the first failure.
 */
export async function verifyAttestation(att: Attestation, policy: Policy = {}, binding?: EvidenceBinding): Promise<VerifiedKey> {
  if (!isObject(att)) malformed('attestation');
  // 1. Labels: what the evidence is comes from its format alone.
  const format: unknown = att.evidence_format;
  const tee = typeof format === 'string' && Object.hasOwn(FORMATS, format) ? FORMATS[format] : undefined;
  const simulated = tee === 'simulated';
  const claimsSimulated = att.simulated === true || att.tee === 'simulated';
  if ((simulated && !policy.allowSimulated) || (claimsSimulated && !simulated)) {
    throw new VerifyError(
      'Simulated',
      'the evidence is SIMULATED (proves nothing); refused (set allowSimulated only for development)',
    );
  }
  if (tee === undefined) malformed(`evidence: unknown evidence format \`${show(format)}\``);
  if (att.tee !== tee || att.simulated !== simulated) {
    throw new VerifyError(
      'LabelMismatch',
      `the attestation claims tee \`${show(att.tee)}\` (simulated: ${show(att.simulated)}) but its evidence is \`${show(format)}\``,
    );
  }
  // 2. Pins, before the evidence costs anything.
  const statuses = policy.tdxStatuses ?? ['UpToDate'];
  const sets: ReferenceSet[] = (policy.referenceValues ?? []).map((s, i) => decodeReferenceSet(s, i));
  for (const s of sets) if (s.tdxStatuses.length === 0) s.tdxStatuses = [...statuses];
  const hostPins = (policy.expectedHostMeasurements ?? []).map((h, i) => hexField(`expectedHostMeasurements[${i}]`, h, 32));
  if (sets.length === 0) {
    if (!policy.acceptAnyMeasurement) {
      if (hostPins.length > 0) {
        throw new VerifyError(
          'HostPinOnly',
          'only the host binary\'s SHA-256 is pinned: the host writes that value itself, so any program in any genuine TEE can ' +
            'claim it and it proves nothing about what runs; pin a reference value set of platform-measured values instead (PROTOCOL §12b)',
        );
      }
      throw new VerifyError(
        'NoExpectedMeasurement',
        'no reference values: pin the platform-measured values of the build you expect (policy.referenceValues, PROTOCOL §12b), ' +
          'or accept any code with policy.acceptAnyMeasurement',
      );
    }
    console.warn(
      'wasm-hypervisor: acceptAnyMeasurement is set: this host is accepted WHATEVER CODE IT RUNS (no reference set pinned)',
    );
  }
  const quoteStatuses = sets.length === 0 ? statuses : [...new Set(sets.flatMap((s) => s.tdxStatuses))];
  // 3. The evidence; 4. the event log.
  const evidence = hexField('evidence', att.evidence);
  const measured: Measured = { tee, hostMeasurement: new Uint8Array(32) };
  let evidenceReportData: Uint8Array;
  let tcbStatus: string | undefined;
  let advisoryIds: string[] = [];
  if (tee === 'simulated') {
    let doc: Record<string, unknown>;
    try {
      doc = parseJson(fromUtf8(evidence)) as Record<string, unknown>;
    } catch {
      malformed('simulated evidence');
    }
    if (typeof doc !== 'object' || doc === null) malformed('simulated evidence');
    const platform = doc['platform'];
    if (platform !== undefined) {
      if (typeof platform !== 'object' || platform === null) malformed('simulated platform');
      const p = platform as Record<string, unknown>;
      const reg = (n: string) => hexField(`simulated platform \`${n}\``, p[n], 48);
      measured.mrtd = reg('mrtd');
      measured.rtmrs = [reg('rtmr0'), reg('rtmr1'), reg('rtmr2'), reg('rtmr3')];
      await replayInto(measured, att.event_log);
    }
    evidenceReportData = hexField('simulated report_data', doc['report_data'], 64);
  } else if (tee === 'tdx') {
    const q = await verifyTdxQuote(evidence, {
      ...(policy.collateral !== undefined ? { collateral: policy.collateral } : {}),
      ...(policy.pccsUrl !== undefined ? { pccsUrl: policy.pccsUrl } : {}),
      ...(policy.now !== undefined ? { now: policy.now } : {}),
      tdxStatuses: quoteStatuses,
      allowDebug: policy.allowDebug === true,
    });
    advisoryIds = q.advisoryIds;
    tcbStatus = q.tcbStatus;
    measured.mrtd = q.mrtd;
    measured.rtmrs = q.rtmrs;
    measured.tcbStatus = q.tcbStatus;
    await replayInto(measured, att.event_log);
    evidenceReportData = q.reportData;
  } else {
    throw new VerifyError(
      'Unsupported',
      'SEV-SNP evidence cannot be verified by this SDK: there is no well-kept JavaScript SEV-SNP verifier (VCEK chain to ' +
        'AMD\'s ARK/ASK and report signature); refused. Verify such hosts with the Rust hypervisor-client',
    );
  }
  // 5. The binding.
  const signingKey = (() => {
    try {
      return uncompressedPublicKey(hexField('signing_key', att.signing_key));
    } catch (e) {
      if (e instanceof VerifyError) throw e;
      malformed(`signing_key: ${(e as Error).message}`);
    }
  })();
  const hostMeasurement = hexField('host_measurement', att.host_measurement, 32);
  if (!Number.isSafeInteger(att.key_created_at) || att.key_created_at < 0) malformed('key_created_at');
  const expected = binding
    ? await certificateReportData(binding.certificateSpkiSha256, signingKey, hostMeasurement, att.key_created_at)
    : await signingKeyReportData(signingKey, hostMeasurement, att.key_created_at);
  const claimedReportData = binding && att.report_data === undefined ? expected : hexField('report_data', att.report_data);
  if (!ctEqual(expected, evidenceReportData) || !ctEqual(expected, claimedReportData)) {
    throw new VerifyError('Binding', 'REPORTDATA does not bind the signing key, host measurement and creation time');
  }
  // 6. The host filter.
  if (hostPins.length > 0 && !hostPins.some((h) => ctEqual(h, hostMeasurement))) {
    throw new VerifyError('Measurement', `host measurement ${toHex(hostMeasurement)} does not match the expected value`);
  }
  measured.hostMeasurement = hostMeasurement;
  // 7. The reference sets.
  const reference = sets.length === 0 ? undefined : matchAny(sets, measured);
  return {
    signingKey,
    tee,
    simulated,
    hostMeasurement,
    ...(tcbStatus !== undefined ? { tcbStatus } : {}),
    advisoryIds,
    evidenceSha256: await sha256(evidence),
    measured,
    ...(reference !== undefined ? { reference } : {}),
  };
}

async function replayInto(m: Measured, eventLog: string | undefined): Promise<void> {
  if (eventLog === undefined || eventLog === null) return;
  if (typeof eventLog !== 'string') malformed('event_log (a JSON string holding the array)');
  const id = await replayAgainst(eventLog, m.rtmrs!);
  if (id.composeHash) m.composeHash = id.composeHash;
  if (id.appId) m.appId = id.appId;
  if (id.hostSha256) m.hostEvent = id.hostSha256;
}

/**
 * Verifies a verifiable session's quote (§13): the attestation, then the session statement
 * signed by the attested key.
 */
export async function verifySessionQuote(
  quote: SessionQuote,
  sessionId: string,
  sessionPubkey: Uint8Array,
  clientPubkey: Uint8Array,
  policy: Policy = {},
): Promise<VerifiedKey> {
  if (!isObject(quote)) malformed('session quote');
  const key = await verifyAttestation(quote.attestation, policy);
  if (!isU64(quote.session_created_at) || !isU64(quote.session_expires_at)) {
    malformed('session quote (its times are not Unix seconds)');
  }
  let fields: Uint8Array[];
  try {
    fields = sessionStatementFields(
      sessionId,
      uncompressedPublicKey(sessionPubkey),
      uncompressedPublicKey(clientPubkey),
      quote.session_created_at,
      quote.session_expires_at,
    );
  } catch (e) {
    malformed(`session statement: ${(e as Error).message}`);
  }
  const sig = hexField('session_signature', quote.session_signature);
  if (!(await verifyStatement(key.signingKey, StatementKind.Session, fields, sig))) {
    throw new VerifyError('Signature', 'the session signature does not verify');
  }
  return key;
}

/** What a receipt must name (§14). */
export interface ReceiptExpectation {
  sessionId: string;
  /** The commitment recomputed from the decrypted result. */
  commitment: Uint8Array;
  /** SHA-256 of the program sent (or the agent's code hash). */
  program: Uint8Array;
  /** SHA-256 of each argument sent. */
  arguments: Uint8Array[];
  /** SHA-256 of the stdin sent (or of the event). */
  stdin: Uint8Array;
}

/**
 * Verifies a receipt (§14) against the key verified for the session: signing key, version,
 * signature, session, TEE, evidence, commitment and the exact inputs sent.
 * @throws VerifyError (`Receipt`, `Signature`, `Malformed`).
 */
export async function verifyReceipt(receipt: Receipt, key: VerifiedKey, expect: ReceiptExpectation): Promise<void> {
  if (!isObject(receipt)) throw new VerifyError('Receipt', 'verifiable result without a receipt');
  let receiptKey: Uint8Array;
  try {
    receiptKey = uncompressedPublicKey(receipt.signing_key);
  } catch {
    malformed('receipt signing_key');
  }
  if (!ctEqual(receiptKey, key.signingKey)) throw new VerifyError('Receipt', 'receipt signing key does not match');
  if (receipt.version !== 2 && receipt.version !== 3) {
    malformed(`receipt version ${show(receipt.version)} (this client verifies versions 2 to 3, which name the TEE and its evidence)`);
  }
  let fields: Uint8Array[];
  try {
    fields = receiptFields(receipt);
  } catch (e) {
    malformed(`receipt: ${(e as Error).message}`);
  }
  const sig = hexField('receipt signature', receipt.signature);
  if (!(await verifyStatement(key.signingKey, StatementKind.Receipt, fields, sig))) {
    throw new VerifyError('Signature', 'the receipt signature does not verify');
  }
  let sameSession = false;
  try {
    sameSession = ctEqual(fromHex(receipt.session_id.replace(/-/g, '')), fromHex(expect.sessionId.replace(/-/g, '')));
  } catch {
    sameSession = false;
  }
  if (!sameSession) throw new VerifyError('Receipt', 'receipt session does not match');
  if (receipt.tee !== key.tee) throw new VerifyError('Receipt', 'receipt TEE does not match');
  if (!ctEqual(hexField('evidence_sha256', receipt.evidence_sha256, 32), key.evidenceSha256)) {
    throw new VerifyError('Receipt', 'receipt evidence does not match the verified evidence');
  }
  if (!ctEqual(hexField('result_commitment', receipt.result_commitment, 32), expect.commitment)) {
    throw new VerifyError('Receipt', 'receipt commitment does not match');
  }
  let same = ctEqual(hexField('program_sha256', receipt.program_sha256, 32), expect.program);
  same = ctEqual(hexField('stdin_sha256', receipt.stdin_sha256, 32), expect.stdin) && same;
  if (receipt.argument_sha256.length !== expect.arguments.length) same = false;
  else {
    receipt.argument_sha256.forEach((h, i) => {
      same = ctEqual(hexField(`argument_sha256[${i}]`, h, 32), expect.arguments[i]!) && same;
    });
  }
  if (!same) throw new VerifyError('Receipt', 'receipt program or input hashes do not match what was sent');
}

/**
 * Verifies a component statement (§15): kind 0x03 over `[sha256(component), user_data]`,
 * signed by a verified key.
 */
export async function verifyComponentStatement(
  key: VerifiedKey,
  componentSha256: Uint8Array,
  userData: Uint8Array,
  signature: Uint8Array,
): Promise<void> {
  if (componentSha256.length !== 32 || userData.length !== 64) malformed('component statement fields');
  if (!(await verifyStatement(key.signingKey, StatementKind.Component, [componentSha256, userData], signature))) {
    throw new VerifyError('Signature', 'the component statement signature does not verify');
  }
}
