/// <reference types="node" />
/**
 * HTTPS hosts whose TLS ends inside the TEE (§19), in Node: the channel binding checked on a
 * TLS 1.3 connection of our own whose exporter value the attested key must have signed, the
 * RA-TLS evidence of the host's self-generated certificate, and a `fetch` that accepts exactly
 * that certificate afterwards.
 *
 * Node-only (`node:tls`, `node:https`): the {@link Client} imports this module lazily, only for
 * an `https://` host, so browser bundles never load it. Browsers cannot export TLS keying
 * material: there the client refuses `https://` hosts unless `tlsBinding: false` is given.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import https from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { ctEqual, fromHex, toHex } from './bytes.js';
import { verifySignature } from './crypto.js';
import { ProtocolError, TransportError, VerifyError } from './errors.js';
import { isObject, parseJson, show } from './json.js';
import { verifyCertificate, type BoundChannel } from './ratls.js';
import { channelStatementFields, statement, StatementKind } from './statements.js';
import type { Attestation } from './types.js';
import { verifyAttestation, type Policy } from './verify.js';

export type { BoundChannel };

/** The exporter label of §19 step 1. */
export const EXPORTER_LABEL = 'EXPORTER-wasm-hypervisor-channel-binding';
/** The whole binding exchange must finish within this many milliseconds (§19 step 5). */
export const BINDING_TIMEOUT_MS = 30_000;
const MAX_HEAD = 64 * 1024;
const MAX_ANSWER = 1 << 20;
/** The code of the error a pinned connection fails with when the host shows another certificate. */
export const PIN_MISMATCH = 'ERR_WASM_HYPERVISOR_CERTIFICATE_PIN';


const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** One HTTP/1.1 answer read exactly (§19 step 5): a status, one Content-Length, no chunking. */
function readAnswer(socket: tls.TLSSocket): Promise<{ status: number; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let head: { status: number; length: number; start: number } | undefined;
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        if (head === undefined) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEAD) throw new ProtocolError("the channel binding's answer has no end of headers");
            return;
          }
          const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
          const m = /^HTTP\/1\.1 (\d{3})(?: |$)/.exec(lines[0] ?? '');
          if (!m) throw new ProtocolError("the channel binding's answer is not HTTP/1.1");
          const headers = lines.slice(1).map((l) => {
            const i = l.indexOf(':');
            return i < 0 ? ['', ''] : [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
          });
          const lengths = headers.filter(([k]) => k === 'content-length').map(([, v]) => v!);
          if (headers.some(([k]) => k === 'transfer-encoding') || lengths.length !== 1) {
            throw new ProtocolError("the channel binding's answer must have exactly one Content-Length");
          }
          if (!/^\d{1,9}$/.test(lengths[0]!)) throw new ProtocolError("the channel binding's Content-Length is not a number");
          const length = Number(lengths[0]);
          if (length > MAX_ANSWER) throw new ProtocolError("the channel binding's answer is too large");
          head = { status: Number(m[1]), length, start: end + 4 };
        }
        if (buf.length - head.start >= head.length) {
          cleanup();
          resolve({ status: head.status, body: buf.subarray(head.start, head.start + head.length) });
        }
      } catch (e) {
        fail(e as Error);
      }
    };
    const onEnd = () => fail(new TransportError('the host closed the connection before the channel binding'));
    const onError = (e: Error) => fail(e instanceof TransportError ? e : new TransportError(`TLS error reading the channel binding: ${e.message}`, e));
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}

function connect(host: string, port: number, opened: (s: tls.TLSSocket) => void): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: ['http/1.1'],
      // The binding authenticates the host, not a web root (§19).
      rejectUnauthorized: false,
    });
    opened(socket);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (e: Error) => reject(new TransportError(`TLS with ${host}:${port}: ${e.message}`, e));
    socket.once('error', onError);
  });
}

/**
 * §19 steps 1-4 on a TLS 1.3 connection of our own (at most 30 s): the host's attested key
 * must sign this connection's exporter value, our nonce, the certificate shown and its
 * audience; the certificate must be the host's own, its RA-TLS evidence verified under
 * `policy` and naming the same key. With `expectedAudience`, another deployment is refused.
 * @throws VerifyError (kind `Channel`, or what the attestation's verification threw),
 * `TransportError`, `ProtocolError`.
 */
