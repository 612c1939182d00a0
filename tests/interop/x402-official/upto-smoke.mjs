// End-to-end smoke test of the x402 `upto` scheme in plain Node (no WASM Hypervisor): the
// official @x402/evm upto client signs, the official facilitator (facilitator.mjs --upto true,
// i.e. x402Facilitator + UptoEvmScheme from @x402/evm/upto/facilitator) verifies and settles
// against Permit2 and x402UptoPermit2Proxy placed by upto-contracts.mjs on a fresh anvil.
//
// Usage: node upto-smoke.mjs [--python PYTHON]
//   --python: a Python with the PyPI `x402` (>= 2.8, with eth-account) installed; then a payload
//     signed by the Python SDK's upto client (upto_payload.py) is verified and settled too.
//   stdout: exactly one JSON line, {"ok":true|false, ...results}; stderr: progress logs.
//   Exit status 0 when every check passed, 1 otherwise. Takes about 10 s.
//
// Steps:
//   1. anvil --chain-id 84532 --port 0; deploy.mjs (USDC, payer with 100 USDC);
//      installUptoContracts() (Permit2 + the upto proxy, both through the CREATE2 deployer at
//      their canonical addresses).
//   2. facilitator.mjs --upto true; /supported must list upto with extra.facilitatorAddress.
//   3. Before any Permit2 allowance: /verify answers permit2_allowance_required (the reason a
//      resource server turns into HTTP 412).
//   4. The payer approves Permit2 for the token (ERC-20 approve, max).
//   5. x402Client + UptoEvmScheme (@x402/evm/upto/client) signs for a maximum of 10000; /verify
//      is valid (and invalid with a corrupted signature); /settle with requirements.amount 2500
//      succeeds, the balances move by exactly 2500 and the answer's `amount` is "2500"; the same
//      payload cannot be settled again (Permit2 nonce spent).
//   6. A fresh payload settled with amount 0: success, empty transaction, no block mined, no
//      balance change. A fresh payload settled with 10001 (> the signed maximum) is refused.
//   7. (--python) the Python SDK's UptoEvmScheme signs for 10000; /verify is valid and /settle
//      of 1234 moves exactly 1234.
//   8. Everything started is killed, also on failure.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { x402Client } from "@x402/core/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { createWalletClient, maxUint256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ERC20_BALANCE_ABI, POLLING_INTERVAL_MS, connectChain } from "./common.mjs";
import { PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, installUptoContracts } from "./upto-contracts.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = (() => {
  const argv = process.argv.slice(2);
  if (argv.length === 0) return null;
  const m = argv.join("=").match(/^--python=(.+)$/);
  if (!m) {
    process.stderr.write("usage: node upto-smoke.mjs [--python PYTHON]\n");
    process.exit(2);
  }
  return m[1];
})();
const require = createRequire(import.meta.url);
const NETWORK = "eip155:84532";
const MAX_AMOUNT = "10000"; // what the client signs for (0.01 USDC)
const CHARGE = "2500"; // what the facilitator settles
const started = Date.now();
const children = new Set();
const results = { ok: false, checks: [] };

const say = (msg) => process.stderr.write(`[upto-smoke ${((Date.now() - started) / 1000).toFixed(2)}s] ${msg}\n`);

function check(name, ok, detail = "") {
  results.checks.push(ok ? name : `FAILED: ${name}`);
  say(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) throw new Error(`check failed: ${name}${detail ? ` (${detail})` : ""}`);
}

function anvilBinary() {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    return require.resolve(`${pkg}/bin/anvil${process.platform === "win32" ? ".exe" : ""}`);
  } catch {
    throw new Error(`${pkg} is not installed (run \`npm ci --ignore-scripts\` in ${HERE})`);
  }
}

