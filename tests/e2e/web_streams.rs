//! JavaScript agents' streams (WHATWG Streams, with Encoding's and Compression's transform
//! streams, and Fetch's stream bodies) through the native agent routes: what the agent
//! compresses is read by flate2 here and the other way round, and the stream classes are built
//! when an agent that never names them first reaches for one. web-streams-polyfill, under
//! them, runs in tests/e2e/web_platform.rs's public suites too.

use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::harness::{TestServer, deploy_js_main};

/// Streams, the transform streams and stream bodies, through the native agent routes.
const STREAMS: &str = r#"
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const collect = async (stream) => { const out = []; for await (const chunk of stream) out.push(chunk); return out; };
export async function handler(event) {
  const out = {};
  // A pull source with backpressure, a transform, and a writable sink.
  let pulled = 0;
  const numbers = new ReadableStream({ pull(c) { pulled++; if (pulled > 5) c.close(); else c.enqueue(pulled); } }, { highWaterMark: 0 });
  const doubled = numbers.pipeThrough(new TransformStream({ transform(n, c) { c.enqueue(n * 2); } }));
  const written = [];
  await doubled.pipeTo(new WritableStream({ write(n) { written.push(n); } }));
  out.piped = written;
  const [left, right] = ReadableStream.from(["x", "y"]).tee();
  out.tee = [(await collect(left)).join(""), (await collect(right)).join("")];
  // Text through the encoding streams, split inside a character and a surrogate pair.
  const bytes = new TextEncoder().encode("é😀");
  const decoded = await collect(ReadableStream.from([bytes.slice(0, 1), bytes.slice(1, 3), bytes.slice(3)]).pipeThrough(new TextDecoderStream()));
  out.decoded = decoded.join("");
  const encoded = await collect(ReadableStream.from(["\ud83d", "\ude00"]).pipeThrough(new TextEncoderStream()));
  out.encoded = encoded.map((c) => [...c]);
  // A legacy encoding (encoding_rs) through the stream, a character split between chunks.
  const sjis = new Uint8Array([0x82, 0xa0, 0x82, 0xa2, 0x41]);
  out.shiftJis = (await collect(ReadableStream.from([sjis.slice(0, 1), sjis.slice(1)]).pipeThrough(new TextDecoderStream("shift_jis")))).join("");
  out.latin1 = [new TextDecoder("latin1").encoding, new TextDecoder("latin1").decode(new Uint8Array([0x80, 0xe9]))];
  // Compression: the agent's gzip is read by zlib's format in the test, and the test's deflate
  // is read by the agent.
  const source = new Blob([event.data.text]).stream();
  out.gzip = b64(await new Response(source.pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
  out.inflated = await new Response(new Blob([unb64(event.data.deflate)]).stream().pipeThrough(new DecompressionStream("deflate"))).text();
  out.corrupt = await new Response(new Blob([new Uint8Array([31, 139, 8, 0, 1, 2])]).stream().pipeThrough(new DecompressionStream("gzip"))).text().then(() => "decoded", (e) => e.name);
  out.trailing = await new Response(new Blob([unb64(event.data.deflate), new Uint8Array([0])]).stream().pipeThrough(new DecompressionStream("deflate"))).text().then(() => "decoded", (e) => e.name);
  out.brotli = (() => { try { new CompressionStream("br"); return "made"; } catch (e) { return e.message; } })();
  // Brotli is read (WPT's vector, made by the reference encoder, whole, truncated and split
  // byte by byte), not written.
  const brotli = unb64(event.data.brotli);
  const readBrotli = (chunks) => new Response(ReadableStream.from(chunks).pipeThrough(new DecompressionStream("brotli"))).text().then((t) => t, (e) => e.name);
  out.brotliVector = await readBrotli([brotli]);
  out.brotliTruncated = await readBrotli([brotli.slice(0, brotli.length - 1)]);
  out.brotliBytewise = await readBrotli([...brotli].map((b) => new Uint8Array([b])));
  out.brotliWrite = (() => { try { new CompressionStream("brotli"); return "made"; } catch (e) { return e.message; } })();
  // Bodies: a stream body, a body read as a stream, a clone, and a stream request.
  const response = new Response(ReadableStream.from([new TextEncoder().encode("streamed")]));
  out.streamBody = [await response.text(), response.bodyUsed];
  const plain = new Response("read by a reader");
  const reader = plain.body.getReader();
  const { value } = await reader.read();
  out.reader = [new TextDecoder().decode(value), plain.bodyUsed, await plain.text().then(() => "read again", (e) => e.name)];
  const original = new Response("twice"), copy = original.clone();
  out.clone = [await original.text(), await copy.text()];
  out.halfDuplex = (() => { try { new Request("https://example.com", { method: "POST", body: new ReadableStream() }); return "made"; } catch (e) { return e.name; } })();
  const request = new Request("https://example.com", { method: "POST", body: ReadableStream.from([new Uint8Array([111, 107])]), duplex: "half" });
  out.request = await request.text();
  return out;
}
"#;

/// An agent whose source names no stream: the classes are built when first reached.
const LAZY_STREAMS: &str = r#"
export async function handler() {
  const name = ["Readable", "Str", "eam"].join("");
  const before = typeof Object.getOwnPropertyDescriptor(globalThis, name).get;
  const Class = globalThis[name];
  const after = Object.getOwnPropertyDescriptor(globalThis, name);
  const made = new Class({ start(c) { c.enqueue("ok"); c.close(); } });
  const chunks = [];
  for await (const chunk of made) chunks.push(chunk);
  return { before, after: [typeof after.value, after.writable, after.enumerable, after.configurable], chunks };
}
"#;

/// "expected output" compressed by brotli's reference encoder: WPT's vector
/// (`compression/resources/decompression-input.js`).
const BROTLI_VECTOR: &[u8] = &[
    0x21, 0x38, 0x00, 0x04, 0x65, 0x78, 0x70, 0x65, 0x63, 0x74, 0x65, 0x64, 0x20, 0x6F, 0x75, 0x74,
    0x70, 0x75, 0x74, 0x03,
];

#[test]
fn streams_compression_and_stream_bodies_through_the_native_agent_routes() {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let b64 = base64::engine::general_purpose::STANDARD;
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    for (name, source) in [("streams", STREAMS), ("lazy-streams", LAZY_STREAMS)] {
        deploy_js_main(&server, &owner, name, source);
    }
    let text = "a text the agent compresses, ".repeat(40);
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(b"deflated by the test").unwrap();
    let deflate = deflate.finish().unwrap();
    let r = client
        .invoke(
            "streams",
            json!({"data": {"text": text, "deflate": b64.encode(&deflate), "brotli": b64.encode(BROTLI_VECTOR)}}),
        )
        .unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(out["piped"], json!([2, 4, 6, 8, 10]));
    assert_eq!(out["tee"], json!(["xy", "xy"]));
    assert_eq!(out["decoded"], "é😀");
    // The high surrogate waits for its pair: one chunk, the emoji's four bytes.
    assert_eq!(out["encoded"], json!([[0xf0, 0x9f, 0x98, 0x80]]));
    assert_eq!(out["shiftJis"], "あいA");
    // The label "latin1" is windows-1252 in the Encoding Standard (0x80 is the euro sign).
    assert_eq!(out["latin1"], json!(["windows-1252", "€é"]));
    let gzip = b64.decode(out["gzip"].as_str().unwrap()).unwrap();
    assert_eq!(&gzip[..2], &[0x1f, 0x8b], "a gzip member");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_string(&mut unzipped)
        .expect("the agent's gzip reads");
    assert_eq!(unzipped, text);
    assert!(gzip.len() < text.len() / 4, "{} bytes", gzip.len());
    assert_eq!(out["inflated"], "deflated by the test");
    assert_eq!(out["corrupt"], "TypeError");
    assert_eq!(out["trailing"], "TypeError");
    assert_eq!(
        out["brotli"],
        "CompressionStream: the format \"br\" is not supported (deflate, deflate-raw and gzip are)"
    );
    assert_eq!(out["brotliVector"], "expected output");
    assert_eq!(out["brotliTruncated"], "TypeError");
    assert_eq!(out["brotliBytewise"], "expected output");
    assert_eq!(
        out["brotliWrite"],
        "CompressionStream: brotli compression is not available in this runtime (DecompressionStream reads brotli; CompressionStream makes deflate, deflate-raw and gzip)"
    );
    assert_eq!(out["streamBody"], json!(["streamed", true]));
    assert_eq!(
        out["reader"],
        json!(["read by a reader", true, "TypeError"])
    );
    assert_eq!(out["clone"], json!(["twice", "twice"]));
    assert_eq!(out["halfDuplex"], "TypeError");
    assert_eq!(out["request"], "ok");

    let r = client.invoke("lazy-streams", json!({})).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.result_json().unwrap(),
        json!({"before": "function", "after": ["function", true, false, true], "chunks": ["ok"]})
    );
}

/// An agent that reads a decompression stream a chunk at a time and keeps only counts.
const BOMB: &str = r#"
export async function handler(event) {
  const bytes = Uint8Array.from(atob(event.data.gzip), (c) => c.charCodeAt(0));
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")).getReader();
  let total = 0, largest = 0, chunks = 0, zeros = true;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    chunks += 1;
    largest = Math.max(largest, value.length);
    zeros = zeros && value[0] === 0 && value[value.length - 1] === 0;
  }
  // An abort while a chunk is being read out ends the readable at once, with its reason.
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter(), again = ds.readable.getReader();
  writer.write(bytes).catch(() => {});
  await again.read();
  const aborted = writer.abort(new Error("enough"));
  const abort = await again.read().then(() => "read more", (e) => e.message);
  await aborted;
  return { total, largest, chunks, zeros, abort };
}
"#;

