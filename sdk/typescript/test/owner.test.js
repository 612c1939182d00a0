// An owner's operations through the SDK against a real host (as
// sdk/python/tests/test_owner_ops.py): JavaScript agents (clear and sealed source),
// configuration and secrets, state export/import/wipe, grants, wallets, execution records.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import * as sdk from '../dist/index.js';
import { simulatedSet, startHost, wasmDir } from './host.js';

const { Client, ClientKey, HypervisorError, VerifyError, fromBase64, fromHex, valueHash } = sdk;

const COUNTER_JS = `
import { label } from "./lib/label.ts";
export async function handler(event, context) {
  const bucket = agentState.bucket("default");
  const n = await bucket.increment("visits", 1);
  return { visits: n, label: label(agentConfig.get("REGION", "none")), agent: context.agentName };
}
`;
const LABEL_TS = 'export const label = (region: string): string => `region:${region}`;\n';
const js = () => ({ main: 'main.js', modules: { 'main.js': COUNTER_JS, 'lib/label.ts': LABEL_TS } });
const uid = () => crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const isHost = (...codes) => (e) => e instanceof HypervisorError && codes.includes(e.code);

let host;
let client;

before(async () => {
  host = await startHost();
  // Owner operations seal secrets to a verifiable session: the client pins the host's set.
  client = new Client(host.url, { policy: { referenceValues: [simulatedSet()], allowSimulated: true } });
}, { timeout: 660_000 });

after(async () => {
  await host?.stop();
});

describe('owner operations (§18, §23, §24)', () => {
  test('JavaScript agents, configuration and state', async () => {
    const owner = await ClientKey.generate();
    const name = `js-${uid()}`;
    const agent = await client.deployAgent(owner, { name, js: js(), public: true });
    assert.equal(agent.latest.kind, 'handler');
    // A handler's code hash is its initialised snapshot's, not the source's (§24).
    assert.match(agent.latest.code_hash, /^[0-9a-f]{64}$/);
    const first = await client.invokeAgent(name, { event: {} });
    assert.deepEqual(first.result, { visits: 1, label: 'region:none', agent: name }, JSON.stringify(first));

    // Configuration: sealed to the owner's session, signed; the host returns value hashes only.
    const entries = await client.setConfig(owner, name, { set: { REGION: 'eu-west', API_KEY: 'sk-1' } });
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
    assert.equal(byName.REGION.sha256, await valueHash(name, 'REGION', 'eu-west'));
    assert.equal(byName.API_KEY.sha256, await valueHash(name, 'API_KEY', 'sk-1'));
    assert.ok(!JSON.stringify(entries).includes('eu-west'));
    assert.equal((await client.invokeAgent(name, { event: {} })).result.label, 'region:eu-west');
    assert.deepEqual((await client.setConfig(owner, name, { remove: ['API_KEY'] })).map((e) => e.name), ['REGION']);
    assert.deepEqual((await client.config(owner, name)).map((e) => e.name), ['REGION']);

    // State: exported sealed, opened here; imported into another agent; wiped.
    const state = await client.exportState(owner, name);
    assert.equal(state.agent, name);
    const visits = fromBase64(state.buckets.default.visits);
    assert.equal(new DataView(visits.buffer, visits.byteOffset, visits.byteLength).getBigUint64(0, true), 2n);
    const other = `js-${uid()}`;
    await client.deployAgent(owner, { name: other, js: js(), public: true });
    assert.equal((await client.importState(owner, other, state, { replace: true })).keys, 1);
    assert.equal((await client.invokeAgent(other, { event: {} })).result.visits, 3);
    assert.equal(await client.wipeState(owner, other), 1);
    assert.equal((await client.invokeAgent(other, { event: {} })).result.visits, 1);

    // A stranger can do none of it.
    const stranger = await ClientKey.generate();
    for (const call of [
      () => client.setConfig(stranger, name, { set: { REGION: 'x' } }),
      () => client.exportState(stranger, name),
      () => client.wipeState(stranger, name),
      () => client.config(stranger, name),
    ]) {
      await assert.rejects(call(), isHost('not_owner', 'owner_signature_invalid'));
    }
    // A session of another key is refused before anything is sent.
    await assert.rejects(client.exportState(owner, name, { session: await client.createSession() }), TypeError);
    await client.deleteAgent(owner, name);
    await client.deleteAgent(owner, other);
  });

  test('sealed JavaScript source and execution records', async () => {
    const owner = await ClientKey.generate();
    const name = `sealed-js-${uid()}`;
    const agent = await client.deployAgent(owner, { name, js: js() }, { session: await client.createSession({ key: owner }) });
    assert.equal(agent.public, false);
    const caller = await ClientKey.generate();
    // The commitment binds the code hash the host lists (the snapshot's, §24).
    const run = await client.invokeAgentSealed(await client.createSession({ key: caller }), name, { event: {} });
    assert.equal(JSON.parse(run.stdoutText).visits, 1);
    assert.ok(run.executionId);
    const record = await client.execution(caller, run.executionId);
    assert.equal(record.agent, name);
    assert.equal(record.commitment, run.commitment);
    assert.ok((await client.executions(owner)).some((r) => r.id === run.executionId));
    assert.ok((await client.executions(owner, { limit: 1 })).length <= 1);
    await assert.rejects(client.execution(await ClientKey.generate(), run.executionId), isHost('execution_not_found'));
    await client.deleteAgent(owner, name);
  });

  test('JavaScript on StarlingMonkey, clear and sealed: the engine is sent and signed', async () => {
    const owner = await ClientKey.generate();
    const source = { main: 'main.js', modules: { 'main.js': 'export const handler = (e) => ({ twice: e.n * 2 });' }, engine: 'starlingmonkey' };
    const clear = `sm-${uid()}`;
    await client.deployAgent(owner, { name: clear, js: source, public: true });
    assert.deepEqual((await client.invokeAgent(clear, { event: { n: 21 } })).result, { twice: 42 });
    const sealed = `sm-sealed-${uid()}`;
    await client.deployAgent(owner, { name: sealed, js: source, public: true }, { session: await client.createSession({ key: owner }) });
    assert.deepEqual((await client.invokeAgent(sealed, { event: { n: 2 } })).result, { twice: 4 });
    // Signed for one engine, sent for the other: refused.
    await assert.rejects(
      client.deployAgent(owner, { name: `sm-${uid()}`, js: { ...source, engine: 'nope' } }),
      RangeError,
    );
  });

  test('grants and wallet', async () => {
    const owner = await ClientKey.generate();
    const name = `buyer-${uid()}`;
    const component = new Uint8Array(fs.readFileSync(path.join(wasmDir, 'text-stats.wasm')));
    await client.deployAgent(owner, { name, component, public: true });
    const grants = { agents: [{ name: 'word-seller', owner_key: owner.publicKeyHex }], search: true };
    const set = await client.setGrants(owner, name, grants);
    assert.equal(set.grants.search, true);
    assert.equal((await client.grants(owner, name)).grants.agents[0].name, 'word-seller');
    const key = generatePrivateKey();
    const address = privateKeyToAccount(key).address;
    const policy = {
      networks: ['eip155:84532'],
      assets: ['0x036CbD53842c5426634e7929541eC2318f3dCF7e'],
      max_per_call: '10000',
      max_per_day: '50000',
      max_total: '1000000',
    };
    const wallet = await client.setWallet(owner, name, fromHex(key.slice(2)), policy);
    assert.equal(String(wallet.address).toLowerCase(), address.toLowerCase());
    const read = await client.wallet(owner, name);
    assert.ok(read.spent_total === '0' || read.spent_total === 0, JSON.stringify(read));
    assert.ok(!JSON.stringify(read).includes(key.slice(2)));
    assert.deepEqual(await client.calls(owner, name), []);
    // An address that is not the key's is refused by the host.
    const wrong = privateKeyToAccount(generatePrivateKey()).address;
    await assert.rejects(client.setWallet(owner, name, fromHex(key.slice(2)), policy, { address: wrong }), isHost('invalid_request'));
    await client.deleteAgent(owner, name);
  });
});

