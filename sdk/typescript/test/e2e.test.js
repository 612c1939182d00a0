// End to end: the real host (simulated attestation) over loopback, driven through the SDK.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as sdk from '../dist/index.js';
import { packageDir } from './helpers.js';
import { hostBin, simulatedSet, startHost, wasmDir } from './host.js';

const { Client, ClientKey, VerifyError, HypervisorError, GuestStoppedError, toHex, fromHex } = sdk;
const sha384 = (s) => crypto.createHash('sha384').update(s).digest('hex');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const wasm = (name) => new Uint8Array(fs.readFileSync(path.join(wasmDir, name)));

let host;
/** Every answer the tests saw, to check the simulated label on each. */
const answers = [];

/** A fetch that records answers and lets a test alter a response body. */
function recordingFetch(alter) {
  return async (url, init) => {
    const res = await fetch(url, init);
    answers.push({ url: String(url), status: res.status, label: res.headers.get('x-attestation') });
    if (!alter) return res;
    const text = await res.text();
    const changed = alter(String(url), text, init);
    return new Response(changed, { status: res.status, headers: res.headers });
  };
}

const policy = () => ({ referenceValues: [simulatedSet()], allowSimulated: true });
const client = (opts = {}) => new Client(host.url, { fetch: recordingFetch(opts.alter), policy: policy(), ...opts });

before(async () => {
  host = await startHost();
}, { timeout: 660_000 });

after(async () => {
  await host?.stop();
});

const isVerify = (kind) => (e) => e instanceof VerifyError && e.kind === kind;
const isHost = (code) => (e) => e instanceof HypervisorError && e.code === code;

describe('verification of the simulated host', () => {
  test('the default policy refuses simulated evidence', async () => {
    await assert.rejects(new Client(host.url, { fetch: recordingFetch() }).createVerifiableSession(), isVerify('Simulated'));
  });

  test('pins: none, host measurement only, another host measurement, a bad set', async () => {
    const c = (p) => new Client(host.url, { fetch: recordingFetch(), policy: p });
    await assert.rejects(c({ allowSimulated: true }).createVerifiableSession(), isVerify('NoExpectedMeasurement'));
    const claim = sha256(fs.readFileSync(hostBin));
    await assert.rejects(c({ allowSimulated: true, expectedHostMeasurements: [claim] }).createVerifiableSession(), isVerify('HostPinOnly'));
    await assert.rejects(
      c({ allowSimulated: true, referenceValues: [simulatedSet('11'.repeat(32))] }).createVerifiableSession(),
      (e) => isVerify('Reference')(e) && /host_measurement \(claimed by the host\) differs/.test(e.message),
    );
    const bad = simulatedSet();
    bad.tdx.rtmr1 = 'abcd';
    await assert.rejects(c({ allowSimulated: true, referenceValues: [bad] }).createVerifiableSession(), isVerify('BadReference'));
    const otherMrtd = simulatedSet();
    otherMrtd.tdx.mrtd = sha384('another firmware');
    await assert.rejects(c({ allowSimulated: true, referenceValues: [otherMrtd] }).createVerifiableSession(), (e) => isVerify('Reference')(e) && /MRTD differs/.test(e.message));
  });

  test('the right set verifies: the match is named, labels come from the evidence', async () => {
    const key = await client().verifyHost();
    assert.equal(key.reference, 'the host under test, simulated');
    assert.equal(key.tee, 'simulated');
    assert.equal(key.simulated, true);
    assert.equal(toHex(key.hostMeasurement), sha256(fs.readFileSync(hostBin)));
  });

  test('the binding, the labels and the event log of the real evidence are checked', async () => {
    const { attestation } = await client().attestation();
    const p = policy();
    await sdk.verifyAttestation(attestation, p);
    await assert.rejects(sdk.verifyAttestation({ ...attestation, key_created_at: attestation.key_created_at + 1 }, p), isVerify('Binding'));
    const other = await ClientKey.generate();
    await assert.rejects(sdk.verifyAttestation({ ...attestation, signing_key: other.publicKeyHex }, p), isVerify('Binding'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, host_measurement: '22'.repeat(32) }, p), isVerify('Binding'));
    // REPORTDATA is compared both in the evidence and in the report_data field.
    const doc = JSON.parse(Buffer.from(attestation.evidence, 'hex').toString('utf8'));
    const otherRd = { ...doc, report_data: '44'.repeat(64) };
    await assert.rejects(sdk.verifyAttestation({ ...attestation, evidence: Buffer.from(JSON.stringify(otherRd)).toString('hex') }, p), isVerify('Binding'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, report_data: '44'.repeat(64) }, p), isVerify('Binding'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, tee: 'tdx' }, p), isVerify('LabelMismatch'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, evidence_format: 'tdx-dcap-quote' }, p), isVerify('Simulated'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, evidence_format: 'something-else', tee: 'x', simulated: false }, p), isVerify('Malformed'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, simulated: false }, p), isVerify('LabelMismatch'));
    await assert.rejects(sdk.verifyAttestation({ ...attestation, evidence_format: 'tdx-dcap-quote', tee: 'tdx', simulated: false }, p), (e) => e instanceof VerifyError);
    const log = JSON.parse(attestation.event_log);
    log[0].event_payload = '33'.repeat(32);
    log[0].digest = '';
    await assert.rejects(sdk.verifyAttestation({ ...attestation, event_log: JSON.stringify(log) }, p), isVerify('EventLog'));
    // Without the log no identity is read: the set (host_event) cannot match.
    const { event_log: _, ...withoutLog } = attestation;
    await assert.rejects(sdk.verifyAttestation(withoutLog, p), (e) => isVerify('Reference')(e) && /hypervisor-host-sha256/.test(e.message));
  });
});

