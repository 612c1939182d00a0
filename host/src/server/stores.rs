//! The storage side of start-up: SQLite in the data directory, or a PostgreSQL database shared
//! by replicas, where this replica first obtains the cluster key ([`crate::cluster::key`]).

use std::sync::Arc;

use crate::attestation::Attestor;
use crate::cluster::Identity;
use crate::config::Config;
use crate::crypto::at_rest::SealingKey;
use crate::storage::postgres::{self, Pg, schema};
use crate::storage::{Stores, sqlite};

/// Opens the configured backend: `local_key` seals everything on SQLite; on PostgreSQL the
/// cluster key does (obtained here, blocking: up to `cluster.join_timeout_seconds` when this
/// replica joins). Returns the pool too, on PostgreSQL.
///
/// # Errors
/// The database cannot be opened or migrated, or the cluster refused this replica.
pub(super) fn open(
    config: &Config,
    local_key: &Arc<SealingKey>,
    attestor: &Attestor,
    identity: &Identity,
) -> anyhow::Result<(Stores, Option<Arc<Pg>>)> {
    if config.storage.database.is_none() {
        return Ok((sqlite::open(&config.data_dir, local_key.clone())?, None));
    }
    let pg = Pg::connect(&config.storage)?;
    schema::migrate(&pg)?;
    tracing::info!(
        database = %pg.url,
        schema = schema::version(&pg)?,
        pool_size = config.storage.pool_size,
        "PostgreSQL ready"
    );
    let key =
        crate::cluster::key::obtain(&pg, attestor, identity, &config.cluster, &config.data_dir)?;
    let stores = postgres::stores(&pg, Arc::new(key))?;
    Ok((stores, Some(pg)))
}
