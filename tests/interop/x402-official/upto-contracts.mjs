// The on-chain pieces of the x402 `upto` scheme, placed at their canonical addresses on a
// running anvil, so the official `@x402/evm` upto client and facilitator work against it:
//
//   Permit2                0x000000000022D473030F116dDEE9F6B43aC78BA3  (Uniswap)
//   x402UptoPermit2Proxy   0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002  (x402)
//
// x402UptoPermit2Proxy is compiled here from its published source (contracts/, copied from the
// x402 repository; see contracts/README.md) with solc-js 0.8.28 at the settings of x402's
// contracts/evm/foundry.toml (optimizer on, 200 runs, no via-IR, evmVersion cancun, no CBOR
// metadata, bytecode_hash none). The creation code plus the constructor argument (the Permit2
// address) hashes to the init code hash that x402's vanity salt was mined for, so deploying it
// through the deterministic CREATE2 deployer (0x4e59b448…, present on anvil) with x402's salt
// (contracts/evm/script/Deploy.s.sol `UPTO_SALT`) lands exactly at the canonical address, as on
// a real chain. That is checked before anything is sent; if it ever stopped matching, the
// fallback is to `anvil_setCode` the runtime code there: solc's deployed bytecode with the
// PERMIT2 immutable filled in, after checking that it equals what running the init code with
// eth_call returns (`upto_proxy.method` in the output says which path was taken).
//
// Permit2's code comes from Uniswap's precompiled runtime bytecode shipped in npm
// @uniswap/v4-periphery 1.0.3 (lib/permit2/test/utils/DeployPermit2.sol, the code Permit2's own
// README tells integrators to etch in tests). Permit2 has two immutables (EIP712.sol): the chain
// id it was deployed on and the domain separator cached for it; that bytecode carries those of
// the chain-31337 test deployment it was taken from. With both zeroed, the runtime code is what
// solc leaves in Permit2's init code, after a 193-byte constructor (PERMIT2_CONSTRUCTOR below):
// so PERMIT2_CONSTRUCTOR ‖ zeroed runtime is Permit2's canonical init code, which is checked by
// hashing it: CREATE2(deployer, Permit2's salt from its script/DeployPermit2.s.sol, init code)
// must come out as 0x000000000022D473030F116dDEE9F6B43aC78BA3. It is then deployed through the
// CREATE2 deployer, as on mainnet, so its own constructor stores this chain's id and domain
// separator. Fallback (--permit2-method setcode): the shipped runtime with the two immutables
// rewritten to those values, put there with `anvil_setCode`. Either way DOMAIN_SEPARATOR() is
// checked against keccak256(EIP712Domain("Permit2", chainId, Permit2)), the domain @x402/evm
// signs, and the code on chain against the rewritten runtime (the two paths give the same code).
//
// Library (ES module):
//   import { installUptoContracts, compileUptoProxy, permit2RuntimeCode } from "./upto-contracts.mjs";
//   await installUptoContracts({ rpc: "http://127.0.0.1:8545" })  → the summary printed below
//
// CLI:
//   node upto-contracts.mjs --rpc http://127.0.0.1:PORT [--permit2-method create2|setcode]
//                           [--proxy-method create2|setcode]
//     stdout: one JSON line {"chain_id", "permit2": {...}, "upto_proxy": {...}}
//     Both methods default to create2 (a transaction to the CREATE2 deployer); setcode uses
//     anvil_setCode (no transaction). create2 falls back to setcode by itself when the deployer
//     is missing or the computed address is not the canonical one (logged; `method` in the
//     output says what was done).
//   node upto-contracts.mjs --check
//     no chain: builds both init codes and prints their hashes and CREATE2 addresses
//     (exit 1 when either is not the canonical address)
// stderr: progress logs. Exit status 0 on success, 1 on any failure.
//
// The CREATE2 deployments are transactions from a dedicated impersonated address (PLACER below,
// given 1 ETH with anvil_setBalance), so the nonces of anvil's dev accounts (and hence every
// address deploy.mjs produces) are left alone; it works before or after deploy.mjs.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  concatHex,
  encodeAbiParameters,
  getAddress,
  getContractAddress,
  hashDomain,
  keccak256,
  parseEther,
  toHex,
} from "viem";
import { connectChain, die, log, parseArgs } from "./common.mjs";