/** Spawns a long-running child; resolves with { child, match } once a stdout line matches `ready`. */
function spawnUntil(label, cmd, args, ready, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: HERE, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let buf = "";
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${label} did not become ready within ${timeoutMs} ms`)), timeoutMs);
    function fail(e) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    }
    child.on("error", (e) => fail(new Error(`cannot start ${label}: ${e.message}`)));
    child.on("exit", (code, sig) => {
      children.delete(child);
      fail(new Error(`${label} exited early (code ${code}, signal ${sig})`));
    });
    child.stderr.on("data", (d) => process.stderr.write(String(d).replace(/^(?=.)/gm, `  [${label}] `)));
    child.stdout.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        const m = line.match(ready);
        if (m && !settled) {
          settled = true;
          clearTimeout(timer);
          resolve({ child, match: m });
        }
      }
    });
  });
}

/** Runs a node script to completion; resolves with its stdout (trimmed). */
function runNode(script, args) {
  return run(process.execPath, [script, ...args]);
}

/** Runs a program to completion (optionally feeding `input` on stdin); resolves with its stdout. */
function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: HERE, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    if (input !== undefined) child.stdin.end(input);
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      children.delete(child);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`${path.basename(args[0] ?? cmd)} exited with ${code}:\n${err}`));
    });
  });
}

async function killAll() {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const hard = setTimeout(() => child.kill("SIGKILL"), 2_000);
          child.once("exit", () => {
            clearTimeout(hard);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

async function post(base, route, payload, requirements) {
  const res = await fetch(`${base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ x402Version: payload.x402Version, paymentPayload: payload, paymentRequirements: requirements }),
  });
  const body = await res.json();
  say(`POST ${route} (amount ${requirements.amount}) -> ${res.status} ${JSON.stringify(body)}`);
  return { status: res.status, body };
}

