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
    ComponentAliasSection, ComponentImportSection, ComponentTypeRef, CoreTypeSection, EntityType,
    ImportSection, InstanceSection, ModuleArg, ModuleType, RawSection,
};
use wasmparser::{Parser, Payload};

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
    /// The core module type of the code, as the agents' components declare its import.
    module_type: ModuleType,
    /// The name of that import.
    import: String,
}

impl Layout {
    /// Splits `runtime` (the JavaScript runtime component): its layout, and the code module
    /// (to compile once and define under [`Self::import`]).
    ///
    /// # Errors
    /// When the runtime is not shaped as this module expects (one top-level core module with
    /// one memory of its own, and no core types or module imports at the top level).
    pub(super) fn of(runtime: &[u8]) -> Result<(Self, Vec<u8>), SplitError> {
        let main = main_module(runtime)?;
        let (code, module_type) = code_module(&main.bytes)?;
        let digest = hex::encode(Sha256::digest(&code));
        let layout = Self {
            main: main.index,
            fixed: fixed_digest(&main.bytes)?,
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

/// Whether a section of the main module is the heap's (changed by a snapshot).
fn is_heap_section(id: u8) -> bool {
    // memory, data, data count
    matches!(id, 5 | 11 | 12)
}

/// SHA-256 over the main module's sections but the heap's and the custom ones, each with its
/// id and length.
fn fixed_digest(module: &[u8]) -> Result<[u8; 32], SplitError> {
    let mut hasher = Sha256::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let Payload::CustomSection(_) = payload {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            if is_heap_section(id) {
                continue;
            }
            let body = module.get(range).ok_or("a section outside the module")?;
            hasher.update([id]);
            hasher.update((body.len() as u64).to_le_bytes());
            hasher.update(body);
        }
    }
    Ok(hasher.finalize().into())
}

fn encode_err(e: impl std::fmt::Display) -> SplitError {
    format!("cannot re-encode the runtime's main module: {e}")
}

/// The code module (the main module with its memory imported and no data) and its type.
fn code_module(main: &[u8]) -> Result<(Vec<u8>, ModuleType), SplitError> {
    let mut re = RoundtripReencoder;
    let memory = the_memory(main)?;
    let mut out = wasm_encoder::Module::new();
    let mut ty = ModuleType::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut tables = Vec::new();
    let mut globals = Vec::new();
    let mut exports = Vec::new();
    let mut had_imports = false;
    for payload in Parser::new(0).parse_all(main) {
        let payload = payload.map_err(|e| e.to_string())?;
        match &payload {
            Payload::TypeSection(reader) => {
                for group in reader.clone() {
                    let group = group.map_err(encode_err)?;
                    re.parse_recursive_type_group(ty.ty(), group)
                        .map_err(encode_err)?;
                }
            }
            Payload::ImportSection(reader) => {
                had_imports = true;
                let mut imports = ImportSection::new();
                for import in reader.clone().into_imports() {
                    let import = import.map_err(encode_err)?;
                    let entity = re.entity_type(import.ty).map_err(encode_err)?;
                    match import.ty {
                        wasmparser::TypeRef::Func(t) => func_types.push(t),
                        wasmparser::TypeRef::FuncExact(t) => func_types.push(t),
                        wasmparser::TypeRef::Memory(_) => {
                            return Err("the main module imports a memory".into());
                        }
                        wasmparser::TypeRef::Table(t) => {
                            tables.push(re.table_type(t).map_err(encode_err)?);
                        }
                        wasmparser::TypeRef::Global(g) => {
                            globals.push(re.global_type(g).map_err(encode_err)?);
                        }
                        wasmparser::TypeRef::Tag(_) => {
                            return Err("the main module imports a tag".into());
                        }
                    }
                    imports.import(import.module, import.name, entity);
                    ty.import(import.module, import.name, entity);
                }
                // Its index among the module's memories is 0, as it was: the module had no
                // other memory.
                imports.import(HEAP_MODULE, HEAP_FIELD, EntityType::Memory(memory));
                out.section(&imports);
                continue;
            }
            Payload::FunctionSection(reader) => {
                for t in reader.clone() {
                    func_types.push(t.map_err(encode_err)?);
                }
            }
            Payload::TableSection(reader) => {
                for t in reader.clone() {
                    tables.push(
                        re.table_type(t.map_err(encode_err)?.ty)
                            .map_err(encode_err)?,
                    );
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader.clone() {
                    globals.push(
                        re.global_type(g.map_err(encode_err)?.ty)
                            .map_err(encode_err)?,
                    );
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader.clone() {
                    exports.push(e.map_err(encode_err)?);
                }
            }
            Payload::End(_) => break,
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            if is_heap_section(id) {
                continue;
            }
            let data = main.get(range).ok_or("a section outside the module")?;
            out.section(&RawSection { id, data });
        }
    }
    if !had_imports {
        return Err("the main module imports nothing".into());
    }
    let module = out.finish();
    ty.import(HEAP_MODULE, HEAP_FIELD, EntityType::Memory(memory));
    for e in exports {
        let entity = match e.kind {
            wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                let t = func_types
                    .get(e.index as usize)
                    .ok_or("an export of a function that does not exist")?;
                EntityType::Function(*t)
            }
            wasmparser::ExternalKind::Table => EntityType::Table(
                *tables
                    .get(e.index as usize)
                    .ok_or("an export of a table that does not exist")?,
            ),
            wasmparser::ExternalKind::Memory => EntityType::Memory(memory),
            wasmparser::ExternalKind::Global => EntityType::Global(
                *globals
                    .get(e.index as usize)
                    .ok_or("an export of a global that does not exist")?,
            ),
            wasmparser::ExternalKind::Tag => return Err("the main module exports a tag".into()),
        };
        ty.export(e.name, entity);
    }
    wasmparser::Validator::new()
        .validate_all(&module)
        .map_err(|e| format!("the code module does not validate: {e}"))?;
    Ok((module, ty))
}

/// The one memory the main module defines.
fn the_memory(main: &[u8]) -> Result<wasm_encoder::MemoryType, SplitError> {
    for payload in Parser::new(0).parse_all(main) {
        if let Payload::MemorySection(reader) = payload.map_err(|e| e.to_string())? {
            let mut all = reader.into_iter();
            let first = all.next().ok_or("an empty memory section")?;
            if all.next().is_some() {
                return Err("the main module has more than one memory".into());
            }
            return RoundtripReencoder
                .memory_type(first.map_err(encode_err)?)
                .map_err(encode_err);
        }
    }
    Err("the main module has no memory".into())
}

/// The heap module of a snapshot's main module: its memory (exported) and data segments.
fn heap_module(main: &[u8]) -> Result<Vec<u8>, SplitError> {
    let mut out = wasm_encoder::Module::new();
    let mut memory = None;
    let mut data = None;
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

#[cfg(all(test, builtin_js_runtime))]
mod tests {
    use super::*;

    fn runtime() -> Vec<u8> {
        std::fs::read(env!("HYPERVISOR_BUILTIN_JS_RUNTIME")).expect("the runtime component")
    }

    fn validate(wasm: &[u8]) -> Result<(), String> {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(wasm)
            .map(|_| ())
            .map_err(|e| e.to_string())
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
        let (layout, code) = Layout::of(&runtime).unwrap();
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
        let main_code = super::super::js_compiler::code_sections(&code);
        let heap_code = super::super::js_compiler::code_sections(&heap);
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
        let (layout, _) = Layout::of(&runtime).unwrap();
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
        // Not a component of the runtime at all.
        assert!(heap_component(&layout, b"\0asm\x0d\0\x01\0").is_err());
        assert!(heap_component(&layout, b"not wasm").is_err());
    }
}