describe('what owner operations send, and to whom (§13, §17)', () => {
  /** A fetch that records what is sent. */
  const recording = (sent) => async (url, init = {}) => {
    sent.push({ method: init.method ?? 'GET', path: new URL(String(url)).pathname, body: String(init.body ?? '') });
    return fetch(url, init);
  };

  test('secrets are sealed only to an attested session: without one pinned, nothing is sent', async () => {
    const owner = await ClientKey.generate();
    const name = `sealed-${uid()}`;
    await client.deployAgent(owner, { name, js: js(), public: true });
    const key = fromHex(generatePrivateKey().slice(2));
    const walletPolicy = { networks: ['eip155:84532'], assets: ['0x036CbD53842c5426634e7929541eC2318f3dCF7e'], max_per_call: '1', max_per_day: '1', max_total: '1' };
    const operations = {
      setConfig: (c) => c.setConfig(owner, name, { set: { API_KEY: 'sk-secret' } }),
      setWallet: (c) => c.setWallet(owner, name, key, walletPolicy, { address: privateKeyToAccount(`0x${Buffer.from(key).toString('hex')}`).address }),
      exportState: (c) => c.exportState(owner, name),
      importState: (c) => c.importState(owner, name, { agent: name, exported_at_ms: 0, buckets: {} }),
    };
    for (const [op, run] of Object.entries(operations)) {
      for (const policy of [undefined, { allowSimulated: true }]) {
        const sent = [];
        const c = new Client(host.url, { fetch: recording(sent), ...(policy ? { policy } : {}) });
        await assert.rejects(run(c), (e) => e instanceof VerifyError && ['Simulated', 'NoExpectedMeasurement'].includes(e.kind), op);
        assert.deepEqual(sent.map((r) => `${r.method} ${r.path}`), ['POST /verifiable/encrypt/create_keypair'], op);
        assert.ok(!sent.some((r) => r.body.includes('sk-secret')), op);
      }
    }
    // With the set pinned, the default session is a verifiable one of the owner's key.
    const sent = [];
    const pinned = new Client(host.url, { fetch: recording(sent), policy: { referenceValues: [simulatedSet()], allowSimulated: true } });
    await pinned.setConfig(owner, name, { set: { API_KEY: 'sk-secret' } });
    assert.ok(sent.some((r) => r.path === '/verifiable/encrypt/create_keypair' && r.body.includes(owner.publicKeyHex)));
    assert.ok(!sent.some((r) => r.path === '/encrypt/create_keypair'));
    await client.deleteAgent(owner, name);
  });

  test('owner statements name the pinned deployment only (expectedAudience)', async () => {
    const owner = await ClientKey.generate();
    const component = new Uint8Array(fs.readFileSync(path.join(wasmDir, 'text-stats.wasm')));
    const elsewhere = new Client(host.url, { expectedAudience: '00'.repeat(16) });
    await assert.rejects(
      elsewhere.deployAgent(owner, { name: `pinned-elsewhere-${uid()}`, component }),
      (e) => e instanceof VerifyError && e.kind === 'Channel' && /not the pinned/.test(e.message),
    );
    const audience = (await new Client(host.url).host()).audience;
    const pinned = new Client(host.url, { expectedAudience: audience });
    const name = `pinned-${uid()}`;
    await pinned.deployAgent(owner, { name, component });
    await pinned.deleteAgent(owner, name);
  });
});
