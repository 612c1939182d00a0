// `npm run docs` (typedoc) builds the API documentation and documents the public API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageDir } from './helpers.js';

const run = promisify(execFile);

test('npm run docs builds and documents Client, Policy and the error classes', { timeout: 600_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-hypervisor-docs-'));
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['run', 'docs', '--', '--out', out, '--treatWarningsAsErrors'], { cwd: packageDir, timeout: 600_000 });
    const page = (kind, name) => {
      const file = path.join(out, kind, `${name}.html`);
      assert.ok(fs.existsSync(file), `${kind}/${name}.html`);
      return fs.readFileSync(file, 'utf8');
    };
    const client = page('classes', 'Client');
    for (const m of ['createVerifiableSession', 'executeWasm', 'agentCard', 'mcpUrl', 'setConfig', 'exportState']) {
      assert.ok(client.includes(m), `Client.${m}`);
    }
    assert.ok(page('interfaces', 'Policy').includes('referenceValues'));
    for (const e of ['HypervisorError', 'VerifyError', 'GuestStoppedError', 'PaymentRequiredError', 'PaymentFailedError']) {
      page('classes', e);
    }
    assert.ok(page('classes', 'VerifiedCard').includes('mcpUrl'));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
