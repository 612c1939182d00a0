/**
 * The HTTP client: sessions (§3, §13), execution (§6, §6a, §6c), results (§7, §8), receipts
 * (§14) and agents (§17). Uses only `fetch` and WebCrypto.
 * @module
 */
import { ctEqual, fromBase64, fromHex, toBase64, toHex, utf8, uuidBytes } from './bytes.js';
import { ClientKey, Role, sha256 } from './crypto.js';
import { handlerEventBytes, inputDigests, resultCommitment, type InputDigests } from './commitment.js';
import { GuestStoppedError, HypervisorError, VerifyError } from './errors.js';
import { deployDetail, ownerSignature, type DeploySettings, type OwnerAction } from './owner.js';
import { Session } from './session.js';
import type {
  Agent,
  Attestation,
  ClearInvocation,
  Execution,
  Limits,
  Receipt,
  ResultDocument,
  SearchHit,
  SessionQuote,
} from './types.js';
import { verifyAttestation, verifyReceipt, verifySessionQuote, type Policy, type VerifiedKey } from './verify.js';

/** Options of a {@link Client}. */
export interface ClientOptions {
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** The default policy of {@link Client.createVerifiableSession} and {@link Client.verifyHost}. */
  policy?: Policy;
  /** Send binary fields larger than this many bytes as multipart (§6c). Default 4 MiB. */
  binaryUploadsAbove?: number;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

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
}

/** A deployment (§17). */
export interface Deployment extends DeploySettings {
  name: string;
  /** The component (or RISC-V ELF) bytes. */
  component: Uint8Array;
  description?: string;
  tags?: string[];
  programKind?: 'wasm' | 'riscv';
  /** The media type an HTTP agent declares (not signed). */
  content_type?: string;
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const DEFAULT_UPLOAD_THRESHOLD = 4 * 1024 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8(v) : v;
}

