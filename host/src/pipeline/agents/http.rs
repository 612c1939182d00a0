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
//!
//! The pipeline takes and returns plain `http` types: the HTTP front turns the answer into its
//! own response type and adds the settlement header.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Uri;
use hypervisor_protocol::agents::AgentKind;

use crate::clock::unix_millis;
use crate::engine::{HttpAgentError, HttpResponse, Role};
use crate::error::ApiError;
use crate::pipeline::admission::{Admission, Metadata, Subject};
use crate::pipeline::call::CallFrame;
use crate::pipeline::conclude::RecordOf;
use crate::pipeline::x402::sign_in::SIGNED_IN_HEADER;
use crate::pipeline::x402::{Charge, Reservation};
use crate::pipeline::{Pipeline, resolve_limits};
use crate::plugins::payments::{PaymentHeader, SettlementHeader};
use crate::plugins::policy::ProgramKind;
use crate::storage::agents::AgentRecord;

/// An HTTP agent's answer: its response (streaming) and, for a paid agent, the settlement to
/// send back with it.
pub struct AgentResponse {
    /// The guest's response.
    pub response: HttpResponse,
    /// The payment's settlement header.
    pub settlement: Option<SettlementHeader>,
}

/// The route of HTTP agent `name` as the policy, the records and the ledger name it.
fn http_agent_route(name: &str) -> String {
    format!("/agents/{name}/")
}

impl Pipeline {
    /// The charge of a request to a paid HTTP agent (`None` for a free one): the resource is
    /// the agent (`/agents/NAME/`, whatever path is requested: the price is the agent's, and a
    /// payment answers for the agent it was issued for), its type the one the owner declared,
    /// and the description says when the run is charged; the ledger records the agent's route.
    fn http_agent_charge(&self, agent: &AgentRecord) -> Result<Option<Charge>, ApiError> {
        let Some(amount) = &agent.price else {
            return Ok(None);
        };
        if self.payments.is_none() {
            return Err(ApiError::PaymentsUnavailable);
        }
        // Never the path or query requested: the resource goes to the facilitator in
        // facilitator mode, and the path and query may carry the caller's data.
        Ok(Some(
            self.charge_for(
                &http_agent_route(&agent.name),
                hypervisor_protocol::paid::PaidRoute::HttpAgent {
                    name: &agent.name,
                    content_type: agent.content_type.as_deref(),
                },
                format!(
                    "a request to agent {} on WASM Hypervisor, {}",
                    agent.name,
                    agent.charge.describe()
                ),
                amount,
            )
            .with_sign_in(agent),
        ))
    }

