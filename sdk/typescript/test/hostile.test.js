// A host (or whoever is on the path) answering nonsense, through a fake `fetch` (as
// sdk/python/tests/test_hostile_host.py): every failure is one of the SDK's typed errors, never
// a TypeError or RangeError from deep inside; 402s that ask for no payment are not challenges;
// answers are bounded (nesting, size); owner statements name one audience per client; reference
// sets are decoded by the rules each time.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as sdk from '../dist/index.js';

const { Client, ClientKey, HypervisorError, PaymentRequiredError, VerifyError, fromHex, toHex, utf8 } = sdk;

const SID = '01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f';
const AUDIENCE = 'a1'.repeat(16);
const HM = '22'.repeat(32);
const sha384 = (s) => crypto.createHash('sha384').update(s).digest('hex');

/** The SDK's typed errors (looked up by name: an older build may lack some). */
const TYPED = ['HypervisorSdkError', 'HypervisorError', 'VerifyError', 'ProtocolError', 'TransportError', 'PaymentFailedError']
  .map((n) => sdk[n])
  .filter(Boolean);
const typed = (e) => {
  if (TYPED.some((C) => e instanceof C)) return true;
  throw new assert.AssertionError({ message: `not a typed error: ${e?.name}: ${e?.message}\n${e?.stack}` });
};

/** A raw answer (text as the host sent it). */
const raw = (text, status = 200, headers = {}) => () => new Response(text, { status, headers });
const json = (body, status = 200) => raw(JSON.stringify(body), status);

/**
 * A client whose fetch is `answer(path, request, method)` (a Response, or a body to send as
 * JSON); every request is recorded in `sent`.
 */
function fake(answer, options = {}) {
  const sent = [];
  const fetch = async (url, init = {}) => {
    const u = new URL(String(url));
    const method = init.method ?? 'GET';
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : undefined;
    const request = { method, path: u.pathname + u.search, headers: init.headers ?? {}, body };
    sent.push(request);
    const a = await answer(u.pathname, request);
    if (a instanceof Response) return a;
    if (typeof a === 'function') return a();
    return new Response(JSON.stringify(a), { status: 200 });
  };
  return { client: new Client('http://hostile.invalid', { fetch, policy: policy(), ...options }), sent };
}

// ---- A simulated host the tests can forge answers of (its attestation verifies) ----

const REGISTERS = { mrtd: sha384('m'), rtmr0: sha384('0'), rtmr1: sha384('1'), rtmr2: sha384('2') };
const LOG = JSON.stringify([{ imr: 3, event_type: 0x08000001, event: 'hypervisor-host-sha256', event_payload: HM, digest: '' }]);
const referenceSet = () => ({
  version: 1,
  name: 'forged simulated host',
  tee: 'simulated',
  tdx: { ...REGISTERS, app: { host_event: true } },
  host_measurements: [HM],
});
const policy = () => ({ referenceValues: [referenceSet()], allowSimulated: true });

let signer;
let server;
let attestation;
const CREATED = 1_700_000_000;

before(async () => {
  signer = await ClientKey.generate();
  server = await ClientKey.generate();
  const rtmr3 = toHex((await sdk.replay(await sdk.parseEventLog(LOG)))[3]);
  const reportData = toHex(await sdk.signingKeyReportData(signer.publicKey, fromHex(HM), CREATED));
  const evidence = { format: 'simulated-not-for-production', report_data: reportData, platform: { ...REGISTERS, rtmr3 } };
  attestation = {
    tee: 'simulated',
    simulated: true,
    evidence_format: 'simulated-not-for-production',
    evidence: toHex(utf8(JSON.stringify(evidence))),
    report_data: reportData,
    signing_key: signer.publicKeyHex,
    host_measurement: HM,
    key_created_at: CREATED,
    event_log: LOG,
  };
});

/** A verifiable session's answer for `clientHex`, signed by the attested key. */
async function verifiableAnswer(clientHex, created = CREATED, expires = CREATED + 60) {
  const fields = sdk.sessionStatementFields(SID, server.publicKey, fromHex(clientHex), created, expires);
  const signature = await signer.sign(sdk.statement(sdk.StatementKind.Session, fields));
  return {
    session_id: SID,
    session_pubkey: server.publicKeyHex,
    expires_in_seconds: 60,
    quote: { attestation: structuredClone(attestation), session_created_at: created, session_expires_at: expires, session_signature: toHex(signature) },
  };
}

