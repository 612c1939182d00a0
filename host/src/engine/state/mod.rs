//! The host side of `wit/state.wit`: `wasi:keyvalue` (both drafts) and `wasi:config/store`
//! (three versions), over an agent's own state and configuration (`StateAccess`, granted
//! to agents' stores only; see the table on [`super::Capabilities`] and `engine/state_grant.rs`).
//!
//! Every version's functions go through one implementation ([`Kv`] for key-value, [`Conf`]
//! for configuration); the per-version impls below only translate types. A store without
//! access answers `access-denied` from `open` and has an empty configuration.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource};

use super::sandbox::HostState;
use crate::storage::agent_config::ConfigDoc;
use crate::storage::state::{AgentKeys, KvError, StateStore};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hypervisor:host/agent-state",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store@0.2.0-draft.bucket": Bucket,
        "wasi:keyvalue/store@0.2.0-draft2.bucket": Bucket,
        "wasi:keyvalue/atomics@0.2.0-draft2.cas": Cas,
    },
});

use self::wasi::config0_2_0_draft::store as config_draft;
use self::wasi::config0_2_0_draft_2024_09_27::store as config_spin;
use self::wasi::config0_2_0_rc_1::store as config_rc1;
use self::wasi::keyvalue0_2_0_draft::{atomics as atomics1, batch as batch1, store as store1};
use self::wasi::keyvalue0_2_0_draft2::{atomics as atomics2, batch as batch2, store as store2};

mod versions;

/// Adds every version of both interfaces to `linker`.
///
/// # Errors
/// Only if the names are already defined in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    AgentState::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// A bucket opened by the guest: its name (the agent's own namespace).
pub struct Bucket {
    name: String,
}

/// A compare-and-swap in progress: the key, the version read and the value read.
pub struct Cas {
    bucket: String,
    key: String,
    version: Option<i64>,
    value: Option<Vec<u8>>,
}

/// Why a key-value operation failed, before translation into a version's `error`.
enum Fail {
    Denied,
    Other(String),
}

/// Keys one batch call (`get-many`, `set-many`, `delete-many`) may name: each is its own read
/// or write, and a host call cannot be cut short by the run's deadline.
pub const MAX_BATCH: usize = 1000;

/// Bytes of values one `get-many` may return: they are all in the host's memory before the
/// guest's memory limit sees them.
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// Bytes of values a run's open compare-and-swap handles may hold together (each holds the
/// value it read).
pub const MAX_CAS_BYTES: usize = 16 << 20;

/// The bucket that `""` (wasmtime's only bucket) opens: Spin's default store's name.
const DEFAULT_BUCKET: &str = "default";

type KvResult<T> = Result<T, Fail>;

/// The shared implementation.
struct Kv<'a> {
    state: &'a mut HostState,
}

