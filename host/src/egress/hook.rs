//! One agent run's outgoing-request hook: grants applied, local calls dispatched in-process,
//! a 402 paid from the agent's wallet (see [`super::pay`]), every dispatched call recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::grants::{CALL_BODY_SHA256_HEADER, CallRecord, HypervisorGrant};
use hypervisor_protocol::wire::CallLink;
use tower::ServiceExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::Shared;
use super::destination::{Destination, agent_grant, hypervisor_grant, origin_granted};
use super::pay::{self, Payment};
use super::response::{full, internal, refusal};
use crate::clock::unix_millis;
use crate::engine::{OutgoingFuture, OutgoingHook};
use crate::error::ApiError;
use crate::pipeline::call::{CallFrame, RunContext};

/// The hook of one run (see the module documentation of [`crate::egress`]).
pub struct RunHook {
    shared: Arc<Shared>,
    run: Arc<RunContext>,
    calls: AtomicU32,
}

impl RunHook {
    pub(super) fn new(shared: Arc<Shared>, run: RunContext) -> Self {
        Self {
            shared,
            run: Arc::new(run),
            calls: AtomicU32::new(0),
        }
    }
}

/// Where a granted request goes.
enum Target {
    /// Into the HTTP front at this path and query, with this frame (none for the host's own
    /// routes).
    Local {
        path_and_query: String,
        frame: Option<Box<CallFrame>>,
    },
    /// Over the network.
    Remote(Option<RequestOptions>),
    /// To another hypervisor, attested and sealed.
    Hypervisor(Box<HypervisorGrant>),
}

/// A request held in memory, so that it can be sent again with a payment.
struct Buffered {
    parts: http::request::Parts,
    body: Bytes,
}

impl Buffered {
    async fn of(request: Request<WasiBody>, max: usize) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, max)
            .collect()
            .await
            .map_err(|_| ApiError::BodyTooLarge(max))?
            .to_bytes();
        Ok(Self { parts, body })
    }

    /// A copy to send, with `extra` headers.
    fn copy(&self, extra: Option<&(HeaderName, HeaderValue)>) -> Request<Bytes> {
        let mut request = Request::new(self.body.clone());
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        *request.version_mut() = self.parts.version;
        *request.headers_mut() = self.parts.headers.clone();
        if let Some((name, value)) = extra {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        request
    }
}

impl OutgoingHook for RunHook {
    fn send(&self, request: Request<WasiBody>, options: Option<RequestOptions>) -> OutgoingFuture {
        let made = self.calls.fetch_add(1, Ordering::Relaxed);
        let shared = self.shared.clone();
        let run = self.run.clone();
        let config = &shared.config;
        if made >= config.max_calls_per_run {
            let e = ApiError::CallFanOutExceeded(format!(
                "agent {} made more than {} calls in one run",
                run.agent.name, config.max_calls_per_run
            ));
            return Box::pin(async move { Ok(refusal(e)) });
        }
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let (callee, target) = match Destination::of(request.uri()) {
            Destination::Invalid => {
                return Box::pin(async { Err(HttpError::HttpRequestUriInvalid) });
            }
            Destination::Remote(origin) => {
                if let Some(grant) = hypervisor_grant(&run.grants, &origin) {
                    (
                        origin.to_string(),
                        Target::Hypervisor(Box::new(grant.clone())),
                    )
                } else if !origin_granted(&run.grants, &origin) {
                    // Not the URI: a confidential guest chooses it, and could put plaintext in it.
                    tracing::debug!(agent = %run.agent.name, "outgoing request denied (origin not granted)");
                    return Box::pin(async { Err(HttpError::HttpRequestDenied) });
                } else {
                    (origin.to_string(), Target::Remote(options))
                }
            }
            Destination::Host => {
                if !run.grants.search {
                    let e = ApiError::CallNotGranted(format!(
                        "agent {} is not granted the host's search",
                        run.agent.name
                    ));
                    return Box::pin(async move { Ok(refusal(e)) });
                }
                if request.uri().path() != "/search" {
                    let e =
                        ApiError::NotFound("hypervisor.internal serves /search only".to_string());
                    return Box::pin(async move { Ok(refusal(e)) });
                }
                let target = Target::Local {
                    path_and_query,
                    frame: None,
                };
                (
                    hypervisor_protocol::grants::HOST_AUTHORITY.to_string(),
                    target,
                )
            }
            Destination::Agent(name) => match self.frame(&name) {
                Ok(frame) => {
                    let target = Target::Local {
                        path_and_query: format!("/agents/{name}{path_and_query}"),
                        frame: Some(Box::new(frame)),
                    };
                    (name, target)
                }
                Err(e) => return Box::pin(async move { Ok(refusal(e)) }),
            },
        };
        Box::pin(async move {
            let started = Instant::now();
            let path = request.uri().path().to_string();
            let request = match Buffered::of(request, shared.max_body_bytes).await {
                Ok(r) => r,
                Err(e) => return Ok(refusal(e)),
            };
            let first = send(&shared, &run, &target, request.copy(None)).await?;
            let (response, payment) = if first.status() == StatusCode::PAYMENT_REQUIRED {
                match pay::answer(&shared, &run, &callee, first).await? {
                    Payment::None(response) => (response, None),
                    Payment::Signed { header, spend } => {
                        let again = request.copy(Some(&header));
                        let response = send(&shared, &run, &target, again).await?;
                        let value = header.1.to_str().unwrap_or_default().to_string();
                        (response, Some((spend, value)))
                    }
                }
            } else {
                (first, None)
            };
            // A callee on this host settles through this host: its settlement's amount is the
            // host's own (a remote server's is only its word).
            let local = matches!(target, Target::Local { .. });
            let payment = payment.map(|(spend, header)| PaidSpend {
                spend,
                local,
                header,
            });
            finish(&shared, &run, callee, path, started, response, payment).await
        })
    }
}

