// Self-test: proves anvil + deploy.mjs + facilitator.mjs + balance.mjs work together, without
// WASM Hypervisor. Everything runs on loopback; nothing touches a public network.
//
// Usage: node selftest.mjs [--simulate-in-settle true|false]
//   exit status 0 and a final "PASS" line on success, 1 and "FAIL" otherwise. The option is passed
//   on to facilitator.mjs (default false, as in the packages).
//
// Steps:
//   1. spawn anvil (the platform binary from @foundry-rs/anvil-linux-amd64) with
//      --chain-id 84532 --port 0 (anvil picks a free port and reports it)
//   2. node deploy.mjs   → USDC (FiatTokenV2_2 behind FiatTokenProxy) + accounts
//   3. node facilitator.mjs → official x402 facilitator on 127.0.0.1:<OS-chosen port>
//   4. for x402 v2 (eip155:84532) and v1 (base-sepolia): build requirements, let the official
//      client (x402Client + ExactEvmScheme / ExactEvmSchemeV1) sign a payment, then
//      /verify (valid), /verify with a corrupted signature (invalid), /settle (success + tx hash),
//      balances moved by exactly the amount (checked with balance.mjs), a second /settle of the
//      same payload (refused, balances unchanged) and /verify of the spent payload (invalid).
//   5. SIGTERM the facilitator (must exit 0) and kill anvil — also when a step fails.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import { privateKeyToAccount } from "viem/accounts";

const SIMULATE_IN_SETTLE = (() => {
  const argv = process.argv.slice(2);
  if (argv.length === 0) return "false";
  const m = argv.join("=").match(/^--simulate-in-settle=(true|false)$/);
  if (!m) {
    process.stderr.write("usage: node selftest.mjs [--simulate-in-settle true|false]\n");
    process.exit(2);
  }
  return m[1];
})();
const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AMOUNT = "10000"; // 0.01 USDC
const started = Date.now();
const children = new Set();
const checks = []; // { name, ok, detail }

const elapsed = () => `${((Date.now() - started) / 1000).toFixed(2)}s`;
const say = (msg) => process.stdout.write(`[selftest ${elapsed()}] ${msg}\n`);

/** Records a check; throws (ending the run) when it fails. */
function check(name, ok, detail = "") {
  checks.push({ name, ok, detail });
  say(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) throw new Error(`check failed: ${name}`);
}

/** Path of the anvil binary for this platform (npm optional dependency of @foundry-rs/anvil). */
function anvilBinary() {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    return require.resolve(`${pkg}/bin/anvil${process.platform === "win32" ? ".exe" : ""}`);
  } catch {
    throw new Error(`${pkg} is not installed (run \`npm ci --ignore-scripts\` in ${HERE})`);
  }
}

/**
 * Spawns a long-running child and resolves with { child, match } once a stdout line matches
 * `ready`. Its stderr is forwarded with a prefix; it is killed at the end of the run.
 */
function spawnUntil(label, cmd, args, ready, timeoutMs = 15_000) {
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
    child.on("error", (e) => fail(new Error(`cannot start ${label} (${cmd}): ${e.message}`)));
    child.on("exit", (code, sig) => {
      children.delete(child);
      fail(new Error(`${label} exited early (code ${code}, signal ${sig})`));
    });
    child.stderr.on("data", (d) => process.stderr.write(prefixLines(label, d)));
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

const prefixLines = (label, data) =>
  String(data)
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => (l.startsWith("[") ? `  ${l}\n` : `  [${label}] ${l}\n`))
    .join("");

/** Runs a node script to completion; resolves with its stdout (trimmed), rejects on non-zero exit. */
function runNode(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: HERE, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      children.delete(child);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`${script} ${args.join(" ")} exited with ${code}:\n${err}`));
    });
  });
}

/** Kills every child still running: SIGTERM, then SIGKILL after 2 s. */
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
// Last resort if the process exits some other way (uncaught error, Ctrl-C).
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

