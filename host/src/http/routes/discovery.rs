//! `GET /discovery/resources` and `GET /discovery/search`: the host's x402 discovery listing
//! (`pipeline::x402::discovery`).

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::QueryParams;
use crate::pipeline::{ListQuery, SearchQuery};

/// `GET /discovery/resources`.
pub async fn resources(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.pipeline.discovery_resources(&query).await?))
}

/// `GET /discovery/search`.
pub async fn search(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.pipeline.discovery_search(&query).await?))
}
