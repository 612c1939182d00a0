// Paying with the official x402 TypeScript SDK (@x402/core + @x402/evm, viem signer) through
// this SDK, on a local chain with Circle's USDC and the official facilitator (as
// sdk/python/tests/test_payments.py): tokens move exactly once per charged request, receipts
// name the payer, the x402 SDK's spend cap is respected, a challenge for another resource never
// reaches the payer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { x402Client } from '@x402/core/client';
import { ExactEvmScheme } from '@x402/evm';
import { decodePaymentResponseHeader } from '@x402/fetch';
import {
  PAYMENT_IDENTIFIER,
  appendPaymentIdentifierToExtensions,
  extractPaymentIdentifier,
  generatePaymentId,
  isPaymentIdentifierExtension,
} from '@x402/extensions/payment-identifier';
import { validateDiscoveryExtension, withBazaar } from '@x402/extensions/bazaar';
import {
  extractOffersFromPaymentRequired,
  verifyOfferSignatureJWS,
  verifyReceiptMatchesOffer,
  verifyReceiptSignatureJWS,
} from '@x402/extensions/offer-receipt';
import { createSIWxClientHook, parseSIWxHeader, wrapFetchWithSIWx } from '@x402/extensions/sign-in-with-x';
import { x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment } from '@x402/fetch';
import { HTTPFacilitatorClient, decodePaymentRequiredHeader, decodePaymentResponseHeader as decodeSettlement } from '@x402/core/http';
import { privateKeyToAccount } from 'viem/accounts';
import * as sdk from '../dist/index.js';
import { startChain } from './chain.js';
import { paymentsConfig, simulatedSet, startHost, wasmDir } from './host.js';

const { Client, ClientKey, HypervisorError, PaymentFailedError, PaymentRequiredError } = sdk;
const PRICE = 10_000n; // the host's default price of its paid code routes
const AGENT_PRICE = 7_000n;
const TX = /^0x[0-9a-fA-F]{64}$/;
const wasm = (name) => new Uint8Array(fs.readFileSync(path.join(wasmDir, name)));

let chain;
let host;

before(async () => {
  chain = await startChain();
  host = await startHost(paymentsConfig(chain));
}, { timeout: 900_000 });

after(async () => {
  await host?.stop();
  await chain?.stop();
});

/** The x402 SDK's client with the payer's key; the local token opted in, capped when asked. */
function payer(cap) {
  const asset = { network: 'eip155:*', asset: chain.token };
  if (cap !== undefined) asset.maxAmountPerPayment = String(cap);
  return x402Client.fromConfig({
    schemes: [{ network: 'eip155:*', client: new ExactEvmScheme(privateKeyToAccount(chain.payerKey)) }],
    spendControls: { allowedAssets: [asset] },
  });
}

const policy = () => ({ referenceValues: [simulatedSet()], allowSimulated: true });

