// The conformance agent's handler (tests/e2e/web_platform.rs sets it up with harness.js and
// sources.js, which that test writes: every file of tests/wpt/imported/ by its path in WPT).
// One invocation runs one file, `{file: "encoding/api-basics.any.js"}`, after the scripts its
// META lines name, and answers [{name, status, message}]. A relative `fetch` from the file is
// answered from the imported files, as WPT's server would serve them.
import { load, refused, run } from "./harness.js";
import sources from "./sources.js";

const SAB = `const createBuffer = (type, length) => {
  if (type === "ArrayBuffer") return new ArrayBuffer(length);
  if (type === "SharedArrayBuffer") return new SharedArrayBuffer(length);
  throw new Error("type has to be ArrayBuffer or SharedArrayBuffer");
};
`;

// encoding/streams/resources/readable-stream-to-array.js is not in the copies WPT was imported
// from (tests/wpt/README.md): the function it defines, written here from its name and use.
const STREAM_TO_ARRAY = `function readableStreamToArray(stream) {
  const chunks = [];
  return stream.pipeTo(new WritableStream({ write(chunk) { chunks.push(chunk); } })).then(() => chunks);
}
`;

// `reference` resolved against the file `path`, as a WPT server resolves it (a leading `/` is
// the suite's root).
function resolve(path, reference) {
  if (reference.startsWith("/")) return reference.slice(1);
  const parts = path.split("/").slice(0, -1);
  for (const segment of reference.split("/")) {
    if (segment === "..") parts.pop();
    else if (segment !== ".") parts.push(segment);
  }
  return parts.join("/");
}

// The scripts a file's `// META: script=` lines name.
function metaScripts(path) {
  return [...sources[path].matchAll(/^\/\/ META: script=(\S+)$/gm)].map(([, s]) => resolve(path, s));
}

// `fetch` of a relative URL: the imported file at that path (404 if none); anything else goes
// to the runtime's own fetch.
function serveFrom(path) {
  const own = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = String(input && input.url !== undefined ? input.url : input);
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) return own(input, init);
    const file = resolve(path, url);
    return file in sources
      ? new Response(sources[file], { status: 200, headers: { "content-type": file.endsWith(".json") ? "application/json" : "text/javascript" } })
      : new Response(`${file} is not imported`, { status: 404 });
  };
}

export async function handler(event) {
  const d = event.data;
  if (!(d.file in sources)) throw new Error(`no imported file ${d.file}`);
  // The file and the scripts its META lines name, as one classic script (their top-level
  // `const`s are then visible to the file, as between a page's scripts).
  let script = "";
  for (const helper of metaScripts(d.file)) {
    if (helper === "common/sab.js" && typeof WebAssembly === "undefined") {
      // common/sab.js reaches SharedArrayBuffer through WebAssembly.Memory, because browsers
      // hide the global without cross-origin isolation. This runtime has the global (and no
      // WebAssembly): the same `createBuffer` over it.
      script += SAB;
      continue;
    }
    if (helper === "encoding/streams/resources/readable-stream-to-array.js" && !(helper in sources)) {
      script += STREAM_TO_ARRAY;
      continue;
    }
    if (!(helper in sources)) throw new Error(`${d.file} needs ${helper}, which is not imported`);
    script += `${sources[helper]}\n;\n`;
  }
  serveFrom(d.file);
  // The test page's location, as WPT's server would give it (common/subset-tests-by-key.js
  // reads its query).
  globalThis.location = { href: `http://web-platform.test:8000/${d.file}`, origin: "http://web-platform.test:8000",
    protocol: "http:", host: "web-platform.test:8000", hostname: "web-platform.test", port: "8000",
    pathname: `/${d.file}`, search: "", hash: "" };
  try {
    load(d.file, script + sources[d.file]);
  } catch (e) {
    return refused(d.file, e);
  }
  return run();
}