async function post(base, route, payload, requirements) {
  const res = await fetch(`${base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ x402Version: payload.x402Version, paymentPayload: payload, paymentRequirements: requirements }),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${route} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`);
  }
  say(`POST ${route} -> ${res.status} ${JSON.stringify(body)}`);
  return { status: res.status, body };
}

/** Flips one hex digit in the middle of the signature's `r`, which makes it invalid. */
function corruptSignature(payload) {
  const copy = structuredClone(payload);
  const sig = copy.payload.signature;
  const i = 10;
  copy.payload.signature = sig.slice(0, i) + (sig[i] === "0" ? "1" : "0") + sig.slice(i + 1);
  return copy;
}

async function scenario(label, { base, deployed, client, paymentRequired }) {
  const { token, payer, pay_to: payTo } = deployed;
  const rpcArgs = ["--rpc", deployed.rpc, "--token", token];
  const balance = async (address) => BigInt(await runNode("balance.mjs", [...rpcArgs, "--address", address]));
  const requirements = paymentRequired.accepts[0];

  const payload = await client.createPaymentPayload(paymentRequired);
  say(`${label}: payment payload ${JSON.stringify(payload)}`);
  check(`${label}: client built a v${paymentRequired.x402Version} payload`, payload.x402Version === paymentRequired.x402Version);

  let r = await post(base, "/verify", payload, requirements);
  check(`${label}: /verify is valid`, r.status === 200 && r.body.isValid === true && r.body.payer === payer.address, JSON.stringify(r.body));

  r = await post(base, "/verify", corruptSignature(payload), requirements);
  check(`${label}: /verify with a corrupted signature is invalid`, r.status === 400 && r.body.isValid === false, `invalidReason=${r.body.invalidReason}`);

  const [payerBefore, payToBefore] = await Promise.all([balance(payer.address), balance(payTo)]);
  r = await post(base, "/settle", payload, requirements);
  check(
    `${label}: /settle succeeds with a tx hash`,
    r.status === 200 && r.body.success === true && /^0x[0-9a-f]{64}$/.test(r.body.transaction) && r.body.network === requirements.network,
    `tx=${r.body.transaction}`,
  );
  const [payerAfter, payToAfter] = await Promise.all([balance(payer.address), balance(payTo)]);
  check(
    `${label}: balances moved by exactly ${AMOUNT}`,
    payerBefore - payerAfter === BigInt(AMOUNT) && payToAfter - payToBefore === BigInt(AMOUNT),
    `payer ${payerBefore} -> ${payerAfter}, pay_to ${payToBefore} -> ${payToAfter}`,
  );

  r = await post(base, "/settle", payload, requirements);
  check(`${label}: replayed /settle is refused`, r.status === 400 && r.body.success === false, `errorReason=${JSON.stringify(r.body.errorReason)}`);
  const [payerFinal, payToFinal] = await Promise.all([balance(payer.address), balance(payTo)]);
  check(`${label}: replay moved nothing`, payerFinal === payerAfter && payToFinal === payToAfter);

  r = await post(base, "/verify", payload, requirements);
  check(`${label}: /verify of the spent payload is invalid`, r.status === 400 && r.body.isValid === false, `invalidReason=${r.body.invalidReason}`);
}