/** The session key the forged host derives for the client key `clientHex`. */
async function hostSessionKey(clientHex) {
  const client = fromHex(clientHex);
  return sdk.deriveSessionKey(await server.sharedX(client), SID, client, server.publicKey);
}

const surrogateLog = JSON.stringify([{ imr: 3, event_type: 0x08000001, event: '\ud800', event_payload: HM, digest: '' }]);

/** Changes to a good verifiable session answer: each must be refused, typed. */
const SESSION_MUTATIONS = {
  'an array': () => [],
  'a string': () => 'text',
  null: () => raw('null'),
  'not JSON': () => raw('{"session_id":'),
  'session_pubkey not hex': (a) => ({ ...a, session_pubkey: 'zz' }),
  'session_pubkey not on the curve': (a) => ({ ...a, session_pubkey: '04' + '11'.repeat(64) }),
  'session_pubkey an object': (a) => ({ ...a, session_pubkey: { toString: 1 } }),
  'session_id not a UUID': (a) => ({ ...a, session_id: 'not-a-uuid' }),
  'session_id a number': (a) => ({ ...a, session_id: 5 }),
  'session_id an object': (a) => ({ ...a, session_id: { toString: 1 } }),
  'expires_in_seconds huge': (a) => raw(JSON.stringify(a).replace('"expires_in_seconds":60', '"expires_in_seconds":1e400')),
  'expires_in_seconds negative': (a) => ({ ...a, expires_in_seconds: -1 }),
  'expires_in_seconds fractional': (a) => ({ ...a, expires_in_seconds: 1.5 }),
  'expires_in_seconds text': (a) => ({ ...a, expires_in_seconds: '60' }),
  'quote an array': (a) => ({ ...a, quote: [] }),
  'attestation an array': (a) => ({ ...a, quote: { attestation: [], session_created_at: -1 } }),
  'evidence_format an object': (a) => {
    a.quote.attestation.evidence_format = { toString: 1 };
    return a;
  },
  'evidence_format a prototype name': (a) => {
    a.quote.attestation.evidence_format = 'constructor';
    return a;
  },
  'tee an object': (a) => {
    a.quote.attestation.tee = { toString: 1 };
    return a;
  },
  'key_created_at 2^70': (a) => {
    a.quote.attestation.key_created_at = 2 ** 70;
    return a;
  },
  'key_created_at negative': (a) => {
    a.quote.attestation.key_created_at = -1;
    return a;
  },
  'key_created_at fractional': (a) => {
    a.quote.attestation.key_created_at = CREATED + 0.5;
    return a;
  },
  'session_created_at negative': (a) => ({ ...a, quote: { ...a.quote, session_created_at: -1 } }),
  'session_created_at 2^70': (a) => ({ ...a, quote: { ...a.quote, session_created_at: 2 ** 70 } }),
  'session_created_at fractional': (a) => ({ ...a, quote: { ...a.quote, session_created_at: 1.5 } }),
  'session_expires_at text': (a) => ({ ...a, quote: { ...a.quote, session_expires_at: '1' } }),
  'session_expires_at huge': (a) => raw(JSON.stringify(a).replace(/"session_expires_at":\d+/, '"session_expires_at":1e400')),
  'session_signature a number': (a) => ({ ...a, quote: { ...a.quote, session_signature: 5 } }),
  'event log with a lone surrogate': (a) => {
    a.quote.attestation.event_log = surrogateLog;
    return a;
  },
  'event log a number': (a) => {
    a.quote.attestation.event_log = 5;
    return a;
  },
  'event log nested deep': (a) => {
    a.quote.attestation.event_log = '['.repeat(5000) + ']'.repeat(5000);
    return a;
  },
  'evidence nested deep': (a) => {
    a.quote.attestation.evidence = toHex(utf8('['.repeat(5000) + ']'.repeat(5000)));
    return a;
  },
  'evidence an array': (a) => {
    a.quote.attestation.evidence = toHex(utf8('[]'));
    return a;
  },
  'nested deep': () => raw('['.repeat(100_000) + ']'.repeat(100_000)),
};

