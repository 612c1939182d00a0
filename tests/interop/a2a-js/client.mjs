// Drives a WASM Hypervisor host's A2A front with the official A2A JavaScript SDK
// (@a2a-js/sdk, pinned by package-lock.json), for tests/e2e/interop_a2a.rs. Prints one JSON
// object on stdout.
//
//   node client.mjs URL AGENT LOOP_AGENT
//
// Verifies the agent's card with the SDK's own verifier (the key taken from the host's
// attestation, not the card), then with the SDK's 1.0 JSON-RPC client: sends a message, reads
// the task, lists tasks, streams a message, cancels a running task on LOOP_AGENT; another caller
// cannot read the task.
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
} from "@a2a-js/sdk/client";
import { Role, TaskState, verifyAgentCardSignature } from "@a2a-js/sdk";
import * as jose from "jose";

const [url, agent, loopAgent] = process.argv.slice(2);
// The SDK's verifier logs each failed signature with console.debug, on stdout: keep stdout for
// the one JSON line.
console.debug = () => {};

/** A fetch that names the caller with a bearer secret. */
const as = (secret) => (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  headers.set("authorization", `Bearer ${secret}`);
  return fetch(input, { ...init, headers });
};

function factory(secret) {
  const fetchImpl = as(secret);
  return new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl })],
      cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
    }),
  );
}

const message = (text) => ({
  message: {
    messageId: crypto.randomUUID(),
    role: Role.ROLE_USER,
    parts: [{ content: { $case: "text", value: text }, metadata: undefined, filename: "", mediaType: "" }],
  },
});

const stateName = (task) => TaskState[task.status.state];

async function errorName(promise) {
  try {
    await promise;
    return "accepted";
  } catch (e) {
    return e.constructor.name;
  }
}

const out = {};
const attestation = (await (await fetch(`${url}/attestation`)).json()).attestation;
const sec1 = Buffer.from(attestation.signing_key, "hex");
const key = await jose.importJWK(
  { kty: "EC", crv: "P-256", x: jose.base64url.encode(sec1.subarray(1, 33)), y: jose.base64url.encode(sec1.subarray(33, 65)) },
  "ES256",
);
const rawCard = await (await fetch(`${url}/agents/${agent}/.well-known/agent-card.json`)).json();
const verify = verifyAgentCardSignature(async () => key);
out.card_verified = await verify(rawCard).then(() => true, (e) => String(e));
out.tampered_verified = await verify({ ...rawCard, description: "changed" }).then(() => true, () => false);

const alice = await factory("alice").createFromUrl(url, `/agents/${agent}/.well-known/agent-card.json`);
const sent = await alice.sendMessage(message("one two three four"));
const task = sent.payload?.value ?? sent;
out.send = {
  state: stateName(task),
  data: task.artifacts?.[0]?.parts?.[0]?.content?.value ?? null,
};
const got = await alice.getTask({ id: task.id, tenant: "" });
out.get_state = stateName(got);
const listed = await alice.listTasks({
  tenant: "",
  contextId: "",
  status: TaskState.TASK_STATE_UNSPECIFIED,
  pageToken: "",
});
out.listed = listed.tasks.some((t) => t.id === task.id);
const mallory = await factory("mallory").createFromUrl(url, `/agents/${agent}/.well-known/agent-card.json`);
out.other_caller_get = await errorName(mallory.getTask({ id: task.id, tenant: "" }));

const kinds = [];
for await (const event of alice.sendMessageStream(message("stream this"))) {
  kinds.push(event.payload?.$case);
  if (event.payload?.$case === "statusUpdate") out.stream_final = TaskState[event.payload.value.status.state];
}
out.stream_kinds = kinds;

const loop = await factory("alice").createFromUrl(url, `/agents/${loopAgent}/.well-known/agent-card.json`);
const started = await loop.sendMessage({ ...message("spin"), configuration: { returnImmediately: true, acceptedOutputModes: [] } });
const running = started.payload?.value ?? started;
out.running_state = stateName(running);
out.cancel_state = stateName(await loop.cancelTask({ id: running.id, tenant: "" }));
out.second_cancel = await errorName(loop.cancelTask({ id: running.id, tenant: "" }));
console.log(JSON.stringify(out));
