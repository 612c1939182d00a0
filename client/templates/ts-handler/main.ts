// `{{name}}`: a JavaScript agent for WASM Hypervisor, in TypeScript (types are stripped at
// deployment). The host sets the modules up once and snapshots them; each invocation runs
// `handler` in a fresh instance. `event` is the invocation's JSON event.

import { greeting } from "./lib/greeting.ts";

export async function handler(event: { name?: string }) {
  return { greeting: greeting(event.name ?? "world") };
}
