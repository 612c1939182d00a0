// Pays one request to a WASM Hypervisor paid route with the official x402 client from npm
// (@x402/fetch + @x402/evm, as their README shows), and prints what came back as JSON.
//
// Usage: node pay.mjs <url> <json body file> <private key hex> [<token address to allow>]
//
// The client's default spend controls only pay the default assets it knows (the real USDC of
// each network). To pay a token deployed on a local chain (deploy.mjs), pass its address as
// the 4th argument: it is then opted in via spendControls.allowedAssets for eip155:*.
import { readFileSync } from "node:fs";
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { privateKeyToAccount } from "viem/accounts";

const [url, bodyFile, key, allowedAsset] = process.argv.slice(2);
const account = privateKeyToAccount(key.startsWith("0x") ? key : `0x${key}`);
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [{ network: "eip155:*", client: new ExactEvmScheme(account) }],
  ...(allowedAsset ? { spendControls: { allowedAssets: [{ network: "eip155:*", asset: allowedAsset }] } } : {}),
});
const response = await fetchWithPayment(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: readFileSync(bodyFile, "utf8"),
});
const header = response.headers.get("PAYMENT-RESPONSE") ?? response.headers.get("X-PAYMENT-RESPONSE");
console.log(JSON.stringify({
  status: response.status,
  payer: account.address,
  body: await response.json(),
  settlement: header ? decodePaymentResponseHeader(header) : null,
}));
