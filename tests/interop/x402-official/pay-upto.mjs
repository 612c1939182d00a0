// Pays one request to a metered (x402 `upto`) WASM Hypervisor agent with the official x402
// client from npm (@x402/fetch + the upto scheme of @x402/evm, as their README shows), and
// prints what came back as JSON.
//
// Usage: node pay-upto.mjs --url URL --body FILE --key 0xPAYER_KEY --token 0xTOKEN
//                          [--rpc URL]   (approve Permit2 for the token first, once)
//
// The payer's one-time Permit2 approval (the spec's "Direct User Approval") is sent with --rpc
// when the allowance is below the maximum asked. The token is opted in to the client's spend
// controls (it is not a default asset), as pay.mjs does.
import { readFileSync } from "node:fs";
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { createWalletClient, maxUint256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { POLLING_INTERVAL_MS, checkAddress, checkPrivateKey, connectChain, die, parseArgs } from "./common.mjs";
import { PERMIT2_ADDRESS } from "./upto-contracts.mjs";

const SCOPE = "pay-upto";
const USAGE = "node pay-upto.mjs --url URL --body FILE --key 0x.. --token 0x.. [--rpc URL]";
const ERC20 = [
  { type: "function", name: "approve", stateMutability: "nonpayable", inputs: [{ type: "address" }, { type: "uint256" }], outputs: [{ type: "bool" }] },
  { type: "function", name: "allowance", stateMutability: "view", inputs: [{ type: "address" }, { type: "address" }], outputs: [{ type: "uint256" }] },
];

async function main() {
  const args = parseArgs(
    process.argv.slice(2),
    { url: { required: true }, body: { required: true }, key: { required: true }, token: { required: true }, rpc: { default: "" } },
    USAGE,
  );
  const account = privateKeyToAccount(checkPrivateKey(args.key, "--key"));
  const token = checkAddress(args.token, "--token");
  if (args.rpc) {
    const { chain, transport, publicClient } = await connectChain(args.rpc);
    const allowance = await publicClient.readContract({ address: token, abi: ERC20, functionName: "allowance", args: [account.address, PERMIT2_ADDRESS] });
    if (allowance < maxUint256 / 2n) {
      const wallet = createWalletClient({ account, chain, transport, pollingInterval: POLLING_INTERVAL_MS });
      const hash = await wallet.writeContract({ address: token, abi: ERC20, functionName: "approve", args: [PERMIT2_ADDRESS, maxUint256] });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`the Permit2 approval failed: ${hash}`);
    }
  }
  const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: "eip155:*", client: new UptoEvmScheme(account) }],
    spendControls: { allowedAssets: [{ network: "eip155:*", asset: token }] },
  });
  const response = await fetchWithPayment(args.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: readFileSync(args.body, "utf8"),
  });
  const header = response.headers.get("PAYMENT-RESPONSE");
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  process.stdout.write(
    JSON.stringify({
      status: response.status,
      payer: account.address,
      body,
      settlement: header ? decodePaymentResponseHeader(header) : null,
    }) + "\n",
  );
}

main().catch((e) => die(SCOPE, e.message));
