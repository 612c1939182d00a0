//! An agent's configuration change as the host reads it once opened
//! (`hypervisor_protocol::state::ConfigChange`): any bytes parse into a change or an error,
//! never a panic; a change that passes its check names only valid names within the limits,
//! round-trips through JSON, and its detail is a SHA-256 in hex.
#![no_main]

use hypervisor_protocol::state::{
    ConfigChange, MAX_CONFIG_ENTRIES, MAX_CONFIG_VALUE_BYTES, config_detail, valid_config_name,
    value_hash,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let detail = config_detail(data);
    assert_eq!(detail.len(), 64);
    let Ok(change) = serde_json::from_slice::<ConfigChange>(data) else {
        return;
    };
    if change.check().is_err() {
        return;
    }
    assert!(change.set.len() + change.remove.len() <= MAX_CONFIG_ENTRIES);
    for (name, value) in &change.set {
        assert!(valid_config_name(name));
        assert!(value.len() <= MAX_CONFIG_VALUE_BYTES);
        assert!(!change.remove.contains(name));
        assert_eq!(value_hash("agent", name, value).len(), 64);
    }
    assert!(change.remove.iter().all(|n| valid_config_name(n)));
    let text = serde_json::to_vec(&change).expect("a change serialises");
    let back: ConfigChange = serde_json::from_slice(&text).expect("and parses back");
    assert_eq!(back, change);
});
