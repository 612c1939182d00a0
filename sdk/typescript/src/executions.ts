/**
 * Sessions and executions (§3, §6, §6a, §7, §8, §13, §14): the host's answers about itself,
 * plain and verifiable sessions, running a program sealed to a session and reading (checking)
 * its result and receipt. The {@link Client}'s methods delegate here.
 * @module
 */
import { ctEqual, fromBase64, fromHex, toHex, utf8, uuidBytes, uuidText } from './bytes.js';
import { ClientKey, Role, uncompressedPublicKey } from './crypto.js';
import { inputDigests, resultCommitment, type InputDigests } from './commitment.js';
import { GuestStoppedError, ProtocolError, VerifyError } from './errors.js';
import { isObject, isU64, objectAnswer, parseJson, show } from './json.js';
import { settlementOf } from './payments.js';
import { Session } from './session.js';
import { errorOf, type Transport } from './transport.js';
import type { Attestation, Execution, Limits, Receipt, ResultDocument, SessionQuote } from './types.js';
import { verifyAttestation, verifyReceipt, verifySessionQuote, type Policy, type VerifiedKey } from './verify.js';

/** Inputs of an execution (§6). */
export interface RunOptions {
  /** Arguments (`argv[1..]`), UTF-8 strings. */
  args?: string[];
  /** Standard input. Without it the commitment binds SHA-256 of the empty string. */
  stdin?: Uint8Array | string;
  /** Limits (absent fields take the host's defaults). */
  limits?: Limits;
  /** `wasm` or `riscv` (§6d); recognised from the bytes when absent. */
  programKind?: 'wasm' | 'riscv';
  /**
   * Use the paid twin of the route (§6b): `/x402_execute/test/wasm`,
   * `/x402_execute/verifiable/wasm` or `/x402_policy/unsafe/python` (plain sessions only).
   */
  paid?: boolean;
}

/** `v`, or its UTF-8 bytes. */
export function asBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8(v) : v;
}

/**
 * Reads an execution answer (§6, §7, §8, §14): decrypts the result, recomputes and checks its
 * commitment and, on a verifiable session, verifies the receipt against the inputs sent. A
 * stopped guest (`422` with the encrypted result) throws {@link GuestStoppedError} carrying
 * the checked result; any other error throws {@link HypervisorError}.
 */
