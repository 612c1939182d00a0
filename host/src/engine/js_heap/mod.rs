//! A JavaScript agent as its heap alone, over one compiled copy of the runtime's code.
//!
//! Every snapshot of the JavaScript runtime is the runtime component with other data in its
//! main core module's memory: wizer rewrites the memory's data segments (and its size), nothing
//! else, as [`heap_component`] checks. Compiled as it is, each snapshot carries its own copy of
//! the runtime's machine code (~9 MiB) and costs a compilation. Here the runtime's main module
//! is split once per runtime ([`Layout::of`]):
//!
//! - **the code**: the main module with its memory turned into an import
//!   (`hypervisor:js-heap` `memory`) and no data, compiled once per process and given to the
//!   agents' components as a core-module import named after its SHA-256 ([`Layout::import`]);
//! - **the heap**: per snapshot, a core module of one memory and the snapshot's data segments
//!   ([`heap_component`]), instantiated just before the code and passed to it.
//!
//! So an agent's component is the snapshot with its main module replaced by that import and the
//! heap module added: compiling it compiles the small modules wit-component adds (no runtime
//! functions) and keeps the heap as the memory's copy-on-write image, as before.
//!
//! The transformation is plain index bookkeeping over the component's sections, with
//! `wasmparser` reading and `wasm-encoder` writing; wasmtime validates the result when it
//! compiles it.

use sha2::{Digest, Sha256};
use wasm_encoder::reencode::{Reencode, ReencodeComponent, RoundtripReencoder};
use wasm_encoder::{
    ComponentAliasSection, ComponentImportSection, ComponentTypeRef, CoreTypeSection,
    InstanceSection, ModuleArg, ModuleType, RawSection,
};
use wasmparser::{Parser, Payload};

mod code;
#[cfg(all(test, builtin_js_runtime))]
mod tests;

use code::{code_module, encode_err, fixed_digest};

/// The module and field under which the code imports its memory from the heap module.
const HEAP_MODULE: &str = "hypervisor:js-heap";
const HEAP_FIELD: &str = "memory";

/// Why a component cannot be split (the runtime) or reduced to its heap (a snapshot).
pub type SplitError = String;

/// What is known of the runtime component once it is split.
pub(super) struct Layout {
    /// Index (in the component's core module index space) of the main module.
    main: u32,
    /// SHA-256 of every section of the main module but its memory, data and data count
    /// sections, in order: what a snapshot's main module must have unchanged.
    fixed: [u8; 32],
    /// SHA-256 of every top-level section of a snapshot but the main module's: what every
    /// snapshot the host makes has around it (the same for all). So the
    /// component a client sends cannot add, alias or instantiate anything the runtime does
    /// not, and the transformation below only ever meets the runtime's own layout.
    frame: [u8; 32],
    /// The core module type of the code, as the agents' components declare its import.
    module_type: ModuleType,
    /// The name of that import.
    import: String,
}

impl Layout {
    /// Splits `runtime` (the JavaScript runtime component): its layout, and the code module
    /// (to compile once and define under [`Self::import`]). `reference` is a snapshot of it
    /// the host made itself: what wizer writes around the main module (it re-encodes the
    /// component's other sections, so the runtime's own bytes would not do).
    ///
    /// # Errors
    /// When the runtime is not shaped as this module expects (one top-level core module with
    /// one memory of its own, and no core types or module imports at the top level).
    pub(super) fn of(runtime: &[u8], reference: &[u8]) -> Result<(Self, Vec<u8>), SplitError> {
        let main = main_module(runtime)?;
        let (code, module_type) = code_module(&main.bytes)?;
        let digest = hex::encode(Sha256::digest(&code));
        let layout = Self {
            main: main.index,
            fixed: fixed_digest(&main.bytes)?,
            frame: frame_digest(reference, main.index)?,
            module_type,
            // A kebab-case name: each word starts with a letter.
            import: format!("hypervisor-js-code-h{}", &digest[..32]),
        };
        Ok((layout, code))
    }

    /// The name under which the agents' components import the code.
    pub(super) fn import(&self) -> &str {
        &self.import
    }
}

/// The code module of `runtime` alone (what `hypervisor precompile` compiles).
///
/// # Errors
/// As [`Layout::of`].
pub fn code_of(runtime: &[u8]) -> Result<Vec<u8>, SplitError> {
    Ok(code_module(&main_module(runtime)?.bytes)?.0)
}

/// The top-level core module of a component that defines a memory.
struct MainModule {
    index: u32,
    bytes: Vec<u8>,
}

