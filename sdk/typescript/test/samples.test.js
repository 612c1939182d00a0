// Real evidence from ../shared/attestation-samples: the dstack near-mpc TDX quote verified with
// dcap-qvl at a pinned time, its event log replayed, and a reference set matched.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '../dist/index.js';
import { samplesDir } from './helpers.js';

const { toHex, fromHex } = sdk;
const near = path.join(samplesDir, 'dstack/near-mpc');
const read = (f) => fs.readFileSync(path.join(near, f));
const quote = new Uint8Array(JSON.parse(read('quote.json').toString('utf8')));
const collateral = JSON.parse(read('collateral.json').toString('utf8'));
const tcbInfo = JSON.parse(read('tcb_info.json').toString('utf8'));
const composeBytes = read('app_compose.json');
// 2026-08-13T12:00:00Z: inside the collateral's window (dstack/README.md).
const NOW = 1786622400;
const CLAIM = '2c50954e496cdc1f16ccbd259efda09e26222aedc467f058a9fb56a31214e80f';

async function referenceSet(composeHash) {
  return {
    version: 1,
    name: 'near-mpc localnet on dstack-dev-0.5.8',
    tee: 'tdx',
    tdx: {
      mrtd: tcbInfo.mrtd,
      rtmr0: tcbInfo.rtmr0,
      rtmr1: tcbInfo.rtmr1,
      rtmr2: tcbInfo.rtmr2,
      app: { compose_hash: composeHash },
    },
    host_measurements: [CLAIM],
  };
}

function attestationOf(evidence) {
  return {
    tee: 'tdx',
    simulated: false,
    evidence_format: 'tdx-dcap-quote',
    evidence: toHex(evidence),
    report_data: '00'.repeat(64),
    signing_key: sdk.ClientKey.fromPrivateKey('01'.repeat(32)).publicKeyHex,
    host_measurement: CLAIM,
    key_created_at: NOW,
    event_log: JSON.stringify(tcbInfo.event_log),
  };
}

describe('dstack near-mpc TDX quote', () => {
  test('dcap-qvl verifies it at the pinned time: UpToDate, registers as in tcb_info', async () => {
    const q = await sdk.verifyTdxQuote(quote, { collateral, now: NOW });
    assert.equal(q.tcbStatus, 'UpToDate');
    assert.deepEqual(q.advisoryIds, []);
    assert.equal(toHex(q.mrtd), tcbInfo.mrtd);
    assert.deepEqual(q.rtmrs.map(toHex), [tcbInfo.rtmr0, tcbInfo.rtmr1, tcbInfo.rtmr2, tcbInfo.rtmr3]);
    assert.equal(toHex(q.reportData), toHex(quote.subarray(568, 632)));
  });

  test('its event log replays to all four RTMRs; the identity is the compose hash of app_compose.json', async () => {
    const events = await sdk.parseEventLog(tcbInfo.event_log);
    assert.equal(events.length, 29);
    const replayed = await sdk.replay(events);
    assert.deepEqual(replayed.map(toHex), [tcbInfo.rtmr0, tcbInfo.rtmr1, tcbInfo.rtmr2, tcbInfo.rtmr3]);
    assert.deepEqual(sdk.covered(events), [true, true, true, true]);
    const q = await sdk.verifyTdxQuote(quote, { collateral, now: NOW });
    const id = await sdk.replayAgainst(JSON.stringify(tcbInfo.event_log), q.rtmrs);
    const composeHash = toHex(await sdk.sha256(composeBytes));
    assert.equal(composeHash, '2911e1f733466216dedb862d6d669e11256ee7a34ce4dbc66c4b807ba7a9c895');
    assert.equal(toHex(id.composeHash), composeHash);
    assert.equal(toHex(id.appId), composeHash.slice(0, 40));
  });

  test('an altered RTMR0 event fails the replay at RTMR0 (registers with events are all checked)', async () => {
    const q = await sdk.verifyTdxQuote(quote, { collateral, now: NOW });
    const log = structuredClone(tcbInfo.event_log);
    const i = log.findIndex((e) => e.imr === 0);
    log[i].digest = '00'.repeat(48);
    await assert.rejects(sdk.replayAgainst(log, q.rtmrs), (e) => e.kind === 'EventLog' && /RTMR0/.test(e.message));
  });

  test('a set from tcb_info and SHA-256 of the exact app_compose.json bytes matches; another compose hash is refused at compose-hash', async () => {
    const q = await sdk.verifyTdxQuote(quote, { collateral, now: NOW });
    const id = await sdk.replayAgainst(tcbInfo.event_log, q.rtmrs);
    const measured = {
      tee: 'tdx',
      mrtd: q.mrtd,
      rtmrs: q.rtmrs,
      composeHash: id.composeHash,
      appId: id.appId,
      tcbStatus: q.tcbStatus,
      hostMeasurement: fromHex(CLAIM),
    };
    const good = sdk.decodeReferenceSet(await referenceSet(toHex(await sdk.sha256(composeBytes))), 0);
    good.tdxStatuses = ['UpToDate'];
    assert.equal(sdk.matchAny([good], measured), 'near-mpc localnet on dstack-dev-0.5.8');
    // A re-serialised copy of the same compose file hashes differently.
    const reserialised = new TextEncoder().encode(JSON.stringify(JSON.parse(composeBytes.toString('utf8'))));
    const other = sdk.decodeReferenceSet(await referenceSet(toHex(await sdk.sha256(reserialised))), 0);
    other.tdxStatuses = ['UpToDate'];
    assert.throws(
      () => sdk.matchAny([other], measured),
      (e) => e instanceof sdk.VerifyError && e.kind === 'Reference' && /compose-hash \(RTMR3 event log\) differs/.test(e.message),
    );
  });

  test('the whole verifier gets through evidence and event log, then stops at the binding (REPORTDATA is not ours)', async () => {
    const set = await referenceSet(toHex(await sdk.sha256(composeBytes)));
    await assert.rejects(
      sdk.verifyAttestation(attestationOf(quote), { referenceValues: [set], collateral, now: NOW }),
      (e) => e instanceof sdk.VerifyError && e.kind === 'Binding',
    );
    // Without collateral: refused before anything else is believed.
    await assert.rejects(
      sdk.verifyAttestation(attestationOf(quote), { referenceValues: [set], now: NOW }),
      (e) => e.kind === 'MissingInput',
    );
    // An altered event log is refused at the event log step.
    const log = structuredClone(tcbInfo.event_log);
    const i = log.findIndex((e) => e.event === 'compose-hash');
    log[i].event_payload = '00'.repeat(32);
    log[i].digest = '';
    await assert.rejects(
      sdk.verifyAttestation({ ...attestationOf(quote), event_log: JSON.stringify(log) }, { referenceValues: [set], collateral, now: NOW }),
      (e) => e.kind === 'EventLog' && /RTMR3/.test(e.message),
    );
    // A TCB status list that does not hold UpToDate refuses the quote.
    await assert.rejects(
      sdk.verifyAttestation(attestationOf(quote), { referenceValues: [set], collateral, now: NOW, tdxStatuses: ['OutOfDate'] }),
      (e) => e.kind === 'TcbStatus',
    );
  });

  test('a flipped quote byte, or a time past the collateral, is refused', async () => {
    const flipped = quote.slice();
    flipped[520] ^= 1; // RTMR3
    await assert.rejects(sdk.verifyTdxQuote(flipped, { collateral, now: NOW }), (e) => e.kind === 'Evidence' && /signature/.test(e.message));
    const mrtd = quote.slice();
    mrtd[184] ^= 0x80;
    await assert.rejects(sdk.verifyTdxQuote(mrtd, { collateral, now: NOW }), (e) => e.kind === 'Evidence');
    await assert.rejects(sdk.verifyTdxQuote(quote, { collateral, now: 1789300000 }), (e) => e.kind === 'Evidence' && /expired/.test(e.message));
  });
});

