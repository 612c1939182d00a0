//! Agents from the client side: deploy (clear or sealed to a session, always with an owner
//! signature), search, invoke (clear or sealed), delete and read logs as the owner.

use std::borrow::Cow;

use hypervisor_protocol::agents::{
    ChargeRule, DeployRequest, InvokeRequest, InvokeResponse, JsSource, OWNER_KEY_HEADER,
    OWNER_SEQUENCE_HEADER, OWNER_SIGNATURE_HEADER, OWNER_SIGNED_AT_HEADER, OwnerAction,
    SearchRequest,
};
use hypervisor_protocol::grants::{CallRecord, Grants, GrantsUpdate};
use hypervisor_protocol::wire::{Limits, ProgramKind};
use hypervisor_protocol::{ClientSecret, InputDigests, Role, sha256};

use crate::client::read_response;
use crate::error::server_error;
pub use crate::owner::{OwnerSignature, owner_signature, sign_deploy_of, sign_deploy_request};
use crate::upload::{Body, Text};
use crate::{Client, ClientError, Execution, Session};

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct Deployment<'a> {
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: &'a str,
    /// Tags.
    pub tags: Vec<String>,
    /// The component (or a RISC-V program's ELF file).
    pub component: &'a [u8],
    /// Declares the component's kind (the host refuses a program of another kind; `None`: it
    /// recognises it).
    pub program_kind: Option<ProgramKind>,
    /// Override the default visibility (public for clear deployments, private for sealed).
    pub public: Option<bool>,
    /// Default limits.
    pub limits: Option<Limits>,
    /// Price per invocation.
    pub price: Option<String>,
    /// Time to live, seconds.
    pub ttl_seconds: Option<u64>,
    /// When a paid agent's run is charged (default: only answers below 400).
    pub charge: Option<ChargeRule>,
    /// A metered agent's tariff (x402 `upto`; `price` is then the most a run costs).
    pub tariff: Option<hypervisor_protocol::tariff::Tariff>,
    /// The media type an HTTP agent answers with (declared in its payment challenges).
    pub content_type: Option<String>,
    /// What the agent may reach and who may call it (signed with the deployment).
    pub grants: Option<Grants>,
    /// A handler agent's event and result schemas (its MCP tool's `inputSchema` and
    /// `outputSchema`; signed with the deployment).
    pub schemas: Option<hypervisor_protocol::agents::ToolSchemas>,
}

impl Deployment<'_> {
    fn request(&self, owner: &ClientSecret) -> DeployRequest {
        DeployRequest {
            name: self.name.to_string(),
            description: self.description.to_string(),
            tags: self.tags.clone(),
            public_key: owner.public_key().to_hex(),
            component: None,
            encrypted_component: None,
            program_kind: self.program_kind,
            js: None,
            encrypted_js: None,
            session_id: None,
            public: self.public,
            limits: self.limits,
            price: self.price.clone(),
            ttl_seconds: self.ttl_seconds,
            charge: self.charge,
            tariff: self.tariff.clone(),
            content_type: self.content_type.clone(),
            grants: self.grants.clone(),
            schemas: self.schemas.clone(),
            signature: None,
            signed_at: None,
            sequence: None,
        }
    }
}

/// The request [`Client::deploy_agent_sealed`] sends: the component sealed to `session`
/// (role agent-component), signed by `owner` for the host of `audience` over its name, the
/// component's SHA-256 and its settings ([`sign_deploy_request`]).
///
/// # Errors
/// [`ClientError::Protocol`] if sealing fails; [`ClientError::BadResponse`] if the key cannot
/// sign.
pub fn sealed_deploy_request(
    owner: &ClientSecret,
    audience: &str,
    session: &Session,
    d: &Deployment<'_>,
) -> Result<DeployRequest, ClientError> {
    let (mut req, envelope) = sealed_deploy_parts(owner, audience, session, d)?;
    req.encrypted_component = Some(hex::encode(envelope));
    Ok(req)
}

