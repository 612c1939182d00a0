/**
 * Program kinds (§6d) and JavaScript agent source hashes (§24).
 * @module
 */
import { concat, toHex, u32be, u64be, utf8 } from './bytes.js';
import { sha256 } from './crypto.js';

/** The kind a program is recognised as from its first bytes (§6d): `wasm`, `riscv` or `undefined`. */
export function recogniseProgram(data: Uint8Array): 'wasm' | 'riscv' | undefined {
  if (data.length >= 4 && data[0] === 0 && data[1] === 0x61 && data[2] === 0x73 && data[3] === 0x6d) return 'wasm';
  if (data.length < 20 || data[0] !== 0x7f || data[1] !== 0x45 || data[2] !== 0x4c || data[3] !== 0x46) return undefined;
  const klass = data[4];
  const order = data[5];
  const machine = order === 1 ? data[18]! | (data[19]! << 8) : (data[18]! << 8) | data[19]!;
  return machine === 243 && order === 1 && (klass === 1 || klass === 2) ? 'riscv' : undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** A JavaScript or TypeScript agent's source (§24): modules by relative path; `main` exports `handler(event, context)`. */
export interface JsSource {
  main: string;
  modules: Record<string, string>;
  /**
   * The engine that sets the modules up and runs them: `boa` (the host's runtime, the
   * default) or `starlingmonkey` (SpiderMonkey: faster on CPU-bound code). Signed with the
   * source.
   */
  engine?: 'boa' | 'starlingmonkey';
}

/** The label of a source's hash for its engine (§24). */
function jsSourceLabel(engine: JsSource['engine']): string {
  if (engine === undefined || engine === 'boa') return 'wasm-hypervisor/v1/js-source\0';
  if (engine === 'starlingmonkey') return 'wasm-hypervisor/v1/js-source/starlingmonkey\0';
  throw new RangeError(`unknown JavaScript engine ${String(engine)}`);
}

/**
 * The JSON an `encrypted_js` envelope carries (§24): `main`, then the modules in byte order of
 * their names, compact.
 */
export function jsSealedPlaintext(source: JsSource): Uint8Array {
  if (!(source.main in source.modules)) throw new RangeError(`the main module ${source.main} is not among the modules`);
  const names = Object.keys(source.modules).sort((a, b) => compareBytes(utf8(a), utf8(b)));
  const modules: Record<string, string> = {};
  for (const n of names) modules[n] = source.modules[n]!;
  const engine = source.engine === undefined || source.engine === 'boa' ? {} : { engine: source.engine };
  return utf8(JSON.stringify({ main: source.main, modules, ...engine }));
}

/** A JavaScript agent's source hash (§24): its identity in place of a component's SHA-256. */
export async function jsSourceSha256(source: JsSource): Promise<string> {
  const main = utf8(source.main);
  const names = Object.keys(source.modules).map((n) => [n, utf8(n)] as const).sort((a, b) => compareBytes(a[1], b[1]));
  const parts: Uint8Array[] = [utf8(jsSourceLabel(source.engine)), u32be(main.length), main, u32be(names.length)];
  for (const [n, nb] of names) {
    const src = utf8(source.modules[n]!);
    parts.push(u32be(nb.length), nb, u64be(src.length), src);
  }
  return toHex(await sha256(concat(...parts)));
}