describe('x402 payments (§6b) with the official x402 SDK', () => {
  test('a paid verifiable execution settles once and its receipt names the payer', async () => {
    const before = [await chain.balance(chain.payer), await chain.balance(chain.payTo)];
    const sent = [];
    const recording = async (url, init) => {
      const res = await fetch(url, init);
      sent.push({ status: res.status, headers: new Headers(init.headers), settlement: res.headers.get('payment-response') });
      return res;
    };
    const c = new Client(host.url, { policy: policy(), payer: payer(), fetch: recording });
    const session = await c.createVerifiableSession();
    const run = await c.executeWasm(session, wasm('hello.wasm'), { args: ['paid'], paid: true });
    // One 402, then one paid request (v2 PAYMENT-SIGNATURE) whose settlement decodes as @x402/fetch decodes it.
    const [challenged, paid] = sent.slice(-2);
    assert.equal(challenged.status, 402);
    assert.equal(paid.status, 200);
    assert.ok(paid.headers.has('payment-signature'));
    assert.deepEqual(run.settlement, decodePaymentResponseHeader(paid.settlement));
    assert.equal(run.stdoutText, 'Hello paid\n');
    assert.equal(run.settlement?.success, true);
    assert.match(run.settlement.transaction, TX);
    assert.equal(run.receipt.route, '/x402_execute/verifiable/wasm');
    assert.ok(run.receipt.payment.toLowerCase().includes(`payer=${chain.payer.toLowerCase()}`), run.receipt.payment);
    assert.ok(run.receipt.payment.includes(` ${PRICE} `), run.receipt.payment);
    assert.equal(await chain.balance(chain.payer), before[0] - PRICE);
    assert.equal(await chain.balance(chain.payTo), before[1] + PRICE);
  });

  test('a paid plain execution and a paid Python script, each charged once', async () => {
    const before = await chain.balance(chain.payer);
    const c = new Client(host.url, { payer: payer() });
    const run = await c.executeWasm(await c.createSession(), wasm('hello.wasm'), { args: ['plain'], paid: true });
    assert.equal(run.stdoutText, 'Hello plain\n');
    assert.equal(run.settlement?.success, true);
    const py = await c.executePython(await c.createSession(), 'def main(a):\n    return 41 + 1\n', { paid: true });
    assert.equal(py.result.returned, 42);
    assert.match(py.settlement.transaction, TX);
    assert.equal(await chain.balance(chain.payer), before - 2n * PRICE);
  });

  test('a settlement header naming another payer than the receipt is refused', async () => {
    const swap = async (url, init) => {
      const res = await fetch(url, init);
      const header = res.headers.get('payment-response');
      if (!header) return res;
      const doc = JSON.parse(atob(header));
      doc.payer = '0x' + '12'.repeat(20);
      const headers = new Headers(res.headers);
      headers.set('payment-response', btoa(JSON.stringify(doc)));
      return new Response(await res.arrayBuffer(), { status: res.status, headers });
    };
    const c = new Client(host.url, { policy: policy(), payer: payer(), fetch: swap });
    await assert.rejects(
      c.executeWasm(await c.createVerifiableSession(), wasm('hello.wasm'), { paid: true }),
      (e) => e instanceof sdk.VerifyError && e.kind === 'Receipt' && /payer/.test(e.message),
    );
  });

  test('without a payer the challenge is thrown and nothing moves', async () => {
    const before = await chain.balance(chain.payer);
    const c = new Client(host.url);
    const err = await c.executePython(await c.createSession(), 'print(1)', { paid: true }).then(
      () => assert.fail('paid without a payer'),
      (e) => e,
    );
    assert.ok(err instanceof PaymentRequiredError, String(err));
    assert.equal(err.status, 402);
    assert.equal(err.code, 'payment_required');
    assert.equal(err.challenge.x402Version, 2);
    assert.equal(err.challenge.accepts[0].amount, String(PRICE));
    assert.equal(new URL(err.challenge.resource.url).pathname, '/x402_policy/unsafe/python');
    assert.equal(err.body.accepts[0].maxAmountRequired, String(PRICE));
    assert.ok('payment-required' in err.headers);
    assert.equal(await chain.balance(chain.payer), before);
  });

  test("the x402 SDK's spend cap is respected", async () => {
    const before = await chain.balance(chain.payer);
    const c = new Client(host.url, { payer: payer(PRICE - 1n) });
    await assert.rejects(
      c.executeWasm(await c.createSession(), wasm('hello.wasm'), { paid: true }),
      (e) => e instanceof PaymentFailedError && /did not pay \/x402_execute\/test\/wasm/.test(e.message),
    );
    assert.equal(await chain.balance(chain.payer), before);
  });

  test('paid agents, clear and sealed', async () => {
    const name = `paid-stats-${crypto.randomUUID().slice(0, 6)}`;
    const owner = await ClientKey.generate();
    const before = await chain.balance(chain.payer);
    const c = new Client(host.url, { policy: policy(), payer: payer() });
    await c.deployAgent(owner, { name, component: wasm('text-stats.wasm'), public: true, price: String(AGENT_PRICE) });
    const clear = await c.invokeAgent(name, { event: { text: 'paid in the clear' } });
    assert.equal(clear.ok, true);
    assert.equal(clear.result.words, 4);
    assert.equal(clear.settlement?.success, true);
    const session = await c.createVerifiableSession();
    const sealed = await c.invokeAgentSealed(session, name, { event: { text: 'paid and sealed' } });
    assert.match(sealed.settlement.transaction, TX);
    assert.ok(sealed.receipt.payment.includes(` ${AGENT_PRICE} `), sealed.receipt.payment);
    assert.ok(sealed.receipt.payment.toLowerCase().includes(`payer=${chain.payer.toLowerCase()}`));
    assert.equal(await chain.balance(chain.payer), before - 2n * AGENT_PRICE);
  });
});

