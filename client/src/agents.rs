//! Agents from the client side: deploy (clear with an owner signature, or sealed to a session),
//! search, invoke (clear or sealed), delete and read logs as the owner.

use base64::Engine as _;
use hypervisor_protocol::agents::{
    DeployRequest, InvokeRequest, InvokeResponse, OWNER_KEY_HEADER, OWNER_SIGNATURE_HEADER,
    OWNER_SIGNED_AT_HEADER, OwnerAction, SearchRequest, owner_message,
};
use hypervisor_protocol::wire::Limits;
use hypervisor_protocol::{ClientSecret, InputDigests, Role, sha256};
use p256::ecdsa::signature::Signer;

use crate::client::read_response;
use crate::error::server_error;
use crate::{Client, ClientError, Execution, Session};

/// Signs an owner action with the owner's key: `(signature hex, signed_at)`.
///
/// # Errors
/// [`ClientError::BadResponse`] never; [`ClientError::Protocol`] if the key is unusable.
pub fn owner_signature(
    owner: &ClientSecret,
    action: OwnerAction,
    name: &str,
    detail: &str,
) -> Result<(String, u64), ClientError> {
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let key = p256::ecdsa::SigningKey::from_slice(owner.to_bytes().as_slice())
        .map_err(|_| ClientError::BadResponse("the owner key cannot sign".into()))?;
    let signature: p256::ecdsa::Signature =
        key.sign(&owner_message(action, name, detail, signed_at));
    Ok((hex::encode(signature.to_bytes()), signed_at))
}

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct Deployment<'a> {
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: &'a str,
    /// Tags.
    pub tags: Vec<String>,
    /// The component.
    pub component: &'a [u8],
    /// Override the default visibility (public for clear deployments, private for sealed).
    pub public: Option<bool>,
    /// Default limits.
    pub limits: Option<Limits>,
    /// Price per invocation.
    pub price: Option<String>,
    /// Time to live, seconds.
    pub ttl_seconds: Option<u64>,
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
            session_id: None,
            public: self.public,
            limits: self.limits,
            price: self.price.clone(),
            ttl_seconds: self.ttl_seconds,
            signature: None,
            signed_at: None,
        }
    }
}

impl Client {
    /// Deploys in the clear, signed by `owner` (a public agent unless `public = Some(false)`).
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
        let (signature, signed_at) = owner_signature(
            owner,
            OwnerAction::Deploy,
            d.name,
            &hex::encode(sha256(d.component)),
        )?;
        req.component = Some(base64::engine::general_purpose::STANDARD.encode(d.component));
        req.signature = Some(signature);
        req.signed_at = Some(signed_at);
        self.expect_status(201, "/agent/deploy", &req)
    }

    /// Deploys with the component sealed to `session` (whose key is the owner's).
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn deploy_agent_sealed(
        &self,
        owner: &ClientSecret,
        session: &Session,
        d: &Deployment<'_>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = d.request(owner);
        req.encrypted_component = Some(hex::encode(
            session.envelope().seal(Role::Program, d.component)?,
        ));
        req.session_id = Some(session.id);
        self.expect_status(201, "/agent/deploy", &req)
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

    /// Invokes a public handler agent in the clear.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn invoke(
        &self,
        name: &str,
        event: serde_json::Value,
    ) -> Result<InvokeResponse, ClientError> {
        let req = InvokeRequest {
            event: Some(event),
            ..InvokeRequest::default()
        };
        let json = self.expect_status(200, &format!("/agents/{name}/invoke"), &req)?;
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("invoke: {e}")))
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
        let req = InvokeRequest {
            args: Some(args.iter().map(|a| a.to_string()).collect()),
            stdin: stdin.map(str::to_string),
            ..InvokeRequest::default()
        };
        let json = self.expect_status(200, &format!("/agents/{name}/invoke"), &req)?;
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("invoke: {e}")))
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
        let req = InvokeRequest {
            encrypted_event: Some(hex::encode(session.envelope().seal(Role::Stdin, event)?)),
            public_key: Some(session.client_public.to_hex()),
            session_id: Some(session.id),
            ..InvokeRequest::default()
        };
        let (status, json) = self.post_json(&format!("/agents/{name}/invoke"), &req)?;
        let program: [u8; 32] = hex::decode(code_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ClientError::BadResponse("code_hash is not 32 bytes of hex".into()))?;
        let digests = InputDigests {
            program,
            arguments: Vec::new(),
            stdin: sha256(event),
        };
        session.check_response(status, json, &digests)
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

    fn owner_request(
        &self,
        method: &str,
        owner: &ClientSecret,
        action: OwnerAction,
        name: &str,
        suffix: &str,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let (signature, signed_at) = owner_signature(owner, action, name, "")?;
        let url = format!("{}/agents/{name}{suffix}", self.base);
        let resp = match method {
            "DELETE" => self.agent.delete(&url),
            _ => self.agent.get(&url),
        }
        .header(OWNER_SIGNATURE_HEADER, &signature)
        .header(OWNER_SIGNED_AT_HEADER, &signed_at.to_string())
        .header(OWNER_KEY_HEADER, &owner.public_key().to_hex())
        .call()
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, text) = read_response(resp)?;
        let json = serde_json::from_str(&text)
            .map_err(|e| ClientError::BadResponse(format!("{status} with a non-JSON body: {e}")))?;
        Ok((status, json))
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
