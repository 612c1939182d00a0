/**
 * Wire types (PROTOCOL §3, §6, §7, §12-§14, §17).
 * @module
 */
import type { Settlement } from './payments.js';

/** Resource limits of a run (§6). Absent fields take the host's defaults. */
export interface Limits {
  time_ms?: number;
  memory_bytes?: number;
  fuel?: number;
}

/** The attestation object of `GET /attestation` and session quotes (§12). */
export interface Attestation {
  tee: string;
  simulated: boolean;
  evidence_format: string;
  evidence: string;
  report_data: string;
  signing_key: string;
  host_measurement: string;
  key_created_at: number;
  /** A JSON string holding the event log array (§12c). */
  event_log?: string;
}

/** The `quote` of a verifiable session (§13). */
export interface SessionQuote {
  attestation: Attestation;
  session_created_at: number;
  session_expires_at: number;
  session_signature: string;
}

/** One call an agent's run made (§18), signed in receipts. */
export interface ReceiptCall {
  callee: string;
  callee_execution?: string | null;
  response_sha256: string;
  transaction?: string | null;
}

/** A receipt (§14). */
export interface Receipt {
  version: number;
  session_id: string;
  sequence: number;
  route: string;
  program_sha256: string;
  argument_sha256: string[];
  stdin_sha256: string;
  result_commitment: string;
  status: string;
  limits: Limits;
  issued_at: number;
  policy?: string | null;
  payment?: string | null;
  calls?: ReceiptCall[];
  tee: string;
  evidence_sha256: string;
  replica?: string;
  signing_key: string;
  signature: string;
}

/** The decrypted result document (§7). */
export interface ResultDocument {
  version: number;
  status: 'exited' | 'time_limit_exceeded' | 'memory_limit_exceeded' | 'fuel_exhausted' | 'trapped' | string;
  exit_code?: number;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  duration_us: number;
  trap?: string;
  limits: Limits;
  fuel_consumed?: number;
  returned?: unknown;
  exception?: { type: string; message: string; traceback: string };
  [field: string]: unknown;
}

/** A run whose result was decrypted and checked (commitment; receipt on verifiable sessions). */
export interface Execution {
  /** The parsed result document. */
  result: ResultDocument;
  /** The exact plaintext the commitment covers. */
  plaintext: Uint8Array;
  /** The result commitment, hex (§8), equal to the one recomputed. */
  commitment: string;
  /** Decoded standard output. */
  stdout: Uint8Array;
  /** Decoded standard error. */
  stderr: Uint8Array;
  /** Standard output as UTF-8 text (invalid bytes replaced). */
  stdoutText: string;
  /** The verified receipt (verifiable sessions). */
  receipt?: Receipt;
  /** For a stopped guest, the host's error. */
  stopped?: { code: string; message: string };
  /** The `x-execution-id` header, when present. */
  executionId?: string;
  /** The decoded settlement header of a paid request (§6b). */
  settlement?: Settlement;
}

/** An agent as `GET /agents` lists it (§17). */
export interface Agent {
  name: string;
  owner_key: string;
  description: string;
  tags: string[];
  public: boolean;
  price?: string;
  created_at: number;
  updated_at: number;
  expires_at?: number;
  latest: AgentVersion;
  versions?: AgentVersion[];
  [field: string]: unknown;
}

/** One version of an agent (§17). */
export interface AgentVersion {
  version: number;
  code_hash: string;
  kind: 'cli' | 'http' | 'handler' | string;
  world: string;
  size: number;
  limits: string;
  created_at: number;
}

/** A search hit (§17): an agent plus its latest version's kind, world, code hash and a score. */
export interface SearchHit extends Agent {
  kind: string;
  world: string;
  code_hash: string;
  score: number;
}

/** The answer of a clear invocation (§17). */
export interface ClearInvocation {
  execution_id: string;
  agent: string;
  version: number;
  status: string;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
  exit_code?: number;
  stdout?: string;
  stderr?: string;
  duration_us: number;
  /** Added by this SDK: the decoded settlement header of a paid invocation (§6b). */
  settlement?: Settlement;
  [field: string]: unknown;
}
