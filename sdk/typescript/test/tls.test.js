// HTTPS hosts (§19), as sdk/python/tests/test_tls.py: the SDK binds the channel (Node's
// exportKeyingMaterial) and pins the host's RA-TLS certificate; a TLS-terminating proxy in
// between, or another deployment than the pinned one, is refused; browsers (no keying material
// export) refuse https:// hosts unless told otherwise.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import * as sdk from '../dist/index.js';
import { isPinMismatch, pinnedFetch } from '../dist/tls-node.js';
import { simulatedSet, startHost, wasmDir } from './host.js';

const { Client, VerifyError, TransportError } = sdk;
const policy = () => ({ referenceValues: [simulatedSet()], allowSimulated: true });
const TLS_ONLY = '[tls]\nlisten = "127.0.0.1:0"\nplain = false\n';

let host;

/**
 * A self-signed P-256 certificate and key (PEM) standing for another TLS server (a proxy, a
 * second host): test fixtures made once with `openssl req -x509 -newkey ec -pkeyopt
 * ec_paramgen_curve:P-256 -nodes -days 36500 -subj /CN=<name>`; their keys are test data.
 */
async function selfSigned(name) {
  const dir = new URL('./fixtures/', import.meta.url);
  return {
    key: fs.readFileSync(new URL(`${name}-key.pem`, dir)),
    cert: fs.readFileSync(new URL(`${name}-cert.pem`, dir)),
  };
}

before(async () => {
  host = await startHost(TLS_ONLY);
}, { timeout: 660_000 });

after(async () => {
  await host?.stop();
});