describe('a hostile host: sessions', () => {
  test('the forged host verifies when it answers well (the mutations below are what fail)', async () => {
    const { client } = fake((path, req) => verifiableAnswer(req.body.pubkey));
    const session = await client.createVerifiableSession();
    assert.equal(session.verified.reference, 'forged simulated host');
  });

  for (const [name, mutate] of Object.entries(SESSION_MUTATIONS)) {
    test(`a verifiable session refuses, typed: ${name}`, async () => {
      const { client } = fake(async (path, req) => mutate(await verifiableAnswer(req.body.pubkey)));
      await assert.rejects(client.createVerifiableSession(), typed);
    });

    test(`a plain session opens or refuses, typed: ${name}`, async () => {
      const { client } = fake(async (path, req) => mutate(await verifiableAnswer(req.body.pubkey)));
      try {
        const s = await client.createSession();
        assert.equal(s.id, SID);
      } catch (e) {
        typed(e);
      }
    });
  }
});

describe('a hostile host: executions', () => {
  const program = new Uint8Array([0, 0x61, 0x73, 0x6d]);

  /** An execution answer whose envelope opens and whose commitment holds, for `plaintext`. */
  async function sealedAnswer(req, plaintext) {
    const key = await hostSessionKey(req.body.public_key);
    const bytes = utf8(plaintext);
    const commitment = await sdk.resultCommitment(SID, await sdk.inputDigests(program, [], undefined), bytes);
    return {
      session_id: SID,
      encrypted_result: toHex(sdk.seal(key, SID, sdk.Role.Result, 0, bytes)),
      result_commitment: toHex(commitment),
    };
  }

  const ANSWERS = {
    'an array': () => [],
    'only a session id': () => ({ session_id: SID }),
    'fields of the wrong types': () => ({ session_id: SID, encrypted_result: '00', result_nonce: 1, result_commitment: '00' }),
    'a 422 naming no session': () => json({ error: 'x', session_id: 'nope' }, 422),
    'a 422 with a result for a session that is not a UUID': () => json({ session_id: 'nope', encrypted_result: '00' }, 422),
    'a 422 with a session id object': () => json({ session_id: { toString: 1 }, encrypted_result: '00' }, 422),
    'an error whose code is an object': () => json({ error: { code: { toString: 1 }, message: { toString: 1 } } }, 500),
    'a result document that is null': (req) => sealedAnswer(req, 'null'),
    'a result document that is an array': (req) => sealedAnswer(req, '[]'),
    'a result document whose stdout is not base64': (req) => sealedAnswer(req, '{"status":"exited","stdout":"!!!","stderr":""}'),
    'a result document whose stdout is a number': (req) => sealedAnswer(req, '{"status":"exited","stdout":5}'),
    'a result document nested deep': (req) => sealedAnswer(req, '['.repeat(5000) + ']'.repeat(5000)),
  };

  for (const [name, answer] of Object.entries(ANSWERS)) {
    test(`an execution refuses, typed: ${name}`, async () => {
      const { client } = fake((path, req) =>
        path === '/encrypt/create_keypair' ? { session_id: SID, session_pubkey: server.publicKeyHex, expires_in_seconds: 60 } : answer(req),
      );
      const session = await client.createSession();
      await assert.rejects(client.executeWasm(session, program), typed);
    });
  }

  test('a well-formed forged result opens (the answers above fail for what they break)', async () => {
    const { client } = fake((path, req) =>
      path === '/encrypt/create_keypair'
        ? { session_id: SID, session_pubkey: server.publicKeyHex, expires_in_seconds: 60 }
        : sealedAnswer(req, JSON.stringify({ status: 'exited', stdout: btoa('hi'), stderr: '' })),
    );
    const run = await client.executeWasm(await client.createSession(), program);
    assert.equal(run.stdoutText, 'hi');
  });
});

