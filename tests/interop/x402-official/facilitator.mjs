// A real x402 facilitator assembled from the official npm packages, served over HTTP on loopback.
//
//   x402Facilitator          from @x402/core/facilitator
//   ExactEvmScheme (v2)      from @x402/evm/exact/facilitator     registered for eip155:<chain id>
//   ExactEvmSchemeV1 (v1)    from @x402/evm/exact/v1/facilitator  registered for the v1 network
//                            name(s) of that chain id (84532 → "base-sepolia")
//   UptoEvmScheme (v2)       from @x402/evm/upto/facilitator      registered for eip155:<chain id>
//                            only with --upto true (needs Permit2 and x402UptoPermit2Proxy on the
//                            chain: run upto-contracts.mjs first)
//   toFacilitatorEvmSigner   from @x402/evm, wrapping a viem wallet + public client on --rpc
//
// Usage: node facilitator.mjs --rpc URL --key 0xFACILITATOR_PRIVATE_KEY [--port N]
//                             [--simulate-in-settle true|false] [--upto true|false]
//   --port 0 (default) lets the OS choose. The server binds 127.0.0.1 only.
//   --simulate-in-settle: the schemes' `simulateInSettle` option (default false, the packages'
//     default). When true, settle re-runs the on-chain simulation before broadcasting, so
//     refusals get the diagnosed reason (e.g. invalid_exact_evm_nonce_already_used) in v1 too.
//     It applies to the exact schemes only: the upto scheme always re-verifies (with simulation)
//     before it settles.
//   --upto: also register the `upto` scheme (default false, so the exact-only behaviour and
//     /supported stay as they were). /supported then lists {"x402Version":2,"scheme":"upto",
//     "network":"eip155:<id>","extra":{"facilitatorAddress":"0x.."}} (the --key account), which
//     a resource server copies into its requirements' `extra`. The charge is the `amount` of
//     the paymentRequirements sent to /settle (at most the signed maximum; "0" succeeds with
//     an empty `transaction` and sends nothing); /verify checks against the signed maximum.
//
// stdout: exactly one line once the socket is listening: `listening http://127.0.0.1:PORT`
// stderr: one log line per request (method, path, status, result), plus start-up/shutdown logs.
//
// HTTP API (bodies and answers are JSON):
//   POST /verify  {"x402Version", "paymentPayload", "paymentRequirements"}
//        → 200 {"isValid":true,"payer":"0x.."}
//        → 400 {"isValid":false,"invalidReason":"..","payer":"0x..", ["invalidMessage":".."]}
//   POST /settle  same body; waits for the transaction receipt before answering
//        → 200 {"success":true,"transaction":"0x<tx hash>","network":"..","payer":"0x.."}
//        → 400 {"success":false,"errorReason":"..","transaction":"","network":"..","payer":"0x..", ["errorMessage":".."]}
//   GET  /supported → 200 {"kinds":[...],"extensions":[],"signers":{"eip155:*":["0x.."]}}
//   GET  /health    → 200 {"status":"ok"}
// The verify/settle answers are exactly what x402Facilitator returns; only the status code is
// chosen here (200 when valid/successful, 400 otherwise). Requests the facilitator cannot even
// route (malformed JSON, missing fields, unknown scheme/network) get 400 with the same shape and
// a reason of `invalid_payload` / `unsupported_scheme`; unexpected exceptions get 500 with
// `unexpected_verify_error` / `unexpected_settle_error`.
//
// SIGTERM / SIGINT close the server and exit with status 0.
import http from "node:http";
import { createWalletClient, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";
import { POLLING_INTERVAL_MS, checkPrivateKey, connectChain, die, log, parseArgs } from "./common.mjs";

const SCOPE = "facilitator";
const USAGE =
  "node facilitator.mjs --rpc URL --key 0xFACILITATOR_PRIVATE_KEY [--port N] [--simulate-in-settle true|false] [--upto true|false]";
const MAX_BODY_BYTES = 1 << 20;
const RECEIPT_TIMEOUT_MS = 30_000;

/** Serialises async calls: the facilitator account's nonce is read and used by one tx at a time. */
function serialised() {
  let tail = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

async function main() {
  const args = parseArgs(
    process.argv.slice(2),
    {
      rpc: { required: true },
      key: { required: true },
      port: { default: "0" },
      "simulate-in-settle": { default: "false" },
      upto: { default: "false" },
    },
    USAGE,
  );
  const key = checkPrivateKey(args.key, "--key");
  const port = Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${args.port} is not a port number`);
  if (!["true", "false"].includes(args["simulate-in-settle"])) throw new Error("--simulate-in-settle must be true or false");
  const simulateInSettle = args["simulate-in-settle"] === "true";
  if (!["true", "false"].includes(args.upto)) throw new Error("--upto must be true or false");
  const upto = args.upto === "true";

  const { chain, chainId, transport, publicClient } = await connectChain(args.rpc);
  const account = privateKeyToAccount(key);
  const gas = await publicClient.getBalance({ address: account.address });
  if (gas === 0n) throw new Error(`facilitator account ${account.address} has no ETH for gas on ${args.rpc}`);

  // The facilitator signer: a viem wallet client (signs and sends with --key) extended with the
  // public actions (reads, receipts), adapted to the FacilitatorEvmSigner interface.
  const client = createWalletClient({ account, chain, transport, pollingInterval: POLLING_INTERVAL_MS }).extend(publicActions);
  const oneTxAtATime = serialised();
  const signer = toFacilitatorEvmSigner(
    {
      address: account.address,
      getCode: (a) => client.getCode(a),
      readContract: (a) => client.readContract({ ...a, args: a.args ?? [] }),
      verifyTypedData: (a) => client.verifyTypedData(a),
      writeContract: (a) => oneTxAtATime(() => client.writeContract({ ...a, args: a.args ?? [] })),
      sendTransaction: (a) => oneTxAtATime(() => client.sendTransaction(a)),
      waitForTransactionReceipt: (a) => client.waitForTransactionReceipt(a),
    },
    { confirmationTimeoutMs: RECEIPT_TIMEOUT_MS },
  );

  const v2Network = `eip155:${chainId}`;
  const v1Networks = Object.entries(EVM_NETWORK_CHAIN_ID_MAP)
    .filter(([, id]) => id === chainId)
    .map(([name]) => name);
  const facilitator = new x402Facilitator();
  facilitator.register(v2Network, new ExactEvmScheme(signer, { simulateInSettle }));
  if (v1Networks.length > 0) facilitator.registerV1(v1Networks, new ExactEvmSchemeV1(signer, { simulateInSettle }));
  else log(SCOPE, `warning: chain id ${chainId} has no x402 v1 network name; v1 payments are not supported`);
  if (upto) facilitator.register(v2Network, new UptoEvmScheme(signer));
  log(
    SCOPE,
    `signer ${account.address}; v2 ${v2Network}${upto ? " (exact, upto)" : ""}; v1 ${v1Networks.join(",") || "-"}; simulateInSettle=${simulateInSettle}`,
  );

  const server = http.createServer((req, res) => {
    handle(facilitator, req, res).catch((e) => {
      log(SCOPE, `${req.method} ${req.url} -> internal error: ${e.stack ?? e}`);
      if (!res.headersSent) send(res, 500, { error: String(e.message ?? e) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot listen on 127.0.0.1:${port}: ${e.message}`)));
    server.listen(port, "127.0.0.1", resolve);
  });
  const actual = server.address().port;

  const shutdown = (signal) => {
    log(SCOPE, `${signal}: shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  process.stdout.write(`listening http://127.0.0.1:${actual}\n`, () => log(SCOPE, `listening on 127.0.0.1:${actual}`));
}

/** Writes a JSON answer (BigInts, should any appear, become decimal strings). */
function send(res, status, body) {
  const text = JSON.stringify(body, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Reads the request body as UTF-8, up to MAX_BODY_BYTES. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** Builds the failure answer of `kind` ("verify" | "settle") in the facilitator's own shape. */
function failure(kind, reason, message, requirements) {
  return kind === "verify"
    ? { isValid: false, invalidReason: reason, invalidMessage: message, payer: "" }
    : { success: false, errorReason: reason, errorMessage: message, transaction: "", network: requirements?.network ?? "", payer: "" };
}

async function handle(facilitator, req, res) {
  const started = Date.now();
  const url = new URL(req.url, "http://127.0.0.1");
  const route = url.pathname.replace(/\/+$/, "") || "/";
  const done = (status, body, summary) => {
    send(res, status, body);
    log(SCOPE, `${req.method} ${route} -> ${status} ${summary} (${Date.now() - started} ms)`);
  };

  if (route === "/supported" || route === "/health") {
    if (req.method !== "GET") return done(405, { error: `use GET for ${route}` }, "method not allowed");
    if (route === "/health") return done(200, { status: "ok" }, "ok");
    const supported = facilitator.getSupported();
    return done(200, supported, `${supported.kinds.length} kinds`);
  }
  if (route !== "/verify" && route !== "/settle") return done(404, { error: `no route ${route}` }, "not found");
  const kind = route.slice(1);
  if (req.method !== "POST") return done(405, { error: `use POST for ${route}` }, "method not allowed");

  // Parse and shape-check the request body.
  let body;
  try {
    body = JSON.parse(await readBody(req));
  } catch (e) {
    return done(400, failure(kind, "invalid_payload", `request body is not JSON: ${e.message}`), "invalid_payload (bad JSON)");
  }
  if (!isObject(body) || !isObject(body.paymentPayload) || !isObject(body.paymentRequirements)) {
    const msg = "body must be {x402Version, paymentPayload: {...}, paymentRequirements: {...}}";
    return done(400, failure(kind, "invalid_payload", msg), "invalid_payload (missing fields)");
  }
  const { paymentPayload, paymentRequirements } = body;
  const tag = `v${paymentPayload.x402Version} ${paymentRequirements.scheme}/${paymentRequirements.network}`;

  let result;
  try {
    result =
      kind === "verify"
        ? await facilitator.verify(paymentPayload, paymentRequirements)
        : await facilitator.settle(paymentPayload, paymentRequirements);
  } catch (e) {
    const message = String(e?.message ?? e);
    // x402Facilitator throws (rather than answering) when nothing is registered for the
    // version/scheme/network; a TypeError means the payload lacks fields the scheme reads.
    let status = 500;
    let reason = `unexpected_${kind}_error`;
    if (/^No facilitator registered/.test(message)) [status, reason] = [400, "unsupported_scheme"];
    else if (e instanceof TypeError || e instanceof SyntaxError || e instanceof RangeError) [status, reason] = [400, "invalid_payload"];
    return done(status, failure(kind, reason, message, paymentRequirements), `${tag} threw: ${message.split("\n")[0]}`);
  }

  if (kind === "verify") {
    const summary = result.isValid ? `${tag} isValid=true payer=${result.payer}` : `${tag} isValid=false ${result.invalidReason}`;
    return done(result.isValid ? 200 : 400, result, summary);
  }
  const summary = result.success
    ? `${tag} success=true tx=${result.transaction}`
    : `${tag} success=false ${String(result.errorReason).split("\n")[0]}`;
  return done(result.success ? 200 : 400, result, summary);
}

main().catch((e) => die(SCOPE, e.message));
