// The SDK in a real browser: headless Chromium (Debian's, driven by playwright-core) loads the
// SDK bundled for browsers by esbuild from a page on one loopback origin, and calls the real host
// on another origin, which lists the page's origin in `http.cors_origins`. Everything runs in
// the page: WebCrypto, @noble's AES-GCM-SIV, the evidence check, owner signatures, fetch. The
// same page served from an origin the host does not list cannot call it (the browser refuses);
// the dstack near-mpc TDX quote is verified in the page by the bundled @phala/dcap-qvl; and the
// page pays a priced route with the official x402 SDK, bundled too, on the local chain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { launchChromium } from './browser/launch.js';
import { startChain } from './chain.js';
import { packageDir, samplesDir } from './helpers.js';
import { paymentsConfig, simulatedSet, startHost, wasmDir } from './host.js';

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const b64 = (file) => fs.readFileSync(file).toString('base64');

/** Serves the page and the bundles on 127.0.0.1 at a port of its own (an origin of its own). */
async function pageServer(bundles) {
  const html = '<!doctype html><meta charset="utf-8"><title>sdk</title>' +
    '<script type="module">import * as sdk from "/sdk.js"; window.sdk = sdk; window.sdkReady = true;</script>';
  const server = http.createServer((req, res) => {
    const bundle = bundles[req.url];
    if (bundle !== undefined) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(bundle);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

let tmp;
let listed;
let unlisted;
let host;
let browser;
let bundleBytes;
let bundles;

/** `entry` bundled for browsers as a web app would ship it (ESM, no Node built-ins). */
async function bundle(entry) {
  const outfile = path.join(tmp, `${path.basename(entry)}.bundle.js`);
  await esbuild.build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'chrome120', outfile, logLevel: 'error' });
  return fs.readFileSync(outfile);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-hypervisor-browser-'));
  // The package's ESM build, and the official x402 SDK a paying page adds.
  bundleBytes = await bundle(path.join(packageDir, 'dist/index.js'));
  bundles = { '/sdk.js': bundleBytes, '/payer.js': await bundle(path.join(packageDir, 'test/browser/payer.js')) };
  listed = await pageServer(bundles);
  unlisted = await pageServer(bundles);
  host = await startHost(`[http]\ncors_origins = [${JSON.stringify(listed.origin)}]\n`);
  browser = await launchChromium();
}, { timeout: 660_000 });

