// `{{name}}`: a JavaScript agent for WASM Hypervisor. The host sets the modules up once and
// snapshots them; each invocation runs `handler` in a fresh instance. `event` is the
// invocation's JSON event.

export async function handler(event) {
  const name = event?.name ?? "world";
  return { greeting: `Hello, ${name}!` };
}
