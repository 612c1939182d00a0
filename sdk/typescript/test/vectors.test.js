// Every section of docs/test-vectors.json this SDK implements, recomputed with the SDK.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '../dist/index.js';
import { loadVectors } from './helpers.js';
import { getCanonicalBytes, verifyOfferSignatureJWS, verifyReceiptSignatureJWS } from '@x402/extensions/offer-receipt';
import { createSIWxMessage, parseSIWxHeader, verifySIWxSignature } from '@x402/extensions/sign-in-with-x';

const v = loadVectors();
const { fromHex, toHex, utf8 } = sdk;
const ROLES = {
  program: 1, argument: 2, stdin: 3, result: 4, event: 5, 'agent-component': 6, 'wallet-key': 7,
  'agent-config': 8, 'state-export': 9, 'agent-js': 10, 'state-import': 11,
};

async function sessionKey() {
  return fromHex(v.session_key);
}

describe('session key (§4)', () => {
  test('keys, ECDH and HKDF reproduce the vector', async () => {
    const client = sdk.ClientKey.fromPrivateKey(v.client_secret);
    const server = sdk.ClientKey.fromPrivateKey(v.server_secret);
    assert.equal(client.publicKeyHex, v.client_public);
    assert.equal(server.publicKeyHex, v.server_public);
    assert.equal(toHex(sdk.uuidBytes(v.session_id)), v.session_id_bytes);
    const shared = await client.sharedX(fromHex(v.server_public));
    assert.equal(toHex(shared), v.ecdh_shared_x);
    assert.equal(toHex(await server.sharedX(fromHex(v.client_public))), v.ecdh_shared_x);
    assert.equal(toHex(sdk.hkdfSalt(v.session_id)), v.hkdf_salt);
    assert.equal(toHex(sdk.hkdfInfo(fromHex(v.client_public), fromHex(v.server_public))), v.hkdf_info);
    const key = await sdk.deriveSessionKey(shared, v.session_id, client.publicKey, fromHex(v.server_public));
    assert.equal(toHex(key), v.session_key);
  });

  test('a compressed server key gives the same session key (§2)', async () => {
    const client = sdk.ClientKey.fromPrivateKey(v.client_secret);
    const full = fromHex(v.server_public);
    const compressed = new Uint8Array(33);
    compressed[0] = (full[64] & 1) === 1 ? 3 : 2;
    compressed.set(full.subarray(1, 33), 1);
    assert.equal(toHex(sdk.uncompressedPublicKey(compressed)), v.server_public);
    const s = await sdk.Session.establish(client, v.session_id, compressed, 3600);
    // The session opens the vector's result envelope: same key.
    const result = v.envelopes.find((e) => e.role === 'result');
    assert.equal(toHex(s.open(4, 0, fromHex(result.envelope))), result.plaintext);
  });

  test('off-curve and wrong-length keys are refused', () => {
    const bad = fromHex(v.server_public);
    bad[64] ^= 1;
    assert.throws(() => sdk.uncompressedPublicKey(bad));
    assert.throws(() => sdk.uncompressedPublicKey(bad.subarray(0, 64)));
  });
});

describe('envelopes (§5)', () => {
  for (const e of v.envelopes) {
    test(`${e.role}: AAD, seal with the vector nonce, open`, async () => {
      const key = await sessionKey();
      const role = ROLES[e.role.split(' ')[0]];
      assert.equal(role, e.role_byte);
      assert.equal(toHex(sdk.envelopeAad(v.session_id, role, e.index)), e.aad);
      const sealed = sdk.seal(key, v.session_id, role, e.index, fromHex(e.plaintext), fromHex(e.nonce));
      assert.equal(toHex(sealed), e.envelope);
      assert.equal(toHex(sdk.open(key, v.session_id, role, e.index, fromHex(e.envelope))), e.plaintext);
    });
  }

  test('an envelope opens only in its own role, index, session and unaltered', async () => {
    const key = await sessionKey();
    const arg1 = v.envelopes.find((e) => e.role === 'argument 1');
    const env = fromHex(arg1.envelope);
    const refused = (fn) => assert.throws(fn, (err) => err instanceof sdk.VerifyError && err.kind === 'Decryption');
    refused(() => sdk.open(key, v.session_id, 2, 0, env));
    refused(() => sdk.open(key, v.session_id, 3, 1, env));
    refused(() => sdk.open(key, '01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e70', 2, 1, env));
    const flipped = env.slice();
    flipped[20] ^= 1;
    refused(() => sdk.open(key, v.session_id, 2, 1, flipped));
    const component = v.envelopes.find((e) => e.role === 'agent-component');
    refused(() => sdk.open(key, v.session_id, 1, 0, fromHex(component.envelope)));
  });
});