after(async () => {
  await browser?.close();
  listed?.server.close();
  unlisted?.server.close();
  await host?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh page of `site` with the SDK loaded (`window.sdk`); page errors fail the test. */
async function openPage(site) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${site.origin}/`);
  await page.waitForFunction(() => window.sdkReady === true, null, { timeout: 60_000 });
  page.errors = errors;
  return page;
}

describe('the SDK bundled for browsers', () => {
  test('bundles without Node built-ins; the Node-only channel binding is not in it', () => {
    const text = bundleBytes.toString('utf8');
    assert.ok(!/from\s*["']node:/.test(text), 'the bundle imports a node: module');
    assert.ok(!text.includes('exportKeyingMaterial'), 'the Node channel binding was bundled');
  });

  test('in Chromium, on a listed origin: verifiable session, WebAssembly and Python executions, receipts', async () => {
    const page = await openPage(listed);
    const out = await page.evaluate(async ({ url, set, hello }) => {
      const { Client, fromBase64 } = window.sdk;
      const client = new Client(url, { policy: { referenceValues: [set], allowSimulated: true } });
      const info = await client.host();
      const plain = await client.createSession();
      const run = await client.executeWasm(plain, fromBase64(hello), { args: ['big', 'world'], stdin: 'line one\n' });
      const vs = await client.createVerifiableSession();
      const vrun = await client.executeWasm(vs, fromBase64(hello), { args: ['browser'] });
      const py = await client.executePython(vs, 'def main(args):\n    return {"sum": sum(int(a) for a in args)}\n', { args: ['40', '2'] });
      return {
        userAgent: navigator.userAgent,
        provider: info.provider,
        stdout: run.stdoutText,
        verifiedBy: vs.verified.reference,
        vstdout: vrun.stdoutText,
        receipt: { route: vrun.receipt.route, program: vrun.receipt.program_sha256, commitment: vrun.receipt.result_commitment === vrun.commitment },
        python: py.result.returned,
        pythonRoute: py.receipt.route,
      };
    }, { url: host.url, set: simulatedSet(), hello: b64(path.join(wasmDir, 'hello.wasm')) });
    assert.match(out.userAgent, /Chrome\//);
    assert.equal(out.provider, 'simulated');
    assert.equal(out.stdout, 'Hello big world\nstdin: line one\n');
    assert.equal(out.verifiedBy, 'the host under test, simulated');
    assert.equal(out.vstdout, 'Hello browser\n');
    assert.deepEqual(out.receipt, {
      route: '/verifiable/execute/wasm',
      program: sha256(fs.readFileSync(path.join(wasmDir, 'hello.wasm'))),
      commitment: true,
    });
    assert.deepEqual(out.python, { sum: 42 });
    assert.equal(out.pythonRoute, '/test/policy/unsafe/python/attest');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('in Chromium: agents deployed clear and sealed, invoked, configured, exported, deleted by their owner', async () => {
    const page = await openPage(listed);
    const out = await page.evaluate(async ({ url, set, stats, suffix }) => {
      const { Client, ClientKey, HypervisorError, fromBase64 } = window.sdk;
      const client = new Client(url, { policy: { referenceValues: [set], allowSimulated: true } });
      const owner = await ClientKey.generate();
      const component = fromBase64(stats);
      const code = async (p) => {
        try {
          await p;
          return 'no error';
        } catch (e) {
          return e instanceof HypervisorError ? e.code : `${e.name}: ${e.message}`;
        }
      };
      const clearName = `stats-${suffix}`;
      await client.deployAgent(owner, { name: clearName, component, description: 'word counts' });
      const clear = await client.invokeAgent(clearName, { event: { text: 'One two. Three!' } });
      const sealedName = `sealed-${suffix}`;
      await client.deployAgent(owner, { name: sealedName, component, public: false }, { session: await client.createSession({ key: owner }) });
      const vs = await client.createVerifiableSession();
      const sealed = await client.invokeAgentSealed(vs, sealedName, { event: { text: 'a b c d' } });
      const jsName = `js-${suffix}`;
      const source = 'export async function handler(event) {\n' +
        '  const n = await agentState.bucket("default").increment("visits", 1);\n' +
        '  return { visits: n, region: agentConfig.get("REGION", "none"), echo: event };\n}\n';
      await client.deployAgent(owner, { name: jsName, js: { main: 'main.js', modules: { 'main.js': source } }, public: true });
      await client.setConfig(owner, jsName, { set: { REGION: 'eu-west', API_KEY: 'sk-browser' } });
      const js = await client.invokeAgent(jsName, { event: { z: 1, a: [true, null] } });
      const state = await client.exportState(owner, jsName);
      const logs = await client.agentLogs(owner, clearName);
      // Its A2A card, signed by the attested key, verified here before its URL is used.
      const card = await client.agentCard(clearName);
      const mcp = await client.mcpUrl();
      const names = (await client.listAgents()).map((a) => a.name);
      const stranger = await ClientKey.generate();
      const strangerDelete = await code(client.deleteAgent(stranger, clearName));
      for (const name of [clearName, sealedName, jsName]) await client.deleteAgent(owner, name);
      return {
        clear: clear.result,
        sealed: JSON.parse(sealed.stdoutText),
        sealedRoute: sealed.receipt.route,
        js: js.result,
        stateAgent: state.agent,
        stateKeys: Object.keys(state.buckets.default ?? {}),
        logged: logs.logs.length > 0,
        card: { name: card.card.name, url: card.url, by: card.verified.reference },
        mcp,
        listed: [clearName, sealedName, jsName].every((n) => names.includes(n)),
        strangerDelete,
        afterDelete: await code(client.getAgent(clearName)),
      };
    }, { url: host.url, set: simulatedSet(), stats: b64(path.join(wasmDir, 'text-stats.wasm')), suffix: crypto.randomBytes(4).toString('hex') });
    assert.equal(out.clear.words, 3);
    assert.equal(out.clear.sentences, 2);
    assert.equal(out.sealed.words, 4);
    assert.match(out.sealedRoute, /^\/agents\/sealed-[0-9a-f]{8}\/invoke$/);
    // Key order as the handler's JSON.stringify made it (§24), read by the browser.
    assert.deepEqual(Object.keys(out.js), ['visits', 'region', 'echo']);
    assert.deepEqual(out.js, { visits: 1, region: 'eu-west', echo: { z: 1, a: [true, null] } });
    assert.match(out.stateAgent, /^js-/);
    assert.deepEqual(out.stateKeys, ['visits']);
    assert.ok(out.logged);
    assert.match(out.card.name, /^stats-/);
    assert.equal(out.card.url, `${host.url}/agents/${out.card.name}/a2a`);
    assert.equal(out.card.by, 'the host under test, simulated');
    assert.equal(out.mcp, `${host.url}/mcp`);
    assert.ok(out.listed);
    assert.equal(out.strangerDelete, 'not_owner');
    assert.equal(out.afterDelete, 'agent_not_found');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('in Chromium, on an origin the host does not list: the browser refuses every call', async () => {
    const page = await openPage(unlisted);
    const out = await page.evaluate(async (url) => {
      const { Client } = window.sdk;
      const client = new Client(url, { policy: { acceptAnyMeasurement: true, allowSimulated: true } });
      const outcome = async (f) => {
        try {
          await f();
          return 'answered';
        } catch (e) {
          return `${e.name}: ${e.message}`;
        }
      };
      return {
        ping: await outcome(() => fetch(`${url}/ping`).then((r) => r.text())),
        session: await outcome(() => client.createSession()),
      };
    }, host.url);
    assert.match(out.ping, /^TypeError: Failed to fetch/);
    assert.match(out.session, /Failed to fetch/);
    await page.close();
  });

  test('in Chromium: an https:// host that needs the TLS channel binding is refused unless tlsBinding: false', async () => {
    const page = await openPage(listed);
    const out = await page.evaluate(() => {
      const { Client } = window.sdk;
      const made = (opts) => {
        try {
          new Client('https://hypervisor.example', opts);
          return 'made';
        } catch (e) {
          return `${e.name}: ${e.message}`;
        }
      };
      return { bound: made({}), unbound: made({ tlsBinding: false }) };
    });
    assert.match(out.bound, /TypeError: .*tlsBinding: false/);
    assert.equal(out.unbound, 'made');
    await page.close();
  });

  test('in Chromium: the dstack near-mpc TDX quote verifies with the bundled dcap-qvl, its event log replays', async () => {
    const near = path.join(samplesDir, 'dstack/near-mpc');
    const read = (f) => JSON.parse(fs.readFileSync(path.join(near, f), 'utf8'));
    const tcbInfo = read('tcb_info.json');
    const page = await openPage(listed);
    const out = await page.evaluate(async ({ quote, collateral, eventLog, now }) => {
      const { verifyTdxQuote, replayAgainst, toHex } = window.sdk;
      const bytes = new Uint8Array(quote);
      const q = await verifyTdxQuote(bytes, { collateral, now });
      const id = await replayAgainst(eventLog, q.rtmrs);
      const flipped = bytes.slice();
      flipped[520] ^= 1;
      let tampered = 'accepted';
      try {
        await verifyTdxQuote(flipped, { collateral, now });
      } catch (e) {
        tampered = `${e.kind}: ${e.message}`;
      }
      return { status: q.tcbStatus, mrtd: toHex(q.mrtd), rtmrs: q.rtmrs.map(toHex), composeHash: toHex(id.composeHash), tampered };
    }, { quote: read('quote.json'), collateral: read('collateral.json'), eventLog: tcbInfo.event_log, now: 1786622400 });
    assert.equal(out.status, 'UpToDate');
    assert.equal(out.mrtd, tcbInfo.mrtd);
    assert.deepEqual(out.rtmrs, [tcbInfo.rtmr0, tcbInfo.rtmr1, tcbInfo.rtmr2, tcbInfo.rtmr3]);
    assert.equal(out.composeHash, sha256(fs.readFileSync(path.join(near, 'app_compose.json'))));
    assert.match(out.tampered, /^Evidence: .*signature/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

describe('payments from the browser (§6b), with the official x402 SDK bundled in the page', () => {
  const PRICE = 10_000n; // the host's default price of its paid code routes
  let chain;
  let paidHost;

  before(async () => {
    chain = await startChain();
    paidHost = await startHost(`[http]\ncors_origins = [${JSON.stringify(listed.origin)}]\n${paymentsConfig(chain)}`);
  }, { timeout: 900_000 });

  after(async () => {
    await paidHost?.stop();
    await chain?.stop();
  });

  test('the challenge and the settlement headers are readable cross-origin; the payer is charged once', async () => {
    const before = [await chain.balance(chain.payer), await chain.balance(chain.payTo)];
    const page = await openPage(listed);
    const out = await page.evaluate(async ({ url, set, hello, key, token }) => {
      const { Client, PaymentRequiredError, fromBase64 } = window.sdk;
      const { x402Client, x402HTTPClient, ExactEvmScheme, privateKeyToAccount } = await import('/payer.js');
      const policy = { referenceValues: [set], allowSimulated: true };
      // Without a payer: the 402's challenge, read from its PAYMENT-REQUIRED header.
      const unpaid = new Client(url, { policy });
      let challenge;
      try {
        await unpaid.executeWasm(await unpaid.createSession(), fromBase64(hello), { paid: true });
      } catch (e) {
        if (!(e instanceof PaymentRequiredError)) throw e;
        challenge = { code: e.code, version: e.challenge.x402Version, amount: e.challenge.accepts[0].amount, header: 'payment-required' in e.headers };
      }
      const x402 = x402Client.fromConfig({
        schemes: [{ network: 'eip155:*', client: new ExactEvmScheme(privateKeyToAccount(key)) }],
        spendControls: { allowedAssets: [{ network: 'eip155:*', asset: token }] },
      });
      // A bare x402Client cannot be wrapped here (the SDK would import @x402/core at run time,
      // which a page cannot resolve): that is said, and nothing is paid.
      let bare;
      try {
        await new Client(url, { policy, payer: x402 }).executeWasm(await unpaid.createSession(), fromBase64(hello), { paid: true });
      } catch (e) {
        bare = `${e.name}: ${e.message}`;
      }
      // In a bundle the page passes the x402 SDK's HTTP client, which this SDK uses as it is.
      const client = new Client(url, { policy, payer: new x402HTTPClient(x402) });
      const run = await client.executeWasm(await client.createVerifiableSession(), fromBase64(hello), { args: ['paid'], paid: true });
      return { challenge, bare, stdout: run.stdoutText, settlement: run.settlement, payment: run.receipt.payment, route: run.receipt.route };
    }, { url: paidHost.url, set: simulatedSet(), hello: b64(path.join(wasmDir, 'hello.wasm')), key: chain.payerKey, token: chain.token });
    assert.deepEqual(out.challenge, { code: 'payment_required', version: 2, amount: String(PRICE), header: true });
    assert.match(out.bare, /^PaymentFailedError: .*pass `new x402HTTPClient/);
    assert.equal(out.stdout, 'Hello paid\n');
    assert.equal(out.settlement?.success, true);
    assert.match(out.settlement.transaction, /^0x[0-9a-fA-F]{64}$/);
    assert.equal(out.route, '/x402_execute/verifiable/wasm');
    assert.ok(out.payment.toLowerCase().includes(`payer=${chain.payer.toLowerCase()}`), out.payment);
    assert.equal(await chain.balance(chain.payer), before[0] - PRICE);
    assert.equal(await chain.balance(chain.payTo), before[1] + PRICE);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
