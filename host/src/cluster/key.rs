//! The cluster key: sealed agents' code, logs, tasks and wallets' keys of a cluster are sealed
//! with one key that every replica holds and nothing outside the replicas' TEEs does.
//!
//! - The first replica to start on an empty database draws the key and records its check
//!   value (`cluster_key`, one row: of replicas starting together, one wins).
//! - A replica that finds a check value but holds no key **joins**: it posts a request in the
//!   database (`cluster_joins`: its attestation, a fresh exchange key, both signed by its
//!   attested key) and waits. Every running replica watches the requests ([`serve_joins`]):
//!   one that verifies the evidence (platform measurements, replayed application identity and
//!   host claim equal to its own, or matching a set of `cluster.allowed_reference_values`;
//!   never the claimed host measurement alone, which any program can write) answers with the key sealed to the exchange key and
//!   signed by its own attested key; otherwise it answers a refusal saying why. The joiner
//!   verifies the answer the same way (a database that lies cannot hand it a key of its own
//!   making) and checks the key against the check value. The exchange is specified in
//!   `docs/PROTOCOL.md` §22 ([`hypervisor_protocol::cluster`]).
//! - Each replica keeps the key in `<data_dir>/keys/cluster.key` (as the embedded backend keeps
//!   its at-rest key): a restart needs no running peer; the data directory must be on the
//!   TEE's encrypted disk.
//!
//! Threat model (docs/DEPLOY.md): the database and the network are not trusted; they see
//! check values, evidence, exchange keys and sealed keys. A replica refuses a joiner whose
//! evidence does not verify or whose measurement is not allowed, so a host built differently
//! (or not in a TEE) never receives the key. Simulated evidence is accepted only when the
//! responder itself runs on simulated attestation **and** `cluster.allow_simulated` is set:
//! development only, labelled in the logs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hypervisor_client::verify::{Policy, VerifyError, measured_unverified, verify_attestation};
use hypervisor_protocol::attest::{StatementKind, verify_statement};
use hypervisor_protocol::cluster::{grant_fields, join_fields, key_check, unwrap_key, wrap_key};
use hypervisor_protocol::reference::ReferenceValues;
use hypervisor_protocol::wire::Attestation;
use hypervisor_protocol::{ClientSecret, EncodedPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Identity;
use crate::attestation::{Attestor, TeeKind};
use crate::clock::unix_millis;
use crate::config::ClusterConfig;
use crate::crypto::at_rest::SealingKey;
use crate::storage::postgres::Pg;
use crate::storage::postgres::mailbox::{JoinAnswer, JoinRequest, KeyRecord, Mailbox};
use crate::storage::{StorageError, write_atomic};

/// Why this replica has no cluster key.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A running replica refused this one.
    #[error("the cluster refused this replica's join request: {0}")]
    Refused(String),
    /// Nobody answered in time.
    #[error(
        "no running replica answered the join request within {0} s (is one running, with the same database?)"
    )]
    NoAnswer(u64),
    /// Joining needs an attested key to sign the request.
    #[error(
        "this replica has no attestation provider: it cannot prove itself to join the cluster \
         (set attestation.provider, or provision <data_dir>/keys/cluster.key yourself)"
    )]
    NotAttested,
    /// The key in the data directory is another cluster's.
    #[error(
        "{0} holds a key of another cluster (its check value differs from the database's): \
         remove it to join this cluster, or point storage.database at its cluster"
    )]
    WrongKey(String),
    /// An answer did not verify.
    #[error("the answer to the join request does not verify: {0}")]
    BadAnswer(String),
    /// Randomness or key material failed.
    #[error("cluster key material: {0}")]
    Crypto(String),
}

/// A join request, as posted in the mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    attestation: Attestation,
    exchange_key: String,
    signature: String,
}

/// A grant, as answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    attestation: Attestation,
    exchange_key: String,
    sealed_key: String,
    signature: String,
}

fn key_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("keys").join("cluster.key")
}