describe('result commitment (§8)', () => {
  test('the vector commitment', async () => {
    const c = v.commitment;
    const plain = Object.fromEntries(v.envelopes.map((e) => [e.role, fromHex(e.plaintext)]));
    const d = await sdk.inputDigests(plain.program, [plain['argument 0'], plain['argument 1']], plain.stdin);
    assert.equal(toHex(d.program), c.program_sha256);
    assert.deepEqual(d.arguments.map(toHex), c.argument_sha256);
    assert.equal(toHex(d.stdin), c.stdin_sha256);
    assert.equal(await sdk.resultCommitmentHex(v.session_id, d, fromHex(c.result_plaintext)), c.result_commitment);
    // One byte more in the result, or the arguments swapped: another commitment.
    const longer = sdk.concat(fromHex(c.result_plaintext), new Uint8Array([0x20]));
    assert.notEqual(await sdk.resultCommitmentHex(v.session_id, d, longer), c.result_commitment);
    const swapped = { ...d, arguments: [d.arguments[1], d.arguments[0]] };
    assert.notEqual(await sdk.resultCommitmentHex(v.session_id, swapped, fromHex(c.result_plaintext)), c.result_commitment);
  });
});

function vectorAttestation() {
  const a = v.attestation;
  return {
    tee: 'simulated',
    simulated: true,
    evidence_format: 'simulated-not-for-production',
    evidence: a.evidence,
    report_data: a.report_data,
    signing_key: a.signing_key,
    host_measurement: a.host_measurement,
    key_created_at: a.key_created_at,
  };
}

async function vectorKey() {
  const warn = console.warn;
  const warnings = [];
  console.warn = (m) => warnings.push(m);
  try {
    const key = await sdk.verifyAttestation(vectorAttestation(), { allowSimulated: true, acceptAnyMeasurement: true });
    // The explicit opt-out is never silent.
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /WHATEVER CODE IT RUNS/);
    return key;
  } finally {
    console.warn = warn;
  }
}

function expectation() {
  const c = v.commitment;
  return {
    sessionId: v.session_id,
    commitment: fromHex(c.result_commitment),
    program: fromHex(c.program_sha256),
    arguments: c.argument_sha256.map((h) => fromHex(h)),
    stdin: fromHex(c.stdin_sha256),
  };
}

