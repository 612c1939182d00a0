// The globals of a StarlingMonkey agent that the default engine also gives it
// (host/src/engine/starlingmonkey/), imported by the handler module before the agent's main
// module, so that the agent's top-level code finds them.

// `Deno.env`, as Assist TEE's runner fills it: the invocation's `event.env` (strings), set by
// the handler module for each invocation.
export const env = new Map();
globalThis.Deno = Object.freeze({
  env: Object.freeze({
    get: (k) => env.get(String(k)),
    has: (k) => env.has(String(k)),
    set: (k, v) => { env.set(String(k), String(v)); },
    delete: (k) => { env.delete(String(k)); },
    toObject: () => Object.fromEntries(env),
  }),
});

// The host's state and configuration APIs are not in this engine's world: using them says so
// (as an unsupported API does on the default engine) instead of `agentState is not defined`.
for (const name of ["agentState", "agentConfig"]) {
  const unavailable = () => {
    throw new TypeError(
      `${name} is not available in the StarlingMonkey engine: deploy with "engine": "boa" for agents' state and configuration`,
    );
  };
  Object.defineProperty(globalThis, name, {
    value: new Proxy(Object.freeze({}), { get: () => unavailable }),
    writable: true,
    enumerable: false,
    configurable: true,
  });
}
