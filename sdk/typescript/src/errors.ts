/**
 * Typed errors: what the host answered ({@link HypervisorError}), what failed verification
 * ({@link VerifyError}), answers that break the protocol ({@link ProtocolError}), the transport
 * ({@link TransportError}). All of them are {@link HypervisorSdkError}s: whatever a host (or
 * whoever is on the path) answers, the client throws one of these, never a `TypeError` or
 * `RangeError` from deep inside.
 * @module
 */
import type { Execution } from './types.js';

/** The base class of every error the SDK throws about a host, its answers or its evidence. */
export class HypervisorSdkError extends Error {
  override name = 'HypervisorSdkError';

  /** `cause`: what failed underneath (ES2022 `Error.cause`), when something did. */
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/**
 * The host answered something the protocol does not allow: an answer of the wrong shape (not
 * a JSON object, a missing field, a number out of range), JSON nested deeper than
 * {@link MAX_JSON_DEPTH} levels.
 */
export class ProtocolError extends HypervisorSdkError {
  override name = 'ProtocolError';
}

/**
 * The request did not complete: the connection failed (what `fetch` threw is the `cause`), or
 * the answer was larger than the client reads (256 MiB, as the Rust client's cap).
 */
export class TransportError extends HypervisorSdkError {
  override name = 'TransportError';
}

/** The deepest JSON nesting the SDK parses (serde_json's default, the host's own bound). */
export const MAX_JSON_DEPTH = 128;

/**
 * A non-2xx answer from the host (§9): `status` is the HTTP status, `code` the host's stable
 * code from `{"error": {"code", "message"}}` (or `http_<status>` when the body has none),
 * `message` the host's message.
 */
export class HypervisorError extends HypervisorSdkError {
  override name = 'HypervisorError';
  /** HTTP status. */
  readonly status: number;
  /** The host's stable error code (§9), e.g. `session_not_found`. */
  readonly code: string;
  /** The parsed response body, when it was JSON. */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * A guest stopped by a limit or a trap (`422` with the encrypted partial result, §6). The
 * result has been decrypted and its commitment (and, on verifiable sessions, its receipt)
 * checked: it is in `execution`.
 */
export class GuestStoppedError extends HypervisorError {
  override name = 'GuestStoppedError';
  /** What the guest produced until it was stopped, checked like any result. */
  readonly execution: Execution;

  constructor(status: number, code: string, message: string, execution: Execution, body?: unknown) {
    super(status, code, message, body);
    this.execution = execution;
  }
}

/** The kinds of {@link VerifyError}, mirroring the Rust client's `VerifyError` variants. */
export type VerifyErrorKind =
  /** Simulated evidence (or a simulated claim on hardware evidence) without `allowSimulated`. */
  | 'Simulated'
  /** A field or document does not parse. */
  | 'Malformed'
  /** The attestation's `tee` / `simulated` claims disagree with its evidence format. */
  | 'LabelMismatch'
  /** A pinned reference value set does not decode (§12b). */
  | 'BadReference'
  /** Only host measurements are pinned: refused (§12a step 2). */
  | 'HostPinOnly'
  /** Nothing is pinned and the opt-out is not given. */
  | 'NoExpectedMeasurement'
  /** The hardware evidence does not verify against the vendor's root. */
  | 'Evidence'
  /** Collateral needed for the evidence is missing. */
  | 'MissingInput'
  /** The TDX TCB status is not accepted. */
  | 'TcbStatus'
  /** A debug TD. */
  | 'Debug'
  /** This SDK cannot verify this kind of evidence (SEV-SNP; TDX without dcap-qvl). */
  | 'Unsupported'
  /** The event log does not parse or does not replay to the evidence's registers. */
  | 'EventLog'
  /** REPORTDATA does not bind the signing key, host measurement and creation time. */
  | 'Binding'
  /** The claimed host measurement is not among the pinned ones. */
  | 'Measurement'
  /** The measurements match no pinned reference set. */
  | 'Reference'
  /** A statement signature does not verify (or is high-s). */
  | 'Signature'
  /** A receipt does not name this session, TEE, evidence, inputs or commitment. */
  | 'Receipt'
  /** An envelope does not open (wrong key, role or session, or tampered). */
  | 'Decryption'
  /** The result's commitment does not match the one recomputed. */
  | 'Commitment'
  /** A field the host answered does not match what was expected (session id, …). */
  | 'Mismatch'
  /** An A2A agent card no signature of the attested key covers, or that names another key (§21.1). */
  | 'Card'
  /** The HTTPS channel binding (§19) does not verify, or the host is another deployment than the one pinned. */
  | 'Channel';

/** A verification failure. Verification is never skipped silently: every failure throws this. */
export class VerifyError extends HypervisorSdkError {
  override name = 'VerifyError';
  readonly kind: VerifyErrorKind;

  constructor(kind: VerifyErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * A `402` challenge (§6b) and no payer to pay it: `challenge` is the v2 `PaymentRequired`
 * document of the `PAYMENT-REQUIRED` header (or, without it, the v1 body), `headers` the
 * answer's headers. `code` is the host's (`payment_required`, or why a payment was refused).
 */
export class PaymentRequiredError extends HypervisorError {
  override name = 'PaymentRequiredError';
  /** The x402 `PaymentRequired` document the host sent. */
  readonly challenge: unknown;
  /** The 402's headers (lower-case names). */
  readonly headers: Record<string, string>;

  constructor(code: string, message: string, challenge: unknown, headers: Record<string, string>, body?: unknown) {
    super(402, code, message, body);
    this.challenge = challenge;
    this.headers = headers;
  }
}

/**
 * The x402 payer given to the client could not or would not pay a `402` (its spend controls,
 * no matching scheme or network, a signer error), or the challenge named another resource than
 * the one requested (never handed to the payer). Nothing was paid.
 */
export class PaymentFailedError extends HypervisorSdkError {
  override name = 'PaymentFailedError';
  /** What the x402 SDK threw, when it threw. */
}