describe('attestation (§12-§15)', () => {
  const a = v.attestation;
  test('REPORTDATA', async () => {
    const signing = sdk.ClientKey.fromPrivateKey(a.signing_secret);
    assert.equal(signing.publicKeyHex, a.signing_key);
    assert.equal(toHex(await sdk.sha256(utf8('example host binary'))), a.host_measurement);
    const fields = [signing.publicKey, fromHex(a.host_measurement), sdk.u64be(a.key_created_at)];
    assert.equal(toHex(sdk.reportDataPreimage(1, fields)), a.report_data_preimage);
    assert.equal(toHex(await sdk.reportData(1, fields)), a.report_data);
    assert.equal(toHex(await sdk.signingKeyReportData(signing.publicKey, fromHex(a.host_measurement), a.key_created_at)), a.report_data);
  });

  test('nothing pinned, or simulated not allowed: refused', async () => {
    await assert.rejects(sdk.verifyAttestation(vectorAttestation(), { allowSimulated: true }), (e) => e.kind === 'NoExpectedMeasurement');
    await assert.rejects(sdk.verifyAttestation(vectorAttestation(), { acceptAnyMeasurement: true }), (e) => e.kind === 'Simulated');
    await assert.rejects(sdk.verifyAttestation(vectorAttestation()), (e) => e.kind === 'Simulated');
    // Simulated evidence without a platform has no registers: it matches no set.
    const set = { ...v.reference_values.set, tee: 'simulated', tcb: undefined };
    await assert.rejects(sdk.verifyAttestation(vectorAttestation(), { allowSimulated: true, referenceValues: [set] }), (e) => e.kind === 'Reference' && /MRTD differs: expected [0-9a-f]+, the evidence has none/.test(e.message));
  });

  test('the vector evidence verifies (simulated, allowed) and binds the key', async () => {
    const key = await vectorKey();
    assert.equal(key.tee, 'simulated');
    assert.equal(key.simulated, true);
    assert.equal(toHex(key.signingKey), a.signing_key);
    assert.equal(toHex(key.evidenceSha256), a.receipt.evidence_sha256);
    assert.equal(key.reference, undefined);
  });

  test('session statement: bytes and signature', async () => {
    const st = a.session_statement;
    const fields = sdk.sessionStatementFields(v.session_id, fromHex(v.server_public), fromHex(v.client_public), st.created_at, st.expires_at);
    assert.equal(toHex(sdk.statement(sdk.StatementKind.Session, fields)), st.bytes);
    assert.ok(await sdk.verifyStatement(fromHex(a.signing_key), 1, fields, fromHex(st.signature)));
    const quote = { attestation: vectorAttestation(), session_created_at: st.created_at, session_expires_at: st.expires_at, session_signature: st.signature };
    const warn = console.warn;
    console.warn = () => {};
    try {
      const policy = { allowSimulated: true, acceptAnyMeasurement: true };
      const key = await sdk.verifySessionQuote(quote, v.session_id, fromHex(v.server_public), fromHex(v.client_public), policy);
      assert.equal(toHex(key.signingKey), a.signing_key);
      // Another expiry: the signature no longer verifies.
      await assert.rejects(
        sdk.verifySessionQuote({ ...quote, session_expires_at: st.expires_at + 1 }, v.session_id, fromHex(v.server_public), fromHex(v.client_public), policy),
        (e) => e instanceof sdk.VerifyError && e.kind === 'Signature',
      );
    } finally {
      console.warn = warn;
    }
  });

  test('receipt: statement bytes, signature, verification', async () => {
    const r = a.receipt;
    assert.equal(toHex(sdk.statement(2, sdk.receiptFields(r))), a.receipt_statement_bytes);
    assert.ok(await sdk.verifyStatement(fromHex(a.signing_key), 2, sdk.receiptFields(r), fromHex(r.signature)));
    const key = await vectorKey();
    await sdk.verifyReceipt(r, key, expectation());
    const refused = (kind) => (e) => e instanceof sdk.VerifyError && e.kind === kind;
    await assert.rejects(sdk.verifyReceipt({ ...r, replica: 'replica-c' }, key, expectation()), refused('Signature'));
    await assert.rejects(sdk.verifyReceipt(r, key, { ...expectation(), sessionId: '01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e70' }), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt(r, key, { ...expectation(), commitment: new Uint8Array(32) }), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt(r, key, { ...expectation(), stdin: new Uint8Array(32) }), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt(r, key, { ...expectation(), arguments: expectation().arguments.slice(0, 1) }), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt(r, { ...key, evidenceSha256: new Uint8Array(32) }, expectation()), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt(r, { ...key, tee: 'tdx' }, expectation()), refused('Receipt'));
    await assert.rejects(sdk.verifyReceipt({ ...r, version: 1 }, key, expectation()), refused('Malformed'));
    // The high-s twin of the receipt signature is refused.
    const sig = fromHex(r.signature);
    const s = BigInt('0x' + toHex(sig.subarray(32)));
    const twin = toHex(sig.subarray(0, 32)) + (sdk.P256_N - s).toString(16).padStart(64, '0');
    await assert.rejects(sdk.verifyReceipt({ ...r, signature: twin }, key, expectation()), refused('Signature'));
  });

  test('receipt with calls (§18): bytes, signature, alterations refused', async () => {
    const rc = a.receipt_with_calls;
    assert.equal(toHex(sdk.statement(2, sdk.receiptFields(rc))), a.receipt_with_calls_statement_bytes);
    const key = fromHex(a.signing_key);
    assert.ok(await sdk.verifyStatement(key, 2, sdk.receiptFields(rc), fromHex(rc.signature)));
    assert.equal(await sdk.verifyStatement(key, 2, sdk.receiptFields({ ...rc, replica: 'replica-c' }), fromHex(rc.signature)), false);
    const altered = { ...rc, calls: [{ ...rc.calls[0], response_sha256: '00'.repeat(32) }, ...rc.calls.slice(1)] };
    assert.equal(await sdk.verifyStatement(key, 2, sdk.receiptFields(altered), fromHex(rc.signature)), false);
  });

  test('component statement', async () => {
    const c = a.component_statement;
    const fields = [fromHex(c.component_sha256), fromHex(c.user_data)];
    assert.equal(toHex(sdk.statement(3, fields)), c.bytes);
    const key = await vectorKey();
    await sdk.verifyComponentStatement(key, fields[0], fields[1], fromHex(c.signature));
    const other = fields[1].slice();
    other[0] ^= 1;
    await assert.rejects(sdk.verifyComponentStatement(key, fields[0], other, fromHex(c.signature)), (e) => e.kind === 'Signature');
  });

  test('signing with a ClientKey gives low-s signatures that verify', async () => {
    const k = sdk.ClientKey.fromPrivateKey(a.signing_secret);
    for (let i = 0; i < 8; i++) {
      const msg = utf8(`message ${i}`);
      const sig = await k.sign(msg);
      assert.ok(sdk.isLowS(sig));
      assert.ok(await sdk.verifySignature(k.publicKey, msg, sig));
    }
  });
});