const SCOPE = "upto-contracts";
const USAGE =
  "node upto-contracts.mjs --rpc http://127.0.0.1:PORT [--permit2-method create2|setcode] [--proxy-method create2|setcode] | --check";
const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
export const UPTO_PROXY_ADDRESS = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
/** Arachnid's deterministic deployment proxy: calldata = salt (32 bytes) ‖ init code. */
export const CREATE2_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C";
/** x402 contracts/evm/script/Deploy.s.sol `UPTO_SALT` (vanity-mined for UPTO_PROXY_ADDRESS). */
export const UPTO_SALT = "0x000000000000000000000000000000000000000000000000b000000001db633d";
/** Uniswap/permit2 script/DeployPermit2.s.sol `SALT` (also in the npm package's copy). */
export const PERMIT2_SALT = "0x0000000000000000000000000000000000000000d3af2663da51c10215000000";
/** Sends the CREATE2 transaction (impersonated; keccak256("x402 upto-contracts placer")[12:]). */
export const PLACER = getAddress(`0x${keccak256(toHex("x402 upto-contracts placer")).slice(-40)}`);

/** solc version and settings of x402 contracts/evm/foundry.toml. */
export const SOLC_VERSION = "0.8.28";
export const PROXY_SETTINGS = {
  remappings: ["@openzeppelin/contracts/=lib/openzeppelin-contracts/contracts/"],
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
  evmVersion: "cancun", // forge's default for solc 0.8.28 (foundry.toml does not set it)
  metadata: { appendCBOR: false, bytecodeHash: "none" }, // cbor_metadata = false, bytecode_hash = "none"
};
const PROXY_SOURCE = "src/x402UptoPermit2Proxy.sol";
const PROXY_CONTRACT = "x402UptoPermit2Proxy";

/** The values Uniswap's precompiled Permit2 runtime carries in its two immutables. */
const PERMIT2_SHIPPED_CHAIN_ID = 31337n;
const PERMIT2_SHIPPED_DOMAIN_SEPARATOR = "0xd5a17abc3865df5c1400c0299bd4ce2eefc8114aec5f9d3dded1745783e57b98";
const PERMIT2_SHIPPED_SIZE = 9152;
/**
 * Permit2's constructor as solc emits it in front of the runtime code: the first 193 bytes of
 * the init code of Permit2 at Uniswap/permit2@9681052 (the commit deployed in Nov 2022), built
 * with solc 0.8.17, via-IR, 1,000,000 optimizer runs, evm london, bytecode_hash none, in forge's
 * compilation unit (src/, test/, script/ and the lib/ submodules they import). It computes the
 * domain separator and writes it and block.chainid into the runtime code at byte offsets 0x1b47
 * and 0x1b21, then returns the 0x23c0 (9152) bytes that follow it. Not trusted blindly: the
 * init code built with it must hash to Permit2's canonical CREATE2 address.
 */
const PERMIT2_CONSTRUCTOR =
  "0x60c0346100bb574660a052602081017f8cad95687ba82c2ce50e74f7b754645e5117c3a5bec8151c0726d5857980a8668152" +
  "7f9ac997416e8ff9d2ff6bebeb7149f65cdae5e32e2b90440b566bb3044041d36a60408301524660608301523060808301526080" +
  "825260a082019180831060018060401b038411176100a557826040525190206080526123c090816100c1823960805181611b47" +
  "015260a05181611b210152f35b634e487b7160e01b600052604160045260246000fd5b600080fdfe";
const PERMIT2_IMMUTABLE_OFFSETS = { chainId: 0x1b21, domainSeparator: 0x1b47 };

export const PERMIT2_DOMAIN_TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
};