/// As [`sealed_deploy_request`], with the component's envelope returned as bytes and left out
/// of the request: for a multipart upload, whose binary part `encrypted_component` carries it.
///
/// # Errors
/// Only if the OS random number generator fails.
pub fn sealed_deploy_parts(
    owner: &ClientSecret,
    audience: &str,
    session: &Session,
    d: &Deployment<'_>,
) -> Result<(DeployRequest, Vec<u8>), ClientError> {
    let mut req = d.request(owner);
    let envelope = session.envelope().seal(Role::AgentComponent, d.component)?;
    req.session_id = Some(session.id);
    sign_deploy_request(owner, audience, &mut req, d.component)?;
    Ok((req, envelope))
}

/// What pays a priced agent's offer: the payment header's name and value, or why not.
pub type PayFn<'a> =
    dyn FnMut(&crate::x402::Offer) -> Result<(&'static str, String), ClientError> + 'a;

/// The payer of a call made without one: a 402 becomes [`ClientError::PaymentRequired`],
/// saying what was asked.
///
/// # Errors
/// Always: [`ClientError::PaymentRequired`].
pub fn payment_required(offer: &crate::x402::Offer) -> Result<(&'static str, String), ClientError> {
    Err(ClientError::PaymentRequired(match offer.terms() {
        Ok(t) => format!(
            "{} atomic units of token {} on {}, to {}",
            t.amount, t.asset, t.network, t.pay_to
        ),
        Err(_) => offer.requirements.to_string(),
    }))
}

impl Client {
    /// Deploys a JavaScript (or TypeScript) agent from its source: `js`'s modules, signed by
    /// `owner` over the name, the source's SHA-256 ([`JsSource::sha256`]) and the settings of
    /// `d` (whose `component` is ignored). The host sets the modules up once and snapshots
    /// them; the agent is a handler agent.
    ///
    /// # Errors
    /// Transport or server errors (a syntax error, a missing import or no `handler` export is
    /// the server's `invalid_request`, naming the module).
    pub fn deploy_js(
        &self,
        owner: &ClientSecret,
        d: &Deployment<'_>,
        js: &JsSource,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = d.request(owner);
        req.js = Some(js.clone());
        crate::owner::sign_deploy_of(owner, &self.audience()?, &mut req, &js.sha256())?;
        self.expect_status(201, "/agent/deploy", &req)
    }

    /// Deploys a JavaScript (or TypeScript) agent with its source sealed to `session` (whose key
    /// is the owner's; envelope role agent-js, the JSON of `js`), signed by `owner` like
    /// [`Self::deploy_js`]: a private agent unless `d.public = Some(true)`, whose source nobody
    /// between the client and the host reads.
    ///
    /// # Errors
    /// Transport or server errors; [`ClientError::Protocol`] if sealing fails.
    pub fn deploy_js_sealed(
        &self,
        owner: &ClientSecret,
        session: &Session,
        d: &Deployment<'_>,
        js: &JsSource,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = d.request(owner);
        let plain = serde_json::to_vec(js).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let envelope = session.envelope().seal(Role::AgentJs, &plain)?;
        req.encrypted_js = Some(hex::encode(envelope));
        req.session_id = Some(session.id);
        crate::owner::sign_deploy_of(owner, &self.audience()?, &mut req, &js.sha256())?;
        self.expect_status(201, "/agent/deploy", &req)
    }

    /// Deploys in the clear, signed by `owner` over the name, the component and the settings
    /// (a public agent unless `public = Some(false)`).
    /// Returns the agent as the host shows it.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn deploy_agent(
        &self,
        owner: &ClientSecret,
        d: &Deployment<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = d.request(owner);
        sign_deploy_request(owner, &self.audience()?, &mut req, d.component)?;
        let body = self.upload_body(
            req,
            "component",
            Cow::Borrowed(d.component),
            Text::Base64,
            |r, t| r.component = Some(t),
        )?;
        self.expect_body_status(201, "/agent/deploy", &body)
    }

    /// Deploys with the component sealed to `session` (whose key is the owner's), envelope
    /// role agent-component, signed by `owner` over the component's plaintext and the settings
    /// like a clear deployment (a private agent unless `public = Some(true)`).
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn deploy_agent_sealed(
        &self,
        owner: &ClientSecret,
        session: &Session,
        d: &Deployment<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        let (req, envelope) = sealed_deploy_parts(owner, &self.audience()?, session, d)?;
        let body = self.upload_body(
            req,
            "encrypted_component",
            Cow::Owned(envelope),
            Text::Hex,
            |r, t| r.encrypted_component = Some(t),
        )?;
        self.expect_body_status(201, "/agent/deploy", &body)
    }

    /// `POST /search`.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn search(
        &self,
        query: &str,
        limit: Option<u32>,
    ) -> Result<serde_json::Value, ClientError> {
        let req = SearchRequest {
            query: query.to_string(),
            limit,
        };
        self.expect_status(200, "/search", &req)
    }

    /// Invokes a public handler agent in the clear. A priced agent's 402 is
    /// [`ClientError::PaymentRequired`]: use [`Self::invoke_paying`].
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn invoke(
        &self,
        name: &str,
        event: serde_json::Value,
    ) -> Result<InvokeResponse, ClientError> {
        Ok(self.invoke_paying(name, event, &mut payment_required)?.0)
    }

    /// [`Self::invoke`] of a priced agent: on a 402, `pay` is given the offer and returns the
    /// payment header to send the request again with, once. Returns the answer and the
    /// settlement (`PAYMENT-RESPONSE`, decoded) when it was paid.
    ///
    /// # Errors
    /// As [`Self::invoke`], and `pay`'s error.
    pub fn invoke_paying(
        &self,
        name: &str,
        event: serde_json::Value,
        pay: &mut PayFn<'_>,
    ) -> Result<(InvokeResponse, Option<serde_json::Value>), ClientError> {
        let req = InvokeRequest {
            event: Some(
                serde_json::value::to_raw_value(&event)
                    .map_err(|e| ClientError::BadResponse(format!("the event: {e}")))?,
            ),
            ..InvokeRequest::default()
        };
        self.send_clear(name, &req, pay)
    }

    /// Invokes a public CLI agent in the clear.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn invoke_cli(
        &self,
        name: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<InvokeResponse, ClientError> {
        Ok(self
            .invoke_cli_paying(name, args, stdin, &mut payment_required)?
            .0)
    }

    /// [`Self::invoke_cli`] of a priced agent, paying as [`Self::invoke_paying`] does.
    ///
    /// # Errors
    /// As [`Self::invoke_cli`], and `pay`'s error.
    pub fn invoke_cli_paying(
        &self,
        name: &str,
        args: &[&str],
        stdin: Option<&str>,
        pay: &mut PayFn<'_>,
    ) -> Result<(InvokeResponse, Option<serde_json::Value>), ClientError> {
        let req = InvokeRequest {
            args: Some(args.iter().map(|a| a.to_string()).collect()),
            stdin: stdin.map(str::to_string),
            ..InvokeRequest::default()
        };
        self.send_clear(name, &req, pay)
    }

    /// POSTs an invocation; on a 402, asks `pay` for the payment header and sends it once more
    /// with it. Returns the last answer, whatever its status.
    fn post_invocation(
        &self,
        name: &str,
        req: &InvokeRequest,
        pay: &mut PayFn<'_>,
    ) -> Result<(u16, crate::client::Headers, serde_json::Value), ClientError> {
        let path = format!("/agents/{name}/invoke");
        let (status, headers, json) = self.post_json_with(&path, req, &[])?;
        if status != 402 {
            return Ok((status, headers, json));
        }
        let offer = crate::x402::Offer::from_402(
            crate::client::header(&headers, "payment-required"),
            &json,
        )?;
        let payment = pay(&offer)?;
        self.post_json_with(&path, req, &[payment])
    }

    /// Sends a clear invocation, paying once on a 402.
    fn send_clear(
        &self,
        name: &str,
        req: &InvokeRequest,
        pay: &mut PayFn<'_>,
    ) -> Result<(InvokeResponse, Option<serde_json::Value>), ClientError> {
        let (status, headers, json) = self.post_invocation(name, req, pay)?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        let settlement = crate::client::header(&headers, "payment-response")
            .or_else(|| crate::client::header(&headers, "x-payment-response"))
            .and_then(crate::x402::decode_settlement);
        let out = serde_json::from_value(json)
            .map_err(|e| ClientError::BadResponse(format!("invoke: {e}")))?;
        Ok((out, settlement))
    }

    /// Invokes a handler agent with the event sealed to `session`; the result is checked
    /// against the agent's code hash (`code_hash`, hex, from `GET /agents/{name}`), so a host
    /// that ran other code is detected. The handler's result is the execution's stdout; its
    /// error, if any, is the execution's `exception` (type = the handler's code).
    ///
    /// # Errors
    /// Transport, server or protocol errors, or a result that does not check out.
    pub fn invoke_sealed(
        &self,
        session: &Session,
        name: &str,
        code_hash: &str,
        event: &[u8],
    ) -> Result<Execution, ClientError> {
        self.invoke_sealed_paying(session, name, code_hash, event, &mut payment_required)
    }

    /// [`Self::invoke_sealed`] for a priced agent: on a 402, `pay` is given the offer and
    /// returns the payment header (name, value) to send it again with, once (or an error, and
    /// nothing is sent again). The settlement comes back in [`Execution::settlement`].
    ///
    /// # Errors
    /// As [`Self::invoke_sealed`], and `pay`'s error.
    pub fn invoke_sealed_paying(
        &self,
        session: &Session,
        name: &str,
        code_hash: &str,
        event: &[u8],
        pay: &mut PayFn<'_>,
    ) -> Result<Execution, ClientError> {
        let req = InvokeRequest {
            encrypted_event: Some(hex::encode(session.envelope().seal(Role::Event, event)?)),
            public_key: Some(session.client_public.to_hex()),
            session_id: Some(session.id),
            ..InvokeRequest::default()
        };
        self.send_sealed(
            session,
            name,
            code_hash,
            &req,
            (
                Vec::new(),
                sha256(hypervisor_protocol::agents::handler_event(event)),
            ),
            pay,
        )
    }

    /// Invokes a CLI agent with its arguments and standard input sealed to `session`, so the
    /// caller is the session's key (a private agent takes only such invocations) and nobody on
    /// the way reads them; the output is checked against the agent's code hash as in
    /// [`Self::invoke_sealed`].
    ///
    /// # Errors
    /// As [`Self::invoke_sealed`].
    pub fn invoke_command_sealed(
        &self,
        session: &Session,
        name: &str,
        code_hash: &str,
        args: &[&str],
        stdin: &[u8],
    ) -> Result<Execution, ClientError> {
        self.invoke_command_sealed_paying(
            session,
            name,
            code_hash,
            args,
            stdin,
            &mut payment_required,
        )
    }

    /// [`Self::invoke_command_sealed`] of a priced agent, paying as
    /// [`Self::invoke_sealed_paying`] does.
    ///
    /// # Errors
    /// As [`Self::invoke_command_sealed`], and `pay`'s error.
    pub fn invoke_command_sealed_paying(
        &self,
        session: &Session,
        name: &str,
        code_hash: &str,
        args: &[&str],
        stdin: &[u8],
        pay: &mut PayFn<'_>,
    ) -> Result<Execution, ClientError> {
        let env = session.envelope();
        let mut encrypted_arguments = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let i = u32::try_from(i)
                .map_err(|_| ClientError::BadResponse("too many arguments".into()))?;
            encrypted_arguments.push(hex::encode(env.seal(Role::Argument(i), a.as_bytes())?));
        }
        let req = InvokeRequest {
            encrypted_arguments: Some(encrypted_arguments),
            encrypted_stdin: Some(hex::encode(env.seal(Role::Stdin, stdin)?)),
            public_key: Some(session.client_public.to_hex()),
            session_id: Some(session.id),
            ..InvokeRequest::default()
        };
        let digests = (
            args.iter().map(|a| sha256(a.as_bytes())).collect(),
            sha256(stdin),
        );
        self.send_sealed(session, name, code_hash, &req, digests, pay)
    }

    /// Sends a sealed invocation (paying once on a 402) and checks its answer against the
    /// agent's code hash and the inputs' digests (`(arguments, stdin)`).
    fn send_sealed(
        &self,
        session: &Session,
        name: &str,
        code_hash: &str,
        req: &InvokeRequest,
        (arguments, stdin): (Vec<[u8; 32]>, [u8; 32]),
        pay: &mut PayFn<'_>,
    ) -> Result<Execution, ClientError> {
        let (status, headers, json) = self.post_invocation(name, req, pay)?;
        let settlement = crate::client::header(&headers, "payment-response")
            .or_else(|| crate::client::header(&headers, "x-payment-response"))
            .and_then(crate::x402::decode_settlement);
        let program: [u8; 32] = hex::decode(code_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ClientError::BadResponse("code_hash is not 32 bytes of hex".into()))?;
        let digests = InputDigests {
            program,
            arguments,
            stdin,
        };
        let mut run = session.check_response(status, json, &digests)?;
        run.settlement = settlement;
        run.execution_id = crate::client::header(&headers, "x-execution-id").map(str::to_string);
        Ok(run)
    }

    /// `DELETE /agents/{name}`, signed by the owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn delete_agent(&self, owner: &ClientSecret, name: &str) -> Result<(), ClientError> {
        let (status, json) = self.owner_request("DELETE", owner, OwnerAction::Delete, name, "")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        Ok(())
    }

    /// `GET /agents/{name}/logs`, signed by the owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn agent_logs(
        &self,
        owner: &ClientSecret,
        name: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let (status, json) = self.owner_request("GET", owner, OwnerAction::Logs, name, "/logs")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        Ok(json)
    }

    /// `GET /agents/{name}/grants`: the agent's grants, read back by the owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn agent_grants(&self, owner: &ClientSecret, name: &str) -> Result<Grants, ClientError> {
        let (status, json) =
            self.owner_request("GET", owner, OwnerAction::ReadGrants, name, "/grants")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json["grants"].clone())
            .map_err(|e| ClientError::BadResponse(format!("grants: {e}")))
    }

    /// `PUT /agents/{name}/grants`: replaces the agent's grants, signed by the owner over
    /// [`Grants::detail`].
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn set_agent_grants(
        &self,
        owner: &ClientSecret,
        name: &str,
        grants: &Grants,
    ) -> Result<Grants, ClientError> {
        let signed = owner_signature(
            owner,
            &self.audience()?,
            OwnerAction::Grants,
            name,
            &grants.detail(),
        )?;
        let update = GrantsUpdate {
            grants: grants.clone(),
            signature: signed.signature,
            signed_at: signed.signed_at,
            sequence: signed.sequence,
        };
        let (status, _, json) = self.put_json_with(
            &format!("/agents/{name}/grants"),
            &update,
            &[(OWNER_KEY_HEADER, owner.public_key().to_hex())],
        )?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json["grants"].clone())
            .map_err(|e| ClientError::BadResponse(format!("grants: {e}")))
    }

    /// `GET /agents/{name}/calls`: the agent's newest outgoing calls and payments, for the
    /// owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn agent_calls(
        &self,
        owner: &ClientSecret,
        name: &str,
    ) -> Result<Vec<CallRecord>, ClientError> {
        let (status, json) =
            self.owner_request("GET", owner, OwnerAction::Calls, name, "/calls")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json["calls"].clone())
            .map_err(|e| ClientError::BadResponse(format!("calls: {e}")))
    }

    /// `GET path` (200 expected), as JSON.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let (status, text) = self.get_text(path)?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::BadResponse(format!("{path}: {e}")))?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        Ok(json)
    }

    pub(crate) fn owner_request(
        &self,
        method: &str,
        owner: &ClientSecret,
        action: OwnerAction,
        name: &str,
        suffix: &str,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        self.signed_request(
            method,
            owner,
            action,
            name,
            &format!("/agents/{name}{suffix}"),
        )
    }

    /// A request to `path` signed by `key` (action, name, empty detail), naming the key.
    pub(crate) fn signed_request(
        &self,
        method: &str,
        key: &ClientSecret,
        action: OwnerAction,
        name: &str,
        path: &str,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let signed = owner_signature(key, &self.audience()?, action, name, "")?;
        let url = format!("{}{path}", self.base);
        let resp = match method {
            "DELETE" => self.agent.delete(&url),
            _ => self.agent.get(&url),
        }
        .header(OWNER_SIGNATURE_HEADER, &signed.signature)
        .header(OWNER_SIGNED_AT_HEADER, &signed.signed_at.to_string())
        .header(OWNER_SEQUENCE_HEADER, &signed.sequence.to_string())
        .header(OWNER_KEY_HEADER, &key.public_key().to_hex())
        .call()
        .map_err(|e| crate::transport::explain(&self.base, e))?;
        let (status, text) = read_response(resp)?;
        Ok((status, crate::client::json_body(status, &text)?))
    }

    fn expect_body_status(
        &self,
        want: u16,
        path: &str,
        body: &Body<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        let (status, _, json) = self.post_body_with(path, body, &[])?;
        if status != want {
            return Err(server_error(status, json));
        }
        Ok(json)
    }

    fn expect_status(
        &self,
        want: u16,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<serde_json::Value, ClientError> {
        let (status, json) = self.post_json(path, body)?;
        if status != want {
            return Err(server_error(status, json));
        }
        Ok(json)
    }
}