describe('agents (§17)', () => {
  const a = v.agents;
  const owner = () => sdk.ClientKey.fromPrivateKey(a.owner_secret);
  test('deploy detail, messages, signatures', async () => {
    const req = a.deploy_request;
    assert.equal(owner().publicKeyHex, req.public_key);
    const component = fromHex(v.envelopes.find((e) => e.role === 'agent-component').plaintext);
    assert.equal(toHex(await sdk.sha256(component)), a.component_sha256);
    const detail = await sdk.deployDetail(a.component_sha256, req);
    assert.equal(detail, a.deploy_detail);
    const deploy = sdk.ownerMessage(a.audience, 'deploy', a.name, a.signed_at, a.deploy_sequence, detail);
    assert.equal(toHex(deploy), a.deploy_message);
    assert.ok(await sdk.verifySignature(owner().publicKey, deploy, fromHex(a.deploy_signature)));
    const del = sdk.ownerMessage(a.audience, 'delete', a.name, a.signed_at, a.delete_sequence, '');
    assert.equal(toHex(del), a.delete_message);
    assert.ok(await sdk.verifySignature(owner().publicKey, del, fromHex(a.delete_signature)));
    // Description and tags are not signed.
    assert.equal(await sdk.deployDetail(a.component_sha256, { ...req, description: 'x', tags: ['y'] }), a.deploy_detail);
  });

  test('altered settings do not verify', async () => {
    const req = a.deploy_request;
    const without = (k) => Object.fromEntries(Object.entries(req).filter(([key]) => key !== k));
    const altered = [
      { ...req, public: true }, { ...req, price: req.price + '0' }, { ...req, ttl_seconds: req.ttl_seconds + 1 },
      { ...req, limits: undefined }, { ...req, limits: { ...req.limits, fuel: 1 } },
      without('public'), without('price'), without('ttl_seconds'),
    ];
    for (const other of altered) {
      const detail = await sdk.deployDetail(a.component_sha256, other);
      const msg = sdk.ownerMessage(a.audience, 'deploy', a.name, a.signed_at, a.deploy_sequence, detail);
      assert.equal(await sdk.verifySignature(owner().publicKey, msg, fromHex(a.deploy_signature)), false, detail);
    }
  });

  test('the high-s twin must be refused', async () => {
    const twin = a.deploy_signature_high_s;
    assert.equal(twin.must_refuse, true);
    const msg = fromHex(a.deploy_message);
    assert.equal(sdk.isLowS(fromHex(twin.signature)), false);
    assert.equal(await sdk.verifySignature(owner().publicKey, msg, fromHex(twin.signature)), false);
    assert.ok(await sdk.verifySignature(owner().publicKey, msg, fromHex(a.deploy_signature)));
    // Normalising the twin gives the low-s signature.
    assert.equal(toHex(sdk.normaliseLowS(fromHex(twin.signature))), a.deploy_signature);
  });

  test('schemas: canonical JSON, digest, detail', async () => {
    const s = a.schemas;
    assert.equal(sdk.canonicalJson(s.schemas), s.canonical);
    assert.equal(toHex(await sdk.sha256(utf8(s.canonical))), s.digest);
    assert.equal(await sdk.deployDetail(a.component_sha256, { ...a.deploy_request, schemas: s.schemas }), s.deploy_detail);
  });

  test('tariff: the deploy detail of a metered agent', async () => {
    const t = a.tariff;
    assert.equal(await sdk.deployDetail(a.component_sha256, { ...a.deploy_request, tariff: t.tariff }), t.deploy_detail);
    // Absent rates are "0", as the host reads and signs them.
    assert.equal(await sdk.deployDetail(a.component_sha256, { ...a.deploy_request, tariff: t.partial.tariff }), t.partial.deploy_detail);
  });

  test('sign an owner statement and verify it', async () => {
    const sig = await sdk.ownerSignature(owner(), a.audience, 'logs', a.name, '');
    const msg = sdk.ownerMessage(a.audience, 'logs', a.name, sig.signed_at, sig.sequence, '');
    assert.ok(await sdk.verifySignature(owner().publicKey, msg, fromHex(sig.signature)));
    const next = await sdk.ownerSignature(owner(), a.audience, 'logs', a.name, '');
    assert.ok(next.sequence > sig.sequence);
  });
});

describe('agent calls (§18) and state (§23): owner messages and signatures', () => {
  test('grants and wallet messages verify over the vector details', async () => {
    const a = v.agent_calls;
    const key = fromHex(v.client_public);
    for (const action of ['grants', 'wallet']) {
      const msg = sdk.ownerMessage(a.audience, action, a.name, a.signed_at, a[`${action}_sequence`], a[`${action}_detail`]);
      assert.equal(toHex(msg), a[`${action}_message`]);
      assert.ok(await sdk.verifySignature(key, msg, fromHex(a[`${action}_signature`])));
    }
    // The grant names the reference set by its digest.
    assert.ok(a.grants_detail.includes(`ref:${await sdk.referenceSetDigest(a.grants.hypervisors[0].reference_values[0])}`));
  });

  test('state statements, config and import details', async () => {
    const s = v.state;
    const key = fromHex(v.client_public);
    assert.equal(toHex(await sdk.sha256(utf8(s.config_change))), s.config_detail);
    const exported = v.envelopes.find((e) => e.role === 'state-import').plaintext;
    assert.equal(toHex(await sdk.sha256(fromHex(exported))) + '\nreplace=true', s.import_detail);
    for (const st of s.statements) {
      const msg = sdk.ownerMessage(s.audience, st.action, s.name, s.signed_at, st.sequence, st.detail);
      assert.equal(toHex(msg), st.message);
      assert.ok(await sdk.verifySignature(key, msg, fromHex(st.signature)), st.action);
    }
  });
});

