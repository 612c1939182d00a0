//! The host's own x402 discovery listing (the `bazaar` extension's catalog, served as
//! facilitators serve theirs): every paid code route and every public paid handler and CLI
//! agent, each with the payment requirements its challenge offers and what it declares
//! (`bazaar.rs`); a paid handler agent also as the host's MCP tool. `GET /discovery/resources`
//! lists them with the facilitators' filters and pagination, `GET /discovery/search` ranks the
//! agents among them by the catalog's full-text search.

use base64::Engine as _;
use hypervisor_protocol::agents::AgentKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Charge, bazaar, identifier};
use crate::config::IdentifierMode;
use crate::error::ApiError;
use crate::pipeline::{Pipeline, RouteKind};
use crate::storage::agents::AgentRecord;

/// The largest page (`limit`).
pub const MAX_LIMIT: u32 = 1000;
/// The page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// `GET /discovery/resources`'s query: the facilitators' filters, and the page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    /// `http` or `mcp`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only resources paying this address (compared without case).
    pub pay_to: Option<String>,
    /// Only resources offering this scheme.
    pub scheme: Option<String>,
    /// Only resources on this network (CAIP-2).
    pub network: Option<String>,
    /// Only resources declaring every one of these extensions (comma-separated).
    pub extensions: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// `GET /discovery/search`'s query (as the official x402 clients send it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchQuery {
    /// Free text, matched against agents' names, tags and descriptions.
    pub query: String,
    /// As [`ListQuery::kind`].
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// As [`ListQuery::pay_to`].
    pub pay_to: Option<String>,
    /// As [`ListQuery::scheme`].
    pub scheme: Option<String>,
    /// As [`ListQuery::network`].
    pub network: Option<String>,
    /// As [`ListQuery::extensions`].
    pub extensions: Option<String>,
    /// Results at most, 1 to 100 (default 10).
    pub limit: Option<u32>,
    /// A continuation cursor: accepted and ignored (the x402 clients' search says a server may;
    /// `partialResults` says when there were more matches).
    pub cursor: Option<String>,
}

/// The filters both queries share.
struct Filters<'a> {
    kind: Option<&'a str>,
    pay_to: Option<&'a str>,
    scheme: Option<&'a str>,
    network: Option<&'a str>,
    extensions: Vec<&'a str>,
}

