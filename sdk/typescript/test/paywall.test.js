// The host's x402 paywall (host/src/http/paywall.rs) in a real browser: headless Chromium
// navigates to a paid HTTP agent and gets the HTML payment page (price, network, resource), not
// the JSON 402; with a wallet in the page (an EIP-1193 provider whose signatures a local key
// makes, as a browser wallet would), the page's own button pays on the local chain and shows the
// agent's answer. Money moves once, by the price.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { privateKeyToAccount } from 'viem/accounts';
import { launchChromium } from './browser/launch.js';
import { startChain } from './chain.js';
import { ClientKey, Client } from '../dist/index.js';
import { paymentsConfig, startHost, wasmDir } from './host.js';

const PRICE = 7000n;
const AGENT = 'paid-page';

let chain;
let host;
let browser;
let resource;

before(async () => {
  chain = await startChain();
  host = await startHost(paymentsConfig(chain));
  const component = fs.readFileSync(path.join(wasmDir, 'http-hello.wasm'));
  await new Client(host.url).deployAgent(await ClientKey.generate(), {
    name: AGENT, component, price: String(PRICE), description: 'a <b>paid</b> page',
  });
  resource = `${host.url}/agents/${AGENT}/`;
  browser = await launchChromium();
}, { timeout: 660_000 });

after(async () => {
  await browser?.close();
  await host?.stop();
  await chain?.stop();
});

/** A fresh page; page errors are collected. */
async function newPage() {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  return page;
}

describe('the x402 paywall in Chromium', () => {
  test('a navigation to a paid agent gets the payment page: price, network, resource; the challenge header stays', async () => {
    const page = await newPage();
    const response = await page.goto(resource);
    assert.equal(response.status(), 402);
    const headers = response.headers();
    assert.match(headers['content-type'], /^text\/html/);
    assert.ok(headers['payment-required'], 'the PAYMENT-REQUIRED header is kept');
    assert.equal(headers['content-security-policy'], "frame-ancestors 'none'");
    assert.equal(await page.title(), 'Payment required');
    const shown = await page.evaluate(() => ({
      resource: document.getElementById('resource').textContent,
      row: document.querySelector('#accepts tr').innerText,
      status: document.getElementById('status').textContent,
      button: document.getElementById('pay').disabled,
      data: JSON.parse(document.getElementById('x402-payment-required').textContent),
    }));
    assert.equal(shown.resource, resource);
    assert.match(shown.row, /0\.007 USDC/);
    assert.match(shown.row, /Base Sepolia/);
    assert.match(shown.row, /eip155:84532/);
    assert.ok(shown.row.includes(chain.payTo), shown.row);
    assert.equal(shown.data.accepts[0].amount, String(PRICE));
    // No wallet in this browser: the page says so and offers no button.
    assert.match(shown.status, /No browser wallet/);
    assert.equal(shown.button, true);
    assert.deepEqual(page.errors, []);
    // A program's request (fetch's default Accept) still gets the JSON 402.
    const programmatic = await page.evaluate(async (url) => {
      const r = await fetch(url);
      return { status: r.status, type: r.headers.get('content-type'), body: await r.json() };
    }, resource);
    assert.equal(programmatic.status, 402);
    assert.match(programmatic.type, /^application\/json/);
    assert.equal(programmatic.body.code, 'payment_required');
    await page.close();
  });

  test("the page's button pays with the browser's wallet on the local chain and shows the agent's answer", async () => {
    const account = privateKeyToAccount(chain.payerKey);
    const page = await newPage();
    const signed = [];
    // The wallet's signing, done in Node with the payer's key (what a wallet extension does).
    await page.exposeFunction('walletSignTypedData', async (from, json) => {
      assert.equal(from.toLowerCase(), account.address.toLowerCase());
      const { domain, types, primaryType, message } = JSON.parse(json);
      delete types.EIP712Domain;
      signed.push({ domain, primaryType, message });
      // Wallets take uint256 fields as decimal strings; viem takes bigints.
      const values = Object.fromEntries(Object.entries(message).map(([k, v]) =>
        [k, types[primaryType].find((f) => f.name === k)?.type === 'uint256' ? BigInt(v) : v]));
      return account.signTypedData({ domain, types, primaryType, message: values });
    });
    await page.addInitScript(([address, chainId]) => {
      window.ethereum = {
        async request({ method, params }) {
          switch (method) {
            case 'eth_requestAccounts': return [address];
            case 'eth_chainId': return chainId;
            case 'eth_signTypedData_v4': return window.walletSignTypedData(params[0], params[1]);
            default: throw new Error(`unsupported wallet method ${method}`);
          }
        },
      };
    }, [account.address, '0x' + (84532).toString(16)]);
    const before = [await chain.balance(chain.payer), await chain.balance(chain.payTo)];
    const response = await page.goto(resource);
    assert.equal(response.status(), 402);
    await page.waitForFunction(() => !document.getElementById('pay').disabled);
    await page.click('#pay');
    await page.waitForFunction(() => document.getElementById('answer')?.textContent.includes('Hello'), null, { timeout: 120_000 })
      .catch(async (e) => {
        throw new Error(`${e.message}; page says: ${await page.evaluate(() => document.body.innerText)}`);
      });
    assert.equal(await page.textContent('#answer'), 'Hello from a WASM Hypervisor agent\n');
    assert.equal(signed.length, 1);
    assert.equal(signed[0].primaryType, 'TransferWithAuthorization');
    assert.equal(signed[0].message.value, String(PRICE));
    assert.equal(signed[0].domain.verifyingContract.toLowerCase(), chain.token.toLowerCase());
    assert.equal(await chain.balance(chain.payer), before[0] - PRICE);
    assert.equal(await chain.balance(chain.payTo), before[1] + PRICE);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
