// Drives a WASM Hypervisor host's MCP endpoint with the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk, pinned by package-lock.json), for tests/e2e/mcp.rs. This SDK speaks
// the initialize-based revisions (its newest is 2025-11-25). Prints one JSON object on stdout.
//
//   node client.mjs URL TOOL ARGUMENTS_JSON
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "hypervisor-e2e", version: "1.0.0" });
await client.connect(transport);
const out = {
  protocol_version: transport.protocolVersion,
  server: client.getServerVersion(),
  tools: (await client.listTools()).tools,
  result: await client.callTool({ name: tool, arguments: JSON.parse(args) }),
};
try {
  await client.callTool({ name: "no-such-tool", arguments: {} });
  out.unknown_tool = null;
} catch (e) {
  out.unknown_tool = { code: e.code, message: e.message };
}
await client.close();
console.log(JSON.stringify(out));