describe("x402 payment-identifier with the official extension (@x402/extensions)", () => {
  test('a retry of the same payment gets the first answer and is not charged; a new payment under the identifier is a conflict', async () => {
    const before = [await chain.balance(chain.payer), await chain.balance(chain.payTo)];
    const paymentId = generatePaymentId();
    const declared = [];
    const x402 = payer();
    // As the extension's docs show: the official client adds the identifier the host offers.
    x402.onBeforePaymentCreation(async ({ paymentRequired }) => {
      declared.push(paymentRequired.extensions?.[PAYMENT_IDENTIFIER]);
      appendPaymentIdentifierToExtensions(paymentRequired.extensions ?? {}, paymentId);
    });
    const sent = [];
    const recording = async (url, init) => {
      const res = await fetch(url, init);
      sent.push({ url: String(url), init, status: res.status, body: await res.clone().text(), settlement: res.headers.get('payment-response') });
      return res;
    };
    const c = new Client(host.url, { payer: x402, fetch: recording });
    const session = await c.createSession();
    const run = await c.executeWasm(session, wasm('hello.wasm'), { args: ['once'], paid: true });
    assert.equal(run.stdoutText, 'Hello once\n');
    assert.ok(isPaymentIdentifierExtension(declared[0]), JSON.stringify(declared));
    assert.equal(declared[0].info.required, false);
    const paid = sent.at(-1);
    const signature = Object.entries(paid.init.headers).find(([k]) => k.toLowerCase() === 'payment-signature')[1];
    assert.equal(extractPaymentIdentifier(JSON.parse(atob(signature))), paymentId);

    // The client's connection dropped, say: it sends the very same request again.
    for (let i = 0; i < 2; i++) {
      const again = await fetch(paid.url, paid.init);
      assert.equal(again.status, 200);
      assert.equal(await again.text(), paid.body);
      assert.equal(again.headers.get('payment-response'), paid.settlement);
    }
    assert.equal(await chain.balance(chain.payer), before[0] - PRICE);
    assert.equal(await chain.balance(chain.payTo), before[1] + PRICE);

    // Paying anew under the same identifier (a fresh authorization): refused, nothing moves.
    await assert.rejects(
      c.executeWasm(session, wasm('hello.wasm'), { args: ['twice'], paid: true }),
      (e) => e instanceof HypervisorError && e.status === 409 && e.code === 'payment_identifier_conflict',
    );
    assert.equal(await chain.balance(chain.payer), before[0] - PRICE);
  });
});