export async function bindChannel(url: string, policy: Policy, expectedAudience?: string): Promise<BoundChannel> {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new TypeError(`not an https:// URL: ${url}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = u.port === '' ? 443 : Number(u.port);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let opened: tls.TLSSocket | undefined;
  const exchange = (async () => {
    const socket = await connect(host, port, (s) => {
      opened = s;
    });
    if (typeof socket.exportKeyingMaterial !== 'function') {
      throw new VerifyError('Channel', 'this runtime cannot export TLS keying material: the channel cannot be bound');
    }
    if (socket.getProtocol() !== 'TLSv1.3') throw new VerifyError('Channel', 'the host did not speak TLS 1.3');
    const peer = socket.getPeerX509Certificate();
    if (peer === undefined) throw new ProtocolError('the host presented no certificate');
    const certificate = new Uint8Array(peer.raw);
    const exporter = new Uint8Array(socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)));
    const nonce = new Uint8Array(randomBytes(32));
    const answer = readAnswer(socket);
    socket.write(`GET /attestation/channel?nonce=${toHex(nonce)} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: application/json\r\n\r\n`);
    return { certificate, exporter, nonce, ...(await answer) };
  })();
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportError(`the channel binding with ${u.host} did not finish within ${BINDING_TIMEOUT_MS / 1000} s`)), BINDING_TIMEOUT_MS);
  });
  let got: Awaited<typeof exchange>;
  try {
    got = await Promise.race([exchange, deadline]);
  } finally {
    clearTimeout(timer);
    exchange.catch(() => undefined);
    (opened as tls.TLSSocket | undefined)?.destroy();
  }
  const { certificate, exporter, nonce, status, body } = got;
  const text = new TextDecoder().decode(body);
  if (status !== 200) throw new VerifyError('Channel', `the host answered ${status} to /attestation/channel: ${text.slice(0, 300)}`);
  let answer: Record<string, unknown>;
  let gotNonce: Uint8Array;
  let certSha: Uint8Array;
  let signature: Uint8Array;
  try {
    const parsed = parseJson(text);
    if (!isObject(parsed) || !isObject(parsed['attestation'])) throw new TypeError('not a channel binding object');
    if (typeof parsed['audience'] !== 'string') throw new TypeError('no audience');
    answer = parsed;
    gotNonce = fromHex(answer['nonce'] as string, 'nonce', 32);
    certSha = fromHex(answer['certificate_sha256'] as string, 'certificate_sha256', 32);
    signature = fromHex(answer['signature'] as string, 'signature', 64);
  } catch (e) {
    throw new VerifyError('Channel', `the channel binding is malformed: ${(e as Error).message}`);
  }
  const audience = answer['audience'] as string;
  const verified = await verifyAttestation(answer['attestation'] as unknown as Attestation, policy);
  if (!ctEqual(gotNonce, nonce)) throw new VerifyError('Channel', 'the binding answers another nonce');
  if (!ctEqual(certSha, sha256(certificate))) throw new VerifyError('Channel', 'the binding names another certificate than the one shown');
  if (expectedAudience !== undefined && audience !== expectedAudience) {
    throw new VerifyError('Channel', `the host is deployment ${show(audience)}, not the pinned ${expectedAudience}`);
  }
  const signed = statement(StatementKind.TlsChannel, channelStatementFields(exporter, nonce, certSha, audience));
  if (!(await verifySignature(verified.signingKey, signed, signature))) {
    throw new VerifyError('Channel', 'the attested key did not sign this connection (a TLS-terminating proxy is in between?)');
  }
  if (answer['certificate_generated'] !== true) {
    throw new VerifyError(
      'Channel',
      "the host presents an operator's certificate; this SDK pins only the host's own RA-TLS certificate (its key never leaves the TEE)",
    );
  }
  const fromCertificate = await verifyCertificate(certificate, policy);
  if (fromCertificate === undefined) throw new VerifyError('Channel', "the host's generated certificate carries no RA-TLS evidence");
  if (!ctEqual(fromCertificate.signingKey, verified.signingKey)) {
    throw new VerifyError('Channel', "the certificate's evidence names another signing key");
  }
  if (!/^[0-9a-f]{32}$/.test(audience)) throw new ProtocolError(`the bound audience is not 32 lowercase hex digits: ${show(audience)}`);
  return { verified, certificate, audience };
}

function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

/**
 * A `fetch` whose connections accept exactly `certificate` (TLS 1.3): the bound host's own
 * certificate, whose key never leaves the TEE. The exact pin authenticates the host, so its
 * names are not checked (a host reached by a name outside its `tls.names` still verifies, as
 * with the Rust client). Another certificate fails the connection with the code
 * {@link PIN_MISMATCH}.
 */
export function pinnedFetch(certificate: Uint8Array): typeof fetch {
  const pinned = sha256(certificate);
  const agent = new https.Agent({
    keepAlive: true,
    ca: pem(certificate),
    minVersion: 'TLSv1.3',
    checkServerIdentity: (_host, peer) => {
      const raw = peer?.raw;
      if (raw && timingSafeEqual(sha256(raw), pinned)) return undefined;
      return Object.assign(new Error("the host's certificate is not the bound one"), { code: PIN_MISMATCH });
    },
  });
  const pinnedFetchImpl = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.protocol !== 'https:') throw new TypeError(`the pinned fetch speaks https:// only, not ${url.protocol}`);
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => {
      headers[k] = v;
    });
    if (body !== undefined) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, { method: request.method, headers, agent }, (res) => {
        const h = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 0;
        const empty = status === 204 || status === 205 || status === 304 || request.method === 'HEAD';
        if (empty) res.resume();
        try {
          resolve(
            new Response(empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>), {
              status,
              statusText: res.statusMessage ?? '',
              headers: h,
            }),
          );
        } catch (e) {
          res.destroy();
          reject(e);
        }
      });
      req.once('error', reject);
      req.end(body);
    });
  };
  return Object.assign(pinnedFetchImpl, { close: () => agent.destroy() }) as unknown as typeof fetch;
}

/**
 * Whether `e` (or its cause) is a pinned connection refusing the host's certificate: another
 * one than the bound one (the host's key, hence its certificate, rotated; or someone else).
 */
export function isPinMismatch(e: unknown): boolean {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 4; c = (c as { cause?: unknown }).cause, i++) {
    const code = (c as { code?: unknown }).code;
    if (code === PIN_MISMATCH) return true;
    // OpenSSL refuses a certificate outside the pinned trust anchor before the fingerprint check.
    if (typeof code === 'string' && /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_SIGNATURE_FAILURE)$/.test(code)) {
      return true;
    }
  }
  return false;
}

