//! `POST /agent/deploy`: check the request, open the component (clear, or sealed to the
//! owner's session as an agent component), check the owner's signature over its name, the
//! component's plaintext and its settings (`public`, `price`, `ttl_seconds`, `limits`),
//! compile it (into the sealed compile cache, so no invocation and no
//! restart compiles it again), read its kind from its exports, store it sealed, and record the
//! version (refused if signed no later than the last deployment or deletion of the name).
//!
//! Crash safety: the sealed component is written (atomically) before the registry's
//! transaction; a crash in between leaves an unreferenced file and the old version in force.

use std::sync::Arc;

use hypervisor_protocol::agents::{
    AgentKind, DeployRequest, JsSource, MAX_TAGS, OwnerAction, RISCV_WORLD, deploy_detail,
    valid_name, valid_price,
};
use hypervisor_protocol::{EncodedPublicKey, Envelope, Role, sha256};

use super::{AgentDetail, owner, registry, storage};
use crate::clock::unix_seconds;
use crate::engine::EngineError;
use crate::error::ApiError;
use crate::pipeline::binary::Sent;
use crate::pipeline::{BinaryField, Pipeline, resolve_limits};
use crate::storage::agents::NewDeployment;

/// Longest description, bytes.
const MAX_DESCRIPTION: usize = 4096;
/// Longest tag (the most tags, `MAX_TAGS`, is bounded while the request is parsed).
const MAX_TAG: usize = 64;

