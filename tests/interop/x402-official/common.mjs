// Helpers shared by deploy.mjs, facilitator.mjs, balance.mjs and selftest.mjs.
// Only node built-ins and viem (already a pinned dependency) are used.
import { createPublicClient, defineChain, http } from "viem";

// anvil's default dev accounts: the standard test mnemonic
// "test test test test test test test test test test test junk", derivation path m/44'/60'/0'/0/N.
// These keys are public knowledge (anvil prints them at start-up); never use them on a real chain.
export const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", // 0: 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", // 1: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", // 2: 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6", // 3: 0x90F79bf6EB2c4f870365E785982E1f101E93b906
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a", // 4: 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65
];

// Receipt/block polling interval for viem clients talking to anvil (automine: receipts are
// available right away, so there is no point in viem's default of 4 s).
export const POLLING_INTERVAL_MS = 50;

// Minimal ERC-20 read ABI (balance.mjs, selftest.mjs).
export const ERC20_BALANCE_ABI = [
  {
    type: "function",
    name: "balanceOf",
    stateMutability: "view",
    inputs: [{ name: "account", type: "address" }],
    outputs: [{ name: "", type: "uint256" }],
  },
];

/** Logs one line to stderr (stdout is reserved for each script's machine-readable output). */
export function log(scope, ...parts) {
  process.stderr.write(`[${scope}] ${parts.join(" ")}\n`);
}

/** Prints `message` to stderr and exits with status 1. */
export function die(scope, message) {
  process.stderr.write(`[${scope}] error: ${message}\n`);
  process.exit(1);
}

/**
 * Parses `--name value` / `--name=value` options. `spec` maps option names to
 * { required: bool, default: string|undefined }. Unknown options and missing
 * required ones are errors (thrown as Error with a usage-friendly message).
 */
export function parseArgs(argv, spec, usage) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      process.stderr.write(`usage: ${usage}\n`);
      process.exit(0);
    }
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}; usage: ${usage}`);
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else {
      value = argv[++i];
    }
    if (!(name in spec)) throw new Error(`unknown option --${name}; usage: ${usage}`);
    if (value === undefined) throw new Error(`option --${name} needs a value; usage: ${usage}`);
    out[name] = value;
  }
  for (const [name, opts] of Object.entries(spec)) {
    if (out[name] === undefined) {
      if (opts.required) throw new Error(`missing required option --${name}; usage: ${usage}`);
      if (opts.default !== undefined) out[name] = opts.default;
    }
  }
  return out;
}

/** Checks a 0x-prefixed 32-byte hex private key. */
export function checkPrivateKey(key, what = "private key") {
  if (!/^0x[0-9a-fA-F]{64}$/.test(key ?? "")) throw new Error(`${what} must be 0x followed by 64 hex digits`);
  return key;
}

/** Checks a 0x-prefixed 20-byte hex address. */
export function checkAddress(addr, what = "address") {
  if (!/^0x[0-9a-fA-F]{40}$/.test(addr ?? "")) throw new Error(`${what} must be 0x followed by 40 hex digits`);
  return addr;
}

/**
 * Connects to the RPC endpoint, asks it for its chain id and returns a plain viem chain
 * definition for it (deliberately NOT viem's `baseSepolia`, whose OP-stack formatters and
 * fee logic do not apply to anvil) plus a public client.
 */
export async function connectChain(rpcUrl) {
  let url;
  try {
    url = new URL(rpcUrl);
  } catch {
    throw new Error(`--rpc ${JSON.stringify(rpcUrl)} is not a URL (expected e.g. http://127.0.0.1:8545)`);
  }
  const transport = http(url.toString(), { retryCount: 0, timeout: 10_000 });
  const probe = createPublicClient({ transport });
  let chainId;
  try {
    chainId = await probe.getChainId();
  } catch (e) {
    throw new Error(`cannot reach the JSON-RPC endpoint ${url}: ${e.shortMessage ?? e.message}`);
  }
  const chain = defineChain({
    id: chainId,
    name: `local-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url.toString()] } },
  });
  // anvil mines each transaction at once, so poll for receipts often (viem's default is 4 s).
  const publicClient = createPublicClient({ chain, transport, pollingInterval: POLLING_INTERVAL_MS });
  return { chain, chainId, transport, publicClient };
}
