//! x402's `payment-identifier` extension (idempotent paid requests): where it is offered, and
//! how long and how large the answers kept for retries may be.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a paid route takes payment identifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierMode {
    /// Not offered; an identifier sent anyway is ignored.
    Off,
    /// Offered (`required: false`): a payment with one is answered once, and its retries get
    /// the same answer.
    #[default]
    Optional,
    /// Offered with `required: true`: a payment without one is refused (400).
    Required,
}

/// `[payments.payment_identifier]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentifierConfig {
    /// The mode of every paid route that takes identifiers (the paid code routes and paid
    /// handler and CLI agents' `/agents/{name}/invoke`). Default `optional`.
    pub mode: IdentifierMode,
    /// Per-route modes (a paid code route's path, or `/agents/{name}/invoke` for one agent),
    /// overriding `mode`.
    pub routes: BTreeMap<String, IdentifierMode>,
    /// How long an answer is kept for retries, seconds; after it a retry gets
    /// `409 payment_identifier_answer_gone`. Default 86400 (a day); 60 to 2592000 (30 days).
    pub keep_seconds: u64,
    /// The largest answer kept, bytes; a larger one is delivered but not kept (its retries get
    /// `409 payment_identifier_answer_gone`). Default 16 MiB; 1 KiB to 256 MiB.
    pub max_answer_bytes: usize,
}

impl Default for IdentifierConfig {
    fn default() -> Self {
        Self {
            mode: IdentifierMode::Optional,
            routes: BTreeMap::new(),
            keep_seconds: 86_400,
            max_answer_bytes: 16 << 20,
        }
    }
}

impl IdentifierConfig {
    /// The mode of the paid route `path`.
    pub fn mode_of(&self, path: &str) -> IdentifierMode {
        self.routes.get(path).copied().unwrap_or(self.mode)
    }

    /// Checks the bounds and that every route named is one that takes identifiers.
    ///
    /// # Errors
    /// A message naming the first setting that is wrong.
    pub fn check(&self, paid_code_routes: &[&str]) -> Result<(), String> {
        if !(60..=2_592_000).contains(&self.keep_seconds) {
            return Err(
                "payments.payment_identifier.keep_seconds must be between 60 and 2592000".into(),
            );
        }
        if !(1024..=256 << 20).contains(&self.max_answer_bytes) {
            return Err(
                "payments.payment_identifier.max_answer_bytes must be between 1024 and 268435456"
                    .into(),
            );
        }
        for route in self.routes.keys() {
            let agent = route
                .strip_prefix("/agents/")
                .and_then(|rest| rest.strip_suffix("/invoke"))
                .is_some_and(hypervisor_protocol::agents::valid_name);
            if !agent && !paid_code_routes.contains(&route.as_str()) {
                return Err(format!(
                    "payments.payment_identifier.routes: {route:?} is neither a paid code route \
                     ({}) nor /agents/NAME/invoke",
                    paid_code_routes.join(", ")
                ));
            }
        }
        Ok(())
    }
}