impl RunHook {
    /// The frame of a call to agent `name`: granted (by name and owner key) and within the
    /// depth limit.
    fn frame(&self, name: &str) -> Result<CallFrame, ApiError> {
        let run = &self.run;
        let Some(grant) = agent_grant(&run.grants, name) else {
            return Err(ApiError::CallNotGranted(format!(
                "agent {} has no grant to call agent {name}",
                run.agent.name
            )));
        };
        let depth = run.depth.saturating_add(1);
        let max = self.shared.config.max_depth;
        if depth > max {
            return Err(ApiError::CallDepthExceeded(format!(
                "calling agent {name} from agent {} would make a chain of {depth} calls, more \
                 than this host's limit of {max}",
                run.agent.name
            )));
        }
        let key = |hex: &str| {
            EncodedPublicKey::from_hex("owner_key", hex)
                .map_err(|_| ApiError::Internal("a stored owner key does not parse".into()))
        };
        Ok(CallFrame {
            caller: run.agent.name.clone(),
            caller_owner: key(&run.agent.owner_key)?,
            callee_owner: key(&grant.owner_key)?,
            depth,
            deadline: run.deadline,
        })
    }
}

/// The agent whose keep-alive connections a run uses: its owner and name.
fn partition(run: &RunContext) -> Arc<str> {
    format!("{}/{}", run.agent.owner_key, run.agent.name).into()
}

/// Sends one copy of the request to `target`, within the run's time.
async fn send(
    shared: &Shared,
    run: &RunContext,
    target: &Target,
    request: Request<Bytes>,
) -> Result<Response<WasiBody>, HttpError> {
    let left = run.deadline.saturating_duration_since(Instant::now());
    match target {
        Target::Hypervisor(grant) => {
            tokio::time::timeout(left, super::remote::call(shared, run, grant, request))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)?
        }
        Target::Remote(options) => tokio::time::timeout(
            left,
            super::connect::send(&shared.remote, partition(run), request, *options),
        )
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?,
        Target::Local {
            path_and_query,
            frame,
        } => {
            let Some(front) = shared.front.get().cloned() else {
                return Err(internal("the HTTP front is not attached"));
            };
            let (mut parts, body) = request.into_parts();
            parts.uri = Uri::try_from(path_and_query.as_str()).map_err(internal)?;
            // Nothing a guest sets can pass for a frame: extensions are not headers.
            parts.extensions = http::Extensions::new();
            if let Some(frame) = frame {
                parts.extensions.insert(CallFrame::clone(frame));
            }
            let request = Request::from_parts(parts, axum::body::Body::from(body));
            match tokio::time::timeout(left, front.oneshot(request)).await {
                Ok(Ok(r)) => Ok(r.map(|b| b.map_err(internal).boxed_unsync())),
                Ok(Err(never)) => match never {},
                Err(_) => Err(HttpError::ConnectionReadTimeout),
            }
        }
    }
}

/// A call paid from the run's wallet: the spend, whether the callee is on this host, and the
/// payment header sent.
struct PaidSpend {
    spend: i64,
    local: bool,
    header: String,
}

/// Buffers the response (bounded), records the call (and the payment's outcome), and hands
/// the response to the guest.
async fn finish(
    shared: &Shared,
    run: &RunContext,
    callee: String,
    path: String,
    started: Instant,
    response: Response<WasiBody>,
    payment: Option<PaidSpend>,
) -> Result<Response<WasiBody>, HttpError> {
    let (mut parts, body) = response.into_parts();
    let max = shared.config.max_response_bytes;
    let body = Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| HttpError::HttpResponseBodySize(Some(max as u64)))?
        .to_bytes();
    let sha = hex::encode(hypervisor_protocol::sha256(&body));
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let settlement = header("payment-response")
        .or_else(|| header("x-payment-response"))
        .and_then(|v| pay::decode_settlement(&v));
    if let Some(spend) = payment {
        let metered = spend
            .local
            .then(|| x402_payer::metered_replay_key(&spend.header))
            .flatten();
        pay::settled(shared, spend.spend, settlement.as_ref(), metered).await?;
    }
    let link = CallLink {
        callee: callee.clone(),
        callee_execution: header("x-execution-id"),
        response_sha256: sha.clone(),
        transaction: settlement
            .as_ref()
            .and_then(|s| s["transaction"].as_str())
            .map(str::to_string),
    };
    run.calls
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(link);
    let record = CallRecord {
        caller_execution: run.execution_id.clone(),
        caller: run.agent.name.clone(),
        callee,
        path,
        status: parts.status.as_u16(),
        callee_execution: header("x-execution-id"),
        response_sha256: Some(sha.clone()),
        settlement,
        at_ms: unix_millis(),
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    };
    // Queued before the guest sees the answer, on the records' writer: committed no later
    // than the calling run's own record.
    shared.agents.records.insert_call_later(record);
    if let Ok(v) = HeaderValue::from_str(&sha) {
        parts.headers.insert(CALL_BODY_SHA256_HEADER, v);
    }
    if !parts.headers.contains_key(CONTENT_TYPE) {
        parts.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    Ok(Response::from_parts(parts, full(body)))
}
