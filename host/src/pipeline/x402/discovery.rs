//! The host's own x402 discovery listing (the `bazaar` extension's catalog, served as
//! facilitators serve theirs): every paid code route and every public paid handler and CLI
//! agent, each with the payment requirements its challenge offers and what it declares
//! (`bazaar.rs`); a paid handler agent also as the host's MCP tool. `GET /discovery/resources`
//! lists them with the facilitators' filters and pagination, `GET /discovery/search` ranks the
//! agents among them by the catalog's full-text search.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use hypervisor_protocol::agents::AgentKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Charge, bazaar, identifier};
use crate::config::IdentifierMode;
use crate::error::ApiError;
use crate::pipeline::{Pipeline, RouteKind};
use crate::storage::agents::AgentRecord;

/// The largest page (`limit`): a larger one is served at this size (`pagination.limit` says
/// so). Each item of a page is built (its declaration, its requirements) when it is served.
pub const MAX_LIMIT: u32 = 100;
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
    /// Page size, at least 1 (default [`DEFAULT_LIMIT`]; at most [`MAX_LIMIT`] is served).
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
}

/// What a resource of the listing is, before it is served.
enum Source {
    /// A paid code route.
    Route(RouteKind),
    /// A paid agent's `/invoke`.
    Agent(Arc<AgentRecord>),
    /// A paid handler agent as the host's MCP tool.
    Tool(Arc<AgentRecord>),
}

/// One resource of the listing: what filtering and counting need, cheaply; the rest (the
/// declaration, the requirements) is built only for the resources served.
struct Entry {
    /// `http` or `mcp`.
    kind: &'static str,
    source: Source,
    /// Its payment-identifier mode.
    identifier: IdentifierMode,
    /// Unix seconds.
    updated: u64,
}

impl Entry {
    /// The extensions its challenge declares (`signed`: the host has an attested key, which
    /// signs offers).
    fn extensions(&self, signed: bool) -> Vec<&'static str> {
        let mut names = vec![bazaar::EXTENSION];
        // Identifiers are read only on the HTTP routes that keep answers.
        if self.kind == "http" && self.identifier != IdentifierMode::Off {
            names.push(identifier::EXTENSION);
        }
        if signed {
            names.push(hypervisor_protocol::offer_receipt::EXTENSION);
        }
        names
    }
}

impl Filters<'_> {
    /// Whether `entry`'s own properties pass (the host-wide terms are checked apart).
    fn keeps(&self, entry: &Entry, signed: bool) -> bool {
        self.kind.is_none_or(|k| k == entry.kind)
            && self
                .extensions
                .iter()
                .all(|w| entry.extensions(signed).contains(w))
    }
}

/// Requirements asked of the payments component during one request, by amount: the host's
/// other terms are the same for every resource.
type Asked = HashMap<String, Vec<Value>>;