describe('a hostile host: receipts (§14)', () => {
  const program = new Uint8Array([0, 0x61, 0x73, 0x6d]);

  /** A verifiable execution answer, its receipt signed by the attested key, then `mutate`d. */
  async function verifiableRun(req, mutate) {
    const key = await hostSessionKey(req.body.public_key);
    const plaintext = utf8(JSON.stringify({ status: 'exited', stdout: btoa('ok'), stderr: '' }));
    const digests = await sdk.inputDigests(program, [], undefined);
    const commitment = await sdk.resultCommitment(SID, digests, plaintext);
    const receipt = {
      version: 3,
      session_id: SID,
      sequence: 7,
      route: '/verifiable/execute/wasm',
      program_sha256: toHex(digests.program),
      argument_sha256: [],
      stdin_sha256: toHex(digests.stdin),
      result_commitment: toHex(commitment),
      status: 'exited',
      limits: { time_ms: 1000, memory_bytes: 1 << 20 },
      issued_at: CREATED + 1,
      policy: null,
      payment: null,
      tee: 'simulated',
      evidence_sha256: toHex(await sdk.sha256(fromHex(attestation.evidence))),
      replica: '',
      signing_key: signer.publicKeyHex,
    };
    receipt.signature = toHex(await signer.sign(sdk.statement(sdk.StatementKind.Receipt, sdk.receiptFields(receipt))));
    const answer = { session_id: SID, encrypted_result: toHex(sdk.seal(key, SID, sdk.Role.Result, 0, plaintext)), result_commitment: toHex(commitment), result_quote: receipt };
    return mutate(answer, receipt);
  }

  const fakeVerifiable = (mutate) =>
    fake((path, req) => (path === '/verifiable/encrypt/create_keypair' ? verifiableAnswer(req.body.pubkey) : verifiableRun(req, mutate)));

  test('the forged receipt verifies when it is well formed', async () => {
    const { client } = fakeVerifiable((a) => a);
    const run = await client.executeWasm(await client.createVerifiableSession(), program);
    assert.equal(run.receipt.sequence, 7);
    assert.equal(run.stdoutText, 'ok');
  });

  const MUTATIONS = {
    'sequence negative': (a, r) => void (r.sequence = -1),
    'sequence 2^70': (a, r) => void (r.sequence = 2 ** 70),
    'sequence fractional': (a, r) => void (r.sequence = 1.5),
    'sequence huge': (a) => raw(JSON.stringify(a).replace('"sequence":7', '"sequence":1e400')),
    'limits negative': (a, r) => void (r.limits.time_ms = -1),
    'limits an array': (a, r) => void (r.limits = []),
    'limits null': (a, r) => void (r.limits = null),
    'fuel fractional': (a, r) => void (r.limits.fuel = 0.5),
    'issued_at 2^70': (a, r) => void (r.issued_at = 2 ** 70),
    'argument hashes a string': (a, r) => void (r.argument_sha256 = 'x'),
    'route a number': (a, r) => void (r.route = 5),
    'status an object': (a, r) => void (r.status = { toString: 1 }),
    'calls a string': (a, r) => void (r.calls = 'x'),
    'calls of nothing': (a, r) => void (r.calls = [{}]),
    'version text': (a, r) => void (r.version = '3'),
    'signing key an object': (a, r) => void (r.signing_key = { toString: 1 }),
    'session id a number': (a, r) => void (r.session_id = 5),
    'the receipt an array': (a) => void (a.result_quote = []),
    'no receipt': (a) => void delete a.result_quote,
  };
  for (const [name, change] of Object.entries(MUTATIONS)) {
    test(`a receipt refuses, typed: ${name}`, async () => {
      const { client } = fakeVerifiable((a, r) => change(a, r) ?? a);
      const session = await client.createVerifiableSession();
      await assert.rejects(client.executeWasm(session, program), typed);
    });
  }
});

