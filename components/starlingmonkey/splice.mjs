// StarlingMonkey's engine (SpiderMonkey, from @bytecodealliance/componentize-js) spliced for one
// WIT world, as componentize-js does before it pre-initialises a script: the engine's core
// module gains the world's imports and exports, and the JavaScript bindings between them and
// the agent's code are generated. Both depend on the world only, never on an agent, so this
// runs once, at build time; the host does the rest (set-up, snapshot, component) for every
// agent, inside the TEE (host/src/engine/starlingmonkey/).
//
// Usage: node splice.mjs <wit dir> <world> <out.wasm>
//
// The output is the spliced core module with one more custom section,
// `hypervisor:starlingmonkey`, holding JSON: the package's version, the features, the
// generated bindings (`initializer`) and the export and import descriptions the engine reads
// from its environment while it initialises.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

const here = new URL('./node_modules/@bytecodealliance/componentize-js/', import.meta.url);
const { splicer } = await import(new URL('lib/spidermonkey-embedding-splicer.js', here));
const { version } = JSON.parse(await readFile(new URL('package.json', here), 'utf8'));

const [witDir, world, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node splice.mjs <wit dir> <world> <out.wasm>');
  process.exit(2);
}

// `stdio` (console), `random` (crypto.getRandomValues, Math.random), `clocks` (Date,
// performance, timers) and `http` (fetch over wasi:http, as the host's grants allow). Not
// `fetch-event`: agents are handlers, not HTTP servers.
const features = ['stdio', 'random', 'clocks', 'http'];
const engine = await readFile(new URL('lib/starlingmonkey_embedding.wasm', here));
const { wasm, jsBindings, exports, imports } = splicer.spliceBindings(
  engine,
  features,
  undefined,
  resolve(witDir),
  world,
  false,
);

const meta = Buffer.from(
  JSON.stringify({
    componentizeJs: version,
    world,
    features,
    initializer: jsBindings,
    exports,
    imports,
  }),
);
const name = Buffer.from('hypervisor:starlingmonkey');
const leb = (n) => {
  const bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    bytes.push(b);
  } while (n);
  return Buffer.from(bytes);
};
const payload = Buffer.concat([leb(name.length), name, meta]);
const section = Buffer.concat([Buffer.from([0]), leb(payload.length), payload]);
await writeFile(out, Buffer.concat([Buffer.from(wasm), section]));
console.log(
  `spliced StarlingMonkey (componentize-js ${version}) for ${world}: ${out}, ` +
    `${exports.length} export(s), ${imports.length} import(s)`,
);