describe('reference values (§12b, §12c)', () => {
  const r = v.reference_values;
  test('canonical JSON and digest, also of the set as written', async () => {
    assert.equal(sdk.referenceSetCanonical(r.set), r.canonical);
    assert.equal(await sdk.referenceSetDigest(r.set), r.digest);
    assert.equal(await sdk.referenceSetDigest(JSON.parse(r.set_as_written)), r.digest);
  });

  test('event log digests, replay to RTMR3, identity', async () => {
    const events = await sdk.parseEventLog(JSON.stringify(r.event_log));
    events.forEach((e, i) => assert.equal(toHex(e.digest), r.event_log[i].digest));
    const rtmrs = await sdk.replay(events);
    assert.equal(toHex(rtmrs[3]), r.rtmr3);
    const id = sdk.identity(events);
    assert.equal(toHex(id.composeHash), r.set.tdx.app.compose_hash);
    assert.equal(toHex(id.hostSha256), v.attestation.host_measurement);
  });

  test('a changed payload, order or digest fails the replay or the parse', async () => {
    const zero = new Uint8Array(48);
    const rtmrs = [zero, zero, zero, fromHex(r.rtmr3)];
    await sdk.replayAgainst(r.event_log, rtmrs);
    const payload = structuredClone(r.event_log);
    payload[3].event_payload = payload[3].event_payload.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    await assert.rejects(sdk.replayAgainst(payload, rtmrs), (e) => e.kind === 'EventLog');
    const swapped = structuredClone(r.event_log).map((e) => ({ ...e, digest: '' }));
    [swapped[1], swapped[2]] = [swapped[2], swapped[1]];
    await assert.rejects(sdk.replayAgainst(swapped, rtmrs), /replays RTMR3/);
    const digest = structuredClone(r.event_log);
    digest[0].digest = '00'.repeat(48);
    await assert.rejects(sdk.parseEventLog(digest), /supplied digest/);
    const relabelled = structuredClone(r.event_log);
    relabelled[4].event_type = 1;
    await assert.rejects(sdk.parseEventLog(relabelled), /runtime event/);
  });

  test('a second compose-hash after system-ready does not count', async () => {
    const log = [
      ...r.event_log.map((e) => ({ ...e, digest: '' })),
      { imr: 3, event_type: 134217729, event: 'compose-hash', event_payload: '11'.repeat(32) },
    ];
    const id = sdk.identity(await sdk.parseEventLog(log));
    assert.equal(toHex(id.composeHash), r.set.tdx.app.compose_hash);
  });

  test('identity stops at the first system-ready', async () => {
    const ev = (name, payload) => ({ imr: 3, event_type: 134217729, event: name, event_payload: payload });
    const id = sdk.identity(await sdk.parseEventLog([ev('app-id', 'aa'), ev('system-ready', ''), ev('compose-hash', '11'.repeat(32)), ev('hypervisor-host-sha256', '22'.repeat(32))]));
    assert.equal(id.composeHash, undefined);
    assert.equal(id.hostSha256, undefined);
    assert.equal(toHex(id.appId), 'aa');
    // Without system-ready every runtime event counts.
    const all = sdk.identity(await sdk.parseEventLog([ev('app-id', 'aa'), ev('compose-hash', '11'.repeat(32))]));
    assert.equal(toHex(all.composeHash), '11'.repeat(32));
    // A host event that is not 32 bytes refuses the log.
    await assert.rejects(async () => sdk.identity(await sdk.parseEventLog([ev('hypervisor-host-sha256', '22')])), (e) => e.kind === 'EventLog');
    // A v1 name with ':' and an unknown version are refused.
    await assert.rejects(sdk.parseEventLog([ev('a:b', '')]), (e) => e.kind === 'EventLog');
    await assert.rejects(sdk.parseEventLog([{ ...ev('x', ''), version: 3 }]), (e) => e.kind === 'EventLog');
    // v2: SHA-384 of the JCS of {name, payload, type}; a wrong preimage is refused.
    const [v2] = await sdk.parseEventLog([{ ...ev('compose-hash', 'AB'), version: 2 }]);
    const pre = '{"name":"compose-hash","payload":"ab","type":134217729}';
    assert.equal(toHex(v2.digest), toHex(await sdk.sha384(utf8(pre))));
    await sdk.parseEventLog([{ ...ev('compose-hash', 'ab'), version: 2, preimage: toHex(utf8(pre)) }]);
    await assert.rejects(sdk.parseEventLog([{ ...ev('compose-hash', 'ab'), version: 2, preimage: '00' }]), /preimage/);
  });

  test('matching: the vector evidence matches, a claim or compose file elsewhere fails at its row', async () => {
    const set = sdk.decodeReferenceSet(r.set, 0);
    set.tdxStatuses = ['UpToDate'];
    const events = await sdk.parseEventLog(r.event_log);
    const id = sdk.identity(events);
    const measured = {
      tee: 'tdx',
      mrtd: set.tdx.mrtd,
      rtmrs: [...set.tdx.rtmrs, fromHex(r.rtmr3)],
      composeHash: id.composeHash,
      hostEvent: id.hostSha256,
      tcbStatus: 'UpToDate',
      hostMeasurement: fromHex(v.attestation.host_measurement),
    };
    assert.equal(sdk.matchAny([set], measured), r.set.name);
    assert.throws(() => sdk.matchAny([set], { ...measured, hostMeasurement: new Uint8Array(32) }), /host_measurement \(claimed by the host\) differs/);
    assert.throws(() => sdk.matchAny([set], { ...measured, composeHash: new Uint8Array(32) }), /compose-hash \(RTMR3 event log\) differs/);
    assert.throws(() => sdk.matchAny([set], { ...measured, tcbStatus: 'OutOfDate' }), /TDX TCB status differs/);
    assert.throws(() => sdk.matchAny([set], { ...measured, mrtd: new Uint8Array(48) }), /MRTD differs/);
  });

  test('decoding refuses bad sets, naming the set and field', () => {
    const bad = (s, re) => assert.throws(() => sdk.decodeReferenceSet(s, 3), (e) => e.kind === 'BadReference' && re.test(e.message));
    bad({ ...r.set, version: 2 }, /version 2/);
    bad({ ...r.set, tdx: { ...r.set.tdx, rtmr1: 'ab' } }, /`tdx.rtmr1` must be 48 bytes \(96 hex digits\)/);
    bad({ ...r.set, tdx: { ...r.set.tdx, app: {} } }, /pins no application identity/);
    bad({ ...r.set, host_measurements: [] }, /host_measurements/);
    bad({ ...r.set, extra: 1 }, /unknown field/);
    bad({ ...r.set, name: undefined, tee: 'sev-snp' }, /reference set `#3`/);
    bad({ ...r.set, tdx: { ...r.set.tdx, mrtd: '0x' + r.set.tdx.mrtd.slice(2) } }, /not hex/);
  });
});