    /// Serves one request with the HTTP agent `name`; `rest` is the path after
    /// `/agents/{name}` (starting with `/`); `declared` is the body's declared length (0 if
    /// none).
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::WrongAgentKind`],
    /// [`ApiError::AgentNotPublic`], [`ApiError::BodyTooLarge`], [`ApiError::AgentFailed`]
    /// when the agent gave no response.
    pub async fn serve_agent_http<B>(
        self: &Arc<Self>,
        name: &str,
        rest: &str,
        mut request: http::Request<B>,
        declared: u64,
        payment: Option<PaymentHeader>,
        frame: Option<CallFrame>,
    ) -> Result<AgentResponse, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let agent = self.find_agent(name)?;
        if agent.latest.kind != AgentKind::Http {
            return Err(ApiError::WrongAgentKind(format!(
                "{name} is a {} agent: invoke it with POST /agents/{name}/invoke",
                agent.latest.kind
            )));
        }
        let time_left = frame.as_ref().map(|f| f.admit(&agent)).transpose()?;
        if !agent.public && !frame.as_ref().is_some_and(|f| f.named_by(&agent.grants)) {
            return Err(ApiError::AgentNotPublic(name.to_string()));
        }
        let max_body = self.config.http.max_body_bytes;
        if declared > max_body as u64 {
            return Err(ApiError::BodyTooLarge(max_body));
        }
        // Payment first (an HTTP agent with a price answers 402 like any x402 resource), then
        // the policy, then the payment's durable record.
        let verified = self
            .verify_or_sign_in(self.http_agent_charge(&agent)?, payment, frame.is_none())
            .await?;
        // The account a client signed in as (x402 sign-in-with-x), told by the host only.
        request.headers_mut().remove(SIGNED_IN_HEADER);
        if frame.is_none()
            && let Some(account) = crate::pipeline::x402::sign_in::signed_in()
        {
            // A payment header sent beside a sign-in was not used: it never reaches the agent,
            // which could otherwise submit the authorization itself.
            for unused in ["payment-signature", "x-payment"] {
                request.headers_mut().remove(unused);
            }
            if let Ok(value) = http::HeaderValue::from_str(&account) {
                request.headers_mut().insert(SIGNED_IN_HEADER, value);
            }
        }
        let mut asked = resolve_limits(
            Some(&agent.latest.limits),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;
        if let Some(left) = time_left {
            asked.time = asked.time.min(left);
        }
        let route = http_agent_route(&agent.name);
        let hash = agent.latest.code_hash;
        let metadata = Metadata {
            subject: Subject {
                route: &route,
                verifiable: false,
                kind: ProgramKind::WasmComponent,
                agent: Some(&agent.name),
            },
            program_hash: hash,
            program_size: agent.latest.size,
            caller_key: String::new(),
            argument_count: 0,
            input_size: declared,
            limits: asked,
        };
        let (Admission { limits, .. }, reservation) =
            self.admit_metadata(metadata, verified).await?;
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
        // From here, a failure without a response drops, and so releases, the reservation:
        // nothing to pay for, the payment header may be presented again.
        let prepared = self.agent_code(&agent.latest).await?;
        // The guest runs in a task of its own and finishes even if this request is dropped:
        // a reservation dropped after this point is not released.
        let mut reservation = reservation;
        if let Some(r) = reservation.as_mut() {
            r.detach();
        }
        let id = uuid::Uuid::now_v7().to_string();
        let started = unix_millis();
        let capabilities = self.agent_capabilities(
            Role::HttpAgent,
            &agent,
            &id,
            frame.as_ref(),
            Instant::now() + limits.time,
            // An HTTP agent's answer is not sealed: its calls are in the ledger only.
            &Default::default(),
        );
        let (response, finished) = self
            .engine
            .serve_http(&capabilities, prepared, request, max_body, limits)
            .await
            .map_err(|e| match e {
                HttpAgentError::Engine(e) => e.into(),
                e => ApiError::AgentFailed(e.to_string()),
            })?;
        // Charged per the agent's rule: by default only a response below 400.
        let succeeded = response.status().as_u16() < 400;
        let reservation =
            reservation.and_then(|r| r.charged_or_released(agent.charge.charges(succeeded)));
        let payment = reservation.as_ref().map(Reservation::receipt_field);
        // The record follows when the guest finishes (the body may still be streaming).
        let settlement = self.conclude(None, reservation).await?;
        let pipeline = self.clone();
        tokio::spawn(async move {
            let Ok(run) = finished.await else { return };
            // An HTTP agent answers for itself: a state quota the host refused it is told to
            // its owner in its log.
            match &run.state_refusal {
                None => pipeline.keep_log(&agent.name, &id, &run.stderr),
                Some(refusal) => {
                    let mut log = run.stderr.to_vec();
                    log.extend_from_slice(format!("\n[host] {refusal}\n").as_bytes());
                    pipeline.keep_log(&agent.name, &id, &log);
                }
            }
            let record = RecordOf {
                id: &id,
                route,
                agent: Some((&agent.name, agent.latest.version)),
                code_hash: hash,
                caller_hash: String::new(),
                started_ms: started,
                commitment: None,
                payment,
            };
            pipeline.record_later(record.of(&run));
        });
        Ok(AgentResponse {
            response,
            settlement,
        })
    }
}
