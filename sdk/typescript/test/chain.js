// A local EVM chain with Circle's USDC and the official x402 facilitator, from the repository's
// scripts in tests/interop/x402-official (as sdk/python/tests/chain.py): anvil (chain id 84532),
// deploy.mjs, facilitator.mjs, balance.mjs. Needs `npm ci` there (scripts/test.sh runs it).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './helpers.js';

const run = promisify(execFile);
export const interop = path.join(repoRoot, 'tests/interop/x402-official');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('anvil did not listen');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts anvil, deploys the token, starts the facilitator. */
export async function startChain() {
  const anvilBin = path.join(interop, 'node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil');
  if (!fs.existsSync(anvilBin)) throw new Error(`${anvilBin} is missing: run \`npm ci --ignore-scripts\` in ${interop}`);
  const procs = [];
  const stop = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }
    }
  };
  try {
    const port = await freePort();
    procs.push(spawn(anvilBin, ['--chain-id', '84532', '--port', String(port), '--silent'], { stdio: 'ignore' }));
    await waitForPort(port, 60_000);
    const rpc = `http://127.0.0.1:${port}`;
    const { stdout } = await run('node', [path.join(interop, 'deploy.mjs'), '--rpc', rpc], { timeout: 300_000 });
    const deployed = JSON.parse(stdout.trim());
    const fac = spawn('node', [path.join(interop, 'facilitator.mjs'), '--rpc', rpc, '--key', deployed.facilitator_key, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(fac);
    let errTail = '';
    fac.stderr.on('data', (d) => {
      errTail = (errTail + d.toString()).slice(-3000);
    });
    const facilitatorUrl = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the facilitator did not start:\n${errTail}`)), 120_000);
      fac.stdout.on('data', (d) => {
        out += d.toString();
        const m = /^listening (\S+)/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      fac.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the facilitator exited (${code}):\n${errTail}`));
      });
    });
    fac.stdout.resume();
    return {
      rpc,
      facilitatorUrl,
      token: deployed.token,
      payer: deployed.payer.address,
      payerKey: deployed.payer.private_key,
      payTo: deployed.pay_to,
      async balance(address) {
        const { stdout: out } = await run(
          'node',
          [path.join(interop, 'balance.mjs'), '--rpc', rpc, '--token', deployed.token, '--address', address],
          { timeout: 120_000 },
        );
        return BigInt(out.trim());
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
