/**
 * The client's transport (§19, §6b, §6c, §17): requests over `fetch` with bounded answers, the
 * TLS channel binding of an `https://` host handed off to the Node-only `tls-node.js`, paying
 * a `402` challenge, binary bodies as JSON or multipart, and the audience owner statements
 * name. A leaf of the client: it imports no other client module.
 * @module
 */
import { fromBase64, toBase64, toHex } from './bytes.js';
import { HypervisorError, PaymentRequiredError, ProtocolError, TransportError, VerifyError } from './errors.js';
import { isObject, objectAnswer, parseJson, show } from './json.js';
import { checkChallenge, paymentHeaders, type X402Payer } from './payments.js';
import type { BoundChannel } from './ratls.js';
import type { Policy } from './verify.js';

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

/** A request's body and extra headers. */
export interface SendInit {
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
}

/** A host's answer: its status, headers and body (parsed JSON, else the text). */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** The default of {@link ClientOptions.binaryUploadsAbove}: 4 MiB. */
export const DEFAULT_UPLOAD_THRESHOLD = 4 * 1024 * 1024;

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

/**
 * The transport of one host, shared by the client's operations: the options' `fetch`,
 * headers, payer and policy, the TLS channel binding of an `https://` host and the audience,
 * each made once per client.
 */
export class Transport {
  /** The host's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** The client's policy (see {@link ClientOptions.policy}). */
  readonly policy: Policy;
  /** The audience pinned by the caller, if any. */
  readonly expectedAudience: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;
  readonly #payer: X402Payer | undefined;
  readonly #uploadsAbove: () => number;
  /** The audience owner statements name: read once per client (see {@link ClientOptions.expectedAudience}). */
  #audience: Promise<string> | undefined;
  readonly #tlsBinding: boolean;
  #binding: Promise<Binding> | undefined;
  #channel: BoundChannel | undefined;

  /**
   * Checks the options (`TypeError`) and keeps them. `uploadsAbove` reads the client's
   * current multipart threshold (see {@link ClientOptions.binaryUploadsAbove}).
   */
  constructor(baseUrl: string, options: ClientOptions, uploadsAbove: () => number) {
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
    this.policy = options.policy ?? {};
    this.#headers = options.headers ?? {};
    this.#payer = options.payer;
    this.#uploadsAbove = uploadsAbove;
  }

  /** The verified channel binding of an `https://` host, once the first request bound it. */
  get channel(): BoundChannel | undefined {
    return this.#channel;
  }

  /** Closes the pinned connections of a bound `https://` host (the binding is kept). */
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
        const channel = await mod.bindChannel(this.baseUrl, this.policy, this.expectedAudience);
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

  /**
   * Sends a request: over the pinned connections of a bound `https://` host (bound first, and
   * again when the host's certificate has rotated), else over the options' `fetch`.
   */
  async send(method: string, path: string, init: SendInit = {}): Promise<Answer> {
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

  async #sendWith(fetcher: typeof fetch, method: string, path: string, init: SendInit): Promise<Answer> {
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
  async sendPayable(method: string, path: string, init: SendInit = {}): Promise<Answer> {
    const a = await this.send(method, path, init);
    if (a.status !== 402) return a;
    // A 402 carrying §9's error object (`settlement_failed`) is no challenge: nothing to pay.
    if (!isPaymentChallenge(a.status, a.body, a.headers)) throw errorOf(a.status, a.body, a.headers);
    const isChallenge = a.headers.has('payment-required') || (isObject(a.body) && 'accepts' in a.body);
    if (isChallenge) checkChallenge(a.headers, a.body, path);
    if (!this.#payer) throw errorOf(a.status, a.body, a.headers);
    const paid = await paymentHeaders(this.#payer, a.headers, a.body, path);
    return this.send(method, path, { ...init, headers: { ...(init.headers ?? {}), ...paid } });
  }

  /** Sends a request and returns the body of an answer of status `want`; any other throws {@link errorOf}'s error. */
  async expect(want: number, method: string, path: string, init?: SendInit): Promise<unknown> {
    const a = await this.send(method, path, init);
    if (a.status !== want) throw errorOf(a.status, a.body, a.headers);
    return a.body;
  }

  /**
   * A body carrying one binary field: JSON with the field in hex (or base64 for a clear
   * component), or multipart (§6c) when the bytes are above {@link ClientOptions.binaryUploadsAbove}.
   */
  bodyWith(request: Record<string, unknown>, field: string, bytes: Uint8Array, encoding: 'hex' | 'base64'): { json?: unknown; form?: FormData } {
    if (bytes.length > this.#uploadsAbove()) {
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
   * The audience owner statements name (§17): read once per client (concurrent first reads
   * share it; a failed read is tried again next time), 32 lowercase hex digits, held to
   * `expectedAudience` when it is set.
   */
  audienceOf(): Promise<string> {
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
      : objectAnswer(await this.expect(200, 'GET', '/host'), 'GET /host')['audience'];
    if (typeof audience !== 'string' || !/^[0-9a-f]{32}$/.test(audience)) {
      throw new ProtocolError(`GET /host gave no audience (32 lowercase hex digits): ${show(audience)}`);
    }
    if (this.expectedAudience !== undefined && audience !== this.expectedAudience) {
      throw new VerifyError('Channel', `the host is deployment ${audience}, not the pinned ${this.expectedAudience}`);
    }
    return audience;
  }
}