describe('execution', () => {
  test('plain session: hello.wasm with arguments and stdin', async () => {
    const c = client();
    const s = await c.createSession();
    assert.equal(s.isVerifiable, false);
    const run = await c.executeWasm(s, wasm('hello.wasm'), { args: ['big', 'world'], stdin: 'line one\n' });
    assert.equal(run.result.status, 'exited');
    assert.equal(run.result.exit_code, 0);
    assert.equal(run.stdoutText, 'Hello big world\nstdin: line one\n');
    assert.equal(run.receipt, undefined);
  });

  test('verifiable session: result and receipt verified', async () => {
    const c = client();
    const s = await c.createVerifiableSession();
    assert.equal(s.verified.reference, 'the host under test, simulated');
    const run = await c.executeWasm(s, wasm('hello.wasm'), { args: ['there'] });
    assert.equal(run.stdoutText, 'Hello there\n');
    assert.equal(run.receipt.route, '/verifiable/execute/wasm');
    assert.equal(run.receipt.sequence, 1);
    assert.equal(run.receipt.tee, 'simulated');
    assert.equal(run.receipt.result_commitment, run.commitment);
    assert.equal(run.receipt.program_sha256, sha256(wasm('hello.wasm')));
    assert.equal(run.receipt.stdin_sha256, sha256(Buffer.alloc(0)));
    const again = await c.executeWasm(s, wasm('hello.wasm'));
    assert.equal(again.receipt.sequence, 2);
  });

  test('a stopped guest: time_limit_exceeded with its decrypted, checked partial result', async () => {
    const c = client();
    for (const s of [await c.createSession(), await c.createVerifiableSession()]) {
      const err = await c.executeWasm(s, wasm('endless-loop.wasm'), { limits: { time_ms: 300 } }).then(
        () => assert.fail('an endless loop returned'),
        (e) => e,
      );
      assert.ok(err instanceof GuestStoppedError, String(err));
      assert.ok(err instanceof HypervisorError);
      assert.equal(err.status, 422);
      assert.equal(err.code, 'time_limit_exceeded');
      assert.equal(err.execution.result.status, 'time_limit_exceeded');
      assert.equal(err.execution.stopped.code, 'time_limit_exceeded');
      assert.equal(err.execution.stdoutText, 'spinning\n');
      assert.equal(err.execution.result.limits.time_ms, 300);
      if (s.isVerifiable) assert.equal(err.execution.receipt.status, 'time_limit_exceeded');
    }
  });

  test('Python: plain and verifiable, with main(ARGS) returned', async () => {
    const c = client();
    const script = 'import sys, json\nprint("args", ARGS)\ndef main(args):\n    data = sys.stdin.read()\n    return {"n": len(args), "stdin": data, "sum": sum(int(a) for a in args)}\n';
    const plain = await c.executePython(await c.createSession(), script, { args: ['1', '2', '39'], stdin: 'abc' });
    assert.deepEqual(plain.result.returned, { n: 3, stdin: 'abc', sum: 42 });
    assert.equal(plain.stdoutText, "args ['1', '2', '39']\n");
    const v = await c.executePython(await c.createVerifiableSession(), script, { args: ['5'] });
    assert.deepEqual(v.result.returned, { n: 1, stdin: '', sum: 5 });
    assert.equal(v.receipt.route, '/test/policy/unsafe/python/attest');
    assert.equal(v.receipt.program_sha256, sha256(script));
  });

  test('a tampered result, commitment or receipt is refused', async () => {
    const flipHex = (h, i) => h.slice(0, i) + (h[i] === '0' ? '1' : '0') + h.slice(i + 1);
    const tamper = (fn) => (url, text) => (url.endsWith('/execute/wasm') ? JSON.stringify(fn(JSON.parse(text))) : text);
    const cases = [
      ['Decryption', (b) => ({ ...b, encrypted_result: flipHex(b.encrypted_result, 40) })],
      ['Commitment', (b) => ({ ...b, result_commitment: flipHex(b.result_commitment, 0) })],
      ['Mismatch', (b) => ({ ...b, session_id: '01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f' })],
      ['Signature', (b) => ({ ...b, result_quote: { ...b.result_quote, issued_at: b.result_quote.issued_at + 1 } })],
      ['Receipt', (b) => ({ ...b, result_quote: undefined })],
    ];
    for (const [kind, fn] of cases) {
      const c = client({ alter: tamper(fn) });
      const s = await c.createVerifiableSession();
      await assert.rejects(c.executeWasm(s, wasm('hello.wasm')), isVerify(kind), kind);
    }
    // The untampered path through the same wrapper passes.
    const c = client({ alter: tamper((b) => b) });
    await c.executeWasm(await c.createVerifiableSession(), wasm('hello.wasm'));
  });

  test('typed errors carry the host code', async () => {
    const c = client();
    const s = await c.createSession();
    await assert.rejects(c.executeWasm(s, wasm('hello.wasm'), { limits: { time_ms: 0 } }), (e) => isHost('invalid_request')(e) && e.status === 400);
    const ghost = await sdk.Session.establish(s.clientKey, '01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f', s.serverPublicKey, 60);
    await assert.rejects(c.executeWasm(ghost, wasm('hello.wasm')), (e) => isHost('session_not_found')(e) && e.status === 404);
    await assert.rejects(c.executeWasm(s, new Uint8Array([1, 2, 3, 4])), isHost('invalid_component'));
    await assert.rejects(c.executeWasm(s, wasm('hello.wasm'), { limits: { time_ms: 10 ** 12 } }), isHost('limit_exceeds_maximum'));
    // A plain session on a verifiable route.
    const v = await c.createVerifiableSession();
    const plainOnVerifiable = await sdk.Session.establish(s.clientKey, s.id, s.serverPublicKey, 60, v.verified);
    await assert.rejects(c.executeWasm(plainOnVerifiable, wasm('hello.wasm')), isHost('session_not_verifiable'));
    await assert.rejects(c.getAgent('no-such-agent'), isHost('agent_not_found'));
  });

  test('multipart upload (§6c) above the threshold', async () => {
    const sent = [];
    const c = new Client(host.url, {
      policy: policy(),
      binaryUploadsAbove: 1024,
      fetch: async (url, init) => {
        sent.push(init?.body instanceof FormData);
        return recordingFetch()(url, init);
      },
    });
    const s = await c.createVerifiableSession();
    const run = await c.executeWasm(s, wasm('hello.wasm'), { args: ['multipart'], stdin: 'x' });
    assert.equal(run.stdoutText, 'Hello multipart\nstdin: x');
    assert.equal(sent.at(-1), true);
    const py = await c.executePython(s, 'def main(a):\n    return "ok"\n' + '#'.repeat(2000));
    assert.equal(py.result.returned, 'ok');
    assert.equal(sent.at(-1), true);
  });
});

