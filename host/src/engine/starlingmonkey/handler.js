// The handler module of a StarlingMonkey agent (host/src/engine/starlingmonkey/): imports our
// prelude (globals the agent's top-level code may use), then the agent's main module, and
// exports the world's `handler` interface with the default engine's semantics
// (components/js-runtime/src/lib.rs): the event parsed from JSON, `Deno.env` from its `env`,
// `handler(event, context)` awaited, its result as `JSON.stringify` makes it, and the same
// error codes.
import { env } from "./prelude.js";
import * as agent from "{MAIN}";

if (typeof agent.handler !== "function") {
  throw new Error("no_handler: the main module exports no function `handler`");
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const failure = (code, message) => ({ tag: "err", val: { code, message: String(message) } });

// Never throws, whatever was thrown (a getter that throws, a revoked proxy).
function describe(e) {
  try {
    if (e !== null && typeof e === "object" && "message" in e) {
      return `${e.name ?? "Error"}: ${e.message}`;
    }
    return typeof e === "string" ? e : JSON.stringify(e) ?? String(e);
  } catch {
    try {
      return String(e);
    } catch {
      return "a value that cannot be shown";
    }
  }
}

function article(value) {
  const type = typeof value;
  return type === "symbol" || type === "function" ? `a ${type}` : "a value JSON cannot carry";
}

export const handler = {
  async handle(event, ctx) {
    let text;
    try {
      text = decoder.decode(event);
    } catch {
      return failure("bad_event", "the event is not UTF-8 text");
    }
    let input;
    try {
      input = JSON.parse(text);
    } catch (e) {
      return failure("bad_event", `the event is not JSON: ${describe(e)}`);
    }
    env.clear();
    const given = input !== null && typeof input === "object" ? input.env : undefined;
    if (given !== null && typeof given === "object") {
      for (const [k, v] of Object.entries(given)) env.set(k, String(v));
    }
    const name = ctx.agentName;
    const context = {
      executionId: ctx.executionId,
      requestId: ctx.executionId,
      environmentId: name.startsWith("env-") ? name.slice(4) : name,
      agentName: name,
      agentVersion: ctx.agentVersion,
      caller: ctx.caller,
      deadlineMs: Number(ctx.deadlineMs),
    };
    let value;
    try {
      value = await agent.handler(input, context);
    } catch (e) {
      return failure("handler_threw", describe(e));
    }
    // A handler that returns nothing answers `null`.
    if (value === undefined) return encoder.encode("null");
    let json;
    try {
      json = JSON.stringify(value);
    } catch (e) {
      return failure("result_not_json", `the handler's result cannot be JSON: ${describe(e)}`);
    }
    if (json === undefined) {
      return failure("result_not_json", `the handler's result is ${article(value)}, which JSON cannot carry`);
    }
    return encoder.encode(json);
  },
};