impl<'a> Filters<'a> {
    fn new(
        kind: Option<&'a str>,
        pay_to: Option<&'a str>,
        scheme: Option<&'a str>,
        network: Option<&'a str>,
        extensions: Option<&'a str>,
    ) -> Result<Self, ApiError> {
        if kind.is_some_and(|k| k != "http" && k != "mcp") {
            return Err(ApiError::InvalidRequest("type must be http or mcp".into()));
        }
        Ok(Self {
            kind,
            pay_to,
            scheme,
            network,
            extensions: extensions
                .map(|e| {
                    e.split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Whether `entry`'s own properties pass (the host-wide terms are checked apart).
    fn keeps(&self, entry: &Entry) -> bool {
        self.kind.is_none_or(|k| k == entry.kind)
            && self
                .extensions
                .iter()
                .all(|w| entry.extensions().contains(w))
    }
}

/// One resource of the listing, before its requirements are asked for.
struct Entry {
    /// `http` or `mcp`.
    kind: &'static str,
    /// The resource URL (for an MCP tool, the host's `/mcp`).
    url: String,
    charge: Charge,
    discovery: bazaar::Discovery,
    /// Unix seconds.
    updated: u64,
    metadata: Value,
}

impl Entry {
    /// The extensions it declares.
    fn extensions(&self) -> Vec<&'static str> {
        let mut names = vec![bazaar::EXTENSION];
        // Identifiers are read only on the HTTP routes that keep answers.
        if self.kind == "http" && self.charge.identifier != IdentifierMode::Off {
            names.push(identifier::EXTENSION);
        }
        names
    }
}

impl Pipeline {
    /// `GET /discovery/resources`.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for a bad filter or page; the catalog's and the payments
    /// component's errors.
    pub async fn discovery_resources(&self, q: &ListQuery) -> Result<Value, ApiError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::InvalidRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let filters = Filters::new(
            q.kind.as_deref(),
            q.pay_to.as_deref(),
            q.scheme.as_deref(),
            q.network.as_deref(),
            q.extensions.as_deref(),
        )?;
        let offset = q.offset.unwrap_or(0) as usize;
        let entries = self.filtered(self.discovery_entries()?, &filters).await?;
        let total = entries.len();
        let mut items = Vec::new();
        for entry in entries.into_iter().skip(offset).take(limit as usize) {
            items.push(self.discovery_item(entry).await?);
        }
        Ok(json!({
            "x402Version": 2,
            "items": items,
            "pagination": { "limit": limit, "offset": offset, "total": total },
        }))
    }

    /// `GET /discovery/search`: the resources of the paid agents among the catalog's best
    /// matches for `query`, best first (an agent's HTTP resource, then its MCP tool), each
    /// with its `score`, in the official x402 clients' shape (`resources`, `partialResults`).
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for a query without words, a bad filter or limit.
    pub async fn discovery_search(&self, q: &SearchQuery) -> Result<Value, ApiError> {
        let limit = q.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::InvalidRequest(
                "limit must be between 1 and 100".into(),
            ));
        }
        let filters = Filters::new(
            q.kind.as_deref(),
            q.pay_to.as_deref(),
            q.scheme.as_deref(),
            q.network.as_deref(),
            q.extensions.as_deref(),
        )?;
        // Ranked over every agent (the catalog's 100 best), then the listed ones kept.
        let mut ranked = Vec::new();
        for hit in self.search_agents(&q.query, Some(100))? {
            for entry in self.agent_entries(&hit.agent)? {
                ranked.push((hit.score, entry));
            }
        }
        if self.payments.is_none() {
            ranked.clear();
        }
        let mut kept: Vec<(f64, Entry)> = ranked
            .into_iter()
            .filter(|(_, e)| filters.keeps(e))
            .collect();
        if let Some((_, first)) = kept.first()
            && !self.terms_match(&first.charge, &filters).await?
        {
            kept.clear();
        }
        let partial = kept.len() > limit as usize;
        let mut resources = Vec::new();
        for (score, entry) in kept.into_iter().take(limit as usize) {
            let mut item = self.discovery_item(entry).await?;
            item["score"] = json!(score);
            resources.push(item);
        }
        Ok(json!({
            "x402Version": 2,
            "resources": resources,
            "partialResults": partial,
            "pagination": { "limit": limit, "cursor": null },
        }))
    }

    /// `entries` without those the filters leave out.
    async fn filtered(
        &self,
        mut entries: Vec<Entry>,
        f: &Filters<'_>,
    ) -> Result<Vec<Entry>, ApiError> {
        entries.retain(|e| f.keeps(e));
        // The price's terms are the host's, the same for every resource: one challenge says
        // whether the filters on them leave anything.
        if let Some(first) = entries.first()
            && !self.terms_match(&first.charge, f).await?
        {
            entries.clear();
        }
        Ok(entries)
    }

    /// Every resource of the listing, in order: the paid code routes, then the agents by name
    /// (an agent's HTTP resource, then its MCP tool).
    fn discovery_entries(&self) -> Result<Vec<Entry>, ApiError> {
        if self.payments.is_none() {
            return Ok(Vec::new());
        }
        let started = crate::clock::unix_seconds().saturating_sub(self.started.elapsed().as_secs());
        let mut entries = Vec::new();
        for route in [
            RouteKind::PAID_TEST,
            RouteKind::PAID_VERIFIABLE,
            RouteKind::PAID_PYTHON,
        ] {
            if route == RouteKind::PAID_PYTHON && self.python.is_none() {
                continue;
            }
            let Some(charge) = self.route_charge(route) else {
                continue;
            };
            entries.push(Entry {
                kind: "http",
                url: charge.resource.url.clone(),
                discovery: bazaar::code_route(route.path),
                metadata: json!({ "route": route.path, "description": charge.resource.description }),
                charge,
                updated: started,
            });
        }
        let mut after = String::new();
        loop {
            let page = self.list_agents(&after, 1000)?;
            let last = page.len() < 1000;
            for agent in &page {
                after.clone_from(&agent.name);
                entries.extend(self.agent_entries(agent)?);
            }
            if last {
                return Ok(entries);
            }
        }
    }

    /// The resources of `agent`, if it is listed (public, paid, a handler or CLI agent): its
    /// HTTP resource, and a handler's MCP tool.
    fn agent_entries(&self, agent: &AgentRecord) -> Result<Vec<Entry>, ApiError> {
        if !agent.public || agent.latest.kind == AgentKind::Http {
            return Ok(Vec::new());
        }
        let Some(charge) = self.agent_charge(agent)? else {
            return Ok(Vec::new());
        };
        let Some(discovery) = charge.discovery.clone() else {
            return Ok(Vec::new());
        };
        let metadata = json!({
            "agent": agent.name,
            "description": agent.description,
            "tags": agent.tags,
            "kind": agent.latest.kind,
            "version": agent.latest.version,
            "codeHash": hex::encode(agent.latest.code_hash),
        });
        let mut entries = Vec::new();
        if agent.latest.kind == AgentKind::Handler {
            entries.push(Entry {
                kind: "mcp",
                url: format!("{}/mcp", self.public_base()),
                discovery: bazaar::mcp_tool(
                    &agent.name,
                    &agent.description,
                    agent.schemas.as_ref(),
                ),
                charge: charge.clone(),
                updated: agent.updated_at,
                metadata: metadata.clone(),
            });
        }
        entries.insert(
            0,
            Entry {
                kind: "http",
                url: charge.resource.url.clone(),
                discovery,
                metadata,
                charge,
                updated: agent.updated_at,
            },
        );
        Ok(entries)
    }

    /// Whether the host's terms (asked of the payments component for `charge`) pass the
    /// filters on them.
    async fn terms_match(&self, charge: &Charge, f: &Filters<'_>) -> Result<bool, ApiError> {
        if f.pay_to.is_none() && f.scheme.is_none() && f.network.is_none() {
            return Ok(true);
        }
        let accepts = self.accepts(charge).await?;
        Ok(accepts.iter().any(|a| {
            let is = |field: &str, want: Option<&str>| {
                want.is_none_or(|w| a[field].as_str().is_some_and(|v| v.eq_ignore_ascii_case(w)))
            };
            is("payTo", f.pay_to) && is("scheme", f.scheme) && is("network", f.network)
        }))
    }

    /// The v2 `accepts` of `charge`'s challenge.
    async fn accepts(&self, charge: &Charge) -> Result<Vec<Value>, ApiError> {
        let payments = self
            .payments
            .as_ref()
            .ok_or(ApiError::PaymentsUnavailable)?;
        let challenge = payments
            .challenge(&charge.resource, &charge.price, "payment_required")
            .await
            .map_err(|e| ApiError::PaymentsFailed(e.to_string()))?
            .map_err(|e| ApiError::PaymentsFailed(format!("{}: {}", e.reason, e.message)))?;
        let doc: Value = base64::engine::general_purpose::STANDARD
            .decode(challenge.payment_required.as_bytes())
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or(Value::Null);
        Ok(doc["accepts"].as_array().cloned().unwrap_or_default())
    }

    /// The listing's item for `entry`.
    async fn discovery_item(&self, entry: Entry) -> Result<Value, ApiError> {
        let accepts = self.accepts(&entry.charge).await?;
        let mut extensions = json!({ bazaar::EXTENSION: entry.discovery.declaration() });
        if entry.extensions().contains(&identifier::EXTENSION) {
            extensions[identifier::EXTENSION] =
                identifier::declaration(entry.charge.identifier == IdentifierMode::Required);
        }
        Ok(json!({
            "resource": entry.url,
            "type": entry.kind,
            "x402Version": 2,
            "accepts": accepts,
            "description": entry.charge.resource.description,
            "mimeType": entry.charge.resource.mime_type,
            "discoveryInfo": entry.discovery.info,
            "extensions": extensions,
            "lastUpdated": rfc3339(entry.updated),
            "metadata": entry.metadata,
        }))
    }
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(seconds: u64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH
        + time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