describe('agents', () => {
  const component = () => wasm('text-stats.wasm');
  const text = 'The quick brown fox. It jumps!';

  test('deploy clear and sealed, invoke, list, search, logs, delete; owners are checked', async () => {
    const c = client();
    const owner = await ClientKey.generate();
    const suffix = crypto.randomBytes(4).toString('hex');
    const clearName = `stats-clear-${suffix}`;
    const sealedName = `stats-sealed-${suffix}`;
    const codeHash = sha256(component());

    // Clear deployment (public by default) and a clear invocation.
    const clear = await c.deployAgent(owner, { name: clearName, component: component(), description: 'word counts for texts', tags: ['text'], limits: { time_ms: 10000 } });
    assert.equal(clear.name, clearName);
    assert.equal(clear.owner_key, owner.publicKeyHex);
    assert.equal(clear.latest.code_hash, codeHash);
    assert.equal(clear.latest.kind, 'handler');
    const inv = await c.invokeAgent(clearName, { event: { text } });
    assert.equal(inv.ok, true);
    assert.equal(inv.result.words, 6);
    assert.equal(inv.result.sentences, 2);

    // Sealed deployment through the owner's session; sealed invocations, plain and verifiable.
    const ownerSession = await c.createSession({ key: owner });
    const sealed = await c.deployAgent(owner, { name: sealedName, component: component(), description: 'private word counts', public: false, ttl_seconds: 3600 }, { session: ownerSession });
    assert.equal(sealed.public, false);
    // A sealed deployment needs a session of the owner's key.
    const notOwners = await c.createSession();
    await assert.rejects(c.deployAgent(owner, { name: `${sealedName}-x`, component: component() }, { session: notOwners }), isHost('session_key_mismatch'));
    assert.equal(sealed.latest.code_hash, codeHash);
    await assert.rejects(c.invokeAgent(sealedName, { event: { text } }), isHost('agent_not_public'));
    const caller = await c.createSession();
    const run = await c.invokeAgentSealed(caller, sealedName, { event: { text }, codeHash });
    assert.equal(run.result.exit_code, 0);
    assert.equal(JSON.parse(run.stdoutText).words, 6);
    const vs = await c.createVerifiableSession();
    const vrun = await c.invokeAgentSealed(vs, sealedName, { event: { text: 'One. Two. Three.' }, codeHash });
    assert.equal(JSON.parse(vrun.stdoutText).sentences, 3);
    assert.equal(vrun.receipt.route, `/agents/${sealedName}/invoke`);
    assert.equal(vrun.receipt.program_sha256, codeHash);
    assert.deepEqual(vrun.receipt.argument_sha256, []);
    // Another code hash than the one that ran: the commitment does not match.
    await assert.rejects(c.invokeAgentSealed(caller, sealedName, { event: { text }, codeHash: '00'.repeat(32) }), isVerify('Commitment'));
    // No event: the handler gets null, the commitment binds SHA-256("null").
    const none = await c.invokeAgentSealed(caller, sealedName, { codeHash });
    assert.equal(none.result.exit_code, 1);
    assert.equal(none.result.exception.type, 'bad_event');
    // The same on a verifiable session: the receipt binds SHA-256("null") where stdin is.
    const vnone = await c.invokeAgentSealed(vs, sealedName, { codeHash });
    assert.equal(vnone.receipt.stdin_sha256, sha256('null'));

    // A deployment sent as multipart (§6c), clear, then invoked and deleted.
    const multipartName = `stats-multipart-${suffix}`;
    const big = client({ binaryUploadsAbove: 1024 });
    const viaForm = await big.deployAgent(owner, { name: multipartName, component: component(), description: 'multipart' });
    assert.equal(viaForm.latest.code_hash, codeHash);
    assert.equal((await big.invokeAgent(multipartName, { event: { text: 'a b c' } })).result.words, 3);
    await big.deleteAgent(owner, multipartName);

    // Find them.
    const names = (await c.listAgents()).map((a) => a.name);
    assert.ok(names.includes(clearName) && names.includes(sealedName));
    const got = await c.getAgent(sealedName);
    assert.equal(got.versions.length, 1);
    const hits = await c.searchAgents('word counts', 100);
    assert.ok(hits.some((h) => h.name === clearName && h.kind === 'handler' && typeof h.score === 'number'));

    // Logs: the clear invocation's stderr.
    const logs = await c.agentLogs(owner, clearName);
    assert.equal(logs.agent, clearName);
    assert.ok(logs.logs.some((l) => l.stderr.includes('text-stats: 6 words')), JSON.stringify(logs));

    // A wrong owner: not_owner (it names itself), owner_signature_invalid (it does not).
    const stranger = await ClientKey.generate();
    await assert.rejects(c.deleteAgent(stranger, clearName), isHost('not_owner'));
    await assert.rejects(c.agentLogs(stranger, clearName), isHost('not_owner'));
    await assert.rejects(c.deployAgent(stranger, { name: clearName, component: component() }), isHost('not_owner'));
    const anonymous = new Client(host.url, {
      fetch: (url, init) => {
        const headers = { ...init.headers };
        delete headers['x-agent-owner'];
        return recordingFetch()(url, { ...init, headers });
      },
    });
    await assert.rejects(anonymous.deleteAgent(stranger, clearName), isHost('owner_signature_invalid'));

    // Delete both.
    await c.deleteAgent(owner, clearName);
    await c.deleteAgent(owner, sealedName);
    await assert.rejects(c.getAgent(clearName), isHost('agent_not_found'));
    await assert.rejects(c.invokeAgent(clearName, { event: { text } }), isHost('agent_not_found'));
  });
});