describe('x402 bazaar discovery with the official extension (@x402/extensions)', () => {
  test("the official facilitator client lists the host's paid resources; every declaration passes the official validator", async () => {
    const owner = await ClientKey.generate();
    const name = `listed-${crypto.randomUUID().slice(0, 6)}`;
    const c = new Client(host.url, { policy: policy() });
    await c.deployAgent(owner, { name, component: wasm('text-stats.wasm'), description: 'word counts, listed', public: true, price: String(AGENT_PRICE) });
    // The challenge declares it, and the declaration is valid.
    const res = await fetch(`${host.url}/agents/${name}/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"event":{"text":"a b"}}' });
    assert.equal(res.status, 402);
    const required = decodePaymentRequiredHeader(res.headers.get('payment-required'));
    const declared = validateDiscoveryExtension(required.extensions.bazaar);
    assert.ok(declared.valid, JSON.stringify(declared.errors));
    // The host serves the listing a facilitator would: the official client reads it.
    const facilitator = withBazaar(new HTTPFacilitatorClient({ url: host.url }));
    for (const type of ['http', 'mcp']) {
      const listed = await facilitator.extensions.bazaar.listResources({ type, limit: 1000 });
      assert.equal(listed.pagination.total, listed.items.length);
      assert.ok(listed.items.length > 0, type);
      for (const item of listed.items) {
        assert.equal(item.type, type);
        const v = validateDiscoveryExtension(item.extensions.bazaar);
        assert.ok(v.valid, `${item.resource}: ${JSON.stringify(v.errors)}`);
      }
      const mine = listed.items.filter((i) => i.metadata.agent === name);
      assert.equal(mine.length, 1, type);
      assert.equal(mine[0].accepts[0].amount, String(AGENT_PRICE));
      assert.equal(mine[0].accepts[0].payTo, chain.payTo);
    }
    const page = await facilitator.extensions.bazaar.listResources({ limit: 1, offset: 1 });
    assert.equal(page.items.length, 1);
    assert.deepEqual([page.pagination.limit, page.pagination.offset], [1, 1]);
    // And searches it as it searches a facilitator.
    const found = await facilitator.extensions.bazaar.search({ query: 'word counts listed', type: 'http', limit: 100 });
    assert.ok(found.resources.some((r) => r.metadata.agent === name), JSON.stringify(found.resources.map((r) => r.resource)));
    assert.equal(found.partialResults, false);
    const filtered = await facilitator.extensions.bazaar.search({ query: 'word counts listed', payTo: '0x0000000000000000000000000000000000000001' });
    assert.deepEqual(filtered.resources, []);
  });
});

describe('x402 signed offers and receipts with the official verifier (@x402/extensions)', () => {
  test('a 402 carries offers signed by the attested key; the settlement a receipt that names the payer and binds the run', async () => {
    const sent = [];
    const recording = async (url, init) => {
      const res = await fetch(url, init);
      sent.push({ status: res.status, headers: res.headers });
      return res;
    };
    const c = new Client(host.url, { policy: policy(), payer: payer(), fetch: recording });
    const attested = sdk.jwk((await c.verifyHost()).signingKey);
    const run = await c.executeWasm(await c.createSession(), wasm('hello.wasm'), { args: ['receipt'], paid: true });
    const challenge = sent.find((s) => s.status === 402);
    const required = decodePaymentRequiredHeader(challenge.headers.get('payment-required'));
    const offers = extractOffersFromPaymentRequired(required);
    assert.equal(offers.length, required.accepts.length);
    // Verified against the attested key itself, and through the kid (did:key) alone.
    const offer = await verifyOfferSignatureJWS(offers[0], attested);
    assert.deepEqual(await verifyOfferSignatureJWS(offers[0]), offer);
    const accepted = required.accepts[offers[0].acceptIndex];
    for (const field of ['scheme', 'network', 'asset', 'payTo', 'amount']) assert.equal(offer[field], accepted[field], field);
    assert.equal(offer.resourceUrl, required.resource.url);
    assert.ok(offer.validUntil > Date.now() / 1000);

    const settlement = decodeSettlement(sent.at(-1).headers.get('payment-response'));
    const receipt = settlement.extensions['offer-receipt'].info.receipt;
    const payload = await verifyReceiptSignatureJWS(receipt, attested);
    assert.ok(verifyReceiptMatchesOffer(receipt, offer, [chain.payer]));
    assert.equal(payload.transaction, run.settlement.transaction);
    assert.equal(payload.hypervisor.executionId, run.executionId);
    assert.equal(payload.hypervisor.resultCommitment, run.commitment);
    assert.equal(payload.hypervisor.codeHash, sdk.toHex(await sdk.sha256(wasm('hello.wasm'))));
    assert.equal(payload.hypervisor.amount, String(PRICE));
    assert.equal(payload.hypervisor.tee, 'simulated');
    // A tampered receipt does not verify.
    const [h, p, sig] = receipt.signature.split('.');
    const forged = { ...receipt, signature: `${h}.${p.slice(0, -2)}${p.slice(-2) === 'fQ' ? 'fX' : 'fQ'}.${sig}` };
    await assert.rejects(verifyReceiptSignatureJWS(forged, attested));
  });
});

describe('x402 sign-in-with-x with the official extension (@x402/extensions)', () => {
  test("a payer signs in instead of paying again, with the official fetch wrappers; an unlisted wallet is asked to pay", async () => {
    const name = `siwx-stats-${crypto.randomUUID().slice(0, 6)}`;
    const account = privateKeyToAccount(chain.payerKey);
    const signedIn = [];
    let lastHeader;
    const recording = async (input, init) => {
      const request = new Request(input, init);
      const header = request.headers.get('sign-in-with-x');
      if (header) {
        signedIn.push(parseSIWxHeader(header));
        lastHeader = header;
      }
      return fetch(request);
    };
    await new Client(host.url).deployAgent(await ClientKey.generate(), {
      name, component: wasm('text-stats.wasm'), public: true, price: String(AGENT_PRICE),
      grants: { sign_in: { after_payment_seconds: 3600 } },
    });
    const url = `${host.url}/agents/${name}/invoke`;
    const call = (f, text) => f(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: { text } }) });
    const before = await chain.balance(chain.payer);

    // Not paid yet: the official SIWx wrapper signs the host's challenge and is told to pay.
    const unpaid = await call(wrapFetchWithSIWx(recording, account), 'not yet');
    assert.equal(unpaid.status, 402);
    assert.equal((await unpaid.json()).code, 'siwx_access_denied');
    assert.equal(signedIn.length, 1);
    assert.equal(signedIn[0].address.toLowerCase(), chain.payer.toLowerCase());
    assert.equal(signedIn[0].uri, url);

    // The official payment wrapper with the SIWx hook: sign-in first (refused), then it pays.
    const http402 = new x402HTTPClient(payer()).onPaymentRequired(createSIWxClientHook(account));
    const paying = wrapFetchWithPayment(recording, http402);
    const paid = await call(paying, 'paid once');
    assert.equal(paid.status, 200);
    assert.equal((await paid.json()).result.words, 2);
    assert.equal(decodePaymentResponseHeader(paid.headers.get('payment-response')).success, true);
    assert.equal(await chain.balance(chain.payer), before - AGENT_PRICE);

    // Paid within the window: the same wrapper signs in and is served without paying.
    const again = await call(paying, 'served without paying');
    assert.equal(again.status, 200);
    assert.equal((await again.json()).result.words, 3);
    assert.equal(again.headers.get('payment-response'), null);
    const viaSiwx = await call(wrapFetchWithSIWx(recording, account), 'and again');
    assert.equal(viaSiwx.status, 200);
    assert.equal(await chain.balance(chain.payer), before - AGENT_PRICE);
    assert.equal(signedIn.length, 4);
    // Each sign-in signed a nonce of its own; the same header again is a replay.
    assert.equal(new Set(signedIn.map((p) => p.nonce)).size, 4);
    const replay = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'sign-in-with-x': lastHeader }, body: '{"event":{"text":"x"}}' });
    assert.equal(replay.status, 402);
    assert.equal((await replay.json()).code, 'invalid_siwx_nonce_reused');
  });
});

describe('a challenge for another resource (§6b)', () => {
  /** A 402 for another agent than the one called, as a host or proxy might substitute. */
  const misdirect = async () => {
    const doc = { x402Version: 2, error: 'payment_required', resource: { url: 'http://127.0.0.1/agents/expensive/invoke' }, accepts: [] };
    return new Response(JSON.stringify({ x402Version: 2, error: 'payment_required', code: 'payment_required', message: 'pay' }), {
      status: 402,
      headers: { 'payment-required': btoa(JSON.stringify(doc)), 'content-type': 'application/json' },
    });
  };
  const asked = [];
  const trap = new Proxy({}, {
    get(_t, prop) {
      asked.push(prop);
      throw new Error('the x402 client was asked to pay');
    },
  });

  test('is refused before the payer is asked', async () => {
    const c = new Client('http://127.0.0.1:9', { fetch: misdirect, payer: trap });
    await assert.rejects(c.invokeAgent('cheap', { event: {} }), (e) => e instanceof PaymentFailedError && /\/agents\/expensive\/invoke/.test(e.message));
    assert.deepEqual(asked, []);
  });

  test('and a v1 challenge for another route too', async () => {
    const v1 = async () =>
      new Response(JSON.stringify({ x402Version: 1, error: 'payment_required', accepts: [{ resource: 'http://h/x402_execute/verifiable/wasm' }] }), { status: 402 });
    const c = new Client('http://127.0.0.1:9', { fetch: v1, payer: trap });
    const session = await sdk.Session.establish(await ClientKey.generate(), crypto.randomUUID(), (await ClientKey.generate()).publicKey, 60);
    await assert.rejects(c.executeWasm(session, wasm('hello.wasm'), { paid: true }), PaymentFailedError);
    assert.deepEqual(asked, []);
  });
});