export async function readExecution(
  session: Session,
  status: number,
  body: unknown,
  digests: InputDigests,
  headers?: Headers,
): Promise<Execution> {
  const stoppedError = status === 422 && isObject(body) && typeof body['encrypted_result'] === 'string';
  if (status !== 200 && !stoppedError) throw errorOf(status, body, headers);
  if (!isObject(body)) throw new VerifyError('Malformed', 'malformed execution answer');
  let sameSession = false;
  try {
    sameSession = typeof body['session_id'] === 'string' && ctEqual(uuidBytes(body['session_id']), uuidBytes(session.id));
  } catch {
    sameSession = false;
  }
  if (!sameSession) throw new VerifyError('Mismatch', 'the result is for another session');
  let sealed: Uint8Array;
  try {
    sealed = fromHex(body['encrypted_result'] as string, 'encrypted_result');
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
  const plaintext = session.open(Role.Result, 0, sealed);
  const expected = await resultCommitment(session.id, digests, plaintext);
  let claimed: Uint8Array;
  try {
    claimed = fromHex(body['result_commitment'] as string, 'result_commitment');
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
  if (!ctEqual(claimed, expected)) {
    throw new VerifyError('Commitment', 'the result commitment does not match the one recomputed from the result and the inputs sent');
  }
  let result: ResultDocument;
  try {
    result = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as ResultDocument;
  } catch {
    throw new VerifyError('Malformed', 'malformed result document');
  }
  if (!isObject(result) || typeof result.status !== 'string') {
    throw new VerifyError('Malformed', 'malformed result document (not an object with a status)');
  }
  const output = (name: 'stdout' | 'stderr'): Uint8Array => {
    const v: unknown = result[name];
    if (v === undefined || v === null) return new Uint8Array();
    try {
      if (typeof v !== 'string') throw new TypeError('not a string');
      return fromBase64(v);
    } catch {
      throw new VerifyError('Malformed', `malformed result document (\`${name}\` is not base64)`);
    }
  };
  const stdout = output('stdout');
  const stderr = output('stderr');
  let receipt: Receipt | undefined;
  if (session.verified) {
    const r = body['result_quote'];
    if (!isObject(r)) throw new VerifyError('Receipt', 'verifiable result without a receipt');
    receipt = r as unknown as Receipt;
    await verifyReceipt(receipt, session.verified, {
      sessionId: session.id,
      commitment: expected,
      program: digests.program,
      arguments: digests.arguments,
      stdin: digests.stdin,
    });
  }
  if (receipt && receipt.status !== result.status) {
    throw new VerifyError('Receipt', "the receipt's status is not the result's");
  }
  const settlement = headers ? settlementOf(headers) : undefined;
  if (receipt && settlement) {
    const payer = typeof settlement.payer === 'string' ? settlement.payer.toLowerCase() : '';
    const payment = typeof receipt.payment === 'string' ? receipt.payment.toLowerCase() : '';
    if (!payer || !payment.includes(`payer=${payer}`)) {
      throw new VerifyError('Receipt', "the receipt's payment does not name the payer that settled");
    }
  }
  const execution: Execution = {
    result,
    plaintext,
    commitment: toHex(expected),
    stdout,
    stderr,
    stdoutText: new TextDecoder().decode(stdout),
  };
  if (receipt) execution.receipt = receipt;
  if (settlement) execution.settlement = settlement;
  const id = headers?.get('x-execution-id');
  if (id) execution.executionId = id;
  if (stoppedError) {
    const err = errorOf(status, body);
    execution.stopped = { code: err.code, message: err.message };
    throw new GuestStoppedError(status, err.code, err.message, execution, body);
  }
  return execution;
}

/** The fields of a `create_keypair` answer (§3), checked (`ProtocolError`). */
function sessionAnswer(r: Record<string, unknown>): { id: string; serverPublic: Uint8Array; expiresInSeconds: number } {
  let id: string;
  try {
    if (typeof r['session_id'] !== 'string') throw new TypeError('not a string');
    id = uuidText(r['session_id']);
  } catch {
    throw new ProtocolError(`session_id ${show(r['session_id'])} is not a UUID`);
  }
  let serverPublic: Uint8Array;
  try {
    serverPublic = uncompressedPublicKey(fromHex(r['session_pubkey'] as string, 'session_pubkey'));
  } catch (e) {
    throw new ProtocolError(`session_pubkey is not a P-256 public key: ${(e as Error).message}`);
  }
  const ttl = r['expires_in_seconds'];
  if (!isU64(ttl) || ttl === 0) throw new ProtocolError(`expires_in_seconds ${show(ttl)} is not a positive integer`);
  return { id, serverPublic, expiresInSeconds: ttl };
}

/** `GET /host` (see {@link Client.host}). */
export async function host(t: Transport): Promise<{ audience: string; provider: string; version: string; [k: string]: unknown }> {
  const h = objectAnswer(await t.expect(200, 'GET', '/host'), 'GET /host');
  if (typeof h['audience'] !== 'string') throw new ProtocolError('GET /host gave no audience');
  return h as { audience: string; provider: string; version: string };
}

/** `GET /attestation`, unverified (see {@link Client.attestation}). */
export async function attestation(t: Transport): Promise<{ provider: string; attestation: Attestation | null }> {
  return objectAnswer(await t.expect(200, 'GET', '/attestation'), 'GET /attestation') as {
    provider: string;
    attestation: Attestation | null;
  };
}

/** Reads `GET /attestation` and verifies it under `policy` (see {@link Client.verifyHost}). */
export async function verifyHost(t: Transport, policy: Policy): Promise<VerifiedKey> {
  const a = await attestation(t);
  if (a.attestation === null || a.attestation === undefined) {
    throw new VerifyError('Malformed', `the host has no attestation (provider ${show(a.provider)})`);
  }
  return verifyAttestation(a.attestation, policy);
}

/** `POST /encrypt/create_keypair`: a plain session (see {@link Client.createSession}). */
export async function createSession(t: Transport, options: { key?: ClientKey }): Promise<Session> {
  const key = options.key ?? (await ClientKey.generate());
  const r = objectAnswer(await t.expect(200, 'POST', '/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } }), 'POST /encrypt/create_keypair');
  const s = sessionAnswer(r);
  return Session.establish(key, s.id, s.serverPublic, s.expiresInSeconds);
}

/**
 * `POST /verifiable/encrypt/create_keypair`, verified under `options.policy` (default: the
 * client's) before it is returned (see {@link Client.createVerifiableSession}).
 */
export async function createVerifiableSession(t: Transport, options: { key?: ClientKey; policy?: Policy }): Promise<Session> {
  const key = options.key ?? (await ClientKey.generate());
  const r = objectAnswer(
    await t.expect(200, 'POST', '/verifiable/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } }),
    'POST /verifiable/encrypt/create_keypair',
  );
  const quote = r['quote'] as SessionQuote;
  if (!isObject(quote)) throw new VerifyError('Malformed', 'a verifiable session without a quote');
  const s = sessionAnswer(r);
  const verified = await verifySessionQuote(quote, s.id, s.serverPublic, key.publicKey, options.policy ?? t.policy);
  return Session.establish(key, s.id, s.serverPublic, s.expiresInSeconds, verified, quote);
}

/** Seals a program and its inputs to `session`, sends them to `route` and reads the execution. */
async function run(t: Transport, session: Session, route: string, field: string, program: Uint8Array, opts: RunOptions): Promise<Execution> {
  const args = (opts.args ?? []).map((a) => utf8(a));
  const stdin = opts.stdin === undefined ? undefined : asBytes(opts.stdin);
  const digests = await inputDigests(program, args, stdin);
  const request: Record<string, unknown> = {
    encrypted_arguments: args.map((a, i) => toHex(session.seal(Role.Argument, i, a))),
    public_key: session.clientKey.publicKeyHex,
    session_id: session.id,
  };
  if (stdin !== undefined) request['encrypted_stdin'] = toHex(session.seal(Role.Stdin, 0, stdin));
  if (opts.limits !== undefined) request['limits'] = opts.limits;
  if (opts.programKind !== undefined) request['program_kind'] = opts.programKind;
  const envelope = session.seal(Role.Program, 0, program);
  const a = await t.sendPayable('POST', route, t.bodyWith(request, field, envelope, 'hex'));
  return readExecution(session, a.status, a.body, digests, a.headers);
}

/** Runs a WebAssembly component (or RISC-V ELF) in `session` (see {@link Client.executeWasm}). */
export async function executeWasm(t: Transport, session: Session, wasm: Uint8Array, opts: RunOptions): Promise<Execution> {
  const route = opts.paid
    ? `/x402_execute/${session.isVerifiable ? 'verifiable' : 'test'}/wasm`
    : session.isVerifiable
      ? '/verifiable/execute/wasm'
      : '/test/execute/wasm';
  return run(t, session, route, 'encrypted_wasm', wasm, opts);
}

/** Runs a Python script in `session` (see {@link Client.executePython}). */
export async function executePython(t: Transport, session: Session, source: string | Uint8Array, opts: Omit<RunOptions, 'programKind'>): Promise<Execution> {
  if (opts.paid && session.isVerifiable) throw new TypeError('the paid Python route takes plain sessions only (PROTOCOL §6b)');
  const route = opts.paid
    ? '/x402_policy/unsafe/python'
    : session.isVerifiable
      ? '/test/policy/unsafe/python/attest'
      : '/test/policy/unsafe/python';
  return run(t, session, route, 'encrypted_python', asBytes(source), opts);
}