impl Pipeline {
    /// Deploys (or redeploys, as a new version) an agent.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for a bad name, description, tags, price or TTL, or not
    /// exactly one component; [`ApiError::OwnerSignature`] for a deployment (clear or
    /// encrypted) without a valid signature, or signed no later than the last accepted
    /// deployment or deletion of the name; session and envelope errors for an encrypted one
    /// (an envelope of another role than agent-component does not open); engine errors for a
    /// bad component ([`EngineError::NotAnAgent`] when it exports no agent entry point);
    /// [`ApiError::NotOwner`] when the name belongs to another key.
    pub async fn deploy_agent(
        &self,
        req: DeployRequest,
        binary: Option<BinaryField>,
    ) -> Result<AgentDetail, ApiError> {
        let bad = |m: String| Err(ApiError::InvalidRequest(m));
        if !valid_name(&req.name) {
            return bad(format!(
                "`name` {:?} must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'",
                req.name
            ));
        }
        if req.description.len() > MAX_DESCRIPTION {
            return bad(format!(
                "`description` is longer than {MAX_DESCRIPTION} bytes"
            ));
        }
        if req.tags.len() > MAX_TAGS || req.tags.iter().any(|t| t.is_empty() || t.len() > MAX_TAG) {
            return bad(format!(
                "`tags`: at most {MAX_TAGS}, each 1-{MAX_TAG} bytes"
            ));
        }
        // The price is signed as sent (one line of the deploy detail), and must be an amount
        // the payment scheme can carry, or every invocation would fail.
        if let Some(p) = &req.price
            && !valid_price(p)
        {
            return bad(format!(
                "`price` {p:?} must be a positive decimal integer string of atomic units without \
                 leading zeros, at most 2^256 - 1 (what an EIP-3009 transfer can carry)"
            ));
        }
        if req.ttl_seconds == Some(0) {
            return bad("`ttl_seconds` must be > 0".into());
        }
        if let Some(t) = &req.content_type
            && !valid_media_type(t)
        {
            return bad(format!(
                "`content_type` {t:?} is not a media type (type/subtype, at most 127 printable \
                 ASCII characters)"
            ));
        }
        if let Some(grants) = &req.grants {
            super::grants::check(grants, &self.config.egress)?;
        }
        // A tariff is metered by the fuel, time and output of a run: its maximum is the price,
        // and the payments component must serve x402 `upto`.
        if let Some(tariff) = &req.tariff {
            tariff
                .check(req.price.as_deref().unwrap_or_default())
                .map_err(ApiError::InvalidRequest)?;
            if !self.payments.as_ref().is_some_and(|p| p.serves_metered()) {
                return Err(ApiError::MeteredUnavailable);
            }
            if tariff.per_million_fuel != "0" && !self.engine.fuel_enabled() {
                return bad(
                    "tariff.per_million_fuel charges by fuel, which this host does not meter \
                     (engine.fuel = false): charge by per_ms or per_kib_out"
                        .into(),
                );
            }
        }
        // Checked before the signature, whose detail names their canonical form.
        if let Some(schemas) = &req.schemas {
            schemas.check().map_err(ApiError::InvalidRequest)?;
        }
        // The limits must be within the host's maxima now, not at the first invocation.
        resolve_limits(
            req.limits.as_ref(),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;

        let owner_key = EncodedPublicKey::from_hex("public_key", &req.public_key)?;
        // A deployment without a signature is refused before anything is decoded or decrypted.
        let signature = req.signature.clone().ok_or_else(|| {
            ApiError::OwnerSignature(
                "a deployment needs `signature`, `signed_at` and `sequence`".into(),
            )
        })?;
        let (Some(signed_at), Some(sequence)) = (req.signed_at, req.sequence) else {
            return Err(ApiError::OwnerSignature(
                "`signed_at` or `sequence` is missing".into(),
            ));
        };
        let proof = owner::Proof {
            key: None,
            signature,
            signed_at,
            sequence,
        };
        if req.js.is_some() || req.encrypted_js.is_some() {
            if req.program_kind.is_some() {
                return bad(
                    "`program_kind` names the kind of a `component`; a JavaScript agent has none"
                        .into(),
                );
            }
            if req.component.is_some()
                || req.encrypted_component.is_some()
                || binary.is_some()
                || (req.js.is_some() && req.encrypted_js.is_some())
            {
                return bad(
                    "send exactly one of `component`, `encrypted_component`, `js` and \
                     `encrypted_js`"
                        .into(),
                );
            }
            let (js, encrypted) = match (&req.js, &req.encrypted_js) {
                (Some(js), _) => (js.clone(), false),
                (None, Some(sealed)) => (self.open_js(&req, &owner_key, sealed)?, true),
                (None, None) => return bad("no source".into()),
            };
            // Signed over the source (the snapshot is the host's work), before any of it runs.
            self.check_owner(
                &owner_key.to_hex(),
                OwnerAction::Deploy,
                &req.name,
                &deploy_detail(&hex::encode(js.sha256()), &req),
                &proof,
            )?;
            let snapshot = self.js_component(&js, req.limits.as_ref()).await?;
            return self
                .store_deployment(
                    req,
                    &owner_key,
                    &proof,
                    snapshot.component,
                    snapshot.hash,
                    encrypted,
                )
                .await;
        }
        // The component: base64 or hex in the JSON body, or the bytes of a binary part of the
        // same name.
        // (a clear part was hashed while it arrived)
        let mut arrived_hash = None;
        let (clear, sealed) = match binary {
            None => (
                req.component.as_deref().map(Sent::Base64),
                req.encrypted_component.as_deref().map(Sent::Hex),
            ),
            Some(part) if req.component.is_some() || req.encrypted_component.is_some() => {
                return bad(format!(
                    "the component is sent twice: in the JSON request and as the binary part \
                     `{}`",
                    part.name
                ));
            }
            Some(part) if part.name == "component" => {
                arrived_hash = Some(part.sha256);
                (Some(Sent::Bytes(part.bytes)), None)
            }
            Some(part) => (None, Some(Sent::Bytes(part.bytes))),
        };
        let (component, encrypted) = match (clear, sealed) {
            (Some(clear), None) => (clear.into_bytes("component")?, false),
            (None, Some(sealed)) => {
                let session = self.lookup_session(req.session_id, &owner_key)?;
                let ct = sealed.into_bytes("encrypted_component")?;
                // Its own role: the program of an execution request (role program), sealed to
                // the same session, does not open here.
                let bytes =
                    Envelope::new(&session.key, session.id).open(Role::AgentComponent, &ct)?;
                (bytes, true)
            }
            _ => {
                return bad(
                    "send exactly one of `component` (base64) and `encrypted_component`".into(),
                );
            }
        };
        // A program of another kind than the owner declared is refused before anything else.
        crate::engine::program_kind(&component, req.program_kind)?;
        let hash = arrived_hash.unwrap_or_else(|| sha256(&component));
        // Clear or sealed, the owner signs this name, the component's plaintext and the
        // settings as sent: a sealed envelope alone says nothing about the name or the
        // visibility it is deployed under, and nobody on the way can make a private deployment
        // public or change its price, lifetime or limits.
        self.check_owner(
            &owner_key.to_hex(),
            OwnerAction::Deploy,
            &req.name,
            &deploy_detail(&hex::encode(hash), &req),
            &proof,
        )?;

        self.store_deployment(req, &owner_key, &proof, component, hash, encrypted)
            .await
    }

    /// The source of an `encrypted_js` deployment: opened with the owner's session (role
    /// agent-js) and parsed.
    fn open_js(
        &self,
        req: &DeployRequest,
        owner_key: &EncodedPublicKey,
        sealed: &str,
    ) -> Result<JsSource, ApiError> {
        let session = self.lookup_session(req.session_id, owner_key)?;
        let ct = Sent::Hex(sealed).into_bytes("encrypted_js")?;
        // Its own role: no other envelope of the session (a program, a component) opens here.
        let plain = Envelope::new(&session.key, session.id).open(Role::AgentJs, &ct)?;
        serde_json::from_slice(&plain).map_err(|e| {
            ApiError::InvalidRequest(format!(
                "`encrypted_js` opened, but is not the JSON of a source ({{\"main\", \"modules\"}}): {e}"
            ))
        })
    }

    /// The rest of a deployment once its component is known and its signature checked: the
    /// price's feasibility, compiling, the kind, storing it sealed, recording the version.
    async fn store_deployment(
        &self,
        req: DeployRequest,
        owner_key: &EncodedPublicKey,
        proof: &owner::Proof,
        component: Vec<u8>,
        hash: [u8; 32],
        encrypted: bool,
    ) -> Result<AgentDetail, ApiError> {
        let bad = |m: String| Err(ApiError::InvalidRequest(m));
        // Signed as sent, but a price this host could never collect would make every
        // invocation a 503.
        if req.price.is_some() && self.payments.is_none() {
            return bad(
                "this host takes no payments (payments.enabled = false): an agent with a \
                 `price` cannot be deployed here"
                    .into(),
            );
        }

        let size = u64::try_from(component.len()).unwrap_or(u64::MAX);
        let component = Arc::new(crate::crypto::plaintext::Plaintext::new(component));
        let prepared = self.engine.prepare(hash, component.clone()).await?;
        let kind = prepared.kind().ok_or(EngineError::NotAnAgent)?;
        if req.schemas.is_some() && kind != AgentKind::Handler {
            return bad(format!(
                "`schemas` describe a handler agent's event and result (its MCP tool); this \
                 component is a {} agent",
                kind.as_str()
            ));
        }
        let world = if prepared.is_riscv() {
            RISCV_WORLD
        } else {
            kind.world()
        };
        if kind == AgentKind::Http && req.tariff.is_some() {
            return bad(
                "a tariff meters handler and CLI agents: an HTTP agent's answer streams, so it \
                 is charged a fixed `price`"
                    .into(),
            );
        }
        let public = req.public.unwrap_or(!encrypted);
        // An HTTP agent is served in the clear: a private one nobody may call in the clear
        // would answer every request 403.
        if kind == AgentKind::Http
            && !public
            && req
                .grants
                .as_ref()
                .and_then(|g| g.callers.as_ref())
                .is_none_or(Vec::is_empty)
        {
            return bad(
                "an HTTP agent is served in the clear, so a private one could be reached by \
                 nobody: deploy it with `public: true` (a sealed deployment stays sealed at \
                 rest), or name in `grants.callers` the agents that may call it"
                    .into(),
            );
        }

        let store = self.agents.clone();
        let bytes = component.clone();
        tokio::task::spawn_blocking(move || store.code.store(&hash, &bytes))
            .await
            .map_err(|e| ApiError::Internal(format!("storing the component failed: {e}")))?
            .map_err(storage)?;

        let schemas_json = req
            .schemas
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let tariff_json = req
            .tariff
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = unix_seconds();
        let deployment = NewDeployment {
            name: &req.name,
            owner_key: &owner_key.to_hex(),
            description: &req.description,
            tags: &req.tags,
            public,
            price: req.price.as_deref(),
            expires_at: req.ttl_seconds.map(|t| now.saturating_add(t)),
            charge: req.charge.unwrap_or_default(),
            content_type: req.content_type.as_deref(),
            grants: &req.grants.clone().unwrap_or_default(),
            schemas: schemas_json.as_deref(),
            tariff: tariff_json.as_deref(),
            code_hash: hash,
            kind,
            world,
            size,
            limits: req.limits.unwrap_or_default(),
            order: proof.order(),
            now,
        };
        let deployed = self.agents.catalog.deploy(&deployment);
        self.agents.changed(&req.name).map_err(storage)?;
        let version = deployed.map_err(registry)?;
        if version == 1 {
            // A new agent starts with no state or configuration, whatever a run of an agent
            // deleted under the same name may have left behind.
            self.agents.forget_agent_data(&req.name).map_err(storage)?;
        }
        tracing::info!(
            agent = %req.name,
            version,
            kind = kind.as_str(),
            code = %hex::encode(hash),
            encrypted,
            "agent deployed"
        );
        self.agent(&req.name)
    }
}

/// Whether `t` looks like a media type: `type/subtype` (parameters allowed), printable ASCII,
/// at most 127 bytes.
fn valid_media_type(t: &str) -> bool {
    let essence = t.split(';').next().unwrap_or_default().trim();
    let mut parts = essence.splitn(2, '/');
    let token = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        })
    };
    t.len() <= 127
        && t.bytes().all(|b| (0x20..0x7f).contains(&b))
        && token(parts.next())
        && token(parts.next())
}
