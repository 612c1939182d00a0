//! Import policy: a component may import standard WASI interfaces and
//! `hypervisor:host/{crypto,attestation}`, nothing else. Checked before instantiation, so a
//! refused component never runs a single instruction.

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::EngineError;

/// Interfaces of `hypervisor:host` that components may import.
const HOST_INTERFACES: &[&str] = &["hypervisor:host/crypto", "hypervisor:host/attestation"];

/// Whether an import name (`ns:pkg/iface@version`) is allowed.
pub fn is_allowed(name: &str) -> bool {
    let unversioned = name.split('@').next().unwrap_or(name);
    unversioned.starts_with("wasi:") || HOST_INTERFACES.contains(&unversioned)
}

/// Refuses the first import outside the allow-list, naming it.
///
/// # Errors
/// [`EngineError::DisallowedImport`].
pub fn check(component: &Component, engine: &wasmtime::Engine) -> Result<(), EngineError> {
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        // Bare function or type imports at the top level are never standard.
        let allowed = match item.ty {
            ComponentItem::ComponentInstance(_) => is_allowed(name),
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
    use super::is_allowed;

    #[test]
    fn allow_list() {
        assert!(is_allowed("wasi:cli/environment@0.2.3"));
        assert!(is_allowed("wasi:io/streams@0.2.9"));
        assert!(is_allowed("hypervisor:host/crypto@0.1.0"));
        assert!(is_allowed("hypervisor:host/attestation"));
        assert!(!is_allowed("hypervisor:host/policy@0.1.0"));
        assert!(!is_allowed("example:foreign/raw-network@0.1.0"));
        assert!(!is_allowed("wasix:net/socket"));
    }
}