/// Walks the top-level sections of a component, calling `each` with every payload at depth 0
/// (a nested module's or component's own payloads are skipped; its section payload is given).
fn top_level<'a>(
    wasm: &'a [u8],
    mut each: impl FnMut(Payload<'a>) -> Result<(), SplitError>,
) -> Result<(), SplitError> {
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("not a component: {e}"))?;
        let nested = matches!(
            payload,
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. }
        );
        let end = matches!(payload, Payload::End(_));
        if depth == 0 {
            if matches!(payload, Payload::Version { .. }) {
                continue;
            }
            if end {
                break;
            }
            each(payload)?;
        } else if end {
            depth -= 1;
            continue;
        }
        if nested {
            depth += 1;
        }
    }
    Ok(())
}

fn main_module(runtime: &[u8]) -> Result<MainModule, SplitError> {
    let mut index = 0u32;
    let mut found = None;
    top_level(runtime, |payload| {
        match payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let bytes = &runtime[unchecked_range];
                if defines_memory(bytes)? {
                    if found.is_some() {
                        return Err("more than one core module defines a memory".into());
                    }
                    found = Some(MainModule {
                        index,
                        bytes: bytes.to_vec(),
                    });
                }
                index += 1;
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| e.to_string())?;
                    if matches!(import.ty, wasmparser::ComponentTypeRef::Module(_)) {
                        return Err("the component imports a core module".into());
                    }
                }
            }
            Payload::CoreTypeSection(_) => {
                return Err("the component declares core types at its top level".into());
            }
            _ => {}
        }
        Ok(())
    })?;
    found.ok_or_else(|| "no core module defines a memory".into())
}

/// SHA-256 of the top-level sections of `component` but the core module numbered `main`
/// (each with its id and length), in order.
fn frame_digest(component: &[u8], main: u32) -> Result<[u8; 32], SplitError> {
    let mut hasher = Sha256::new();
    let mut modules = 0u32;
    top_level(component, |payload| {
        if let Payload::ModuleSection { .. } = payload {
            modules += 1;
            if modules - 1 == main {
                return Ok(());
            }
        }
        if let Some((id, range)) = payload.as_section() {
            let body = component
                .get(range)
                .ok_or("a section outside the component")?;
            hasher.update([id]);
            hasher.update((body.len() as u64).to_le_bytes());
            hasher.update(body);
        }
        Ok(())
    })?;
    Ok(hasher.finalize().into())
}

fn defines_memory(module: &[u8]) -> Result<bool, SplitError> {
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| e.to_string())? {
            Payload::MemorySection(reader) => return Ok(reader.count() > 0),
            Payload::CodeSectionStart { .. } => return Ok(false),
            _ => {}
        }
    }
    Ok(false)
}

/// The heap module of a snapshot's main module: its memory (exported) and data segments.
fn heap_module(main: &[u8]) -> Result<Vec<u8>, SplitError> {
    let mut out = wasm_encoder::Module::new();
    let mut memory = None;
    let mut data = None;
    // (A repeated memory or data section, which validation would refuse in a module compiled
    // whole, is refused here by the parser: "section out of order".)
    for payload in Parser::new(0).parse_all(main) {
        match payload.map_err(|e| e.to_string())? {
            Payload::MemorySection(reader) => memory = Some(reader.range()),
            Payload::DataSection(reader) => data = Some(reader.range()),
            _ => {}
        }
    }
    let memory = memory.ok_or("the snapshot's main module has no memory")?;
    let section = |id, range: std::ops::Range<usize>| -> Result<RawSection<'_>, SplitError> {
        Ok(RawSection {
            id,
            data: main.get(range).ok_or("a section outside the module")?,
        })
    };
    out.section(&section(5, memory)?);
    let mut exports = wasm_encoder::ExportSection::new();
    exports.export(HEAP_FIELD, wasm_encoder::ExportKind::Memory, 0);
    out.section(&exports);
    if let Some(data) = data {
        out.section(&section(11, data)?);
    }
    Ok(out.finish())
}