describe('RISC-V program (§6d)', () => {
  test('kind, identity, envelope and commitment', async () => {
    const r = v.riscv_program;
    const elf = fromHex(r.elf);
    assert.equal(sdk.recogniseProgram(elf), r.kind);
    for (const c of r.recognised) assert.equal(sdk.recogniseProgram(fromHex(c.bytes)) ?? null, c.kind, c.what);
    assert.equal(toHex(await sdk.sha256(elf)), r.program_sha256);
    const key = await sessionKey();
    assert.equal(toHex(sdk.seal(key, v.session_id, 1, 0, elf, fromHex(r.envelope_nonce))), r.envelope);
    const d = await sdk.inputDigests(elf, r.arguments.map((x) => fromHex(x)), fromHex(r.stdin));
    assert.equal(await sdk.resultCommitmentHex(v.session_id, d, fromHex(r.result_plaintext)), r.result_commitment);
  });
});

describe('JavaScript agent source (§24)', () => {
  test('source hash', async () => {
    assert.equal(await sdk.jsSourceSha256(v.js_source.source), v.js_source.sha256);
    // The engine is signed with the source.
    assert.equal(v.js_source.starlingmonkey.source.engine, 'starlingmonkey');
    assert.equal(await sdk.jsSourceSha256(v.js_source.starlingmonkey.source), v.js_source.starlingmonkey.sha256);
    assert.equal(await sdk.jsSourceSha256({ ...v.js_source.source, engine: 'boa' }), v.js_source.sha256);
  });
});

describe('grants and wallet details rebuilt from their JSON (§18)', () => {
  const a = v.agent_calls;
  test('grants detail, wallet detail, the deploy detail with grants', async () => {
    const grants = await sdk.grantsDetail(a.grants);
    assert.equal(grants, a.grants_detail);
    const wallet = sdk.walletDetail(a.wallet_address, a.wallet_policy);
    assert.equal(wallet, a.wallet_detail);
    const key = fromHex(v.client_public);
    for (const [action, detail] of [['grants', grants], ['wallet', wallet]]) {
      const msg = sdk.ownerMessage(a.audience, action, a.name, a.signed_at, a[`${action}_sequence`], detail);
      assert.equal(toHex(msg), a[`${action}_message`]);
      assert.ok(await sdk.verifySignature(key, msg, fromHex(a[`${action}_signature`])));
    }
    // A deployment with grants signs the grants detail after the settings.
    const deploy = await sdk.deployDetail('ab'.repeat(32), { ...v.agents.deploy_request, grants: a.grants });
    assert.ok(deploy.endsWith('\n' + grants));
    // Another reference set (or none, or callers for anyone) is another detail.
    const h = { ...a.grants.hypervisors[0], reference_values: [{ ...a.grants.hypervisors[0].reference_values[0], host_measurements: ['22'.repeat(32)] }] };
    assert.notEqual(await sdk.grantsDetail({ ...a.grants, hypervisors: [h] }), grants);
    assert.ok((await sdk.grantsDetail({ ...a.grants, callers: undefined })).includes('\ncallers=-'));
    assert.ok(sdk.walletDetail(a.wallet_address, { ...a.wallet_policy, payees: undefined }).endsWith('\npayees=-'));
  });

  test('the wallet key envelope and its address (viem)', async () => {
    const env = v.envelopes.find((e) => e.role === 'wallet-key');
    assert.equal(toHex(fromHex(env.plaintext)), v.agent_calls.wallet_secret.replace(/^0x/, ''));
    assert.equal(await sdk.evmAddress(fromHex(env.plaintext)), a.wallet_address);
  });
});