async function main() {
  // 1. chain, token, contracts.
  const { match } = await spawnUntil(
    "anvil",
    anvilBinary(),
    ["--chain-id", "84532", "--port", "0", "--host", "127.0.0.1"],
    /^Listening on (127\.0\.0\.1:\d+)$/,
  );
  const rpc = `http://${match[1]}`;
  const deployed = JSON.parse(await runNode("deploy.mjs", ["--rpc", rpc]));
  const { token, pay_to: payTo } = deployed;
  const { chain, transport, publicClient } = await connectChain(rpc);
  const contracts = await installUptoContracts({ publicClient, chainId: deployed.chain_id, logger: say });
  results.contracts = {
    permit2: {
      address: PERMIT2_ADDRESS,
      method: contracts.permit2.method,
      canonical_create2: contracts.permit2.canonical,
      init_code_hash: contracts.permit2.init_code_hash,
      domain_separator: contracts.permit2.domain_separator,
      tx: contracts.permit2.tx,
    },
    upto_proxy: {
      address: UPTO_PROXY_ADDRESS,
      method: contracts.upto_proxy.method,
      canonical_create2: contracts.upto_proxy.canonical,
      init_code_hash: contracts.upto_proxy.init_code_hash,
      tx: contracts.upto_proxy.tx,
    },
  };
  check(
    "Permit2 and the upto proxy deployed through the CREATE2 deployer at their canonical addresses",
    contracts.permit2.canonical && contracts.permit2.method === "create2" && contracts.upto_proxy.canonical && contracts.upto_proxy.method === "create2",
  );

  const balance = (address) => publicClient.readContract({ address: token, abi: ERC20_BALANCE_ABI, functionName: "balanceOf", args: [address] });
  const balances = async () => ({ payer: await balance(deployed.payer.address), payTo: await balance(payTo) });

  // 2. the facilitator, with upto registered.
  const { match: fac } = await spawnUntil(
    "facilitator",
    process.execPath,
    ["facilitator.mjs", "--rpc", rpc, "--key", deployed.facilitator_key, "--upto", "true"],
    /^listening (http:\/\/127\.0\.0\.1:\d+)$/,
  );
  const base = fac[1];
  const supported = await (await fetch(`${base}/supported`)).json();
  say(`GET /supported -> ${JSON.stringify(supported)}`);
  const uptoKind = supported.kinds.find((k) => k.x402Version === 2 && k.scheme === "upto" && k.network === NETWORK);
  const facilitatorAddress = uptoKind?.extra?.facilitatorAddress;
  check("/supported lists upto with extra.facilitatorAddress", facilitatorAddress === deployed.facilitator_address, JSON.stringify(uptoKind));
  check("/supported still lists exact", supported.kinds.some((k) => k.x402Version === 2 && k.scheme === "exact" && k.network === NETWORK));

  // The official client: x402Client + the upto EVM client scheme; the local token opted in.
  const payer = privateKeyToAccount(deployed.payer.private_key);
  const client = new x402Client()
    .register(NETWORK, new UptoEvmScheme(payer))
    .setSpendControls({ allowedAssets: [{ network: NETWORK, asset: token }] });
  const requirements = {
    scheme: "upto",
    network: NETWORK,
    amount: MAX_AMOUNT,
    asset: token,
    payTo,
    maxTimeoutSeconds: 300,
    // as the official upto server scheme (@x402/evm/upto/server) builds them
    extra: { name: "USDC", version: "2", assetTransferMethod: "permit2", facilitatorAddress },
  };
  const paymentRequired = {
    x402Version: 2,
    error: "PAYMENT-SIGNATURE header is required",
    resource: { url: "http://127.0.0.1/upto-smoke/metered", description: "x402 upto smoke", mimeType: "application/json" },
    accepts: [requirements],
  };
  const sign = () => client.createPaymentPayload(paymentRequired);

  // 3. no Permit2 allowance yet.
  const early = await sign();
  let r = await post(base, "/verify", early, requirements);
  check("/verify without a Permit2 allowance: permit2_allowance_required", r.status === 400 && r.body.invalidReason === "permit2_allowance_required");
  results.no_allowance_verify = r.body;

  // 4. approve Permit2 (max) from the payer.
  const wallet = createWalletClient({ account: payer, chain, transport, pollingInterval: POLLING_INTERVAL_MS });
  const approveTx = await wallet.writeContract({
    address: token,
    abi: [{ type: "function", name: "approve", stateMutability: "nonpayable", inputs: [{ type: "address" }, { type: "uint256" }], outputs: [{ type: "bool" }] }],
    functionName: "approve",
    args: [PERMIT2_ADDRESS, maxUint256],
  });
  const approveReceipt = await publicClient.waitForTransactionReceipt({ hash: approveTx });
  check("payer approved Permit2 (max)", approveReceipt.status === "success", approveTx);

  // 5. sign for 10000, settle 2500.
  const payload = await sign();
  results.payload = payload;
  const auth = payload.payload?.permit2Authorization;
  check(
    "client payload shape",
    payload.x402Version === 2 &&
      payload.accepted?.scheme === "upto" &&
      /^0x[0-9a-f]{130}$/.test(payload.payload.signature) &&
      auth.spender === UPTO_PROXY_ADDRESS &&
      auth.permitted.amount === MAX_AMOUNT &&
      auth.witness.to === payTo &&
      auth.witness.facilitator === facilitatorAddress &&
      auth.witness.validAfter === "0",
  );
  r = await post(base, "/verify", payload, requirements);
  check("/verify is valid", r.status === 200 && r.body.isValid === true && r.body.payer === payer.address);
  results.verify = r.body;

  const corrupted = structuredClone(payload);
  const sig = corrupted.payload.signature;
  corrupted.payload.signature = sig.slice(0, 10) + (sig[10] === "0" ? "1" : "0") + sig.slice(11);
  r = await post(base, "/verify", corrupted, requirements);
  check("/verify with a corrupted signature is invalid", r.status === 400 && r.body.isValid === false, r.body.invalidReason);

  const before = await balances();
  r = await post(base, "/settle", payload, { ...requirements, amount: CHARGE });
  check(
    `/settle ${CHARGE} of ${MAX_AMOUNT} succeeds`,
    r.status === 200 && r.body.success === true && /^0x[0-9a-f]{64}$/.test(r.body.transaction) && r.body.amount === CHARGE,
    `tx=${r.body.transaction} amount=${r.body.amount}`,
  );
  results.settle = r.body;
  const after = await balances();
  check(
    `balances moved by exactly ${CHARGE}`,
    before.payer - after.payer === BigInt(CHARGE) && after.payTo - before.payTo === BigInt(CHARGE),
    `payer ${before.payer} -> ${after.payer}, pay_to ${before.payTo} -> ${after.payTo}`,
  );
  results.balances = {
    payer_before: String(before.payer),
    payer_after: String(after.payer),
    pay_to_before: String(before.payTo),
    pay_to_after: String(after.payTo),
  };
  const receipt = await publicClient.getTransactionReceipt({ hash: r.body.transaction });
  check("the settlement tx went to the upto proxy", receipt.to?.toLowerCase() === UPTO_PROXY_ADDRESS.toLowerCase() && receipt.status === "success", `gas ${receipt.gasUsed}`);
  results.settle_gas = String(receipt.gasUsed);

  r = await post(base, "/settle", payload, { ...requirements, amount: CHARGE });
  const afterReplay = await balances();
  check(
    "replayed /settle is refused and moves nothing",
    r.status === 400 && r.body.success === false && afterReplay.payer === after.payer && afterReplay.payTo === after.payTo,
    r.body.errorReason,
  );
  results.replay = r.body.errorReason;

  // 6. settle 0: no transaction.
  const zeroPayload = await sign();
  const blockBefore = await publicClient.getBlockNumber();
  const nonceBefore = await publicClient.getTransactionCount({ address: deployed.facilitator_address });
  r = await post(base, "/settle", zeroPayload, { ...requirements, amount: "0" });
  const blockAfter = await publicClient.getBlockNumber();
  const nonceAfter = await publicClient.getTransactionCount({ address: deployed.facilitator_address });
  const afterZero = await balances();
  check(
    "/settle 0 succeeds without a transaction",
    r.status === 200 && r.body.success === true && r.body.transaction === "" && r.body.amount === "0" &&
      blockAfter === blockBefore && nonceAfter === nonceBefore && afterZero.payer === after.payer && afterZero.payTo === after.payTo,
    `blocks ${blockBefore} -> ${blockAfter}, facilitator nonce ${nonceBefore} -> ${nonceAfter}`,
  );
  results.settle_zero = r.body;

  const overPayload = await sign();
  r = await post(base, "/settle", overPayload, { ...requirements, amount: String(BigInt(MAX_AMOUNT) + 1n) });
  check("/settle above the signed maximum is refused", r.status === 400 && r.body.success === false, r.body.errorReason);
  results.settle_over = r.body.errorReason;
  const afterOver = await balances();
  check("the refused settle moved nothing", afterOver.payer === after.payer && afterOver.payTo === after.payTo);

  // 7. a payload signed by the Python SDK.
  if (PYTHON) {
    const pyPayload = JSON.parse(await run(PYTHON, ["upto_payload.py", deployed.payer.private_key], JSON.stringify(paymentRequired)));
    results.python_payload = pyPayload;
    r = await post(base, "/verify", pyPayload, requirements);
    check("/verify of the Python SDK's upto payload is valid", r.status === 200 && r.body.isValid === true);
    const pyCharge = "1234";
    const pyBefore = await balances();
    r = await post(base, "/settle", pyPayload, { ...requirements, amount: pyCharge });
    const pyAfter = await balances();
    check(
      `/settle ${pyCharge} of the Python payload moves exactly ${pyCharge}`,
      r.status === 200 && r.body.success === true && r.body.amount === pyCharge &&
        pyBefore.payer - pyAfter.payer === BigInt(pyCharge) && pyAfter.payTo - pyBefore.payTo === BigInt(pyCharge),
      `tx=${r.body.transaction}`,
    );
    results.python_settle = r.body;
  }

  results.ok = true;
}

let failure = null;
try {
  await main();
} catch (e) {
  failure = e;
  results.error = String(e.message ?? e);
} finally {
  await killAll();
}
results.seconds = Number(((Date.now() - started) / 1000).toFixed(2));
process.stdout.write(JSON.stringify(results) + "\n");
if (failure) say(`FAIL: ${failure.stack ?? failure}`);
process.exit(failure ? 1 : 0);