describe('a hostile host: listings and owner reads', () => {
  const BODIES = {
    'an array': () => [],
    null: () => raw('null'),
    'a string': () => raw('x'),
    'agents null': () => ({ agents: null }),
    'results a number': () => ({ results: 3 }),
    'latest an array': () => ({ latest: [], agents: {}, results: {}, logs: 'x', entries: 1, executions: null, keys_removed: -1 }),
    'counts out of range': () => raw('{"keys_removed": 1e400, "audience": 5}'),
    'nested arrays': () => ({ nested: Array(3).fill([[[[[]]]]]) }),
    'nested deep': () => raw('['.repeat(100_000) + ']'.repeat(100_000)),
    'an object with toString': () => ({ toString: 1, error: { toString: 1 } }),
  };
  const promises = {
    list: (v) => Array.isArray(v),
    object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    count: (v) => Number.isSafeInteger(v) && v >= 0,
  };

  for (const [name, body] of Object.entries(BODIES)) {
    test(`each call refuses typed or gives the shape it promises: ${name}`, async () => {
      const owner = await ClientKey.generate();
      const plain = await fake(() => ({ session_id: SID, session_pubkey: server.publicKeyHex, expires_in_seconds: 60 })).client.createSession();
      // Owner reads get a good audience, so that their answers are what is tested.
      const { client } = fake((path) => (path === '/host' && name !== 'an array' ? { audience: AUDIENCE } : body()));
      const calls = {
        listAgents: ['list', () => client.listAgents()],
        searchAgents: ['list', () => client.searchAgents('x')],
        getAgent: ['object', () => client.getAgent('x')],
        host: ['object', () => client.host()],
        attestation: ['object', () => client.attestation()],
        verifyHost: ['object', () => client.verifyHost()],
        agentCard: ['object', () => client.agentCard()],
        invokeAgent: ['object', () => client.invokeAgent('x', { event: {} })],
        invokeAgentSealed: ['object', () => client.invokeAgentSealed(plain, 'x', { event: {} })],
        agentLogs: ['object', () => client.agentLogs(owner, 'x')],
        grants: ['object', () => client.grants(owner, 'x')],
        calls: ['list', () => client.calls(owner, 'x')],
        wallet: ['object', () => client.wallet(owner, 'x')],
        config: ['list', () => client.config(owner, 'x')],
        wipeState: ['count', () => client.wipeState(owner, 'x')],
        execution: ['object', () => client.execution(owner, SID)],
        executions: ['list', () => client.executions(owner)],
      };
      for (const [call, [shape, run]] of Object.entries(calls)) {
        let value;
        try {
          value = await run();
        } catch (e) {
          assert.ok(typed(e), call);
          continue;
        }
        assert.ok(promises[shape](value), `${call} gave ${JSON.stringify(value)?.slice(0, 100)}`);
      }
    });
  }

  test('nesting up to 128 levels parses; deeper is refused before parsing', async () => {
    const nested = (n) => '['.repeat(n) + ']'.repeat(n);
    const ok = fake(raw(`{"agents": ${nested(127)}}`)).client;
    assert.equal((await ok.listAgents()).length, 1);
    const text = fake(raw(`{"agents": ["${'['.repeat(500)}"]}`)).client;
    assert.equal((await text.listAgents()).length, 1);
    const deep = fake(raw(`{"agents": ${nested(128)}}`)).client;
    await assert.rejects(deep.listAgents(), (e) => e instanceof sdk.ProtocolError && /nested deeper than 128/.test(e.message));
  });

  test('an answer over 256 MiB is refused while it streams', async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let pulled = 0;
    const stream = () =>
      new ReadableStream({
        pull(c) {
          if (pulled++ < 300) c.enqueue(chunk);
          else c.close();
        },
      });
    const { client } = fake(() => new Response(stream(), { status: 200 }));
    await assert.rejects(client.listAgents(), (e) => e instanceof sdk.TransportError && /larger than 268435456 bytes/.test(e.message));
    assert.ok(pulled <= 260, `read ${pulled} MiB`);
    const declared = fake(raw('{}', 200, { 'content-length': String(300 * 1024 * 1024) })).client;
    await assert.rejects(declared.listAgents(), (e) => e instanceof sdk.TransportError);
  });

  test('a failed connection is a TransportError', async () => {
    const { client } = fake(() => {
      throw new TypeError('fetch failed');
    });
    await assert.rejects(client.listAgents(), (e) => e instanceof sdk.TransportError && e.cause instanceof TypeError);
  });
});

describe('402s (§6b, §9)', () => {
  test('a 402 with the error object of §9 (settlement_failed) is not a challenge to pay', async () => {
    const body = { error: { code: 'settlement_failed', message: 'the facilitator refused' } };
    let asked = 0;
    const payer = {
      async createPaymentPayload() {
        asked++;
        throw new Error('asked to pay');
      },
    };
    for (const options of [{}, { payer }]) {
      const { client, sent } = fake(json(body, 402), options);
      const err = await client.invokeAgent('paid', { event: {} }).catch((e) => e);
      assert.ok(err instanceof HypervisorError, String(err));
      assert.ok(!(err instanceof PaymentRequiredError), 'reported as a challenge to pay');
      assert.equal(err.status, 402);
      assert.equal(err.code, 'settlement_failed');
      assert.equal(sent.length, 1, 'sent once, not paid and sent again');
    }
    assert.equal(asked, 0);
    assert.ok(!(sdk.errorOf(402, body) instanceof PaymentRequiredError));
  });

  test('an x402 challenge (its error a string) is still one', async () => {
    const challenge = { x402Version: 1, error: 'payment_required', accepts: [{ resource: 'http://hostile.invalid/agents/paid/invoke' }] };
    const { client } = fake(json(challenge, 402));
    await assert.rejects(client.invokeAgent('paid', { event: {} }), (e) => e instanceof PaymentRequiredError && e.code === 'payment_required');
  });
});