describe('HTTPS and the channel binding (§19)', () => {
  test('an https:// host is bound and pinned', async () => {
    assert.match(host.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const c = new Client(host.url, { policy: policy() });
    try {
      const session = await c.createVerifiableSession();
      assert.ok(c.channel, 'bound');
      assert.equal(c.channel.verified.simulated, true);
      assert.equal(c.channel.verified.reference, 'the host under test, simulated');
      const result = await c.executeWasm(session, new Uint8Array(fs.readFileSync(path.join(wasmDir, 'hello.wasm'))), { args: ['over', 'tls'] });
      assert.equal(result.stdoutText, 'Hello over tls\n');
      assert.equal(c.channel.audience, (await c.host()).audience);
      // Owner statements name the audience the attested key signed on our connection.
      const owner = await sdk.ClientKey.generate();
      const name = `over-tls-${crypto.randomUUID().slice(0, 8)}`;
      await c.deployAgent(owner, { name, component: new Uint8Array(fs.readFileSync(path.join(wasmDir, 'text-stats.wasm'))) });
      await c.setConfig(owner, name, { set: { REGION: 'eu' } }); // sealed to a verifiable session, over the pinned channel
      await c.deleteAgent(owner, name);
      // Concurrent requests share the one binding.
      const answers = await Promise.all([1, 2, 3, 4].map(() => c.host()));
      assert.equal(new Set(answers.map((a) => a.audience)).size, 1);
    } finally {
      c.close();
    }
  });

  test('concurrent first requests bind once', async () => {
    const c = new Client(host.url, { policy: policy() });
    try {
      const answers = await Promise.all([1, 2, 3, 4].map(() => c.host()));
      assert.equal(new Set(answers.map((a) => a.audience)).size, 1);
      assert.equal(c.channel.audience, answers[0].audience);
    } finally {
      c.close();
    }
  });

  test('another deployment than the pinned one is refused', async () => {
    const c = new Client(host.url, { policy: policy(), expectedAudience: '00'.repeat(16) });
    await assert.rejects(c.host(), (e) => e instanceof VerifyError && e.kind === 'Channel' && /not the pinned/.test(e.message));
    assert.equal(c.channel, undefined);
  });

  test('the binding verifies the attestation under the policy first', async () => {
    await assert.rejects(new Client(host.url).host(), (e) => e instanceof VerifyError && e.kind === 'Simulated');
    await assert.rejects(new Client(host.url, { policy: { allowSimulated: true } }).host(), (e) => e instanceof VerifyError && e.kind === 'NoExpectedMeasurement');
  });

  test('without the binding, ordinary TLS refuses the self-signed certificate', async () => {
    const c = new Client(host.url, { tlsBinding: false });
    await assert.rejects(c.host(), (e) => e instanceof TransportError);
  });

  test('a pinned connection refuses any other certificate', async () => {
    const other = await selfSigned('other');
    const otherDer = Buffer.from(other.cert.toString().replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const f = pinnedFetch(new Uint8Array(otherDer));
    try {
      await assert.rejects(f(`${host.url}/host`), (e) => isPinMismatch(e));
    } finally {
      f.close();
    }
  });

  test('a TLS-terminating proxy cannot bind', async () => {
    // The proxy has its own TLS sessions and forwards everything, /attestation/channel too: the
    // host vouches for the certificate and exporter of the proxy's connection, not the client's.
    const { key, cert } = await selfSigned('proxy');
    const upstream = new URL(host.url);
    const sockets = new Set();
    const proxy = tls.createServer({ key, cert, minVersion: 'TLSv1.3' }, (client) => {
      const up = tls.connect({ host: upstream.hostname, port: Number(upstream.port), rejectUnauthorized: false });
      for (const s of [client, up]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(up).pipe(client);
    });
    await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const c = new Client(`https://127.0.0.1:${proxy.address().port}`, { policy: policy() });
      await assert.rejects(c.host(), (e) => e instanceof VerifyError && e.kind === 'Channel' && /another certificate than the one shown/.test(e.message));
      assert.equal(c.channel, undefined);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  test('a host that speaks no TLS is a transport error, not a hang', async () => {
    const open = new Set();
    const server = net.createServer((s) => {
      open.add(s);
      s.on('error', () => undefined);
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(new Client(`https://127.0.0.1:${server.address().port}`, { policy: policy() }).host(), (e) => e instanceof TransportError);
    } finally {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('what cannot bind is refused up front: a given fetch, an http:// URL, a browser', () => {
    assert.throws(() => new Client(host.url, { fetch }), (e) => e instanceof TypeError && /tlsBinding: false/.test(e.message));
    assert.throws(() => new Client('http://127.0.0.1:1', { tlsBinding: true }), TypeError);
    new Client(host.url, { fetch, tlsBinding: false });
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'process');
    Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
    try {
      assert.throws(() => new Client(host.url), (e) => e instanceof TypeError && /browsers cannot export TLS keying material/.test(e.message) && /tlsBinding: false/.test(e.message));
      new Client(host.url, { tlsBinding: false });
      new Client('http://127.0.0.1:1');
    } finally {
      Object.defineProperty(globalThis, 'process', saved);
    }
  });
});

describe('a rotated certificate is bound again', () => {
  let rotating;
  before(async () => {
    rotating = await startHost('key_rotation_seconds = 2\n' + TLS_ONLY);
  }, { timeout: 660_000 });
  after(async () => {
    await rotating?.stop();
  });

  test("the host's key rotates: a new connection fails the pin, and the client binds the new certificate first", async () => {
    const c = new Client(rotating.url, { policy: policy() });
    try {
      await c.host();
      const first = c.channel;
      await new Promise((r) => setTimeout(r, 3000));
      // A new connection (the pooled ones dropped, as an idle timeout would), still pinned to
      // the first certificate: refused, then bound again.
      c.close();
      await c.host();
      assert.notEqual(c.channel, first);
      assert.notEqual(sdk.toHex(c.channel.certificate), sdk.toHex(first.certificate));
      assert.notEqual(sdk.toHex(c.channel.verified.signingKey), sdk.toHex(first.verified.signingKey));
    } finally {
      c.close();
    }
  });
});