impl Kv<'_> {
    fn access(&mut self) -> KvResult<(Arc<StateStore>, Arc<AgentKeys>)> {
        let grant = &mut self.state.state;
        let Some(access) = &grant.access else {
            return Err(Fail::Denied);
        };
        let keys = grant
            .keys
            .get_or_insert_with(|| Arc::new(access.store.keys(&access.agent, &access.owner_key)))
            .clone();
        Ok((access.store.clone(), keys))
    }

    /// A failure as the guest sees it; a quota refusal is remembered for the caller too.
    fn fail(&mut self, e: KvError) -> Fail {
        if e.is_quota() {
            self.state.state.refusal = Some(e.to_string());
        }
        if let KvError::Storage(s) = &e {
            tracing::warn!(error = %s, "key-value storage failed");
            return Fail::Other("the host's storage is unavailable; try again later".into());
        }
        Fail::Other(e.to_string())
    }

    fn bucket_name(&mut self, bucket: &Resource<Bucket>) -> KvResult<String> {
        self.state
            .table()
            .get(bucket)
            .map(|b| b.name.clone())
            .map_err(|_| Fail::Other("unknown bucket".into()))
    }

    fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let (store, _) = self.access()?;
        // wasmtime serves one bucket, `""`, and Spin's default store is `default`: a component
        // written for either opens the agent's default bucket here.
        let identifier = if identifier.is_empty() {
            DEFAULT_BUCKET.to_string()
        } else {
            identifier
        };
        store.check_bucket(&identifier).map_err(|e| self.fail(e))?;
        self.state
            .table()
            .push(Bucket { name: identifier })
            .map_err(|e| Fail::Other(e.to_string()))
    }

    fn get(&mut self, bucket: &Resource<Bucket>, key: &str) -> KvResult<Option<Vec<u8>>> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store
            .get(&keys, &name, key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.fail(e))
    }

    /// The values of `keys` (at most [`MAX_BATCH`], [`MAX_BATCH_BYTES`] of values in all).
    fn get_many(
        &mut self,
        bucket: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        batch_len(keys.len())?;
        let mut out = Vec::with_capacity(keys.len());
        let mut bytes = 0usize;
        for key in keys {
            let value = self.get(bucket, &key)?;
            bytes = bytes.saturating_add(value.as_ref().map_or(0, Vec::len));
            if bytes > MAX_BATCH_BYTES {
                return Err(Fail::Other(format!(
                    "the values asked for hold more than {MAX_BATCH_BYTES} bytes: ask for fewer"
                )));
            }
            out.push((key, value));
        }
        Ok(out)
    }

    /// Sets every pair (at most [`MAX_BATCH`]), in order, stopping at the first failure.
    fn set_many(
        &mut self,
        bucket: &Resource<Bucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        batch_len(pairs.len())?;
        for (key, value) in pairs {
            self.set(bucket, &key, &value)?;
        }
        Ok(())
    }

    /// Deletes every key (at most [`MAX_BATCH`]), in order, stopping at the first failure.
    fn delete_many(&mut self, bucket: &Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        batch_len(keys.len())?;
        for key in keys {
            self.delete(bucket, &key)?;
        }
        Ok(())
    }

    fn set(&mut self, bucket: &Resource<Bucket>, key: &str, value: &[u8]) -> KvResult<()> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store
            .set(&keys, &name, key, value)
            .map_err(|e| self.fail(e))
    }

    fn delete(&mut self, bucket: &Resource<Bucket>, key: &str) -> KvResult<()> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store.delete(&keys, &name, key).map_err(|e| self.fail(e))
    }

    fn exists(&mut self, bucket: &Resource<Bucket>, key: &str) -> KvResult<bool> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store.exists(&keys, &name, key).map_err(|e| self.fail(e))
    }

    fn list(
        &mut self,
        bucket: &Resource<Bucket>,
        offset: u64,
    ) -> KvResult<(Vec<String>, Option<u64>)> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store.list(&keys, &name, offset).map_err(|e| self.fail(e))
    }

    fn add(
        &mut self,
        bucket: &Resource<Bucket>,
        key: &str,
        delta: i128,
        signed: bool,
    ) -> KvResult<i128> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        store
            .add(&keys, &name, key, delta, signed)
            .map_err(|e| self.fail(e))
    }

    fn new_cas(&mut self, bucket: &Resource<Bucket>, key: String) -> KvResult<Resource<Cas>> {
        let (store, keys) = self.access()?;
        let name = self.bucket_name(bucket)?;
        let (version, value) = store
            .read_for_swap(&keys, &name, &key)
            .map_err(|e| self.fail(e))?;
        self.push_cas(Cas {
            bucket: name,
            key,
            version,
            value: value.map(|v| v.to_vec()),
        })
    }

    /// Keeps `cas` for the guest, within [`MAX_CAS_BYTES`] for all its open handles.
    fn push_cas(&mut self, cas: Cas) -> KvResult<Resource<Cas>> {
        let held = cas.value.as_ref().map_or(0, Vec::len);
        let grant = &mut self.state.state;
        if grant.cas_bytes.saturating_add(held) > MAX_CAS_BYTES {
            return Err(Fail::Other(format!(
                "open compare-and-swap handles hold more than {MAX_CAS_BYTES} bytes: drop some"
            )));
        }
        grant.cas_bytes += held;
        self.state
            .table()
            .push(cas)
            .map_err(|e| Fail::Other(e.to_string()))
    }

    /// Takes `cas` back from the guest.
    fn take_cas(&mut self, cas: Resource<Cas>) -> KvResult<Cas> {
        let cas = self
            .state
            .table()
            .delete(cas)
            .map_err(|e| Fail::Other(e.to_string()))?;
        let held = cas.value.as_ref().map_or(0, Vec::len);
        let grant = &mut self.state.state;
        grant.cas_bytes = grant.cas_bytes.saturating_sub(held);
        Ok(cas)
    }

    /// Swaps; on a changed value, `Ok(Err(new cas))` holding the value now.
    fn swap(&mut self, cas: Resource<Cas>, value: &[u8]) -> KvResult<Result<(), Resource<Cas>>> {
        let (store, keys) = self.access()?;
        let cas = self.take_cas(cas)?;
        match store.swap(&keys, &cas.bucket, &cas.key, cas.version, value) {
            Ok(()) => Ok(Ok(())),
            Err(KvError::Changed) => {
                let (version, value) = store
                    .read_for_swap(&keys, &cas.bucket, &cas.key)
                    .map_err(|e| self.fail(e))?;
                let again = self.push_cas(Cas {
                    bucket: cas.bucket,
                    key: cas.key,
                    version,
                    value: value.map(|v| v.to_vec()),
                })?;
                Ok(Err(again))
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// Refuses a batch of more than [`MAX_BATCH`] keys.
fn batch_len(n: usize) -> KvResult<()> {
    match n > MAX_BATCH {
        true => Err(Fail::Other(format!(
            "a batch names at most {MAX_BATCH} keys ({n} here)"
        ))),
        false => Ok(()),
    }
}

/// The shared implementation of `wasi:config/store`.
struct Conf<'a> {
    state: &'a mut HostState,
}

impl Conf<'_> {
    fn doc(&mut self) -> Result<Option<Arc<ConfigDoc>>, String> {
        let grant = &mut self.state.state;
        let Some(access) = &grant.access else {
            return Ok(None);
        };
        if grant.config.is_none() {
            let doc = access
                .config
                .get(&access.agent, &access.owner_key)
                .map_err(|e| {
                    tracing::warn!(error = %e, "reading an agent's configuration failed");
                    "the host cannot read the configuration now".to_string()
                })?;
            grant.config = Some(doc);
        }
        Ok(grant.config.clone())
    }

    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        Ok(self.doc()?.and_then(|d| d.get(key).map(str::to_string)))
    }

    fn all(&mut self) -> Result<Vec<(String, String)>, String> {
        Ok(self.doc()?.map_or_else(Vec::new, |d| {
            d.all()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }))
    }
}

impl HostState {
    fn kv(&mut self) -> Kv<'_> {
        Kv { state: self }
    }

    fn conf(&mut self) -> Conf<'_> {
        Conf { state: self }
    }

    /// The last key-value write refused for a quota during this store's run, taken.
    pub fn take_state_refusal(&mut self) -> Option<String> {
        self.state.take_refusal()
    }
}
