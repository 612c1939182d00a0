// Starts the real host (simulated attestation) for the end-to-end tests.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './helpers.js';

export const hostBin = process.env.HYPERVISOR_BIN ?? path.join(repoRoot, 'target/debug/hypervisor');
export const wasmDir = process.env.HYPERVISOR_WASM_DIR ?? path.join(repoRoot, 'target/wasm');

const sha384 = (s) => crypto.createHash('sha384').update(s).digest('hex');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

/** The reference set of the simulated host under test, computed independently. */
export function simulatedSet(hostMeasurement = sha256(fs.readFileSync(hostBin))) {
  return {
    version: 1,
    name: 'the host under test, simulated',
    tee: 'simulated',
    tdx: {
      mrtd: sha384('wasm-hypervisor simulated MRTD'),
      rtmr0: sha384('wasm-hypervisor simulated RTMR0'),
      rtmr1: sha384('wasm-hypervisor simulated RTMR1'),
      rtmr2: sha384('wasm-hypervisor simulated RTMR2'),
      app: { host_event: true },
    },
    host_measurements: [hostMeasurement],
  };
}

/**
 * Starts `hypervisor serve` on a fresh data dir; resolves once it listens. `extraConfig` is
 * appended to the configuration (TOML).
 */
export async function startHost(extraConfig = '') {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-hypervisor-sdk-'));
  const data = path.join(tmp, 'data');
  const cache = path.join(repoRoot, 'target/sdk-plugin-cache');
  fs.mkdirSync(cache, { recursive: true });
  // The compiled plug-in cache is sealed under the data dir's at-rest key: reuse one key.
  const cachedKey = path.join(cache, 'at-rest.key');
  if (fs.existsSync(cachedKey)) {
    fs.mkdirSync(path.join(data, 'keys'), { recursive: true });
    fs.copyFileSync(cachedKey, path.join(data, 'keys/at-rest.key'));
  }
  const config = path.join(tmp, 'config.toml');
  fs.writeFileSync(
    config,
    [
      `data_dir = ${JSON.stringify(data)}`,
      'listen = "127.0.0.1:0"',
      `plugin_cache_dir = ${JSON.stringify(cache)}`,
      '[limits]',
      'default_time_ms = 20000',
      '[policy]',
      'enabled = false',
      '[python]',
      `component = ${JSON.stringify(path.join(wasmDir, 'policy-python.wasm'))}`,
      '[attestation]',
      'provider = "simulated"',
      '',
    ].join('\n') + extraConfig,
  );
  const child = spawn(hostBin, ['serve', '--config', config], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderrTail = '';
  child.stderr.on('data', (d) => {
    stderrTail = (stderrTail + d.toString()).slice(-4000);
    if (process.env.HOST_LOG) process.stderr.write(d);
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the host did not start within 600 s:\n${stderrTail}`)), 600_000);
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = /hypervisor listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the host exited (${code}) before listening:\n${stderrTail}`));
    });
  });
  child.stdout.resume();
  if (!fs.existsSync(cachedKey)) fs.copyFileSync(path.join(data, 'keys/at-rest.key'), cachedKey);
  return {
    url,
    tmp,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** The TOML that makes a host take payments on `chain` (test/chain.js) through its facilitator,
 * paying `chain.payTo` in `chain.token`. */
export function paymentsConfig(chain) {
  return [
    '[payments]',
    'enabled = true',
    `component = ${JSON.stringify(path.join(wasmDir, 'payments.wasm'))}`,
    'mode = "facilitator"',
    `facilitator_url = ${JSON.stringify(chain.facilitatorUrl)}`,
    '[payments.price]',
    `pay_to = ${JSON.stringify(chain.payTo)}`,
    `asset = ${JSON.stringify(chain.token)}`,
    '',
  ].join('\n');
}