describe('the audience of owner statements (§17)', () => {
  test('read once per client: a later GET /host does not change what owner statements name', async () => {
    const owner = await ClientKey.generate();
    const audiences = [AUDIENCE, 'b2'.repeat(16)];
    let hostReads = 0;
    const { client, sent } = fake((path) => (path === '/host' ? { audience: audiences[Math.min(hostReads++, 1)] } : { grants: {} }));
    await client.grants(owner, 'x');
    assert.equal((await client.host()).audience, audiences[1]);
    await client.grants(owner, 'x');
    const signed = sent.filter((r) => r.path === '/agents/x/grants');
    assert.equal(signed.length, 2);
    for (const r of signed) {
      const h = r.headers;
      const message = sdk.ownerMessage(AUDIENCE, 'read-grants', 'x', Number(h['x-agent-signed-at']), Number(h['x-agent-sequence']), '');
      assert.ok(await sdk.verifySignature(owner.publicKey, message, fromHex(h['x-agent-signature'])), 'signed for the first audience');
    }
    assert.equal(hostReads, 2, 'GET /host read once for statements, once by host()');
  });

  test('held to expectedAudience: another deployment is refused before anything is signed', async () => {
    const owner = await ClientKey.generate();
    const { client, sent } = fake((path) => (path === '/host' ? { audience: AUDIENCE } : { grants: {} }), { expectedAudience: 'c3'.repeat(16) });
    await assert.rejects(client.grants(owner, 'x'), (e) => e instanceof VerifyError && /not the pinned/.test(e.message));
    assert.deepEqual(sent.map((r) => r.path), ['/host']);
    const pinned = fake((path) => (path === '/host' ? { audience: AUDIENCE } : { grants: {} }), { expectedAudience: AUDIENCE }).client;
    assert.deepEqual((await pinned.grants(owner, 'x')).grants, {});
  });

  for (const [name, audience] of Object.entries({ 'a number': 5, 'upper case': 'A1'.repeat(16), 'too long': 'a1'.repeat(17), absent: undefined })) {
    test(`an audience that is not 32 lowercase hex digits is refused, typed: ${name}`, async () => {
      const owner = await ClientKey.generate();
      const { client, sent } = fake((path) => (path === '/host' ? { audience } : { grants: {} }));
      await assert.rejects(client.grants(owner, 'x'), typed);
      assert.deepEqual(sent.map((r) => r.path), ['/host']);
    });
  }
});

describe('reference sets (§12b) are decoded by the rules, as they stand', () => {
  const verify = (p) => fake((path, req) => verifiableAnswer(req.body.pubkey)).client.createVerifiableSession({ policy: p });

  test('a hand-built set that pins only the host claim is refused', async () => {
    const loose = { version: 1, name: 'x', tee: 'simulated', host_measurements: [HM] };
    await assert.rejects(verify({ referenceValues: [loose], allowSimulated: true }), (e) => e instanceof VerifyError && e.kind === 'BadReference');
  });

  test('an already decoded set is not taken as decoded', async () => {
    const decoded = sdk.decodeReferenceSet(referenceSet());
    await assert.rejects(verify({ referenceValues: [decoded], allowSimulated: true }), (e) => e instanceof VerifyError && e.kind === 'BadReference');
  });

  test('a changed policy applies at once (nothing cached)', async () => {
    const p = policy();
    await verify(p);
    p.referenceValues[0].tdx.mrtd = sha384('another firmware');
    await assert.rejects(verify(p), (e) => e instanceof VerifyError && e.kind === 'Reference' && /MRTD differs/.test(e.message));
    p.referenceValues[0].tdx.app = {};
    await assert.rejects(verify(p), (e) => e instanceof VerifyError && e.kind === 'BadReference');
  });
});
