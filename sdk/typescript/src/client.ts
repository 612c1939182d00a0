/**
 * The HTTP client: sessions (§3, §13), execution (§6, §6a, §6c), results (§7, §8), receipts
 * (§14) and agents (§17). Uses only `fetch` and WebCrypto.
 * @module
 */
import { ctEqual, fromBase64, fromHex, toBase64, toHex, utf8, uuidBytes, uuidText } from './bytes.js';
import { VerifiedCard, verifyCard } from './cards.js';
import { ClientKey, Role, sha256, uncompressedPublicKey } from './crypto.js';
import { handlerEventBytes, inputDigests, resultCommitment, type InputDigests } from './commitment.js';
import { GuestStoppedError, HypervisorError, PaymentRequiredError, ProtocolError, TransportError, VerifyError } from './errors.js';
import { arrayField, isObject, isU64, objectAnswer, parseJson, show } from './json.js';
import { checkChallenge, paymentHeaders, settlementOf, type Settlement, type X402Payer } from './payments.js';
import {
  configDetail,
  deployDetail,
  grantsDetail,
  importDetail,
  ownerSignature,
  walletDetail,
  type DeploySettings,
  type Grants,
  type OwnerAction,
  type WalletPolicy,
} from './owner.js';
import { jsSealedPlaintext, jsSourceSha256, type JsSource } from './program.js';
import type { BoundChannel } from './ratls.js';
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

/** The largest answer the client reads, in bytes (as the Rust client's cap): 256 MiB. */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/** Options of a {@link Client}. */
export interface ClientOptions {
  /**
   * The `fetch` to use (default `globalThis.fetch`). Not with a bound `https://` host (see
   * {@link tlsBinding}): its requests go over the SDK's own pinned connections.
   */
  fetch?: typeof fetch;
  /**
   * The default policy of {@link Client.createVerifiableSession} and {@link Client.verifyHost},
   * and the policy the verifiable sessions owner operations seal secrets to are verified under
   * (when no session is given to them).
   */
  policy?: Policy;
  /** Send binary fields larger than this many bytes as multipart (§6c). Default 4 MiB. */
  binaryUploadsAbove?: number;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * The official x402 client that pays `402`s of paid routes and agents (§6b): an
   * `x402Client` from `@x402/core/client` with the EVM exact scheme registered (its spend
   * controls apply). Without one a `402` throws {@link PaymentRequiredError}.
   */
  payer?: X402Payer;
  /**
   * The audience (§17, 32 lowercase hex digits: the host's deployment) owner statements must
   * name. The client reads the host's audience once (a bound `https://` host's from its
   * channel binding, signed by the attested key; else `GET /host`) and signs every owner
   * statement for it; when this is set, a host naming another audience is refused
   * (`VerifyError` kind `Channel`) before anything is signed.
   */
  expectedAudience?: string;
  /**
   * Bind an `https://` host's TLS channel (§19) before sending anything (default: `true` for
   * `https://` URLs). The SDK opens a TLS 1.3 connection of its own, checks that the host's
   * attested key signed that connection's exporter value, the certificate shown and the
   * audience, verifies the certificate's RA-TLS evidence under the client's `policy`, and then
   * sends every request over connections that accept exactly that certificate (Node only:
   * `node:tls`, `node:https`). A TLS-terminating proxy in between is refused.
   *
   * Browsers cannot export TLS keying material, so there an `https://` host is refused unless
   * this is `false`. `false` uses ordinary (web PKI) TLS through `fetch`, e.g. for a host behind
   * a TLS-terminating balancer: what is sealed to a verifiable session stays end to end; clear
   * requests, plain sessions and the audience then trust whoever terminates TLS. With binding,
   * `fetch` cannot be given (the SDK's own connections carry the pin).
   */
  tlsBinding?: boolean;
}

/** Whether this runtime is Node (which can bind TLS channels: `node:tls` exports keying material). */
function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === 'string';
}

/** The Node-only module of the channel binding, loaded lazily (never by browser bundles). */
const tlsNodeModule = './tls-node.js';

interface TlsNode {
  bindChannel(url: string, policy: Policy, expectedAudience?: string): Promise<BoundChannel>;
  pinnedFetch(certificate: Uint8Array): typeof fetch & { close(): void };
  isPinMismatch(e: unknown): boolean;
}

interface Binding {
  channel: BoundChannel;
  fetch: typeof fetch & { close(): void };
  isPinMismatch(e: unknown): boolean;
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
  /**
   * Use the paid twin of the route (§6b): `/x402_execute/test/wasm`,
   * `/x402_execute/verifiable/wasm` or `/x402_policy/unsafe/python` (plain sessions only).
   */
  paid?: boolean;
}