describe('other samples', () => {
  const registers = (q) => [376, 424, 472, 520].map((o) => q.subarray(o, o + 48));
  for (const [file, rtmr3] of [
    ['quote-report.json', '0f787c3877f3e95095d5a4d13dd0fe0233803b30120d8469866719dc28f519ce021fe1e53459121e7a5a4443147185a8'],
    ['tdx-lite-getquote.json', '6f24c170d0fd63fc2b1b53202eea47b013978437fa6982cf5e0438ff95c208994aaa0f4ebab2e3a66824b5b56869137e'],
  ]) {
    test(`${file}: the event log replays to the quote's four RTMRs`, async () => {
      const doc = JSON.parse(fs.readFileSync(path.join(samplesDir, 'dstack', file), 'utf8'));
      const q = fromHex(doc.quote);
      assert.equal(toHex(registers(q)[3]), rtmr3);
      const events = await sdk.parseEventLog(doc.event_log);
      assert.deepEqual((await sdk.replay(events)).map(toHex), registers(q).map(toHex));
      await sdk.replayAgainst(doc.event_log, registers(q));
    });
  }

  test('quote-report.json: the app event after system-ready is replayed but is not identity', async () => {
    const doc = JSON.parse(fs.readFileSync(path.join(samplesDir, 'dstack', 'quote-report.json'), 'utf8'));
    const id = sdk.identity(await sdk.parseEventLog(doc.event_log));
    assert.equal(toHex(id.composeHash), '3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7');
  });

  test('dcap-qvl sample tdx_quote verifies at 2025-06-20', async () => {
    const q = new Uint8Array(fs.readFileSync(path.join(samplesDir, 'tdx/tdx_quote')));
    const c = JSON.parse(fs.readFileSync(path.join(samplesDir, 'tdx/tdx_quote_collateral.json'), 'utf8'));
    const v = await sdk.verifyTdxQuote(q, { collateral: c, now: Date.UTC(2025, 5, 20) / 1000, tdxStatuses: ['UpToDate', 'OutOfDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDateConfigurationNeeded'] });
    assert.equal(toHex(v.mrtd), toHex(q.subarray(184, 232)));
  });

  test('SEV-SNP evidence is refused with a typed error saying why', async () => {
    const report = fs.readFileSync(path.join(samplesDir, 'sev-snp/report_milan.hex'), 'utf8').trim();
    const att = {
      tee: 'sev-snp', simulated: false, evidence_format: 'sev-snp-report', evidence: report,
      report_data: '00'.repeat(64), signing_key: sdk.ClientKey.fromPrivateKey('01'.repeat(32)).publicKeyHex,
      host_measurement: CLAIM, key_created_at: 0,
    };
    const set = { version: 1, tee: 'sev-snp', sev_snp: { measurement: '00'.repeat(48) }, host_measurements: [CLAIM] };
    await assert.rejects(sdk.verifyAttestation(att, { referenceValues: [set] }), (e) => e.kind === 'Unsupported' && /no well-kept JavaScript SEV-SNP verifier/.test(e.message));
  });
});