/// `text` percent-encoded for a query parameter (agent names are `[a-z0-9-]`, so only a
/// defensive measure).
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hypervisor_protocol::agents::{OwnerStatement, deploy_detail};

    use super::*;

    #[test]
    fn a_sealed_deployment_is_signed_over_the_plaintext_and_sealed_as_an_agent_component() {
        use hypervisor_protocol::wire::CreateKeypairResponse;
        let owner = ClientSecret::generate().unwrap();
        let server = ClientSecret::generate().unwrap();
        let resp = CreateKeypairResponse {
            session_pubkey: server.public_key().to_hex(),
            session_id: uuid::Uuid::now_v7(),
            expires_in_seconds: 3600,
        };
        let session = Session::from_response(&owner, &resp).unwrap();
        let component = b"\0asm component".as_slice();
        let audience = "00112233445566778899aabbccddeeff";
        let req = sealed_deploy_request(
            &owner,
            audience,
            &session,
            &Deployment {
                name: "sealed-request-test",
                component,
                public: Some(false),
                limits: Some(Limits {
                    time_ms: Some(1500),
                    ..Limits::default()
                }),
                price: Some("25".into()),
                ttl_seconds: Some(60),
                ..Deployment::default()
            },
        )
        .unwrap();
        assert_eq!(req.component, None);
        assert_eq!(req.session_id, Some(session.id));
        let sealed = hex::decode(req.encrypted_component.as_deref().unwrap()).unwrap();
        assert_eq!(
            session
                .envelope()
                .open(Role::AgentComponent, &sealed)
                .unwrap(),
            component
        );
        assert!(session.envelope().open(Role::Program, &sealed).is_err());
        // Signed over the plaintext's SHA-256 and the settings as sent.
        let message = |detail: &str| {
            OwnerStatement {
                audience,
                action: OwnerAction::Deploy,
                name: "sealed-request-test",
                signed_at: req.signed_at.unwrap(),
                sequence: req.sequence.unwrap(),
                detail,
            }
            .message()
        };
        let detail = format!(
            "{}\npublic=false\nprice=25\nttl_seconds=60\nlimits=1500,-,-",
            hex::encode(sha256(component))
        );
        assert_eq!(deploy_detail(&hex::encode(sha256(component)), &req), detail);
        let signature = p256::ecdsa::Signature::from_slice(
            &hex::decode(req.signature.as_deref().unwrap()).unwrap(),
        )
        .unwrap();
        let key =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(owner.public_key().as_bytes()).unwrap();
        use p256::ecdsa::signature::Verifier;
        assert!(key.verify(&message(&detail), &signature).is_ok());
        // Made public on the way: the signature no longer verifies.
        let public = DeployRequest {
            public: Some(true),
            ..req.clone()
        };
        let altered = deploy_detail(&hex::encode(sha256(component)), &public);
        assert!(key.verify(&message(&altered), &signature).is_err());
    }
}
