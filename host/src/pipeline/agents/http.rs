//! HTTP agents: any request under `/agents/{name}/…` is served by the agent's
//! `wasi:http/incoming-handler`, in a fresh instance, with the path after `/agents/{name}` (and
//! the query) as the request's path. A standard `wasi:http/proxy` component runs unchanged.
//!
//! The request body streams into the guest as it reads it, bounded like every other body by
//! `http.max_body_bytes`: a declared `Content-Length` above it is refused (413) before anything
//! runs, and a body that grows past it mid-stream ends the guest's body stream with
//! `HTTP-request-body-size`. The response streams back as the guest writes it; the invocation is
//! recorded (and its stderr logged) when the guest finishes, batched with other writes (see
//! [`crate::storage::records`]).

use std::sync::Arc;

use axum::response::Response;
use http::Uri;

use super::now_ms;
use crate::engine::{HttpAgentError, HttpRequest};
use crate::error::ApiError;
use crate::pipeline::admission::{Admission, Subject};
use crate::pipeline::payment::Paid;
use crate::pipeline::{Pipeline, resolve_limits};
use crate::plugins::payments::PaymentHeader;
use crate::plugins::policy::ProgramKind;
use crate::storage::records::ExecutionRecord;

impl Pipeline {
    /// Serves one request with the HTTP agent `name`; `rest` is the path after
    /// `/agents/{name}` (starting with `/`).
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::WrongAgentKind`],
    /// [`ApiError::AgentNotPublic`], [`ApiError::BodyTooLarge`], [`ApiError::AgentFailed`]
    /// when the agent gave no response.
    pub async fn serve_agent_http(
        self: &Arc<Self>,
        name: &str,
        rest: &str,
        mut request: HttpRequest,
        payment: Option<PaymentHeader>,
    ) -> Result<Response, ApiError> {
        let agent = self.find_agent(name)?;
        if agent.latest.kind != "http" {
            return Err(ApiError::WrongAgentKind(format!(
                "{name} is a {} agent: invoke it with POST /agents/{name}/invoke",
                agent.latest.kind
            )));
        }
        if !agent.public {
            return Err(ApiError::AgentNotPublic(name.to_string()));
        }
        let max_body = self.config.http.max_body_bytes;
        let declared = crate::http::extract::declared_length(request.headers()).unwrap_or(0);
        if declared > max_body as u64 {
            return Err(ApiError::BodyTooLarge(max_body));
        }
        // Payment first (an HTTP agent with a price answers 402 like any x402 resource), then
        // the policy, then the payment's durable record.
        let paid = self
            .verify_payment(self.agent_charge(&agent)?, payment)
            .await?;
        let asked = serde_json::from_str(&agent.latest.limits).unwrap_or_default();
        let asked = resolve_limits(
            Some(&asked),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;
        let route = format!("/agents/{}/", agent.name);
        let info = self.request_info(Subject {
            route: &route,
            verifiable: false,
            kind: ProgramKind::WasmComponent,
            program_hash: hex::decode(&agent.latest.code_hash)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| ApiError::Internal("corrupt code hash in the registry".into()))?,
            program_size: agent.latest.size,
            agent: Some(&agent.name),
            caller_key: String::new(),
            argument_count: 0,
            input_size: declared,
            limits: asked,
            paid: paid.as_ref(),
        });
        let Admission { limits, .. } = self.decide(&info, false, asked).await?;
        let path_and_query = match request.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        *request.uri_mut() = Uri::builder()
            .scheme("http")
            .authority("localhost")
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| ApiError::InvalidRequest(format!("request path: {e}")))?;
        let prepared = self.agent_code(&agent.latest).await?;
        if let Some(p) = &paid {
            self.reserve_payment(p).await?;
        }
        let id = uuid::Uuid::now_v7().to_string();
        let started = now_ms();
        let served = match self
            .engine
            .serve_http(prepared, request, max_body, limits)
            .await
        {
            Ok(r) => Ok(r),
            Err(HttpAgentError::Engine(e)) => Err(e.into()),
            Err(e) => Err(ApiError::AgentFailed(e.to_string())),
        };
        // No response: nothing to pay for, the payment header may be presented again.
        let (response, finished) = self.or_release(paid.as_ref(), served)?;
        let settlement = match &paid {
            Some(p) => Some(self.settle_payment(p).await?),
            None => None,
        };
        let payment_ref = paid.as_ref().map(Paid::receipt_field);
        let pipeline = self.clone();
        tokio::spawn(async move {
            let Ok(run) = finished.await else { return };
            pipeline.keep_log(&agent.name, &id, &run.stderr);
            let record = ExecutionRecord {
                id,
                route: format!("/agents/{}/", agent.name),
                agent: Some(agent.name.clone()),
                agent_version: Some(agent.latest.version),
                code_hash: agent.latest.code_hash.clone(),
                caller_hash: String::new(),
                started_ms: started,
                duration_us: u64::try_from(run.duration.as_micros()).unwrap_or(u64::MAX),
                status: crate::pipeline::execute::status_name(run.status),
                exit_code: run.exit_code,
                commitment: None,
                payment: payment_ref,
            };
            pipeline.record_later(record);
        });
        let mut response = response.map(axum::body::Body::new);
        if let Some(s) = &settlement {
            crate::http::error::add_settlement_header(response.headers_mut(), s);
        }
        Ok(response)
    }
}
