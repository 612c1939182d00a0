// Pays a WASM Hypervisor host's priced MCP tool through the x402 MCP binding, with the official
// MCP TypeScript SDK (@modelcontextprotocol/sdk) calling and the official x402 client
// (@x402/core with @x402/evm's exact scheme) signing, for tests/e2e/mcp.rs. Prints one JSON
// object on stdout.
//
//   node pay.mjs URL TOOL ARGUMENTS_JSON
//
// The tool is called without payment (an `isError` result carrying PaymentRequired in
// `structuredContent` and `content[0].text`), then with the payment in
// `params._meta["x402/payment"]` (the result, with the settlement in
// `_meta["x402/payment-response"]`), then with the same payment again (refused as a replay).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const [url, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "hypervisor-e2e", version: "1.0.0" });
await client.connect(transport);
const payer = new x402Client().register("eip155:*", new ExactEvmScheme(privateKeyToAccount(generatePrivateKey())));

const call = (meta) => client.callTool({ name: tool, arguments: JSON.parse(args), ...(meta ? { _meta: meta } : {}) });
const first = await call();
const required = first.structuredContent;
const out = {
  protocol_version: transport.protocolVersion,
  first: { isError: first.isError, x402Version: required?.x402Version, same_text: JSON.stringify(JSON.parse(first.content[0].text)) === JSON.stringify(required) },
};
const payload = await payer.createPaymentPayload(required);
const meta = { "x402/payment": payload };
const paid = await call(meta);
out.paid = { isError: paid.isError, structuredContent: paid.structuredContent, payment_response: paid._meta?.["x402/payment-response"] };
const replay = await call(meta);
out.replay = { isError: replay.isError, error: replay.structuredContent?.error };
await client.close();
console.log(JSON.stringify(out));