/** The typed error of a non-2xx answer (§9). */
export function errorOf(status: number, body: unknown): HypervisorError {
  if (isObject(body) && isObject(body['error'])) {
    const e = body['error'];
    return new HypervisorError(status, String(e['code'] ?? `http_${status}`), String(e['message'] ?? ''), body);
  }
  if (isObject(body) && typeof body['code'] === 'string') {
    return new HypervisorError(status, body['code'], String(body['message'] ?? ''), body);
  }
  return new HypervisorError(status, `http_${status}`, typeof body === 'string' ? body : `HTTP ${status}`, body);
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
  const stoppedError = status !== 200 && isObject(body) && typeof body['encrypted_result'] === 'string';
  if (status !== 200 && !stoppedError) throw errorOf(status, body);
  if (!isObject(body)) throw new VerifyError('Malformed', 'malformed execution answer');
  if (typeof body['session_id'] !== 'string' || !ctEqual(uuidBytes(body['session_id']), uuidBytes(session.id))) {
    throw new VerifyError('Mismatch', 'the result is for another session');
  }
  let sealed: Uint8Array;
  try {
    sealed = fromHex(String(body['encrypted_result']), 'encrypted_result');
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
  const plaintext = session.open(Role.Result, 0, sealed);
  const expected = await resultCommitment(session.id, digests, plaintext);
  let claimed: Uint8Array;
  try {
    claimed = fromHex(String(body['result_commitment']), 'result_commitment');
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
  if (!ctEqual(claimed, expected)) {
    throw new VerifyError('Commitment', 'the result commitment does not match the one recomputed from the result and the inputs sent');
  }
  let result: ResultDocument;
  try {
    result = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as ResultDocument;
  } catch {
    throw new VerifyError('Malformed', 'malformed result document');
  }
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
  const stdout = typeof result.stdout === 'string' ? fromBase64(result.stdout) : new Uint8Array();
  const stderr = typeof result.stderr === 'string' ? fromBase64(result.stderr) : new Uint8Array();
  const execution: Execution = {
    result,
    plaintext,
    commitment: toHex(expected),
    stdout,
    stderr,
    stdoutText: new TextDecoder().decode(stdout),
  };
  if (receipt) execution.receipt = receipt;
  const id = headers?.get('x-execution-id');
  if (id) execution.executionId = id;
  if (stoppedError) {
    const err = errorOf(status, body);
    execution.stopped = { code: err.code, message: err.message };
    throw new GuestStoppedError(status, err.code, err.message, execution, body);
  }
  return execution;
}

/** A client of one WASM Hypervisor host. */
export class Client {
  /** The host's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** Binary fields above this many bytes travel as multipart (§6c). */
  binaryUploadsAbove: number;
  readonly #fetch: typeof fetch;
  readonly #policy: Policy;
  readonly #headers: Record<string, string>;
  #audience?: string;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#policy = options.policy ?? {};
    this.#headers = options.headers ?? {};
    this.binaryUploadsAbove = options.binaryUploadsAbove ?? DEFAULT_UPLOAD_THRESHOLD;
  }

  async #send(method: string, path: string, init: { json?: unknown; form?: FormData; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...this.#headers, ...(init.headers ?? {}) };
    let body: BodyInit | undefined;
    if (init.form) body = init.form;
    else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const res = await this.#fetch(this.baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  async #expect(want: number, method: string, path: string, init?: { json?: unknown; form?: FormData; headers?: Record<string, string> }): Promise<unknown> {
    const a = await this.#send(method, path, init);
    if (a.status !== want) throw errorOf(a.status, a.body);
    return a.body;
  }

  /**
   * A body carrying one binary field: JSON with the field in hex (or base64 for a clear
   * component), or multipart (§6c) when the bytes are above {@link binaryUploadsAbove}.
   */
  #bodyWith(request: Record<string, unknown>, field: string, bytes: Uint8Array, encoding: 'hex' | 'base64'): { json?: unknown; form?: FormData } {
    if (bytes.length > this.binaryUploadsAbove) {
      const form = new FormData();
      form.append('request', new Blob([JSON.stringify(request)], { type: 'application/json' }));
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      form.append(field, new Blob([copy], { type: 'application/octet-stream' }), field);
      return { form };
    }
    return { json: { ...request, [field]: encoding === 'hex' ? toHex(bytes) : toBase64(bytes) } };
  }

  /** `GET /host`: audience, provider, version. */
  async host(): Promise<{ audience: string; provider: string; version: string; [k: string]: unknown }> {
    const h = (await this.#expect(200, 'GET', '/host')) as { audience: string; provider: string; version: string };
    this.#audience = h.audience;
    return h;
  }

  async #audienceOf(): Promise<string> {
    return this.#audience ?? (await this.host()).audience;
  }

  /** `GET /attestation` (unverified: see {@link verifyHost}). */
  async attestation(): Promise<{ provider: string; attestation: Attestation | null }> {
    return (await this.#expect(200, 'GET', '/attestation')) as { provider: string; attestation: Attestation | null };
  }

  /** Reads `GET /attestation` and verifies it under `policy` (default: the client's). */
  async verifyHost(policy: Policy = this.#policy): Promise<VerifiedKey> {
    const a = await this.attestation();
    if (!a.attestation) throw new VerifyError('Malformed', `the host has no attestation (provider ${a.provider})`);
    return verifyAttestation(a.attestation, policy);
  }

  /** `POST /encrypt/create_keypair`: a plain session (not attested). */
  async createSession(options: { key?: ClientKey } = {}): Promise<Session> {
    const key = options.key ?? (await ClientKey.generate());
    const r = (await this.#expect(200, 'POST', '/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } })) as Record<string, unknown>;
    return Session.establish(key, String(r['session_id']), String(r['session_pubkey']), Number(r['expires_in_seconds']));
  }

  /**
   * `POST /verifiable/encrypt/create_keypair`: a verifiable session, verified (§12a, §13)
   * under `policy` (default: the client's) **before** it is returned. Throws `VerifyError` on
   * any failure.
   */
  async createVerifiableSession(options: { key?: ClientKey; policy?: Policy } = {}): Promise<Session> {
    const key = options.key ?? (await ClientKey.generate());
    const r = (await this.#expect(200, 'POST', '/verifiable/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } })) as Record<string, unknown>;
    const quote = r['quote'] as SessionQuote;
    if (!isObject(quote)) throw new VerifyError('Malformed', 'a verifiable session without a quote');
    const sessionId = String(r['session_id']);
    let serverPublic: Uint8Array;
    try {
      serverPublic = fromHex(String(r['session_pubkey']), 'session_pubkey');
    } catch (e) {
      throw new VerifyError('Malformed', (e as Error).message);
    }
    const verified = await verifySessionQuote(quote, sessionId, serverPublic, key.publicKey, options.policy ?? this.#policy);
    return Session.establish(key, sessionId, serverPublic, Number(r['expires_in_seconds']), verified, quote);
  }

  async #run(session: Session, route: string, field: string, program: Uint8Array, opts: RunOptions): Promise<Execution> {
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
    const a = await this.#send('POST', route, this.#bodyWith(request, field, envelope, 'hex'));
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  /**
   * Runs a WebAssembly component (or RISC-V ELF) in `session` (§6): on a verifiable session
   * through `/verifiable/execute/wasm`, its receipt verified (§14). Throws
   * {@link GuestStoppedError} (with the checked partial result) when the guest is stopped.
   */
  async executeWasm(session: Session, wasm: Uint8Array, opts: RunOptions = {}): Promise<Execution> {
    const route = session.isVerifiable ? '/verifiable/execute/wasm' : '/test/execute/wasm';
    return this.#run(session, route, 'encrypted_wasm', wasm, opts);
  }

  /**
   * Runs a Python script (§6a): `/test/policy/unsafe/python`, or `…/attest` on a verifiable
   * session (with a verified receipt). What `main(ARGS)` returned is `result.returned`.
   */
  async executePython(session: Session, source: string | Uint8Array, opts: Omit<RunOptions, 'programKind'> = {}): Promise<Execution> {
    const route = session.isVerifiable ? '/test/policy/unsafe/python/attest' : '/test/policy/unsafe/python';
    return this.#run(session, route, 'encrypted_python', asBytes(source), opts);
  }

  // ---- Agents (§17) ----

  /**
   * `POST /agent/deploy`, signed by `owner` over the component's SHA-256 and the settings.
   * With `session` the component is sealed to it (role agent-component); the session must
   * belong to `owner`'s key (the host answers `session_key_mismatch` otherwise). Without it
   * the component is sent in the clear (public by default). Components above
   * {@link binaryUploadsAbove} travel as multipart (§6c).
   */
  async deployAgent(owner: ClientKey, d: Deployment, options: { session?: Session } = {}): Promise<Agent> {
    const audience = await this.#audienceOf();
    const settings: DeploySettings = {};
    if (d.public !== undefined) settings.public = d.public;
    if (d.price !== undefined) settings.price = d.price;
    if (d.ttl_seconds !== undefined) settings.ttl_seconds = d.ttl_seconds;
    if (d.limits !== undefined) settings.limits = d.limits;
    if (d.charge !== undefined) settings.charge = d.charge;
    if (d.schemas !== undefined) settings.schemas = d.schemas;
    const detail = await deployDetail(toHex(await sha256(d.component)), settings);
    const signed = await ownerSignature(owner, audience, 'deploy', d.name, detail);
    const request: Record<string, unknown> = {
      name: d.name,
      public_key: owner.publicKeyHex,
      ...settings,
      ...signed,
    };
    if (d.description !== undefined) request['description'] = d.description;
    if (d.tags !== undefined) request['tags'] = d.tags;
    if (d.programKind !== undefined) request['program_kind'] = d.programKind;
    if (d.content_type !== undefined) request['content_type'] = d.content_type;
    let body: { json?: unknown; form?: FormData };
    if (options.session) {
      request['session_id'] = options.session.id;
      body = this.#bodyWith(request, 'encrypted_component', options.session.seal(Role.AgentComponent, 0, d.component), 'hex');
    } else {
      body = this.#bodyWith(request, 'component', d.component, 'base64');
    }
    return (await this.#expect(201, 'POST', '/agent/deploy', body)) as Agent;
  }

  /** `GET /agents`: every agent with its latest version. */
  async listAgents(): Promise<Agent[]> {
    return ((await this.#expect(200, 'GET', '/agents')) as { agents: Agent[] }).agents;
  }

  /** `GET /agents/{name}`: the agent with every version. */
  async getAgent(name: string): Promise<Agent> {
    return (await this.#expect(200, 'GET', `/agents/${encodeURIComponent(name)}`)) as Agent;
  }

  /** `POST /search`: agents matching `query`, best first. */
  async searchAgents(query: string, limit?: number): Promise<SearchHit[]> {
    const json: Record<string, unknown> = { query };
    if (limit !== undefined) json['limit'] = limit;
    return ((await this.#expect(200, 'POST', '/search', { json })) as { results: SearchHit[] }).results;
  }

  /**
   * A clear invocation of a public handler (`{event}`) or CLI (`{args, stdin}`) agent.
   * Returns the host's answer (`ok` false when the handler returned an error).
   */
  async invokeAgent(
    name: string,
    input: { event?: unknown } | { args?: string[]; stdin?: string },
    options: { publicKey?: string; limits?: Limits } = {},
  ): Promise<ClearInvocation> {
    const json: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) if (v !== undefined) json[k] = v;
    if (options.publicKey !== undefined) json['public_key'] = options.publicKey;
    if (options.limits !== undefined) json['limits'] = options.limits;
    return (await this.#expect(200, 'POST', `/agents/${encodeURIComponent(name)}/invoke`, { json })) as ClearInvocation;
  }

  async #codeHash(name: string, codeHash: string | undefined): Promise<Uint8Array> {
    const h = codeHash ?? (await this.getAgent(name)).latest.code_hash;
    try {
      return fromHex(h, 'code_hash', 32);
    } catch (e) {
      throw new VerifyError('Malformed', (e as Error).message);
    }
  }

  /**
   * A sealed invocation of a handler agent: the event (JSON value, or raw bytes) sealed to
   * `session` (role event); the result checked against the agent's code hash and the event
   * (§8 table) and, on a verifiable session, its receipt. Pass `codeHash` (the code you
   * expect, e.g. the SHA-256 of the component you deployed); without it the code hash the
   * host lists is used.
   */
  async invokeAgentSealed(
    session: Session,
    name: string,
    options: { event?: unknown; codeHash?: string; limits?: Limits } = {},
  ): Promise<Execution> {
    const program = await this.#codeHash(name, options.codeHash);
    const event = options.event === undefined ? new Uint8Array() : options.event instanceof Uint8Array ? options.event : utf8(JSON.stringify(options.event));
    const json: Record<string, unknown> = {
      encrypted_event: toHex(session.seal(Role.Event, 0, event)),
      public_key: session.clientKey.publicKeyHex,
      session_id: session.id,
    };
    if (options.limits !== undefined) json['limits'] = options.limits;
    const digests: InputDigests = { program, arguments: [], stdin: await sha256(handlerEventBytes(event)) };
    const a = await this.#send('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  /** A sealed invocation of a CLI agent (arguments and stdin sealed), checked as {@link invokeAgentSealed}. */
  async invokeCommandSealed(
    session: Session,
    name: string,
    options: { args?: string[]; stdin?: Uint8Array | string; codeHash?: string; limits?: Limits } = {},
  ): Promise<Execution> {
    const program = await this.#codeHash(name, options.codeHash);
    const args = (options.args ?? []).map((x) => utf8(x));
    const stdin = asBytes(options.stdin ?? new Uint8Array());
    const json: Record<string, unknown> = {
      encrypted_arguments: args.map((x, i) => toHex(session.seal(Role.Argument, i, x))),
      encrypted_stdin: toHex(session.seal(Role.Stdin, 0, stdin)),
      public_key: session.clientKey.publicKeyHex,
      session_id: session.id,
    };
    if (options.limits !== undefined) json['limits'] = options.limits;
    const digests = await inputDigests(new Uint8Array(), args, stdin);
    digests.program = program;
    const a = await this.#send('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  async #ownerRequest(method: string, owner: ClientKey, action: OwnerAction, name: string, path: string): Promise<unknown> {
    const s = await ownerSignature(owner, await this.#audienceOf(), action, name, '');
    return this.#expect(200, method, path, {
      headers: {
        'x-agent-signature': s.signature,
        'x-agent-signed-at': String(s.signed_at),
        'x-agent-sequence': String(s.sequence),
        'x-agent-owner': owner.publicKeyHex,
      },
    });
  }

  /** `GET /agents/{name}/logs`, signed by the owner: the newest 100 stderr entries. */
  async agentLogs(owner: ClientKey, name: string): Promise<{ agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] }> {
    return (await this.#ownerRequest('GET', owner, 'logs', name, `/agents/${encodeURIComponent(name)}/logs`)) as {
      agent: string;
      logs: { execution_id: string; at_ms: number; stderr: string }[];
    };
  }

  /** `DELETE /agents/{name}`, signed by the owner. */
  async deleteAgent(owner: ClientKey, name: string): Promise<void> {
    await this.#ownerRequest('DELETE', owner, 'delete', name, `/agents/${encodeURIComponent(name)}`);
  }
}

export type { VerifiedKey };