impl Pipeline {
    /// `GET /discovery/resources`.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for a bad filter or page; the catalog's and the payments
    /// component's errors.
    pub async fn discovery_resources(&self, q: &ListQuery) -> Result<Value, ApiError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Err(ApiError::InvalidRequest("limit must be at least 1".into()));
        }
        let limit = limit.min(MAX_LIMIT);
        let filters = Filters::new(
            q.kind.as_deref(),
            q.pay_to.as_deref(),
            q.scheme.as_deref(),
            q.network.as_deref(),
            q.extensions.as_deref(),
        )?;
        let offset = q.offset.unwrap_or(0) as usize;
        let mut asked = Asked::new();
        let entries = self
            .filtered(self.discovery_entries()?, &filters, &mut asked)
            .await?;
        let total = entries.len();
        let mut items = Vec::new();
        for entry in entries.into_iter().skip(offset).take(limit as usize) {
            if let Some(item) = self.discovery_item(&entry, &mut asked).await? {
                items.push(item);
            }
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
        const RANKED: u32 = 100;
        let hits = self.search_agents(&q.query, Some(RANKED))?;
        let catalog_full = hits.len() == RANKED as usize;
        let mut ranked = Vec::new();
        if self.payments.is_some() {
            for hit in hits {
                let agent = Arc::new(hit.agent);
                for entry in self.agent_entries(&agent) {
                    ranked.push((hit.score, entry));
                }
            }
        }
        let signed = self.attestor.current().is_some();
        let mut kept: Vec<(f64, Entry)> = ranked
            .into_iter()
            .filter(|(_, e)| filters.keeps(e, signed))
            .collect();
        let mut asked = Asked::new();
        if let Some((_, first)) = kept.first()
            && !self.terms_match(first, &filters, &mut asked).await?
        {
            kept.clear();
        }
        // More matched than served, or the catalog's ranking was cut (more may match).
        let partial = kept.len() > limit as usize || catalog_full;
        let mut resources = Vec::new();
        for (score, entry) in kept.into_iter().take(limit as usize) {
            if let Some(mut item) = self.discovery_item(&entry, &mut asked).await? {
                item["score"] = json!(score);
                resources.push(item);
            }
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
        asked: &mut Asked,
    ) -> Result<Vec<Entry>, ApiError> {
        let signed = self.attestor.current().is_some();
        entries.retain(|e| f.keeps(e, signed));
        // The price's terms are the host's, the same for every resource: one challenge says
        // whether the filters on them leave anything.
        if let Some(first) = entries.first()
            && !self.terms_match(first, f, asked).await?
        {
            entries.clear();
        }
        Ok(entries)
    }

    /// Every resource of the listing, in order: the paid code routes, then the agents by name
    /// (an agent's HTTP resource, then its MCP tool). Nothing without payments.
    fn discovery_entries(&self) -> Result<Vec<Entry>, ApiError> {
        if self.payments.is_none() {
            return Ok(Vec::new());
        }
        let started = crate::clock::unix_seconds().saturating_sub(self.started.elapsed().as_secs());
        let modes = &self.config.payments.payment_identifier;
        let mut entries = Vec::new();
        for route in [
            RouteKind::PAID_TEST,
            RouteKind::PAID_VERIFIABLE,
            RouteKind::PAID_PYTHON,
        ] {
            if route == RouteKind::PAID_PYTHON && self.python.is_none() {
                continue;
            }
            entries.push(Entry {
                kind: "http",
                source: Source::Route(route),
                identifier: modes.mode_of(route.path),
                updated: started,
            });
        }
        let mut after = String::new();
        loop {
            let page = self.list_agents(&after, 1000)?;
            let last = page.len() < 1000;
            for agent in page {
                after.clone_from(&agent.name);
                entries.extend(self.agent_entries(&Arc::new(agent)));
            }
            if last {
                return Ok(entries);
            }
        }
    }

    /// The resources of `agent`, if it is listed (public, priced, a handler or CLI agent): its
    /// HTTP resource, and a handler's MCP tool.
    fn agent_entries(&self, agent: &Arc<AgentRecord>) -> Vec<Entry> {
        if !agent.public || agent.price.is_none() || agent.latest.kind == AgentKind::Http {
            return Vec::new();
        }
        let identifier = self.config.payments.payment_identifier.mode_of(
            &hypervisor_protocol::routes::Route::AgentInvoke
                .path()
                .replace("{name}", &agent.name),
        );
        let mut entries = vec![Entry {
            kind: "http",
            source: Source::Agent(agent.clone()),
            identifier,
            updated: agent.updated_at,
        }];
        if agent.latest.kind == AgentKind::Handler {
            entries.push(Entry {
                kind: "mcp",
                source: Source::Tool(agent.clone()),
                identifier: IdentifierMode::Off,
                updated: agent.updated_at,
            });
        }
        entries
    }

    /// The charge of `entry`.
    fn entry_charge(&self, entry: &Entry) -> Result<Option<Charge>, ApiError> {
        match &entry.source {
            Source::Route(route) => Ok(self.route_charge(*route)),
            Source::Agent(agent) | Source::Tool(agent) => self.agent_charge(agent),
        }
    }

    /// Whether the host's terms (asked of the payments component for `entry`) pass the
    /// filters on them.
    async fn terms_match(
        &self,
        entry: &Entry,
        f: &Filters<'_>,
        asked: &mut Asked,
    ) -> Result<bool, ApiError> {
        if f.pay_to.is_none() && f.scheme.is_none() && f.network.is_none() {
            return Ok(true);
        }
        let Some(charge) = self.entry_charge(entry)? else {
            return Ok(false);
        };
        let accepts = self.accepts(&charge, asked).await?;
        Ok(accepts.iter().any(|a| {
            let is = |field: &str, want: Option<&str>| {
                want.is_none_or(|w| a[field].as_str().is_some_and(|v| v.eq_ignore_ascii_case(w)))
            };
            is("payTo", f.pay_to) && is("scheme", f.scheme) && is("network", f.network)
        }))
    }

    /// The v2 `accepts` of `charge`'s challenge (asked once per amount and request).
    async fn accepts(&self, charge: &Charge, asked: &mut Asked) -> Result<Vec<Value>, ApiError> {
        // A metered charge's offer names its tariff: asked per amount and tariff.
        let asked_key = match charge.tariff_json() {
            Some(tariff) => format!("{}|{tariff}", charge.price.amount),
            None => charge.price.amount.clone(),
        };
        if let Some(accepts) = asked.get(&asked_key) {
            return Ok(accepts.clone());
        }
        let payments = self
            .payments
            .as_ref()
            .ok_or(ApiError::PaymentsUnavailable)?;
        let payment_required = match charge.tariff_json() {
            None => payments
                .challenge(&charge.resource, &charge.price, "payment_required")
                .await
                .map_err(|e| ApiError::PaymentsFailed(e.to_string()))?
                .map(|c| c.payment_required),
            Some(tariff) => payments
                .metered_challenge(&charge.resource, &charge.price, tariff, "payment_required")
                .await
                .map_err(|e| ApiError::PaymentsFailed(e.to_string()))?,
        }
        .map_err(|e| ApiError::PaymentsFailed(format!("{}: {}", e.reason, e.message)))?;
        let doc: Value = base64::engine::general_purpose::STANDARD
            .decode(payment_required.as_bytes())
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or(Value::Null);
        let accepts = doc["accepts"].as_array().cloned().unwrap_or_default();
        asked.insert(asked_key, accepts.clone());
        Ok(accepts)
    }

    /// The listing's item for `entry` (`None` if it is no longer paid).
    async fn discovery_item(
        &self,
        entry: &Entry,
        asked: &mut Asked,
    ) -> Result<Option<Value>, ApiError> {
        let Some(charge) = self.entry_charge(entry)? else {
            return Ok(None);
        };
        let (url, discovery, metadata) = match &entry.source {
            Source::Route(route) => (
                charge.resource.url.clone(),
                bazaar::code_route(route.path),
                json!({ "route": route.path, "description": charge.resource.description }),
            ),
            Source::Agent(agent) => {
                let Some(discovery) = charge.discovery.clone() else {
                    return Ok(None);
                };
                (
                    charge.resource.url.clone(),
                    discovery,
                    agent_metadata(agent),
                )
            }
            Source::Tool(agent) => (
                format!("{}/mcp", self.public_base()),
                std::sync::Arc::new(bazaar::mcp_tool(
                    &agent.name,
                    &agent.description,
                    agent.schemas.as_ref(),
                )),
                agent_metadata(agent),
            ),
        };
        let accepts = self.accepts(&charge, asked).await?;
        let mut extensions = json!({ bazaar::EXTENSION: discovery.declaration() });
        if entry.kind == "http" && entry.identifier != IdentifierMode::Off {
            extensions[identifier::EXTENSION] =
                identifier::declaration(entry.identifier == IdentifierMode::Required);
        }
        // Signed offers of these terms, as the challenge carries them (valid as long).
        if let Some(offers) = self.offers_extension(&charge.resource.url, &accepts) {
            extensions[hypervisor_protocol::offer_receipt::EXTENSION] = offers;
        }
        Ok(Some(json!({
            "resource": url,
            "type": entry.kind,
            "x402Version": 2,
            "accepts": accepts,
            "description": charge.resource.description,
            "mimeType": charge.resource.mime_type,
            "discoveryInfo": discovery.info,
            "extensions": extensions,
            "lastUpdated": rfc3339(entry.updated),
            "metadata": metadata,
        })))
    }
}

/// What the listing says of an agent.
fn agent_metadata(agent: &AgentRecord) -> Value {
    json!({
        "agent": agent.name,
        "description": agent.description,
        "tags": agent.tags,
        "kind": agent.latest.kind,
        "version": agent.latest.version,
        "codeHash": hex::encode(agent.latest.code_hash),
    })
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(seconds: u64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH
        + time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
