//! The runtime's main module as shared code: its memory made an import, its data left out, and
//! the core module type the agents' components declare for it.

use sha2::{Digest, Sha256};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{EntityType, ImportSection, ModuleType, RawSection};
use wasmparser::{Parser, Payload};

use super::{HEAP_FIELD, HEAP_MODULE, SplitError};

/// Whether a section of the main module is the heap's (changed by a snapshot).
pub(super) fn is_heap_section(id: u8) -> bool {
    // memory, data, data count
    matches!(id, 5 | 11 | 12)
}

/// SHA-256 over the main module's sections but the heap's and the custom ones, each with its
/// id and length.
pub(super) fn fixed_digest(module: &[u8]) -> Result<[u8; 32], SplitError> {
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

pub(super) fn encode_err(e: impl std::fmt::Display) -> SplitError {
    format!("cannot re-encode the runtime's main module: {e}")
}

/// The code module (the main module with its memory imported and no data) and its type.
pub(super) fn code_module(main: &[u8]) -> Result<(Vec<u8>, ModuleType), SplitError> {
    let mut re = RoundtripReencoder;
    // The heap's memory, whatever its size: a snapshot's is as large as its set-up left it,
    // which may be smaller than the module the code is taken from (StarlingMonkey's code comes
    // from a reference snapshot). Its maximum stays the runtime's.
    let mut memory = the_memory(main)?;
    memory.minimum = 0;
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
