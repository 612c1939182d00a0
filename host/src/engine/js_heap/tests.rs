//! The split and the heap component over the real runtime component.

use super::code::is_heap_section;
use super::*;
use wasmparser::{Parser, Payload};

fn runtime() -> Vec<u8> {
    std::fs::read(env!("HYPERVISOR_BUILTIN_JS_RUNTIME")).expect("the runtime component")
}

fn validate(wasm: &[u8]) -> Result<(), String> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The code sections of every core module in `wasm`, as bytes.
fn code_sections(wasm: &[u8]) -> Vec<Vec<u8>> {
    Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            Payload::CodeSectionStart { range, .. } => Some(wasm[range].to_vec()),
            _ => None,
        })
        .collect()
}

/// The sections (id, body) of a core module.
fn sections(module: &[u8]) -> Vec<(u8, Vec<u8>)> {
    Parser::new(0)
        .parse_all(module)
        .filter_map(|p| p.unwrap().as_section())
        .map(|(id, range)| (id, module[range].to_vec()))
        .collect()
}

#[test]
fn the_runtime_splits_into_its_code_and_heap_components_over_it() {
    let runtime = runtime();
    let (layout, code) = Layout::of(&runtime, &runtime).unwrap();
    validate(&code).unwrap();
    // The code: no memory of its own, no data; its memory is the heap's.
    let ids: Vec<u8> = sections(&code).iter().map(|(id, _)| *id).collect();
    assert!(!ids.iter().any(|id| is_heap_section(*id)), "{ids:?}");
    let imports = Parser::new(0)
        .parse_all(&code)
        .find_map(|p| match p.unwrap() {
            Payload::ImportSection(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let last = imports.into_imports().last().unwrap().unwrap();
    assert_eq!((last.module, last.name), (HEAP_MODULE, HEAP_FIELD));

    // The runtime is its own first snapshot: its heap component validates (the code's
    // type against the arguments it is instantiated with included), names the code,
    // and carries none of the runtime's code.
    let heap = heap_component(&layout, &runtime).unwrap();
    validate(&heap).unwrap();
    assert!(layout.import().starts_with("hypervisor-js-code-h"));
    let name = layout.import().as_bytes();
    assert!(heap.windows(name.len()).any(|w| w == name));
    let main_code = code_sections(&code);
    let heap_code = code_sections(&heap);
    assert!(!heap_code.iter().any(|c| main_code.contains(c)));
    assert!(
        heap.len() + code.len() / 2 < runtime.len(),
        "{}",
        heap.len()
    );
}

#[test]
fn a_snapshot_whose_main_module_changed_beyond_its_heap_is_refused() {
    let runtime = runtime();
    let (layout, _) = Layout::of(&runtime, &runtime).unwrap();
    // The shadow stack pointer's initial value (i32.const 1048576) moved by 16: a
    // snapshot taken mid-call, or a component someone made, is not the runtime's code.
    let sp = [0x41, 0x80, 0x80, 0xc0, 0x00];
    let at = runtime
        .windows(sp.len())
        .position(|w| w == sp)
        .expect("the stack pointer's initialiser");
    let mut changed = runtime.clone();
    changed[at + 1] = 0x90;
    let err = heap_component(&layout, &changed).unwrap_err();
    assert!(err.contains("not the runtime's code"), "{err}");
    // The runtime's code and heap, with anything around them changed (here a byte of a
    // top-level custom section's contents; an alias, module or instance added is the same
    // to this check): refused before anything is rewritten.
    let mut at = None;
    top_level(&runtime, |payload| {
        if let Payload::CustomSection(c) = &payload
            && !c.data().is_empty()
        {
            at = at.or(Some(c.data_offset() + c.data().len() / 2));
        }
        Ok(())
    })
    .unwrap();
    let mut around = runtime.clone();
    around[at.expect("a top-level custom section")] ^= 0x01;
    let err = heap_component(&layout, &around).unwrap_err();
    assert!(err.contains("around the main module"), "{err}");
    // Not a component of the runtime at all.
    assert!(heap_component(&layout, b"\0asm\x0d\0\x01\0").is_err());
    assert!(heap_component(&layout, b"not wasm").is_err());
}

#[test]
fn a_main_module_with_a_repeated_memory_or_data_section_is_refused() {
    let memory = |m: &mut wasm_encoder::Module| {
        let mut section = wasm_encoder::MemorySection::new();
        section.memory(wasm_encoder::MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        m.section(&section);
    };
    let mut one = wasm_encoder::Module::new();
    memory(&mut one);
    heap_module(&one.finish()).unwrap();
    let mut two = wasm_encoder::Module::new();
    memory(&mut two);
    memory(&mut two);
    let err = heap_module(&two.finish()).unwrap_err();
    assert!(err.contains("out of order"), "{err}");
    let mut data = wasm_encoder::Module::new();
    memory(&mut data);
    for _ in 0..2 {
        let mut section = wasm_encoder::DataSection::new();
        section.active(0, &wasm_encoder::ConstExpr::i32_const(0), [1u8]);
        data.section(&section);
    }
    let err = heap_module(&data.finish()).unwrap_err();
    assert!(err.contains("out of order"), "{err}");
}