/// A decompression bomb (160 MiB of zeros in ~160 KB of gzip) read by an agent whose memory is
/// bounded below the output's size: the output comes out in pieces as it is read, never all at
/// once (before, one chunk's whole output was one buffer, and the agent ran out of memory).
#[test]
fn a_decompression_bomb_is_read_a_piece_at_a_time_within_a_small_memory() {
    use base64::Engine as _;
    use hypervisor_client::agents::Deployment;
    use hypervisor_protocol::agents::JsSource;
    use hypervisor_protocol::wire::Limits;
    use std::io::Write;
    const OUTPUT: usize = 160 << 20;
    let server = TestServer::start();
    let owner = ClientSecret::generate().unwrap();
    server
        .client()
        .deploy_js(
            &owner,
            &Deployment {
                name: "bomb",
                description: "reads a gzip stream",
                limits: Some(Limits {
                    time_ms: Some(60_000),
                    memory_bytes: Some(64 << 20),
                    fuel: None,
                }),
                ..Deployment::default()
            },
            &JsSource {
                engine: Default::default(),
                main: "main.js".into(),
                modules: std::collections::BTreeMap::from([("main.js".to_string(), BOMB.into())]),
            },
        )
        .unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..OUTPUT >> 20 {
        gzip.write_all(&zeros).unwrap();
    }
    let gzip = gzip.finish().unwrap();
    assert!(gzip.len() < 1 << 20, "{} bytes", gzip.len());
    let event = json!({"data": {"gzip": base64::engine::general_purpose::STANDARD.encode(&gzip)}});
    let r = server.client().invoke("bomb", event).unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(out["total"], json!(OUTPUT));
    assert_eq!(out["zeros"], json!(true));
    assert_eq!(out["abort"], "enough");
    // Pieces of 64 KiB, plus what flate2's decoder holds in its buffers (at most ~96 KiB).
    let largest = out["largest"].as_u64().unwrap();
    assert!(largest <= 160 << 10, "a piece of {largest} bytes");
    assert!(out["chunks"].as_u64().unwrap() >= (OUTPUT as u64) / (160 << 10));
}