fn check_hex(key: &SealingKey) -> String {
    hex::encode(key_check(key.bytes()))
}

fn load_local(data_dir: &Path) -> Result<Option<SealingKey>, ClusterError> {
    let path = key_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::CorruptKey(path.clone()))?;
            Ok(Some(SealingKey::from_bytes(Zeroizing::new(key))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::Io {
            op: "read",
            path,
            source: e,
        }
        .into()),
    }
}

fn keep_local(data_dir: &Path, key: &SealingKey) -> Result<(), ClusterError> {
    let dir = data_dir.join("keys");
    std::fs::create_dir_all(&dir).map_err(|e| StorageError::Io {
        op: "create directory",
        path: dir.clone(),
        source: e,
    })?;
    write_atomic(&key_path(data_dir), key.bytes(), true)?;
    Ok(())
}

/// The name of the reference set a replica derives from its own evidence.
const OWN_PLATFORM: &str = "this replica's own platform";

/// The verification policy for another replica's evidence: the reference set of this replica's
/// own platform (its registers, the application identity replayed from its own event log, its
/// host claim) and the allowed sets; simulated evidence only where this replica is simulated
/// and allowed.
fn policy(attestor: &Attestor, config: &ClusterConfig) -> Policy {
    let own = attestor.current();
    let simulated = own.as_ref().is_some_and(|k| k.tee() == TeeKind::Simulated);
    let mut sets = Vec::new();
    if let Some(key) = &own {
        // Our own evidence, from our own provider: parsed, not verified (nothing to gain).
        match measured_unverified(key.attestation()) {
            Ok(m) => {
                let set = ReferenceValues::from_measured(OWN_PLATFORM, &m);
                match set.decode(0) {
                    Ok(_) => sets.push(set),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "this replica's own evidence names no application identity: peers are \
                         admitted only by cluster.allowed_reference_values"
                    ),
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read this replica's own measurements"),
        }
    }
    sets.extend(config.allowed_reference_values.iter().cloned());
    Policy {
        allow_simulated: simulated && config.allow_simulated,
        pccs_url: config.pccs_url.clone(),
        snp_kds_url: config.snp_kds_url.clone(),
        accepted_tcb_statuses: config.tdx_tcb_statuses.clone(),
        reference_values: sets,
        ..Policy::default()
    }
}

/// Why `att` is not a replica this cluster admits, in words for the refused replica and the
/// operator.
fn judge(att: &Attestation, attestor: &Attestor, config: &ClusterConfig) -> Result<(), String> {
    match verify_attestation(att, &policy(attestor, config)) {
        Ok(_) => Ok(()),
        Err(VerifyError::Reference(why)) => Err(format!(
            "its platform measurements equal neither this replica's nor a set of \
             cluster.allowed_reference_values: {why}"
        )),
        Err(VerifyError::NoExpectedMeasurement) => Err(
            "this replica can compare with nothing: its own evidence names no application \
             identity and cluster.allowed_reference_values is empty"
                .to_string(),
        ),
        Err(VerifyError::Simulated) => Err(
            "its evidence is simulated, and this cluster accepts simulated replicas only when \
             it runs on simulated attestation with cluster.allow_simulated = true"
                .to_string(),
        ),
        Err(e) => Err(format!("its evidence does not verify: {e}")),
    }
}

/// The cluster key for this replica: its own copy when it matches the database's check value;
/// a new key when the database has none (this replica is the first); else obtained from a
/// running replica (blocking: up to `cluster.join_timeout_seconds`).
///
/// # Errors
/// [`ClusterError`].
pub fn obtain(
    pg: &Arc<Pg>,
    attestor: &Attestor,
    identity: &Identity,
    config: &ClusterConfig,
    data_dir: &Path,
) -> Result<SealingKey, ClusterError> {
    let mailbox = Mailbox::new(pg.clone());
    let local = load_local(data_dir)?;
    let record = mailbox.key_record()?;
    match (record, local) {
        (Some(record), Some(key)) => {
            if hypervisor_protocol::attest::ct_eq(
                check_hex(&key).as_bytes(),
                record.key_check.as_bytes(),
            ) {
                Ok(key)
            } else {
                Err(ClusterError::WrongKey(
                    key_path(data_dir).display().to_string(),
                ))
            }
        }
        (Some(_), None) => join(&mailbox, attestor, identity, config, data_dir),
        (None, local) => {
            let fresh = local.is_none();
            let key = match local {
                Some(key) => key,
                None => SealingKey::generate().map_err(|e| ClusterError::Crypto(e.to_string()))?,
            };
            let record = KeyRecord {
                key_check: check_hex(&key),
                measurement: hex::encode(attestor.host_measurement()),
                created_by: identity.replica.clone(),
            };
            if mailbox.create_key_record(&record)? {
                keep_local(data_dir, &key)?;
                tracing::info!(
                    new = fresh,
                    "this replica created the cluster key record (the first of its cluster)"
                );
                return Ok(key);
            }
            // Another replica recorded its key first: join it.
            obtain(pg, attestor, identity, config, data_dir)
        }
    }
}

fn join(
    mailbox: &Mailbox,
    attestor: &Attestor,
    identity: &Identity,
    config: &ClusterConfig,
    data_dir: &Path,
) -> Result<SealingKey, ClusterError> {
    let attested = attestor.current().ok_or(ClusterError::NotAttested)?;
    let exchange = ClientSecret::generate().map_err(|e| ClusterError::Crypto(e.to_string()))?;
    let exchange_key = exchange.public_key();
    let signature = attested
        .sign(
            StatementKind::ClusterJoin,
            &join_fields(&identity.run, &identity.replica, &exchange_key),
        )
        .map_err(|e| ClusterError::Crypto(e.to_string()))?;
    let request = Request {
        attestation: attested.attestation().clone(),
        exchange_key: exchange_key.to_hex(),
        signature: hex::encode(signature),
    };
    let request =
        serde_json::to_string(&request).map_err(|e| ClusterError::Crypto(e.to_string()))?;
    mailbox.post_join(&identity.run, &identity.replica, &request)?;
    tracing::info!(
        replica = %identity.replica,
        "asked the running replicas for the cluster key; waiting for an answer"
    );
    let deadline = Instant::now() + Duration::from_secs(config.join_timeout_seconds);
    let answer = loop {
        match mailbox.answer(&identity.run)? {
            JoinAnswer::Waiting if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            JoinAnswer::Waiting => {
                return Err(ClusterError::NoAnswer(config.join_timeout_seconds));
            }
            JoinAnswer::Refused(why) => return Err(ClusterError::Refused(why)),
            JoinAnswer::Granted(grant) => break grant,
        }
    };
    let grant: Grant =
        serde_json::from_str(&answer).map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    judge(&grant.attestation, attestor, config).map_err(ClusterError::BadAnswer)?;
    let responder_key = EncodedPublicKey::from_hex("exchange_key", &grant.exchange_key)
        .map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    let signer = EncodedPublicKey::from_hex("signing_key", &grant.attestation.signing_key)
        .map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    let sealed =
        hex::decode(&grant.sealed_key).map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    let signature =
        hex::decode(&grant.signature).map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    verify_statement(
        &signer,
        StatementKind::ClusterGrant,
        &grant_fields(&identity.run, &exchange_key, &responder_key, &sealed),
        &signature,
    )
    .map_err(|_| ClusterError::BadAnswer("the grant's signature".into()))?;
    let bytes = unwrap_key(&exchange, &responder_key, &identity.run, &sealed)
        .map_err(|e| ClusterError::BadAnswer(e.to_string()))?;
    let key = SealingKey::from_bytes(bytes);
    let record = mailbox
        .key_record()?
        .ok_or_else(|| ClusterError::BadAnswer("the cluster key record disappeared".into()))?;
    if !hypervisor_protocol::attest::ct_eq(check_hex(&key).as_bytes(), record.key_check.as_bytes())
    {
        return Err(ClusterError::BadAnswer(
            "the key received does not match the cluster's check value".into(),
        ));
    }
    keep_local(data_dir, &key)?;
    tracing::info!("received the cluster key from a running replica");
    Ok(key)
}

/// Answers one join request: a grant (the answer document), or a refusal saying why.
fn answer(
    request: &JoinRequest,
    key: &SealingKey,
    attestor: &Attestor,
    config: &ClusterConfig,
) -> Result<String, String> {
    let document: Request =
        serde_json::from_str(&request.request).map_err(|e| format!("malformed request: {e}"))?;
    judge(&document.attestation, attestor, config)?;
    let joiner_key = EncodedPublicKey::from_hex("exchange_key", &document.exchange_key)
        .map_err(|e| format!("malformed request: {e}"))?;
    let signer = EncodedPublicKey::from_hex("signing_key", &document.attestation.signing_key)
        .map_err(|e| format!("malformed request: {e}"))?;
    let signature =
        hex::decode(&document.signature).map_err(|e| format!("malformed request: {e}"))?;
    verify_statement(
        &signer,
        StatementKind::ClusterJoin,
        &join_fields(&request.run, &request.replica, &joiner_key),
        &signature,
    )
    .map_err(|_| "the request's signature does not verify with its attested key".to_string())?;
    let attested = attestor
        .current()
        .ok_or_else(|| "the responder has no attested key".to_string())?;
    let exchange = ClientSecret::generate().map_err(|e| e.to_string())?;
    let sealed =
        wrap_key(&exchange, &joiner_key, &request.run, key.bytes()).map_err(|e| e.to_string())?;
    let responder_key = exchange.public_key();
    let signature = attested
        .sign(
            StatementKind::ClusterGrant,
            &grant_fields(&request.run, &joiner_key, &responder_key, &sealed),
        )
        .map_err(|e| e.to_string())?;
    serde_json::to_string(&Grant {
        attestation: attested.attestation().clone(),
        exchange_key: responder_key.to_hex(),
        sealed_key: hex::encode(sealed),
        signature: hex::encode(signature),
    })
    .map_err(|e| e.to_string())
}

/// How often a replica looks for join requests.
const POLL: Duration = Duration::from_millis(300);

/// Requests older than this are left alone (their joiner gave up).
const REQUEST_TTL_MS: u64 = 10 * 60 * 1000;

/// Answers join requests for as long as the process runs, on a thread of its own: grants the
/// key to replicas whose attestation verifies, refuses the others saying why.
///
/// # Errors
/// Only if the thread cannot be started.
pub fn serve_joins(
    pg: Arc<Pg>,
    attestor: Arc<Attestor>,
    identity: Identity,
    config: ClusterConfig,
    key: Arc<SealingKey>,
) -> std::io::Result<()> {
    let mailbox = Mailbox::new(pg);
    std::thread::Builder::new()
        .name("cluster-joins".into())
        .spawn(move || {
            loop {
                std::thread::sleep(POLL);
                let waiting = match mailbox.waiting(unix_millis().saturating_sub(REQUEST_TTL_MS)) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read join requests");
                        continue;
                    }
                };
                for request in waiting {
                    let (granted, document) = match answer(&request, &key, &attestor, &config) {
                        Ok(grant) => (true, grant),
                        Err(why) => (false, why),
                    };
                    match mailbox.respond(&request.run, granted, &document, &identity.replica) {
                        Ok(true) if granted => tracing::info!(
                            replica = %request.replica,
                            "granted the cluster key to a joining replica"
                        ),
                        Ok(true) => tracing::warn!(
                            replica = %request.replica,
                            why = %document,
                            "refused the cluster key to a joining replica"
                        ),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot answer a join request"),
                    }
                }
            }
        })
        .map(|_| ())
}
