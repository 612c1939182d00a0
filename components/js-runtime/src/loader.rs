//! The module loader: the agent's modules map and nothing else. An import is resolved relative
//! to the importing module (`./`, `../`) or from the map's root (a bare path), with `.js`,
//! `.mjs` or `.ts` added when the specifier has none; anything that resolves outside the map,
//! or to no module of it, is refused with an error naming the importer and the specifier.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use boa_engine::module::{Module, ModuleLoader, ModuleRequest, Referrer};
use boa_engine::{Context, JsResult, js_error};

/// The modules map.
#[derive(Default)]
pub struct MapLoader {
    modules: RefCell<HashMap<String, Module>>,
    /// The code of the last refusal (`missing_module`, `module_outside_map`), for the setup's
    /// error.
    refused: Cell<Option<&'static str>>,
}

impl MapLoader {
    /// Adds module `name`.
    pub fn insert(&self, name: &str, module: Module) {
        self.modules.borrow_mut().insert(normal(name), module);
    }

    /// Module `name`.
    pub fn get(&self, name: &str) -> Option<Module> {
        self.modules.borrow().get(&normal(name)).cloned()
    }

    /// Why the last import failed, if the loader refused it.
    pub fn refusal(&self) -> Option<&'static str> {
        self.refused.get()
    }

    fn resolve(&self, referrer: Option<&Path>, specifier: &str) -> Result<Module, String> {
        let relative = specifier.starts_with("./") || specifier.starts_with("../");
        let base = if relative {
            referrer.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
        } else {
            PathBuf::new()
        };
        let mut path = PathBuf::new();
        for part in base.join(specifier.trim_start_matches('/')).components() {
            match part {
                Component::CurDir => {}
                Component::ParentDir if !path.pop() => {
                    self.refused.set(Some("module_outside_map"));
                    return Err(format!("{specifier:?} points outside the modules map"));
                }
                Component::Normal(p) => path.push(p),
                _ => {}
            }
        }
        let path = path.to_string_lossy().into_owned();
        let modules = self.modules.borrow();
        for candidate in [
            path.clone(),
            format!("{path}.js"),
            format!("{path}.mjs"),
            format!("{path}.ts"),
        ] {
            if let Some(m) = modules.get(&candidate) {
                return Ok(m.clone());
            }
        }
        self.refused.set(Some("missing_module"));
        Err(format!("{specifier:?} is not a module of the modules map"))
    }
}

/// A module name as the map keys it: `/`-separated, no `./` or leading `/`.
fn normal(name: &str) -> String {
    Path::new(name.trim_start_matches('/'))
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl ModuleLoader for MapLoader {
    async fn load_imported_module(
        self: Rc<Self>,
        referrer: Referrer,
        request: ModuleRequest,
        _context: &RefCell<&mut Context>,
    ) -> JsResult<Module> {
        let specifier = request.specifier().to_std_string_escaped();
        let from = referrer.path().map(Path::to_path_buf);
        self.resolve(from.as_deref(), &specifier).map_err(|why| {
            let importer = from
                .as_deref()
                .map_or_else(|| "a module".to_string(), |p| p.display().to_string());
            js_error!(TypeError: "{} imports {}", importer, why)
        })
    }
}
