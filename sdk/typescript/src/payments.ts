/**
 * Paid routes and agents (§6b): which resource a 402 must name before the payer may pay it,
 * the payment headers made by the official x402 SDK (`@x402/core`, given by the caller), and
 * the settlement header. The x402 SDK is never imported by the core: the caller passes its
 * `x402Client` (or `x402HTTPClient`); only the former is wrapped, with a lazy import.
 * @module
 */
import { fromBase64, fromUtf8 } from './bytes.js';
import { PaymentFailedError } from './errors.js';
import { parseJson } from './json.js';

/**
 * What this SDK needs of the official x402 client: an `x402Client` from `@x402/core/client`
 * with the EVM exact scheme registered (`new x402Client().register('eip155:*', new
 * ExactEvmScheme(account))`), its spend controls applied by it, or an `x402HTTPClient`
 * wrapping one. In a browser bundle pass the `x402HTTPClient`: the SDK wraps a bare
 * `x402Client` by importing `@x402/core/client` at run time, which only Node (or an import
 * map) resolves.
 */
export interface X402Payer {
  createPaymentPayload(paymentRequired: never): Promise<unknown>;
}

/** The decoded settlement header (`PAYMENT-RESPONSE`, v1 `X-PAYMENT-RESPONSE`) of a paid answer. */
export interface Settlement {
  success: boolean;
  transaction?: string;
  network?: string;
  payer?: string;
  errorReason?: string;
  [field: string]: unknown;
}

/** The kinds of paid route of §6b's table (vector `x402_resources`). */
export type PaidRouteKind = 'code route' | 'handler or CLI agent' | 'HTTP agent';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function base64Json(value: string): unknown {
  const padded = value + '='.repeat((4 - (value.length % 4)) % 4);
  return parseJson(fromUtf8(fromBase64(padded)));
}

/**
 * The resource URL and `mimeType` a host's challenge names for a request to `requested` (a
 * path and query) on a host whose public URL is `publicUrl` (§6b's table): the route itself
 * for code routes, the invoke route for handler and CLI agents, the agent's prefix for HTTP
 * agents.
 */
export function resourceOf(
  publicUrl: string,
  requested: string,
  kind: PaidRouteKind | string,
  agent?: string | null,
  contentType?: string | null,
): { url: string; mimeType: string } {
  const base = publicUrl.replace(/\/+$/, '');
  if (kind === 'code route') return { url: base + requested.split('?')[0], mimeType: 'application/json' };
  if (kind === 'handler or CLI agent') return { url: `${base}/agents/${agent}/invoke`, mimeType: 'application/json' };
  return { url: `${base}/agents/${agent}/`, mimeType: contentType ?? 'application/octet-stream' };
}

/** The resource URL a 402 names: v2's `PAYMENT-REQUIRED` header, else v1's `accepts[0].resource`. */
export function challengedResource(headers: Headers, body: unknown): string | undefined {
  const header = headers.get('payment-required');
  if (header) {
    let url: unknown;
    try {
      const doc = base64Json(header);
      url = isObject(doc) && isObject(doc['resource']) ? doc['resource']['url'] : undefined;
    } catch {
      throw new PaymentFailedError("the 402's PAYMENT-REQUIRED header does not parse");
    }
    if (typeof url !== 'string') throw new PaymentFailedError("the 402's PAYMENT-REQUIRED header names no resource");
    return url;
  }
  if (isObject(body) && Array.isArray(body['accepts']) && isObject(body['accepts'][0])) {
    const r = body['accepts'][0]['resource'];
    if (typeof r === 'string') return r;
  }
  return undefined;
}

/**
 * Refuses (`PaymentFailedError`) a challenge whose resource path is not `path`, the path of the
 * route requested: a challenge for another route or agent is never handed to the payer. Only
 * the path is compared: the host's public origin may differ from the URL the client uses.
 */
export function checkChallenge(headers: Headers, body: unknown, path: string): void {
  const resource = challengedResource(headers, body);
  if (resource === undefined) throw new PaymentFailedError('the 402 names no resource');
  let named: string;
  try {
    named = new URL(resource).pathname;
  } catch {
    throw new PaymentFailedError(`the 402 names a resource that is not a URL: ${resource}`);
  }
  const wanted = path.split('?')[0];
  if (named !== wanted) throw new PaymentFailedError(`the 402 asks payment for ${resource}, not for ${wanted}`);
}

/** The decoded settlement header of a paid answer, or `undefined`. */
export function settlementOf(headers: Headers): Settlement | undefined {
  for (const name of ['payment-response', 'x-payment-response']) {
    const value = headers.get(name);
    if (!value) continue;
    let doc: unknown;
    try {
      doc = base64Json(value);
    } catch {
      throw new PaymentFailedError(`the ${name} header is not base64 JSON`);
    }
    if (!isObject(doc)) throw new PaymentFailedError(`the ${name} header is not a JSON object`);
    return doc as Settlement;
  }
  return undefined;
}

interface HttpPayer {
  getPaymentRequiredResponse(getHeader: (name: string) => string | null | undefined, body?: unknown): unknown;
  createPaymentPayload(paymentRequired: unknown): Promise<unknown>;
  encodePaymentSignatureHeader(payload: unknown): Record<string, string>;
}

const x402CoreClient = '@x402/core/client';

async function httpPayer(payer: X402Payer): Promise<HttpPayer> {
  const p = payer as unknown as Partial<HttpPayer>;
  if (typeof p.encodePaymentSignatureHeader === 'function' && typeof p.getPaymentRequiredResponse === 'function') {
    return p as HttpPayer;
  }
  let mod: { x402HTTPClient: new (client: unknown) => HttpPayer };
  try {
    mod = (await import(/* webpackIgnore: true */ x402CoreClient)) as typeof mod;
  } catch (e) {
    throw new PaymentFailedError(
      'paying needs the x402 SDK (npm @x402/core), which could not be loaded here: in a browser bundle, pass ' +
        '`new x402HTTPClient(yourX402Client)` (from @x402/core/client) as the payer',
      e,
    );
  }
  return new mod.x402HTTPClient(payer);
}

/**
 * The payment headers for a `402` (its `headers` and parsed `body`), made by the x402 SDK:
 * it reads the requirements, applies its spend controls and signs. Its failures become
 * {@link PaymentFailedError}.
 */
export async function paymentHeaders(payer: X402Payer, headers: Headers, body: unknown, path: string): Promise<Record<string, string>> {
  const http = await httpPayer(payer);
  try {
    const required = http.getPaymentRequiredResponse((name) => headers.get(name), body);
    return http.encodePaymentSignatureHeader(await http.createPaymentPayload(required));
  } catch (e) {
    const err = e as Error;
    throw new PaymentFailedError(`the x402 client did not pay ${path}: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`, e);
  }
}