async function main() {
  // 1. anvil
  const anvil = anvilBinary();
  const { match: anvilMatch } = await spawnUntil(
    "anvil",
    anvil,
    ["--chain-id", "84532", "--port", "0", "--host", "127.0.0.1"],
    /^Listening on (127\.0\.0\.1:\d+)$/,
  );
  const rpc = `http://${anvilMatch[1]}`;
  check("anvil is listening", true, rpc);

  // 2. deploy
  const deployOut = await runNode("deploy.mjs", ["--rpc", rpc]);
  check("deploy.mjs printed exactly one line", deployOut.split("\n").length === 1, deployOut);
  const deployed = { ...JSON.parse(deployOut), rpc };
  const distinct = new Set([deployed.payer.address, deployed.pay_to, deployed.facilitator_address]);
  check("deploy.mjs output is complete", deployed.chain_id === 84532 && /^0x[0-9a-fA-F]{40}$/.test(deployed.token) && distinct.size === 3);

  // 3. facilitator
  const { child: facilitator, match: facMatch } = await spawnUntil(
    "facilitator",
    process.execPath,
    ["facilitator.mjs", "--rpc", rpc, "--key", deployed.facilitator_key, "--simulate-in-settle", SIMULATE_IN_SETTLE],
    /^listening (http:\/\/127\.0\.0\.1:\d+)$/,
  );
  const base = facMatch[1];
  check("facilitator is listening", true, base);
  const supported = await (await fetch(`${base}/supported`)).json();
  say(`GET /supported -> ${JSON.stringify(supported)}`);
  const has = (v, n) => supported.kinds.some((k) => k.x402Version === v && k.scheme === "exact" && k.network === n);
  check("/supported lists v2 eip155:84532 and v1 base-sepolia", has(2, "eip155:84532") && has(1, "base-sepolia"));
  check("/supported names the facilitator signer", (supported.signers["eip155:*"] ?? []).includes(deployed.facilitator_address));

  // 4. the official client: one x402Client with the v2 and v1 exact EVM schemes.
  const account = privateKeyToAccount(deployed.payer.private_key);
  // The client's default spend controls only pay "default assets" (the real USDC addresses it
  // knows per network), so the locally deployed token must be opted in explicitly.
  const client = new x402Client()
    .register("eip155:84532", new ExactEvmScheme(account))
    .registerV1("base-sepolia", new ExactEvmSchemeV1(account))
    .setSpendControls({
      allowedAssets: [
        { network: "eip155:84532", asset: deployed.token },
        { network: "base-sepolia", asset: deployed.token },
      ],
    });
  const extra = { name: "USDC", version: "2" };
  const resourceUrl = "http://127.0.0.1/selftest/paid";

  await scenario("v2", {
    base,
    deployed,
    client,
    paymentRequired: {
      x402Version: 2,
      error: "PAYMENT-SIGNATURE header is required",
      resource: { url: resourceUrl, description: "x402 selftest", mimeType: "application/json" },
      accepts: [
        {
          scheme: "exact",
          network: "eip155:84532",
          amount: AMOUNT,
          asset: deployed.token,
          payTo: deployed.pay_to,
          maxTimeoutSeconds: 60,
          extra,
        },
      ],
    },
  });

  await scenario("v1", {
    base,
    deployed,
    client,
    paymentRequired: {
      x402Version: 1,
      error: "X-PAYMENT header is required",
      accepts: [
        {
          scheme: "exact",
          network: "base-sepolia",
          maxAmountRequired: AMOUNT,
          resource: resourceUrl,
          description: "x402 selftest",
          mimeType: "application/json",
          payTo: deployed.pay_to,
          maxTimeoutSeconds: 60,
          asset: deployed.token,
          extra,
        },
      ],
    },
  });

  // 5. SIGTERM must end the facilitator cleanly.
  const code = await new Promise((resolve) => {
    facilitator.removeAllListeners("exit"); // drop spawnUntil's "exited early" handler
    facilitator.once("exit", (c, s) => {
      children.delete(facilitator);
      resolve(c ?? s);
    });
    facilitator.kill("SIGTERM");
  });
  check("facilitator exits 0 on SIGTERM", code === 0, `exit ${code}`);
}

let failed = null;
try {
  await main();
} catch (e) {
  failed = e;
} finally {
  await killAll();
}
const passed = checks.filter((c) => c.ok).length;
if (failed) {
  if (!/^check failed/.test(failed.message)) say(`error: ${failed.stack ?? failed.message}`);
  say(`FAIL (${passed} checks passed before the failure, ${elapsed()})`);
  process.exit(1);
}
say(`PASS (${passed} checks, ${elapsed()})`);