/// `snapshot` (a snapshot of the runtime `layout` describes) as the agent's component over the
/// shared code: its main module replaced by the import of the code, and its heap module added
/// and instantiated just before the code, which gets the heap's memory.
///
/// # Errors
/// When `snapshot` is not such a snapshot: its main module differs from the runtime's in more
/// than the heap, or the component is laid out otherwise.
pub(super) fn heap_component(layout: &Layout, snapshot: &[u8]) -> Result<Vec<u8>, SplitError> {
    if frame_digest(snapshot, layout.main)? != layout.frame {
        return Err("its sections around the main module are not the runtime's".into());
    }
    let mut out = wasm_encoder::Component::new();
    let mut modules = 0u32;
    let mut instances = 0u32;
    // Where the heap module went (its module index), once emitted.
    let mut heap_index: Option<u32> = None;
    let mut heap_bytes: Option<Vec<u8>> = None;
    // The core instance index the heap's instance took: every reference at or past it moves
    // up by one.
    let mut inserted_at: Option<u32> = None;
    let remap = |inserted_at: Option<u32>, i: u32| match inserted_at {
        Some(at) if i >= at => i + 1,
        _ => i,
    };
    top_level(snapshot, |payload| {
        match &payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if heap_index.is_some() {
                    return Err("a core module after the first core instance".into());
                }
                if modules == layout.main {
                    let main = snapshot
                        .get(unchecked_range.clone())
                        .ok_or("a module outside the component")?;
                    if fixed_digest(main)? != layout.fixed {
                        return Err("its main module is not the runtime's code".into());
                    }
                    heap_bytes = Some(heap_module(main)?);
                    let mut types = CoreTypeSection::new();
                    types.ty().module(&layout.module_type);
                    out.section(&types);
                    let mut imports = ComponentImportSection::new();
                    imports.import(&layout.import, ComponentTypeRef::Module(0));
                    out.section(&imports);
                    modules += 1;
                    return Ok(());
                }
                modules += 1;
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader.clone() {
                    let import = import.map_err(|e| e.to_string())?;
                    if matches!(import.ty, wasmparser::ComponentTypeRef::Module(_)) {
                        return Err("the component imports a core module".into());
                    }
                }
            }
            Payload::CoreTypeSection(_) => {
                return Err("the component declares core types at its top level".into());
            }
            Payload::InstanceSection(reader) => {
                if heap_index.is_none() {
                    let bytes = heap_bytes
                        .take()
                        .ok_or("a core instance before the main module")?;
                    // A core module section (id 1) holding the heap module.
                    out.section(&RawSection {
                        id: 1,
                        data: &bytes,
                    });
                    heap_index = Some(modules);
                    modules += 1;
                }
                let heap = heap_index.unwrap_or_default();
                let mut section = InstanceSection::new();
                for instance in reader.clone() {
                    match instance.map_err(|e| e.to_string())? {
                        wasmparser::Instance::Instantiate { module_index, args } => {
                            let mut moved: Vec<(String, ModuleArg)> = args
                                .iter()
                                .map(|a| {
                                    (
                                        a.name.to_string(),
                                        ModuleArg::Instance(remap(inserted_at, a.index)),
                                    )
                                })
                                .collect();
                            if module_index == layout.main {
                                if inserted_at.is_some() {
                                    return Err("the main module is instantiated twice".into());
                                }
                                section.instantiate(heap, Vec::<(String, ModuleArg)>::new());
                                inserted_at = Some(instances);
                                instances += 1;
                                moved.push((
                                    HEAP_MODULE.to_string(),
                                    ModuleArg::Instance(instances - 1),
                                ));
                            }
                            section.instantiate(module_index, moved);
                        }
                        wasmparser::Instance::FromExports(exports) => {
                            let items = exports
                                .iter()
                                .map(|e| {
                                    let kind = RoundtripReencoder
                                        .export_kind(e.kind)
                                        .map_err(encode_err)?;
                                    Ok((e.name, kind, e.index))
                                })
                                .collect::<Result<Vec<_>, SplitError>>()?;
                            section.export_items(items);
                        }
                    }
                    instances += 1;
                }
                out.section(&section);
                return Ok(());
            }
            Payload::ComponentAliasSection(reader) => {
                let mut section = ComponentAliasSection::new();
                for alias in reader.clone() {
                    let alias = alias.map_err(|e| e.to_string())?;
                    match alias {
                        wasmparser::ComponentAlias::CoreInstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => {
                            section.alias(wasm_encoder::Alias::CoreInstanceExport {
                                instance: remap(inserted_at, instance_index),
                                kind: RoundtripReencoder.export_kind(kind).map_err(encode_err)?,
                                name,
                            });
                        }
                        wasmparser::ComponentAlias::InstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => {
                            section.alias(wasm_encoder::Alias::InstanceExport {
                                instance: instance_index,
                                kind: RoundtripReencoder.component_export_kind(kind),
                                name,
                            });
                        }
                        wasmparser::ComponentAlias::Outer { kind, count, index } => {
                            section.alias(wasm_encoder::Alias::Outer {
                                kind: RoundtripReencoder.component_outer_alias_kind(kind),
                                count,
                                index,
                            });
                        }
                    }
                }
                out.section(&section);
                return Ok(());
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let data = snapshot
                .get(range)
                .ok_or("a section outside the component")?;
            out.section(&RawSection { id, data });
        }
        Ok(())
    })?;
    if inserted_at.is_none() {
        return Err("the main module is never instantiated".into());
    }
    Ok(out.finish())
}