describe('state and configuration (§23)', () => {
  const s = v.state;
  const plain = (role) => fromHex(v.envelopes.find((e) => e.role === role).plaintext);
  test('value hashes', async () => {
    for (const h of s.value_hashes) assert.equal(await sdk.valueHash(h.agent, h.name, h.value), h.sha256);
  });

  test('the config change, its detail; the export parsed; the import as the SDK seals it', async () => {
    const change = plain('agent-config');
    assert.equal(sdk.fromUtf8(change), s.config_change);
    assert.equal(await sdk.configDetail(change), s.config_detail);
    const exported = sdk.parseStateExport(plain('state-export'), s.name);
    assert.equal(sdk.fromUtf8(plain('state-export')), s.export);
    assert.equal(exported.exported_at_ms, 1767225600000);
    assert.equal(sdk.fromUtf8(sdk.fromBase64(exported.buckets.cart.item)), 'book');
    assert.deepEqual([...sdk.fromBase64(exported.buckets.default.visits)], [3, 0, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => sdk.parseStateExport(plain('state-export'), 'other'), (e) => e instanceof sdk.VerifyError && e.kind === 'Mismatch');
    assert.throws(() => sdk.parseStateExport(utf8('not json'), s.name), (e) => e instanceof sdk.VerifyError && e.kind === 'Malformed');
    // The SDK seals an import as the export's JSON, compact: the vector's bytes exactly.
    const imported = utf8(JSON.stringify(exported));
    assert.equal(toHex(imported), toHex(plain('state-import')));
    assert.equal(await sdk.importDetail(imported, true), s.import_detail);
    assert.ok((await sdk.importDetail(imported, false)).endsWith('\nreplace=false'));
  });

  test('the sealed JavaScript source (§24) is the agent-js envelope plaintext', async () => {
    assert.equal(toHex(sdk.jsSealedPlaintext(v.js_source.source)), toHex(plain('agent-js')));
    const reordered = { main: 'main.ts', modules: { 'utils.ts': v.js_source.source.modules['utils.ts'], 'main.ts': v.js_source.source.modules['main.ts'] } };
    assert.equal(toHex(sdk.jsSealedPlaintext(reordered)), toHex(plain('agent-js')));
    assert.throws(() => sdk.jsSealedPlaintext({ main: 'nope.ts', modules: v.js_source.source.modules }), RangeError);
  });
});

describe('x402 resources (§6b)', () => {
  const r = v.x402_resources;
  test('the resource URL and mimeType of each kind of paid route', () => {
    for (const c of r.cases) {
      const got = sdk.resourceOf(r.public_url, c.requested, c.kind.startsWith('HTTP agent') ? 'HTTP agent' : c.kind, c.agent, c.declared_content_type);
      assert.deepEqual(got, { url: c.resource_url, mimeType: c.mime_type }, c.kind);
    }
  });

  test('a challenge is checked by its path; settlements decode', () => {
    const header = (url) => new Headers({ 'payment-required': btoa(JSON.stringify({ x402Version: 2, resource: { url } })) });
    sdk.checkChallenge(header('https://host.example/agents/word-seller/invoke'), {}, '/agents/word-seller/invoke');
    assert.throws(() => sdk.checkChallenge(header('https://host.example/agents/other/invoke'), {}, '/agents/word-seller/invoke'), sdk.PaymentFailedError);
    assert.throws(() => sdk.checkChallenge(new Headers({ 'payment-required': '%%' }), {}, '/x'), sdk.PaymentFailedError);
    assert.throws(() => sdk.checkChallenge(new Headers(), { x402Version: 2 }, '/x'), sdk.PaymentFailedError);
    const v1 = { accepts: [{ resource: 'https://host.example/x402_execute/test/wasm' }] };
    sdk.checkChallenge(new Headers(), v1, '/x402_execute/test/wasm');
    const settled = { success: true, transaction: '0x' + '11'.repeat(32), network: 'eip155:84532', payer: '0xabc' };
    const unpadded = btoa(JSON.stringify(settled)).replace(/=+$/, '');
    assert.deepEqual(sdk.settlementOf(new Headers({ 'x-payment-response': unpadded })), settled);
    assert.equal(sdk.settlementOf(new Headers()), undefined);
  });
});

describe('x402 sign-in-with-x (§6b) by the official @x402/extensions', () => {
  const s = v.sign_in_with_x;

  test('the header reads back as the payload', () => {
    assert.deepEqual(parseSIWxHeader(s.header), s.payload);
  });

  test('the message is the one the SDK builds, and the signature verifies', async () => {
    const { address, signature: _, ...info } = s.payload;
    assert.equal(createSIWxMessage(info, address), s.message);
    assert.equal(address, s.address);
    const verdict = await verifySIWxSignature(s.payload);
    assert.equal(verdict.isValid, true, JSON.stringify(verdict));
    assert.equal(verdict.payer, s.address);
    const forged = await verifySIWxSignature({ ...s.payload, nonce: s.payload.nonce.replace(/^./, '0') });
    assert.equal(forged.isValid, false);
  });
});

describe('JCS (RFC 8785) by the reference implementation (npm canonicalize)', () => {
  test("gives the vectors' canonical forms", async () => {
    assert.equal(sdk.referenceSetCanonical(v.reference_values.set), v.reference_values.canonical);
    assert.equal(sdk.canonicalJson(v.agents.schemas.schemas), v.agents.schemas.canonical);
    assert.equal(new TextDecoder().decode(sdk.cardPayload(v.a2a.card)), v.a2a.payload);
    assert.equal(sdk.canonicalJson(sdk.jwk(fromHex(v.attestation.signing_key))), JSON.stringify(v.a2a.jwk));
  });

  test("RFC 8785's own examples: numbers, strings, key order", () => {
    assert.equal(sdk.canonicalJson([333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001]), '[333333333.3333333,1e+30,4.5,0.002,1e-27]');
    assert.equal(sdk.canonicalJson({ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew', '1': 'One', '\u{1f600}': 'Emoji', '\u0080': 'Control', '\u00f6': 'Latin' }),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin","\u20ac":"Euro Sign","\u{1f600}":"Emoji","\ufb33":"Hebrew"}');
    assert.equal(sdk.canonicalJson({ b: [true, null, 'x\n'], a: { d: -0, c: 1 } }), '{"a":{"c":1,"d":0},"b":[true,null,"x\\n"]}');
    assert.throws(() => sdk.canonicalJson(NaN));
    assert.throws(() => sdk.canonicalJson('\ud800'));
  });
});

describe('HTTPS channel binding and RA-TLS certificates (§19)', () => {
  const a = v.attestation;
  const t = v.tls;
  const signingKey = fromHex(a.signing_key);

  test('the channel statement: bytes, signature, another exporter or audience does not verify', async () => {
    const c = t.channel;
    assert.equal(t.exporter_label, 'EXPORTER-wasm-hypervisor-channel-binding');
    assert.equal(sdk.StatementKind.TlsChannel, 0x04);
    const fields = sdk.channelStatementFields(fromHex(c.exporter), fromHex(c.nonce), fromHex(c.certificate_sha256), c.audience);
    const bytes = sdk.statement(sdk.StatementKind.TlsChannel, fields);
    assert.equal(toHex(bytes), c.statement_bytes);
    assert.ok(await sdk.verifySignature(signingKey, bytes, fromHex(c.signature)));
    const other = sdk.statement(0x04, sdk.channelStatementFields(new Uint8Array(32), fromHex(c.nonce), fromHex(c.certificate_sha256), c.audience));
    assert.ok(!(await sdk.verifySignature(signingKey, other, fromHex(c.signature))));
    const elsewhere = sdk.statement(0x04, sdk.channelStatementFields(fromHex(c.exporter), fromHex(c.nonce), fromHex(c.certificate_sha256), '0123456789abcdef0123456789abcdef'));
    assert.ok(!(await sdk.verifySignature(signingKey, elsewhere, fromHex(c.signature))));
  });

  test("the certificate's REPORTDATA (purpose 0x02) and its CMW extension", async () => {
    const cert = t.certificate;
    const fields = [fromHex(cert.spki_sha256), signingKey, fromHex(a.host_measurement), sdk.u64be(cert.created_at)];
    assert.equal(toHex(sdk.reportDataPreimage(sdk.ReportDataPurpose.TlsCertificate, fields)), cert.report_data_preimage);
    const rd = await sdk.certificateReportData(fromHex(cert.spki_sha256), signingKey, fromHex(a.host_measurement), cert.created_at);
    assert.equal(toHex(rd), cert.report_data);
    assert.equal(cert.extension_oid, sdk.CMW_EXTENSION_OID);
    const m = sdk.certificateMessage(fromHex(cert.extension_value));
    assert.equal(m.version, 1);
    assert.equal(m.signing_key, a.signing_key);
    assert.equal(m.host_measurement, a.host_measurement);
    assert.equal(m.created_at, cert.created_at);
    assert.equal(new TextDecoder().decode(fromHex(m.evidence)), 'example evidence');
    // A truncated or retyped extension value is refused as evidence that does not parse.
    const value = fromHex(cert.extension_value);
    assert.throws(() => sdk.certificateMessage(value.subarray(0, value.length - 1)), (e) => e instanceof sdk.VerifyError && e.kind === 'Evidence');
    const retyped = value.slice();
    retyped[0] = 0x04;
    assert.throws(() => sdk.certificateMessage(retyped), (e) => e instanceof sdk.VerifyError && e.kind === 'Evidence');
  });
});

describe('x402 signed offers and receipts (§6b), with the official verifier (@x402/extensions)', () => {
  test("the official verifier resolves the kid (did:key) and accepts both; the payloads are RFC 8785 as it makes them", async () => {
    const t = v.offer_receipt;
    const offer = await verifyOfferSignatureJWS({ format: 'jws', signature: t.offer.jws });
    assert.deepEqual(offer, t.offer.payload);
    const receipt = await verifyReceiptSignatureJWS({ format: 'jws', signature: t.receipt.jws });
    assert.deepEqual(receipt, t.receipt.payload);
    assert.equal(new TextDecoder().decode(getCanonicalBytes(t.receipt.payload)), atob(t.receipt.signing_input.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    // And against the attested key itself (its JWK), not only the kid's.
    const key = sdk.jwk(fromHex(v.attestation.signing_key));
    assert.deepEqual(await verifyOfferSignatureJWS({ format: 'jws', signature: t.offer.jws }, key), t.offer.payload);
    const [h, p, sig] = t.offer.jws.split('.');
    const forged = `${h}.${p.slice(0, -2)}${p.slice(-2) === 'fQ' ? 'fX' : 'fQ'}.${sig}`;
    await assert.rejects(verifyOfferSignatureJWS({ format: 'jws', signature: forged }));
  });
});

