//! x402's offer-and-receipt extension (`hypervisor_protocol::offer_receipt`, PROTOCOL §6b):
//! every 402 challenge carries the host's offers for its `accepts`, and every successful
//! settlement of a code route or a handler or CLI agent's run a receipt, both signed by the
//! attested key (JWS, `kid` its `did:key`). A receipt also states the run paid for (its record's
//! id, route, agent, code hash, result commitment and end, the amount, the TEE and where the
//! key's evidence is). A host without an attested key signs neither.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hypervisor_protocol::offer_receipt::{self as or, Artifact, RunBinding};
use serde_json::{Value, json};

use crate::clock::unix_seconds;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::plugins::payments::SettlementHeader;
use crate::storage::records::ExecutionRecord;

/// What a receipt needs of the payment: its network (CAIP-2), resource, payer and amount.
#[derive(Debug, Clone)]
pub(in crate::pipeline) struct Terms {
    /// A metered run's meter, tariff and maximum (`amount` is then the charge).
    pub metered: Option<or::Metering>,
    pub network: String,
    pub resource_url: String,
    pub payer: String,
    pub amount: String,
}

pub(super) fn decode(b64: &str) -> Option<Value> {
    B64.decode(b64.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .filter(Value::is_object)
}

impl Pipeline {
    /// `payment_required` (the v2 challenge, base64 JSON) with the host's signed offers, one
    /// per `accepts` entry, valid for its `maxTimeoutSeconds`; unchanged without an attested
    /// key (or for a document that is not one).
    pub(super) fn with_offers(&self, payment_required: &str) -> String {
        let Some(mut doc) = decode(payment_required) else {
            return payment_required.to_string();
        };
        let url = doc["resource"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let accepts = doc["accepts"].as_array().cloned().unwrap_or_default();
        let Some(extension) = self.offers_extension(&url, &accepts) else {
            return payment_required.to_string();
        };
        if !doc["extensions"].is_object() {
            doc["extensions"] = json!({});
        }
        doc["extensions"][or::EXTENSION] = extension;
        B64.encode(doc.to_string())
    }

    /// `extensions["offer-receipt"]` with the host's signed offers of `accepts` for the
    /// resource `url`, or `None` without an attested key (or when none could be signed).
    pub(super) fn offers_extension(&self, url: &str, accepts: &[Value]) -> Option<Value> {
        let key = self.attestor.current()?;
        let now = unix_seconds();
        let mut offers = Vec::new();
        for (i, accept) in accepts.iter().enumerate() {
            let field = |name: &str| accept[name].as_str().unwrap_or_default().to_string();
            let payload = or::offer_payload(
                url,
                &field("scheme"),
                &field("network"),
                &field("asset"),
                &field("payTo"),
                &field("amount"),
                now + accept["maxTimeoutSeconds"].as_u64().unwrap_or(60),
            );
            let signed = or::signing_input(Artifact::Offer, &key.public, &payload)
                .ok()
                .and_then(|input| Some(input.compact(&key.sign_offer_receipt(&input).ok()?)));
            match signed {
                Some(jws) => {
                    offers.push(json!({"format": "jws", "acceptIndex": i, "signature": jws}));
                }
                None => tracing::warn!("signing an x402 offer failed"),
            }
        }
        if offers.is_empty() {
            return None;
        }
        Some(json!({ "info": { "offers": offers }, "schema": or::offers_schema() }))
    }

    /// `header` (a settlement) with the host's receipt for `terms` and the run `record`, when
    /// the settlement succeeded and the host has an attested key; unchanged otherwise.
    pub(in crate::pipeline) fn with_receipt(
        &self,
        mut header: SettlementHeader,
        terms: &Terms,
        record: &ExecutionRecord,
    ) -> SettlementHeader {
        let Some(key) = self.attestor.current() else {
            return header;
        };
        let Some(mut settlement) = decode(&header.value) else {
            return header;
        };
        if settlement["success"] != json!(true) {
            return header;
        }
        let run = RunBinding {
            execution_id: record.id.clone(),
            route: record.route.clone(),
            agent: record.agent.clone(),
            code_hash: record.code_hash.clone(),
            result_commitment: record.commitment.clone(),
            status: record.status.clone(),
            amount: terms.amount.clone(),
            tee: self.attestor.kind().name().to_string(),
            evidence_sha256: hex::encode(key.evidence_sha256),
            attestation: format!("{}/attestation", self.public_base()),
            metered: terms.metered.clone(),
        };
        let payload = or::receipt_payload(
            &terms.network,
            &terms.resource_url,
            &terms.payer,
            unix_seconds(),
            settlement["transaction"].as_str(),
            &run,
        );
        let signed = or::signing_input(Artifact::Receipt, &key.public, &payload)
            .map_err(|e| ApiError::Internal(e.to_string()))
            .and_then(|input| {
                let sig = key
                    .sign_offer_receipt(&input)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(input.compact(&sig))
            });
        match signed {
            Ok(jws) => {
                if !settlement["extensions"].is_object() {
                    settlement["extensions"] = json!({});
                }
                settlement["extensions"][or::EXTENSION] = json!({
                    "info": { "receipt": { "format": "jws", "signature": jws } },
                    "schema": or::receipt_schema(),
                });
                header.value = B64.encode(settlement.to_string());
            }
            Err(e) => tracing::warn!(error = %e, "signing an x402 receipt failed"),
        }
        header
    }
}
