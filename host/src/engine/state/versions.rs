//! Each published version of `wasi:keyvalue` and `wasi:config/store`, translated to and from
//! the one implementation in the parent module (`Kv`, `Conf`): types only.

use wasmtime::component::Resource;

use super::{Bucket, Cas, Fail, HostState};
use super::{
    atomics1, atomics2, batch1, batch2, config_draft, config_rc1, config_spin, store1, store2,
};

/// The bucket methods whose shapes both drafts share (`$store`: the draft's `store` module;
/// `$err`: its error translation).
macro_rules! bucket_methods {
    ($store:ident, $err:ident) => {
        fn get(
            &mut self,
            b: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<Option<Vec<u8>>, $store::Error>> {
            Ok(self.kv().get(&b, &key).map_err($err))
        }

        fn set(
            &mut self,
            b: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), $store::Error>> {
            Ok(self.kv().set(&b, &key, &value).map_err($err))
        }

        fn delete(
            &mut self,
            b: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<(), $store::Error>> {
            Ok(self.kv().delete(&b, &key).map_err($err))
        }

        fn exists(
            &mut self,
            b: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<bool, $store::Error>> {
            Ok(self.kv().exists(&b, &key).map_err($err))
        }

        fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
            self.table().delete(b)?;
            Ok(())
        }
    };
}

/// The batch writes whose shapes both drafts share.
macro_rules! batch_writes {
    ($store:ident, $err:ident) => {
        fn set_many(
            &mut self,
            b: Resource<Bucket>,
            pairs: Vec<(String, Vec<u8>)>,
        ) -> wasmtime::Result<Result<(), $store::Error>> {
            Ok(self.kv().set_many(&b, pairs).map_err($err))
        }

        fn delete_many(
            &mut self,
            b: Resource<Bucket>,
            keys: Vec<String>,
        ) -> wasmtime::Result<Result<(), $store::Error>> {
            Ok(self.kv().delete_many(&b, keys).map_err($err))
        }
    };
}

/// `wasi:keyvalue@0.2.0-draft`.
mod draft {
    use super::*;

    fn err(f: Fail) -> store1::Error {
        match f {
            Fail::Denied => store1::Error::AccessDenied,
            Fail::Other(m) => store1::Error::Other(m),
        }
    }

    impl store1::Host for HostState {
        fn open(
            &mut self,
            identifier: String,
        ) -> wasmtime::Result<Result<Resource<Bucket>, store1::Error>> {
            Ok(self.kv().open(identifier).map_err(err))
        }
    }

    impl store1::HostBucket for HostState {
        bucket_methods!(store1, err);

        fn list_keys(
            &mut self,
            b: Resource<Bucket>,
            cursor: Option<u64>,
        ) -> wasmtime::Result<Result<store1::KeyResponse, store1::Error>> {
            Ok(self
                .kv()
                .list(&b, cursor.unwrap_or(0))
                .map(|(keys, cursor)| store1::KeyResponse { keys, cursor })
                .map_err(err))
        }
    }

    impl atomics1::Host for HostState {
        fn increment(
            &mut self,
            b: Resource<Bucket>,
            key: String,
            delta: u64,
        ) -> wasmtime::Result<Result<u64, store1::Error>> {
            Ok(self
                .kv()
                .add(&b, &key, i128::from(delta), false)
                .map(|v| u64::try_from(v).unwrap_or(u64::MAX))
                .map_err(err))
        }
    }

    impl batch1::Host for HostState {
        fn get_many(
            &mut self,
            b: Resource<Bucket>,
            keys: Vec<String>,
        ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, store1::Error>> {
            Ok(self
                .kv()
                .get_many(&b, keys)
                .map(|found| {
                    found
                        .into_iter()
                        .map(|(key, value)| value.map(|v| (key, v)))
                        .collect()
                })
                .map_err(err))
        }

        batch_writes!(store1, err);
    }
}

/// `wasi:keyvalue@0.2.0-draft2`.
mod draft2 {
    use super::*;

    fn err(f: Fail) -> store2::Error {
        match f {
            Fail::Denied => store2::Error::AccessDenied,
            Fail::Other(m) => store2::Error::Other(m),
        }
    }

    /// A string cursor: the decimal offset of the next page.
    fn offset(cursor: Option<String>) -> Result<u64, Fail> {
        match cursor {
            None => Ok(0),
            Some(c) => c
                .parse()
                .map_err(|_| Fail::Other(format!("{c:?} is not a cursor this host gave"))),
        }
    }

    impl store2::Host for HostState {
        fn open(
            &mut self,
            identifier: String,
        ) -> wasmtime::Result<Result<Resource<Bucket>, store2::Error>> {
            Ok(self.kv().open(identifier).map_err(err))
        }
    }

    impl store2::HostBucket for HostState {
        bucket_methods!(store2, err);

        fn list_keys(
            &mut self,
            b: Resource<Bucket>,
            cursor: Option<String>,
        ) -> wasmtime::Result<Result<store2::KeyResponse, store2::Error>> {
            let offset = match offset(cursor) {
                Ok(o) => o,
                Err(e) => return Ok(Err(err(e))),
            };
            Ok(self
                .kv()
                .list(&b, offset)
                .map(|(keys, next)| store2::KeyResponse {
                    keys,
                    cursor: next.map(|n| n.to_string()),
                })
                .map_err(err))
        }
    }

    impl atomics2::Host for HostState {
        fn increment(
            &mut self,
            b: Resource<Bucket>,
            key: String,
            delta: i64,
        ) -> wasmtime::Result<Result<i64, store2::Error>> {
            Ok(self
                .kv()
                .add(&b, &key, i128::from(delta), true)
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .map_err(err))
        }

        fn swap(
            &mut self,
            cas: Resource<Cas>,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), atomics2::CasError>> {
            Ok(match self.kv().swap(cas, &value) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(again)) => Err(atomics2::CasError::CasFailed(again)),
                Err(e) => Err(atomics2::CasError::StoreError(err(e))),
            })
        }
    }

    impl atomics2::HostCas for HostState {
        fn new(
            &mut self,
            b: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<Resource<Cas>, store2::Error>> {
            Ok(self.kv().new_cas(&b, key).map_err(err))
        }

        fn current(
            &mut self,
            cas: Resource<Cas>,
        ) -> wasmtime::Result<Result<Option<Vec<u8>>, store2::Error>> {
            Ok(Ok(self.table().get(&cas)?.value.clone()))
        }

        fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
            if let Err(Fail::Other(e)) = self.kv().take_cas(cas) {
                return Err(wasmtime::format_err!(e));
            }
            Ok(())
        }
    }

    impl batch2::Host for HostState {
        fn get_many(
            &mut self,
            b: Resource<Bucket>,
            keys: Vec<String>,
        ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, store2::Error>> {
            Ok(self.kv().get_many(&b, keys).map_err(err))
        }

        batch_writes!(store2, err);
    }
}

/// `wasi:config/store`, each version the same.
macro_rules! config_store {
    ($m:ident) => {
        impl $m::Host for HostState {
            fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, $m::Error>> {
                Ok(self.conf().get(&key).map_err($m::Error::Upstream))
            }

            fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, $m::Error>> {
                Ok(self.conf().all().map_err($m::Error::Upstream))
            }
        }
    };
}

config_store!(config_rc1);
config_store!(config_spin);
config_store!(config_draft);