describe('README quick start', () => {
  test('the code block runs against the host', async () => {
    const readme = fs.readFileSync(path.join(packageDir, 'README.md'), 'utf8');
    const m = /## Quick start\s+```js\n([\s\S]*?)```/.exec(readme);
    assert.ok(m, 'README.md has a js quick start');
    const code = m[1];
    assert.ok(code.trim().split('\n').length <= 20, 'the quick start is at most 20 lines');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-hypervisor-readme-'));
    try {
      const entry = pathToFileURL(path.join(packageDir, 'dist/index.js')).href;
      fs.writeFileSync(path.join(dir, 'quickstart.mjs'), code.replace("from 'wasm-hypervisor'", `from '${entry}'`));
      fs.writeFileSync(path.join(dir, 'reference-values.json'), JSON.stringify(simulatedSet()));
      fs.copyFileSync(path.join(wasmDir, 'hello.wasm'), path.join(dir, 'hello.wasm'));
      const env = { ...process.env, HYPERVISOR_URL: host.url, HYPERVISOR_ALLOW_SIMULATED: '1' };
      const { stdout } = await promisify(execFile)(process.execPath, ['quickstart.mjs'], { cwd: dir, env });
      assert.equal(stdout, 'Hello world\nstdin: hi\n 1\n');
      // Without the development opt-in the same code refuses the simulated host.
      await assert.rejects(
        promisify(execFile)(process.execPath, ['quickstart.mjs'], { cwd: dir, env: { ...env, HYPERVISOR_ALLOW_SIMULATED: '' } }),
        /SIMULATED/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('labels', () => {
  test('every answer carried x-attestation: simulated-not-for-production', () => {
    assert.ok(answers.length > 40, `${answers.length} answers`);
    assert.ok(answers.some((a) => a.status >= 400), 'errors were seen too');
    for (const a of answers) assert.equal(a.label, 'simulated-not-for-production', `${a.url} ${a.status}`);
  });
});
