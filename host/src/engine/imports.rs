//! Import policy: a component may import standard WASI interfaces and the `hypervisor:host`
//! interfaces its role's capabilities grant ([`HostImports`], see the table on [`super::Capabilities`]),
//! nothing else. Checked before instantiation, so a refused component never runs a single
//! instruction.

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::{EngineError, HostImports};

/// Whether an import name (`ns:pkg/iface@version`) is allowed with `host` granted.
pub fn is_allowed(name: &str, host: HostImports) -> bool {
    let unversioned = name.split('@').next().unwrap_or(name);
    unversioned.starts_with("wasi:") || host.allows(unversioned)
}

/// Refuses the first import outside WASI and `host`, naming it.
///
/// # Errors
/// [`EngineError::DisallowedImport`].
pub fn check(
    component: &Component,
    engine: &wasmtime::Engine,
    host: HostImports,
) -> Result<(), EngineError> {
    check_with_module(component, engine, host, None)
}

/// As [`check`], and the one core module import named `module`, if any, is allowed too (the
/// JavaScript runtime's shared code, `super::js_shared`).
///
/// # Errors
/// [`EngineError::DisallowedImport`].
pub fn check_with_module(
    component: &Component,
    engine: &wasmtime::Engine,
    host: HostImports,
    module: Option<&str>,
) -> Result<(), EngineError> {
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        let allowed = match item.ty {
            ComponentItem::ComponentInstance(_) => is_allowed(name, host),
            ComponentItem::Module(_) => Some(name) == module,
            _ => false,
        };
        if !allowed {
            return Err(EngineError::DisallowedImport(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{HostImports, is_allowed};

    #[test]
    fn allow_list() {
        let all = HostImports::ALL;
        assert!(is_allowed("wasi:cli/environment@0.2.3", all));
        assert!(is_allowed("wasi:io/streams@0.2.9", all));
        assert!(is_allowed("hypervisor:host/crypto@0.1.0", all));
        assert!(is_allowed("hypervisor:host/attestation", all));
        assert!(!is_allowed("hypervisor:host/policy@0.1.0", all));
        assert!(!is_allowed("example:foreign/raw-network@0.1.0", all));
        assert!(!is_allowed("wasix:net/socket", all));
        let none = HostImports {
            crypto: false,
            attestation: false,
        };
        assert!(is_allowed("wasi:cli/environment@0.2.3", none));
        assert!(!is_allowed("hypervisor:host/crypto@0.1.0", none));
    }
}