/** A deployment (§17): a `component`, or a JavaScript/TypeScript agent's `js` source (§24). */
export interface Deployment extends DeploySettings {
  name: string;
  /** The component (or RISC-V ELF) bytes. */
  component?: Uint8Array;
  /** A JavaScript/TypeScript agent's modules (§24), in place of `component`. */
  js?: JsSource;
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

function asBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8(v) : v;
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => {
    out[k.toLowerCase()] = v;
  });
  return out;
}

/**
 * Whether a `402` answer is an x402 challenge (§6b): a `PAYMENT-REQUIRED` header, or a JSON
 * body whose `error` is the x402 reason (a string). A `402` carrying §9's error object
 * (`settlement_failed`: the run happened, its payment could not be settled) asks for no
 * payment.
 */
export function isPaymentChallenge(status: number, body: unknown, headers?: Headers): boolean {
  if (status !== 402) return false;
  if (isObject(body) && isObject(body['error'])) return false;
  return isObject(body) || Boolean(headers?.get('payment-required'));
}

/**
 * The typed error of a non-2xx answer (§9); a `402` challenge ({@link isPaymentChallenge}) is
 * a {@link PaymentRequiredError}.
 */
export function errorOf(status: number, body: unknown, headers?: Headers): HypervisorError {
  if (isPaymentChallenge(status, body, headers)) {
    let challenge: unknown = body;
    const header = headers?.get('payment-required');
    if (header) {
      try {
        challenge = parseJson(new TextDecoder().decode(fromBase64(header + '='.repeat((4 - (header.length % 4)) % 4))));
      } catch {
        challenge = body;
      }
    }
    const b = isObject(body) ? body : {};
    const code = typeof b['code'] === 'string' ? b['code'] : typeof b['error'] === 'string' ? b['error'] : 'payment_required';
    return new PaymentRequiredError(code, show(b['message'] ?? 'payment required'), challenge, headers ? headerRecord(headers) : {}, body);
  }
  if (isObject(body) && isObject(body['error'])) {
    const e = body['error'];
    return new HypervisorError(status, show(e['code'] ?? `http_${status}`), show(e['message'] ?? ''), body);
  }
  if (isObject(body) && typeof body['code'] === 'string') {
    return new HypervisorError(status, body['code'], show(body['message'] ?? ''), body);
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

/**
 * The body of `res` as text, read as it streams and refused (`TransportError`) once it is
 * larger than {@link MAX_RESPONSE_BYTES}.
 */
async function readCapped(res: Response, what: string): Promise<string> {
  const tooLarge = () => new TransportError(`${what}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > MAX_RESPONSE_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_RESPONSE_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof TransportError) throw e;
    throw new TransportError(`${what}: the answer could not be read: ${e instanceof Error ? e.message : show(e)}`, e);
  }
  const decoder = new TextDecoder();
  let text = '';
  for (const c of chunks) text += decoder.decode(c, { stream: true });
  return text + decoder.decode();
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
  readonly #payer: X402Payer | undefined;
  /** The audience owner statements name: read once per client (see {@link ClientOptions.expectedAudience}). */
  #audience: Promise<string> | undefined;
  /** The audience pinned by the caller, if any. */
  readonly expectedAudience: string | undefined;
  readonly #tlsBinding: boolean;
  #binding: Promise<Binding> | undefined;
  #channel: BoundChannel | undefined;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    if (options.expectedAudience !== undefined && !/^[0-9a-f]{32}$/.test(options.expectedAudience)) {
      throw new TypeError('expectedAudience is 32 lowercase hex digits (the audience GET /host names)');
    }
    this.expectedAudience = options.expectedAudience;
    const https = /^https:\/\//i.test(this.baseUrl);
    this.#tlsBinding = options.tlsBinding ?? https;
    if (this.#tlsBinding && !https) throw new TypeError('tlsBinding needs an https:// URL');
    if (this.#tlsBinding && options.fetch !== undefined) {
      throw new TypeError(
        'an https:// host is bound and pinned over the SDK\'s own connections (PROTOCOL §19): leave `fetch` out, ' +
          'or pass tlsBinding: false to use yours over ordinary (web PKI) TLS',
      );
    }
    if (this.#tlsBinding && !isNode()) {
      throw new TypeError(
        `${this.baseUrl}: this runtime cannot bind an https:// host's TLS channel (PROTOCOL §19): browsers cannot export ` +
          'TLS keying material, so nothing would show that the attested host is the other end of the connection. Pass ' +
          'tlsBinding: false to use ordinary (web PKI) TLS: what is sealed to a verifiable session stays end to end; clear ' +
          'requests, plain sessions and the audience then trust whoever terminates TLS',
      );
    }
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#policy = options.policy ?? {};
    this.#headers = options.headers ?? {};
    this.#payer = options.payer;
    this.binaryUploadsAbove = options.binaryUploadsAbove ?? DEFAULT_UPLOAD_THRESHOLD;
  }

  /**
   * The verified channel binding of an `https://` host (§19), once the first request bound it
   * (`undefined` before, and for `http://` hosts or `tlsBinding: false`).
   */
  get channel(): BoundChannel | undefined {
    return this.#channel;
  }

  /**
   * Closes the pinned connections of a bound `https://` host (they are kept alive between
   * requests, and would keep a Node process running until the host closes them). The binding
   * is kept: a later request opens new connections, pinned to the same certificate (and binds
   * again first if the host's key, hence its certificate, has rotated since).
   */
  close(): void {
    this.#binding?.then((b) => b.fetch.close()).catch(() => undefined);
  }

  /**
   * The binding of an `https://` host, made once (concurrent first requests share it; a failed
   * one is made again next time). `stale`: the binding a connection just refused (the host's
   * key, hence its certificate, rotated): bound again unless another request already did.
   */
  #bound(stale?: Promise<Binding>): Promise<Binding> {
    if (this.#binding === undefined || (stale !== undefined && this.#binding === stale)) {
      const old = this.#binding;
      const binding = (async (): Promise<Binding> => {
        let mod: TlsNode;
        try {
          mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ tlsNodeModule)) as TlsNode;
        } catch (e) {
          throw new VerifyError('Channel', `the TLS channel binding needs Node's TLS (node:tls), which could not be loaded: ${(e as Error).message}`);
        }
        const channel = await mod.bindChannel(this.baseUrl, this.#policy, this.expectedAudience);
        this.#channel = channel;
        return { channel, fetch: mod.pinnedFetch(channel.certificate), isPinMismatch: mod.isPinMismatch };
      })();
      this.#binding = binding;
      binding.catch(() => {
        if (this.#binding === binding) this.#binding = undefined;
      });
      old?.then((b) => b.fetch.close()).catch(() => undefined);
    }
    return this.#binding;
  }

  async #send(method: string, path: string, init: { json?: unknown; form?: FormData; headers?: Record<string, string> } = {}): Promise<Answer> {
    if (!this.#tlsBinding) return this.#sendWith(this.#fetch, method, path, init);
    const binding = this.#bound();
    try {
      return await this.#sendWith((await binding).fetch, method, path, init);
    } catch (e) {
      if (!(e instanceof TransportError) || !(await binding).isPinMismatch(e)) throw e;
      // The host's key rotated: its new certificate is bound before anything is sent again.
      return this.#sendWith((await this.#bound(binding)).fetch, method, path, init);
    }
  }

  async #sendWith(
    fetcher: typeof fetch,
    method: string,
    path: string,
    init: { json?: unknown; form?: FormData; headers?: Record<string, string> },
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...this.#headers, ...(init.headers ?? {}) };
    let body: BodyInit | undefined;
    if (init.form) body = init.form;
    else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let res: Response;
    try {
      res = await fetcher(this.baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    } catch (e) {
      throw new TransportError(`${method} ${path}: ${e instanceof Error ? e.message : show(e)}`, e);
    }
    const text = await readCapped(res, `${method} ${path}`);
    let parsed: unknown = text;
    if (text.length > 0) {
      try {
        parsed = parseJson(text);
      } catch (e) {
        if (e instanceof ProtocolError) throw new ProtocolError(`${method} ${path}: ${e.message}`);
        parsed = text;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /**
   * Sends a request to a paid route or agent: a `402` challenge is checked to name `path`,
   * paid by the payer (if any) and the request sent once more with the payment headers.
   */
  async #sendPayable(method: string, path: string, init: { json?: unknown; form?: FormData; headers?: Record<string, string> } = {}): Promise<Answer> {
    const a = await this.#send(method, path, init);
    if (a.status !== 402) return a;
    // A 402 carrying §9's error object (`settlement_failed`) is no challenge: nothing to pay.
    if (!isPaymentChallenge(a.status, a.body, a.headers)) throw errorOf(a.status, a.body, a.headers);
    const isChallenge = a.headers.has('payment-required') || (isObject(a.body) && 'accepts' in a.body);
    if (isChallenge) checkChallenge(a.headers, a.body, path);
    if (!this.#payer) throw errorOf(a.status, a.body, a.headers);
    const paid = await paymentHeaders(this.#payer, a.headers, a.body, path);
    return this.#send(method, path, { ...init, headers: { ...(init.headers ?? {}), ...paid } });
  }

  async #expect(want: number, method: string, path: string, init?: { json?: unknown; form?: FormData; headers?: Record<string, string> }): Promise<unknown> {
    const a = await this.#send(method, path, init);
    if (a.status !== want) throw errorOf(a.status, a.body, a.headers);
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

  /**
   * `GET /host`: audience, provider, version, as the host answers them now (unauthenticated).
   * Owner statements do not take their audience from here: see
   * {@link ClientOptions.expectedAudience}.
   */
  async host(): Promise<{ audience: string; provider: string; version: string; [k: string]: unknown }> {
    const h = objectAnswer(await this.#expect(200, 'GET', '/host'), 'GET /host');
    if (typeof h['audience'] !== 'string') throw new ProtocolError('GET /host gave no audience');
    return h as { audience: string; provider: string; version: string };
  }

  /**
   * The audience owner statements name (§17): read once per client (concurrent first reads
   * share it; a failed read is tried again next time), 32 lowercase hex digits, held to
   * `expectedAudience` when it is set.
   */
  #audienceOf(): Promise<string> {
    if (this.#audience === undefined) {
      const reading = this.#readAudience();
      this.#audience = reading;
      reading.catch(() => {
        if (this.#audience === reading) this.#audience = undefined;
      });
    }
    return this.#audience;
  }

  async #readAudience(): Promise<string> {
    // A bound https:// host's audience is the one its attested key signed on our connection.
    const audience = this.#tlsBinding
      ? (await this.#bound()).channel.audience
      : objectAnswer(await this.#expect(200, 'GET', '/host'), 'GET /host')['audience'];
    if (typeof audience !== 'string' || !/^[0-9a-f]{32}$/.test(audience)) {
      throw new ProtocolError(`GET /host gave no audience (32 lowercase hex digits): ${show(audience)}`);
    }
    if (this.expectedAudience !== undefined && audience !== this.expectedAudience) {
      throw new VerifyError('Channel', `the host is deployment ${audience}, not the pinned ${this.expectedAudience}`);
    }
    return audience;
  }

  /** `GET /attestation` (unverified: see {@link verifyHost}). */
  async attestation(): Promise<{ provider: string; attestation: Attestation | null }> {
    return objectAnswer(await this.#expect(200, 'GET', '/attestation'), 'GET /attestation') as {
      provider: string;
      attestation: Attestation | null;
    };
  }

  /** Reads `GET /attestation` and verifies it under `policy` (default: the client's). */
  async verifyHost(policy: Policy = this.#policy): Promise<VerifiedKey> {
    const a = await this.attestation();
    if (a.attestation === null || a.attestation === undefined) {
      throw new VerifyError('Malformed', `the host has no attestation (provider ${show(a.provider)})`);
    }
    return verifyAttestation(a.attestation, policy);
  }

  /**
   * The host's A2A card (or agent `name`'s), its detached JWS verified under the host's
   * attested key (§21.1), which is verified first under `policy` (default: the client's;
   * {@link verifyHost}). Hand `card` (or `url`) to the official A2A SDK. Throws `VerifyError`
   * (kind `Card` for the card itself).
   */
  async agentCard(name?: string, policy: Policy = this.#policy): Promise<VerifiedCard> {
    const verified = await this.verifyHost(policy);
    const path = name === undefined ? '/.well-known/agent-card.json' : `/agents/${encodeURIComponent(name)}/.well-known/agent-card.json`;
    const card = await this.#expect(200, 'GET', path);
    if (!isObject(card)) throw new VerifyError('Card', 'the agent card is not a JSON object');
    await verifyCard(card, verified);
    return new VerifiedCard(card, verified);
  }

  /** The MCP endpoint (§20) named by the host's verified card (see {@link agentCard}). */
  async mcpUrl(policy: Policy = this.#policy): Promise<string> {
    return (await this.agentCard(undefined, policy)).mcpUrl;
  }

  /** `POST /encrypt/create_keypair`: a plain session (not attested). */
  async createSession(options: { key?: ClientKey } = {}): Promise<Session> {
    const key = options.key ?? (await ClientKey.generate());
    const r = objectAnswer(await this.#expect(200, 'POST', '/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } }), 'POST /encrypt/create_keypair');
    const s = sessionAnswer(r);
    return Session.establish(key, s.id, s.serverPublic, s.expiresInSeconds);
  }

  /**
   * `POST /verifiable/encrypt/create_keypair`: a verifiable session, verified (§12a, §13)
   * under `policy` (default: the client's) **before** it is returned. Throws `VerifyError` on
   * any failure.
   */
  async createVerifiableSession(options: { key?: ClientKey; policy?: Policy } = {}): Promise<Session> {
    const key = options.key ?? (await ClientKey.generate());
    const r = objectAnswer(
      await this.#expect(200, 'POST', '/verifiable/encrypt/create_keypair', { json: { pubkey: key.publicKeyHex } }),
      'POST /verifiable/encrypt/create_keypair',
    );
    const quote = r['quote'] as SessionQuote;
    if (!isObject(quote)) throw new VerifyError('Malformed', 'a verifiable session without a quote');
    const s = sessionAnswer(r);
    const verified = await verifySessionQuote(quote, s.id, s.serverPublic, key.publicKey, options.policy ?? this.#policy);
    return Session.establish(key, s.id, s.serverPublic, s.expiresInSeconds, verified, quote);
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
    const a = await this.#sendPayable('POST', route, this.#bodyWith(request, field, envelope, 'hex'));
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  /**
   * Runs a WebAssembly component (or RISC-V ELF) in `session` (§6): on a verifiable session
   * through `/verifiable/execute/wasm`, its receipt verified (§14). Throws
   * {@link GuestStoppedError} (with the checked partial result) when the guest is stopped.
   */
  async executeWasm(session: Session, wasm: Uint8Array, opts: RunOptions = {}): Promise<Execution> {
    const route = opts.paid
      ? `/x402_execute/${session.isVerifiable ? 'verifiable' : 'test'}/wasm`
      : session.isVerifiable
        ? '/verifiable/execute/wasm'
        : '/test/execute/wasm';
    return this.#run(session, route, 'encrypted_wasm', wasm, opts);
  }

  /**
   * Runs a Python script (§6a): `/test/policy/unsafe/python`, or `…/attest` on a verifiable
   * session (with a verified receipt). What `main(ARGS)` returned is `result.returned`.
   */
  async executePython(session: Session, source: string | Uint8Array, opts: Omit<RunOptions, 'programKind'> = {}): Promise<Execution> {
    if (opts.paid && session.isVerifiable) throw new TypeError('the paid Python route takes plain sessions only (PROTOCOL §6b)');
    const route = opts.paid
      ? '/x402_policy/unsafe/python'
      : session.isVerifiable
        ? '/test/policy/unsafe/python/attest'
        : '/test/policy/unsafe/python';
    return this.#run(session, route, 'encrypted_python', asBytes(source), opts);
  }

  // ---- Agents (§17) ----

  /**
   * `POST /agent/deploy`, signed by `owner` over the component's SHA-256 and the settings.
   * With `session` the component is sealed to it (role agent-component); the session must
   * belong to `owner`'s key (the host answers `session_key_mismatch` otherwise). A
   * JavaScript/TypeScript agent (`js`, §24) is signed over its source hash and, sealed, travels
   * as `encrypted_js` (role agent-js). Without it
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
    if (d.grants !== undefined) settings.grants = d.grants;
    if ((d.component === undefined) === (d.js === undefined)) throw new TypeError('a deployment has either a component or a JavaScript source');
    const codeHash = d.js !== undefined ? await jsSourceSha256(d.js) : toHex(await sha256(d.component!));
    const detail = await deployDetail(codeHash, settings);
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
      body = d.js !== undefined
        ? { json: { ...request, encrypted_js: toHex(options.session.seal(Role.AgentJs, 0, jsSealedPlaintext(d.js))) } }
        : this.#bodyWith(request, 'encrypted_component', options.session.seal(Role.AgentComponent, 0, d.component!), 'hex');
    } else if (d.js !== undefined) {
      jsSealedPlaintext(d.js); // checks that main is among the modules
      body = { json: { ...request, js: { main: d.js.main, modules: d.js.modules } } };
    } else {
      body = this.#bodyWith(request, 'component', d.component!, 'base64');
    }
    return objectAnswer(await this.#expect(201, 'POST', '/agent/deploy', body), 'POST /agent/deploy') as Agent;
  }

  /** `GET /agents`: every agent with its latest version. */
  async listAgents(): Promise<Agent[]> {
    return arrayField(await this.#expect(200, 'GET', '/agents'), 'agents', 'GET /agents') as Agent[];
  }

  /** `GET /agents/{name}`: the agent with every version. */
  async getAgent(name: string): Promise<Agent> {
    const path = `/agents/${encodeURIComponent(name)}`;
    return objectAnswer(await this.#expect(200, 'GET', path), `GET ${path}`) as Agent;
  }

  /** `POST /search`: agents matching `query`, best first. */
  async searchAgents(query: string, limit?: number): Promise<SearchHit[]> {
    const json: Record<string, unknown> = { query };
    if (limit !== undefined) json['limit'] = limit;
    return arrayField(await this.#expect(200, 'POST', '/search', { json }), 'results', 'POST /search') as SearchHit[];
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
    const path = `/agents/${encodeURIComponent(name)}/invoke`;
    const a = await this.#sendPayable('POST', path, { json });
    if (a.status !== 200) throw errorOf(a.status, a.body, a.headers);
    const answer = objectAnswer(a.body, `POST ${path}`) as ClearInvocation;
    const settlement = settlementOf(a.headers);
    if (settlement) answer.settlement = settlement;
    return answer;
  }

  async #codeHash(name: string, codeHash: string | undefined): Promise<Uint8Array> {
    let h = codeHash;
    if (h === undefined) {
      const latest: unknown = (await this.getAgent(name))['latest'];
      const listed = isObject(latest) ? latest['code_hash'] : undefined;
      if (typeof listed !== 'string') throw new ProtocolError(`GET /agents/${encodeURIComponent(name)} lists no code hash`);
      h = listed;
    }
    try {
      return fromHex(h, 'code_hash', 32);
    } catch (e) {
      throw new VerifyError('Malformed', (e as Error).message);
    }
  }

  /**
   * A sealed invocation of a handler agent: the event (JSON value, or raw bytes) sealed to
   * `session` (role event); the result checked against the agent's code hash and the event
   * (§8 table) and, on a verifiable session, its receipt.
   *
   * **Pass `codeHash`**, the code you expect (your deployment's answer, an audit): the
   * commitment and the receipt then prove the result is that code's, and other code is
   * detected. Without it the SDK trusts the code hash the host lists for the agent's latest
   * version (an unauthenticated `GET /agents/{name}`): the result is then proven to be the
   * listed code's, not that the listing is the code you meant to run.
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
    const a = await this.#sendPayable('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  /**
   * A sealed invocation of a CLI agent (arguments and stdin sealed), checked as
   * {@link invokeAgentSealed}. **Pass `codeHash`** to detect other code: without it the code
   * hash the host lists is trusted.
   */
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
    const a = await this.#sendPayable('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
    return readExecution(session, a.status, a.body, digests, a.headers);
  }

  async #ownerHeaders(owner: ClientKey, action: OwnerAction, name: string): Promise<Record<string, string>> {
    const s = await ownerSignature(owner, await this.#audienceOf(), action, name, '');
    return {
      'x-agent-signature': s.signature,
      'x-agent-signed-at': String(s.signed_at),
      'x-agent-sequence': String(s.sequence),
      'x-agent-owner': owner.publicKeyHex,
    };
  }

  /** An owner operation with an empty detail, signed in the `x-agent-*` headers (§17). */
  async #ownerRequest(method: string, owner: ClientKey, action: OwnerAction, name: string, path: string): Promise<unknown> {
    return this.#expect(200, method, path, { headers: await this.#ownerHeaders(owner, action, name) });
  }

  /** A signed body (§17): the owner's signature over `detail`, its time and sequence. */
  async #signedBody(owner: ClientKey, action: OwnerAction, name: string, detail: string): Promise<Record<string, unknown>> {
    return { ...(await ownerSignature(owner, await this.#audienceOf(), action, name, detail)) };
  }

  /**
   * The owner's session to seal secrets to: the one given (it must be the owner's key's),
   * else a new **verifiable** session of the owner's key, verified under the client's policy
   * before anything is sealed (§13: a client verifies the chain before sending anything; a
   * plain session's key could be anyone's on an unauthenticated path).
   */
  async #ownerSession(owner: ClientKey, session: Session | undefined): Promise<Session> {
    if (session !== undefined && session.clientKey.publicKeyHex !== owner.publicKeyHex) {
      throw new TypeError("sealed owner operations go under a session of the owner's key");
    }
    return session ?? (await this.createVerifiableSession({ key: owner }));
  }

  #agentPath(name: string, rest = ''): string {
    return `/agents/${encodeURIComponent(name)}${rest}`;
  }

  /** `GET /agents/{name}/logs`, signed by the owner: the newest 100 stderr entries. */
  async agentLogs(owner: ClientKey, name: string): Promise<{ agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] }> {
    const path = `/agents/${encodeURIComponent(name)}/logs`;
    const answer = await this.#ownerRequest('GET', owner, 'logs', name, path);
    arrayField(answer, 'logs', `GET ${path}`);
    return answer as { agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] };
  }

  /** `DELETE /agents/{name}`, signed by the owner. */
  async deleteAgent(owner: ClientKey, name: string): Promise<void> {
    await this.#ownerRequest('DELETE', owner, 'delete', name, `/agents/${encodeURIComponent(name)}`);
  }

  // ---- Owner operations (§18, §23): signed by `owner`; sealed values go under `session`, by
  // default a new verifiable session of the owner's key verified under the client's policy ----

  /** The agent's grants (§18), signed `read-grants`. */
  async grants(owner: ClientKey, name: string): Promise<{ grants: Grants; [k: string]: unknown }> {
    return objectAnswer(await this.#ownerRequest('GET', owner, 'read-grants', name, this.#agentPath(name, '/grants')), 'GET grants') as { grants: Grants };
  }

  /** Replaces the agent's grants (§18), signed over {@link grantsDetail}. */
  async setGrants(owner: ClientKey, name: string, grants: Grants): Promise<{ grants: Grants; [k: string]: unknown }> {
    const body = await this.#signedBody(owner, 'grants', name, await grantsDetail(grants));
    const answer = await this.#expect(200, 'PUT', this.#agentPath(name, '/grants'), {
      json: { ...body, grants },
      headers: { 'x-agent-owner': owner.publicKeyHex },
    });
    return objectAnswer(answer, 'PUT grants') as { grants: Grants };
  }

  /** The agent's outgoing calls, newest first (§18), signed `calls`. */
  async calls(owner: ClientKey, name: string, limit?: number): Promise<Record<string, unknown>[]> {
    const q = limit === undefined ? '' : `?limit=${limit}`;
    return arrayField(await this.#ownerRequest('GET', owner, 'calls', name, this.#agentPath(name, '/calls' + q)), 'calls', 'GET calls') as Record<string, unknown>[];
  }

  /** The agent's wallet without its key: address, policy, spends (§18), signed `read-wallet`. */
  async wallet(owner: ClientKey, name: string): Promise<Record<string, unknown>> {
    return objectAnswer(await this.#ownerRequest('GET', owner, 'read-wallet', name, this.#agentPath(name, '/wallet')), 'GET wallet');
  }

  /**
   * Attaches a secp256k1 wallet (32-byte key, sealed to the owner's session, role wallet-key)
   * and its spending policy (§18), signed over {@link walletDetail}. Without `options.session`
   * the key is sealed to a new verifiable session of the owner's key, verified under the
   * client's policy first (`VerifyError`, nothing sent, when it does not verify). `address` defaults to the
   * key's EVM address, computed by `viem` (an optional peer dependency, imported only then).
   */
  async setWallet(
    owner: ClientKey,
    name: string,
    key: Uint8Array,
    policy: WalletPolicy,
    options: { address?: string; session?: Session } = {},
  ): Promise<Record<string, unknown>> {
    if (key.length !== 32) throw new RangeError('a wallet key is a 32-byte secp256k1 scalar');
    const address = options.address ?? (await evmAddress(key));
    const session = await this.#ownerSession(owner, options.session);
    const body = await this.#signedBody(owner, 'wallet', name, walletDetail(address, policy));
    return objectAnswer(await this.#expect(200, 'PUT', this.#agentPath(name, '/wallet'), {
      json: {
        ...body,
        public_key: owner.publicKeyHex,
        session_id: session.id,
        encrypted_key: toHex(session.seal(Role.WalletKey, 0, key)),
        address,
        policy,
      },
      headers: { 'x-agent-owner': owner.publicKeyHex },
    }), 'PUT wallet');
  }

  /** The configuration's entries (§23.2): names, versions, value hashes; never values. */
  async config(owner: ClientKey, name: string): Promise<ConfigEntry[]> {
    return arrayField(await this.#ownerRequest('GET', owner, 'read-config', name, this.#agentPath(name, '/config')), 'entries', 'GET config') as ConfigEntry[];
  }

  /**
   * Sets and removes configuration values and secrets (§23.2): the change sealed to the owner's
   * session (role agent-config), signed over the SHA-256 of its plaintext. Returns the entries
   * (value hashes only: compare with {@link valueHash}). Without `options.session` the change is
   * sealed to a new verifiable session of the owner's key, verified under the client's policy
   * first (`VerifyError`, nothing sent, when it does not verify).
   */
  async setConfig(
    owner: ClientKey,
    name: string,
    change: { set?: Record<string, string>; remove?: string[] },
    options: { session?: Session } = {},
  ): Promise<ConfigEntry[]> {
    const session = await this.#ownerSession(owner, options.session);
    const doc: Record<string, unknown> = {};
    if (change.set && Object.keys(change.set).length > 0) doc['set'] = change.set;
    if (change.remove && change.remove.length > 0) doc['remove'] = change.remove;
    const plain = utf8(JSON.stringify(doc));
    const body = await this.#signedBody(owner, 'config', name, await configDetail(plain));
    const answer = await this.#expect(200, 'PUT', this.#agentPath(name, '/config'), {
      json: { ...body, public_key: owner.publicKeyHex, session_id: session.id, encrypted_config: toHex(session.seal(Role.AgentConfig, 0, plain)) },
      headers: { 'x-agent-owner': owner.publicKeyHex },
    });
    return arrayField(answer, 'entries', 'PUT config') as ConfigEntry[];
  }

  /**
   * The agent's whole state (§23.3), sealed to the owner's session (role state-export) and
   * opened here; without `options.session`, a new verifiable session of the owner's key.
   */
  async exportState(owner: ClientKey, name: string, options: { session?: Session } = {}): Promise<StateExport> {
    const session = await this.#ownerSession(owner, options.session);
    const body = await this.#signedBody(owner, 'export-state', name, '');
    const answer = await this.#expect(200, 'POST', this.#agentPath(name, '/state/export'), {
      json: { ...body, public_key: owner.publicKeyHex, session_id: session.id },
      headers: { 'x-agent-owner': owner.publicKeyHex },
    });
    if (!isObject(answer) || typeof answer['encrypted_state'] !== 'string') throw new VerifyError('Malformed', 'an export without encrypted_state');
    let sealed: Uint8Array;
    try {
      sealed = fromHex(answer['encrypted_state'], 'encrypted_state');
    } catch (e) {
      throw new VerifyError('Malformed', (e as Error).message);
    }
    return parseStateExport(session.open(Role.StateExport, 0, sealed), name);
  }

  /**
   * Puts an exported state back (§23.3), merged or replacing: sealed (role state-import) as the
   * export's compact JSON, signed over its SHA-256 and `replace=`; without `options.session`,
   * to a new verifiable session of the owner's key.
   */
  async importState(
    owner: ClientKey,
    name: string,
    state: StateExport,
    options: { replace?: boolean; session?: Session } = {},
  ): Promise<{ keys: number; [k: string]: unknown }> {
    const replace = options.replace ?? false;
    const session = await this.#ownerSession(owner, options.session);
    const plain = utf8(JSON.stringify(state));
    const body = await this.#signedBody(owner, 'import-state', name, await importDetail(plain, replace));
    const answer = await this.#expect(200, 'POST', this.#agentPath(name, '/state/import'), {
      json: { ...body, public_key: owner.publicKeyHex, session_id: session.id, encrypted_state: toHex(session.seal(Role.StateImport, 0, plain)), replace },
      headers: { 'x-agent-owner': owner.publicKeyHex },
    });
    return objectAnswer(answer, 'POST state/import') as { keys: number };
  }

  /** Removes every key of every bucket (§23.3); the number removed. */
  async wipeState(owner: ClientKey, name: string): Promise<number> {
    const removed = objectAnswer(await this.#ownerRequest('DELETE', owner, 'wipe-state', name, this.#agentPath(name, '/state')), 'DELETE state')['keys_removed'];
    if (!isU64(removed)) throw new ProtocolError(`DELETE state: keys_removed ${show(removed)} is not a count`);
    return removed;
  }

  /** One execution record (§17), readable by the key that ran it and the agent's owner (signed `read-executions`). */
  async execution(reader: ClientKey, executionId: string): Promise<Record<string, unknown>> {
    const id = uuidText(executionId);
    return objectAnswer(await this.#ownerRequest('GET', reader, 'read-executions', id, `/executions/${id}`), 'GET execution');
  }

  /** The execution records `reader` may read, oldest first. */
  async executions(reader: ClientKey, options: { sinceMs?: number; limit?: number } = {}): Promise<Record<string, unknown>[]> {
    const q = new URLSearchParams();
    if (options.sinceMs !== undefined) q.set('since_ms', String(options.sinceMs));
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    const qs = q.toString();
    const path = '/executions' + (qs ? `?${qs}` : '');
    return arrayField(await this.#ownerRequest('GET', reader, 'read-executions', '', path), 'executions', 'GET /executions') as Record<string, unknown>[];
  }
}

/** A configuration entry as the host lists it (§23.2): never the value, its hash. */
export interface ConfigEntry {
  name: string;
  /** {@link valueHash} of the value. */
  sha256: string;
  [field: string]: unknown;
}

/** An agent's exported state (§23.3): each bucket's keys and base64 values. */
export interface StateExport {
  agent: string;
  exported_at_ms: number;
  buckets: Record<string, Record<string, string>>;
  [field: string]: unknown;
}

/** Parses an opened state export (§23.3), refusing one that is not `agent`'s. */
export function parseStateExport(plaintext: Uint8Array, agent: string): StateExport {
  let doc: unknown;
  try {
    doc = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new VerifyError('Malformed', 'the exported state is not JSON');
  }
  if (!isObject(doc) || doc['agent'] !== agent || !isObject(doc['buckets'])) {
    throw new VerifyError('Mismatch', "the exported state is not this agent's");
  }
  return doc as StateExport;
}

const viemAccounts = 'viem/accounts';

/** The EVM address of a secp256k1 key, by viem's `privateKeyToAccount` (imported lazily). */
export async function evmAddress(key: Uint8Array): Promise<string> {
  let mod: { privateKeyToAccount(k: string): { address: string } };
  try {
    mod = (await import(/* webpackIgnore: true */ viemAccounts)) as typeof mod;
  } catch (e) {
    throw new TypeError(`computing the wallet address needs viem (or pass options.address): ${(e as Error).message}`);
  }
  return mod.privateKeyToAccount(`0x${toHex(key)}`).address;
}

export type { VerifiedKey };