const PROXY_READ_ABI = [
  { type: "function", name: "PERMIT2", stateMutability: "view", inputs: [], outputs: [{ type: "address" }] },
  { type: "function", name: "WITNESS_TYPE_STRING", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] },
];
const PERMIT2_READ_ABI = [
  { type: "function", name: "DOMAIN_SEPARATOR", stateMutability: "view", inputs: [], outputs: [{ type: "bytes32" }] },
];

const strip0x = (h) => h.replace(/^0x/, "");

/** Every file under dir, as paths relative to dir with forward slashes. */
function listFiles(dir, prefix = "") {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? listFiles(dir, rel) : [rel];
  });
}

let compiled; // memoised: solc-js takes about a second

/**
 * Compiles x402UptoPermit2Proxy from contracts/ (source names as in x402's contracts/evm, so
 * `src/…` and `lib/openzeppelin-contracts/…`). Returns its ABI, creation and runtime code, the
 * init code with the Permit2 constructor argument, its hash, and the CREATE2 address with x402's
 * salt.
 */
export function compileUptoProxy() {
  if (compiled) return compiled;
  const solc = require("solc");
  const version = solc.version();
  if (!version.startsWith(`${SOLC_VERSION}+`)) throw new Error(`npm solc is ${version}, expected ${SOLC_VERSION} (run npm ci)`);
  const root = path.join(HERE, "contracts");
  const sources = {};
  for (const rel of listFiles(root).filter((f) => f.endsWith(".sol")).sort()) {
    sources[rel] = { content: readFileSync(path.join(root, rel), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...PROXY_SETTINGS,
      outputSelection: {
        [PROXY_SOURCE]: { [PROXY_CONTRACT]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join("\n")}`);
  const c = output.contracts?.[PROXY_SOURCE]?.[PROXY_CONTRACT];
  if (!c?.evm?.bytecode?.object) throw new Error(`solc produced no bytecode for ${PROXY_CONTRACT}`);
  const creationCode = `0x${c.evm.bytecode.object}`;
  const initCode = concatHex([creationCode, encodeAbiParameters([{ type: "address" }], [PERMIT2_ADDRESS])]);
  const initCodeHash = keccak256(initCode);
  const create2Address = getContractAddress({ opcode: "CREATE2", from: CREATE2_DEPLOYER, salt: UPTO_SALT, bytecodeHash: initCodeHash });

  // The runtime code the constructor leaves behind: solc's deployed bytecode with the one
  // immutable (PERMIT2) written at each of its reference offsets.
  let runtime = c.evm.deployedBytecode.object;
  const refs = Object.values(c.evm.deployedBytecode.immutableReferences ?? {});
  if (refs.length !== 1) throw new Error(`expected 1 immutable in ${PROXY_CONTRACT}, found ${refs.length}`);
  const permit2Word = strip0x(encodeAbiParameters([{ type: "address" }], [PERMIT2_ADDRESS]));
  for (const { start, length } of refs[0]) {
    if (length !== 32) throw new Error(`unexpected immutable length ${length}`);
    runtime = runtime.slice(0, 2 * start) + permit2Word + runtime.slice(2 * (start + length));
  }
  compiled = {
    solcVersion: version,
    abi: c.abi,
    creationCode,
    initCode,
    initCodeHash,
    create2Address,
    canonical: create2Address === UPTO_PROXY_ADDRESS,
    runtimeCode: `0x${runtime}`,
  };
  return compiled;
}

/** The precompiled Permit2 runtime code as shipped in @uniswap/v4-periphery. */
export function shippedPermit2Runtime() {
  const pkg = path.dirname(require.resolve("@uniswap/v4-periphery/package.json"));
  const file = path.join(pkg, "lib/permit2/test/utils/DeployPermit2.sol");
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file} (did \`npm ci --ignore-scripts\` run?): ${e.message}`);
  }
  const hex = text.match(/hex"([0-9a-fA-F]+)"/)?.[1];
  if (!hex) throw new Error(`no hex"…" bytecode literal in ${file}`);
  if (hex.length / 2 !== PERMIT2_SHIPPED_SIZE) throw new Error(`Permit2 bytecode in ${file} is ${hex.length / 2} bytes, expected ${PERMIT2_SHIPPED_SIZE}`);
  return `0x${hex.toLowerCase()}`;
}

/** Offsets (of the 32 data bytes) of every PUSH32 whose operand equals `word` (an opcode walk, so
 * PUSH data is never mistaken for code). */
function push32Offsets(code, word) {
  const bytes = Buffer.from(strip0x(code), "hex");
  const want = Buffer.from(strip0x(word), "hex");
  const found = [];
  for (let i = 0; i < bytes.length; i++) {
    const op = bytes[i];
    if (op >= 0x60 && op <= 0x7f) {
      const n = op - 0x5f;
      if (n === 32 && bytes.subarray(i + 1, i + 33).equals(want)) found.push(i + 1);
      i += n;
    }
  }
  return found;
}

/** keccak256(abi.encode(EIP712Domain typehash, keccak256("Permit2"), chainId, Permit2)). */
export function permit2DomainSeparator(chainId) {
  return hashDomain({ domain: { name: "Permit2", chainId, verifyingContract: PERMIT2_ADDRESS }, types: PERMIT2_DOMAIN_TYPES });
}

/**
 * Permit2's runtime code as its constructor would have left it at PERMIT2_ADDRESS on `chainId`:
 * the shipped bytecode with _CACHED_CHAIN_ID and _CACHED_DOMAIN_SEPARATOR rewritten.
 */
export function permit2RuntimeCode(chainId) {
  const shipped = shippedPermit2Runtime();
  const chainWord = toHex(PERMIT2_SHIPPED_CHAIN_ID, { size: 32 });
  const chainAt = push32Offsets(shipped, chainWord);
  const sepAt = push32Offsets(shipped, PERMIT2_SHIPPED_DOMAIN_SEPARATOR);
  if (chainAt.length !== 1 || sepAt.length !== 1) {
    throw new Error(`Permit2 bytecode: expected one PUSH32 of each immutable, found chain id ×${chainAt.length}, separator ×${sepAt.length}`);
  }
  if (chainAt[0] !== PERMIT2_IMMUTABLE_OFFSETS.chainId || sepAt[0] !== PERMIT2_IMMUTABLE_OFFSETS.domainSeparator) {
    throw new Error(`Permit2 bytecode: immutables at ${chainAt[0]}/${sepAt[0]}, the constructor writes ${PERMIT2_IMMUTABLE_OFFSETS.chainId}/${PERMIT2_IMMUTABLE_OFFSETS.domainSeparator}`);
  }
  const withImmutables = (chainWord, separatorWord) => {
    let hex = strip0x(shipped);
    const put = (offset, word) => {
      hex = hex.slice(0, 2 * offset) + strip0x(word) + hex.slice(2 * (offset + 32));
    };
    put(PERMIT2_IMMUTABLE_OFFSETS.chainId, chainWord);
    put(PERMIT2_IMMUTABLE_OFFSETS.domainSeparator, separatorWord);
    return `0x${hex}`;
  };
  const zero = toHex(0n, { size: 32 });
  const initCode = concatHex([PERMIT2_CONSTRUCTOR, withImmutables(zero, zero)]);
  const initCodeHash = keccak256(initCode);
  const create2Address = getContractAddress({ opcode: "CREATE2", from: CREATE2_DEPLOYER, salt: PERMIT2_SALT, bytecodeHash: initCodeHash });
  return {
    code: withImmutables(toHex(BigInt(chainId), { size: 32 }), permit2DomainSeparator(chainId)),
    initCode,
    initCodeHash,
    create2Address,
    canonical: create2Address === PERMIT2_ADDRESS,
  };
}

/** Sends `data` to the CREATE2 deployer from the impersonated PLACER; returns the tx hash. */
async function create2Deploy(publicClient, salt, initCode, what) {
  await rpcCall(publicClient, "anvil_setBalance", [PLACER, toHex(parseEther("1"))]);
  await rpcCall(publicClient, "anvil_impersonateAccount", [PLACER]);
  let tx;
  try {
    tx = await rpcCall(
      publicClient,
      "eth_sendTransaction",
      [{ from: PLACER, to: CREATE2_DEPLOYER, data: concatHex([salt, initCode]), gas: toHex(6_000_000n) }],
      `CREATE2 deployment of ${what}`,
    );
  } finally {
    await rpcCall(publicClient, "anvil_stopImpersonatingAccount", [PLACER]);
  }
  const receipt = await publicClient.waitForTransactionReceipt({ hash: tx, timeout: 30_000 });
  if (receipt.status !== "success") throw new Error(`CREATE2 deployment of ${what} reverted (tx ${tx})`);
  return tx;
}

/** "create2" unless the CREATE2 path cannot give the canonical address here. */
async function resolveMethod(publicClient, wanted, canonical, computed, what, logger) {
  if (wanted !== "create2") return wanted;
  if (!canonical) {
    logger(`warning: ${what} CREATE2 address ${computed} is not canonical; falling back to anvil_setCode`);
    return "setcode";
  }
  const deployerCode = await publicClient.getCode({ address: CREATE2_DEPLOYER });
  if (!deployerCode || deployerCode === "0x") {
    logger(`warning: no CREATE2 deployer at ${CREATE2_DEPLOYER}; falling back to anvil_setCode for ${what}`);
    return "setcode";
  }
  return "create2";
}

export async function rpcCall(publicClient, method, params, what) {
  try {
    return await publicClient.request({ method, params });
  } catch (e) {
    throw new Error(`${what ?? method} failed (is this an anvil node?): ${e.shortMessage ?? e.message}`);
  }
}

/**
 * Places Permit2 and x402UptoPermit2Proxy on the anvil at `rpc` (or through an existing viem
 * public client + chain id). `permit2Method` / `proxyMethod`: "create2" (default; falls back to
 * "setcode" when the computed address is not canonical or the deployer is missing) or
 * "setcode". Idempotent: code already in place and identical is left alone.
 */
export async function installUptoContracts({
  rpc,
  publicClient,
  chainId,
  permit2Method = "create2",
  proxyMethod = "create2",
  logger = (m) => log(SCOPE, m),
} = {}) {
  for (const m of [permit2Method, proxyMethod]) if (!["create2", "setcode"].includes(m)) throw new Error(`method ${m} is not create2 or setcode`);
  if (!publicClient) ({ publicClient, chainId } = await connectChain(rpc));
  chainId ??= await publicClient.getChainId();
  const same = (a, b) => (a ?? "0x").toLowerCase() === (b ?? "0x").toLowerCase();

  /** Puts `expected` runtime code at `address` by `method`; returns { method, status, tx }. */
  async function place(what, address, method, salt, initCode, expected) {
    const existing = await publicClient.getCode({ address });
    if (same(existing, expected)) return { method, status: "already", tx: null };
    if (existing && existing !== "0x" && method === "create2") {
      logger(`warning: other code is at ${address}; overwriting it with anvil_setCode`);
      method = "setcode";
    }
    let tx = null;
    if (method === "create2") tx = await create2Deploy(publicClient, salt, initCode, what);
    else await rpcCall(publicClient, "anvil_setCode", [address, expected], `anvil_setCode(${what})`);
    const placed = await publicClient.getCode({ address });
    if (!same(placed, expected)) {
      throw new Error(`${what}: the code at ${address} (${((placed?.length ?? 2) - 2) / 2} bytes) is not the expected runtime code`);
    }
    return { method, status: "placed", tx };
  }

  // 1. Permit2.
  const permit2 = permit2RuntimeCode(chainId);
  const p2method = await resolveMethod(publicClient, permit2Method, permit2.canonical, permit2.create2Address, "Permit2", logger);
  const p2 = await place("Permit2", PERMIT2_ADDRESS, p2method, PERMIT2_SALT, permit2.initCode, permit2.code);
  const separator = await publicClient.readContract({ address: PERMIT2_ADDRESS, abi: PERMIT2_READ_ABI, functionName: "DOMAIN_SEPARATOR" });
  const expectedSeparator = permit2DomainSeparator(chainId);
  if (separator !== expectedSeparator) throw new Error(`Permit2 DOMAIN_SEPARATOR() is ${separator}, expected ${expectedSeparator}`);
  logger(
    `Permit2 ${p2.status} at ${PERMIT2_ADDRESS} (${p2.method}${p2.tx ? `, tx ${p2.tx}` : ""}, init code hash ${permit2.initCodeHash}); DOMAIN_SEPARATOR ${separator}`,
  );

  // 2. x402UptoPermit2Proxy.
  const proxy = compileUptoProxy();
  logger(`compiled ${PROXY_CONTRACT} with solc ${proxy.solcVersion}: init code hash ${proxy.initCodeHash}, CREATE2 address ${proxy.create2Address}`);
  const pxmethod = await resolveMethod(publicClient, proxyMethod, proxy.canonical, proxy.create2Address, PROXY_CONTRACT, logger);
  if (pxmethod === "setcode") {
    // eth_call of init code (no `to`) runs the constructor and returns the runtime code.
    const { data: runtime } = await publicClient.call({ data: proxy.initCode });
    if (!same(runtime, proxy.runtimeCode)) throw new Error(`${PROXY_CONTRACT}: the constructor's runtime code differs from solc's`);
  }
  const px = await place(PROXY_CONTRACT, UPTO_PROXY_ADDRESS, pxmethod, UPTO_SALT, proxy.initCode, proxy.runtimeCode);
  const [proxyPermit2, witnessTypeString] = await Promise.all([
    publicClient.readContract({ address: UPTO_PROXY_ADDRESS, abi: PROXY_READ_ABI, functionName: "PERMIT2" }),
    publicClient.readContract({ address: UPTO_PROXY_ADDRESS, abi: PROXY_READ_ABI, functionName: "WITNESS_TYPE_STRING" }),
  ]);
  if (getAddress(proxyPermit2) !== PERMIT2_ADDRESS) throw new Error(`upto proxy PERMIT2() is ${proxyPermit2}`);
  logger(`${PROXY_CONTRACT} ${px.status} at ${UPTO_PROXY_ADDRESS} (${px.method}${px.tx ? `, tx ${px.tx}` : ""}); PERMIT2() ok`);

  return {
    chain_id: chainId,
    permit2: {
      address: PERMIT2_ADDRESS,
      method: p2.method,
      status: p2.status,
      tx: p2.tx,
      init_code_hash: permit2.initCodeHash,
      create2_address: permit2.create2Address,
      canonical: permit2.canonical,
      code_bytes: (permit2.code.length - 2) / 2,
      code_hash: keccak256(permit2.code),
      domain_separator: separator,
      source: "@uniswap/v4-periphery@1.0.3 lib/permit2/test/utils/DeployPermit2.sol",
    },
    upto_proxy: {
      address: UPTO_PROXY_ADDRESS,
      method: px.method,
      status: px.status,
      tx: px.tx,
      solc: proxy.solcVersion,
      init_code_hash: proxy.initCodeHash,
      create2_address: proxy.create2Address,
      canonical: proxy.canonical,
      code_bytes: (proxy.runtimeCode.length - 2) / 2,
      code_hash: keccak256(proxy.runtimeCode),
      witness_type_string: witnessTypeString,
    },
  };
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length === 1 && argv[0] === "--check") {
    const p = compileUptoProxy();
    const q = permit2RuntimeCode(1);
    process.stdout.write(
      JSON.stringify({
        permit2: { init_code_hash: q.initCodeHash, create2_address: q.create2Address, canonical: q.canonical },
        upto_proxy: { solc: p.solcVersion, init_code_hash: p.initCodeHash, create2_address: p.create2Address, canonical: p.canonical },
      }) + "\n",
    );
    process.exit(p.canonical && q.canonical ? 0 : 1);
  }
  const args = parseArgs(
    argv,
    { rpc: { required: true }, "permit2-method": { default: "create2" }, "proxy-method": { default: "create2" } },
    USAGE,
  );
  const summary = await installUptoContracts({ rpc: args.rpc, permit2Method: args["permit2-method"], proxyMethod: args["proxy-method"] });
  process.stdout.write(JSON.stringify(summary) + "\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => die(SCOPE, e.message));
}
