//! One StarlingMonkey set-up: the engine's initialiser run over the agent's modules under
//! WASI preview 1, the initialised instance snapshotted by wizer and made a component.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::{Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wizer::{SnapshotVal, ValType};

use super::refusal::{refusal, unavailable_at_load};
use super::workspace::{self, HANDLER, INITIALIZER};
use super::{INIT_FUNC, SETUP_OUTPUT_BYTES, StarlingMonkey, encode, wizer};
use crate::engine::output::CappedOutput;
use crate::engine::run::RunLimits;
use crate::engine::sandbox::MemoryLimiter;
use crate::engine::{Engine, EngineError, JsModule, SnapshotError};

/// How long the steps of a set-up took.
pub(super) struct SetUpTimes {
    /// Getting the instrumented engine (compiled on a process's first set-up).
    pub(super) instrumented: Duration,
    /// Running the initialiser and taking the snapshot.
    pub(super) set_up: Duration,
    /// Making the component.
    pub(super) encoded: Duration,
}

impl StarlingMonkey {
    /// The set-up's WASI: stdin carries the initialiser's arguments, the environment the
    /// world's signatures, `dir` is the only directory (read-only), and output goes to `output`.
    fn wasi(&self, dir: &Path, output: &CappedOutput) -> Result<WasiP1Ctx, EngineError> {
        let args =
            format!("--initializer-script-path /{INITIALIZER} --strip-path-prefix / {HANDLER}");
        let mut wasi = WasiCtx::builder();
        wasi.stdin(MemoryInputPipe::new(args.into_bytes()))
            .stdout(output.clone())
            .stderr(output.clone());
        for (key, value) in &self.env {
            wasi.env(key, value);
        }
        wasi.preopened_dir(dir, "/", FsPerms::ReadOnly)
            .map_err(|e| EngineError::Internal(format!("the set-up's directory: {e}")))?;
        Ok(wasi.build_p1())
    }
}

/// A set-up's store.
struct SetUp {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

impl Engine {
    /// Sets `modules` up in StarlingMonkey (`main` evaluated first) and snapshots the engine:
    /// the agent's component (not compiled), and how long each step took.
    ///
    /// # Errors
    /// [`SnapshotError`].
    pub(super) async fn starlingmonkey_component(
        &self,
        sm: &StarlingMonkey,
        main: &str,
        modules: &[JsModule],
        limits: RunLimits,
    ) -> Result<(Vec<u8>, SetUpTimes), SnapshotError> {
        let started = Instant::now();
        let instrumented = sm.instrumented(self).await?;
        let instrumented_at = started.elapsed();
        let _slot = self.execution_slot().await?;
        let dir = workspace::create(&sm.initializer, main, modules)?;
        let output = CappedOutput::new(SETUP_OUTPUT_BYTES);
        let mut store = Store::new(
            &self.engine,
            SetUp {
                wasi: sm.wasi(dir.path(), &output)?,
                limiter: MemoryLimiter::new(limits.memory_bytes),
            },
        );
        store.limiter(|s| &mut s.limiter);
        if self.fuel {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        let mut linker = Linker::new(&self.engine);
        let internal = |e: wasmtime::Error| EngineError::Internal(crate::engine::error_chain(&e));
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut SetUp| &mut s.wasi)
            .map_err(internal)?;
        // The world's own imports: never called while setting up.
        linker
            .define_unknown_imports_as_traps(&instrumented.module)
            .map_err(internal)?;
        let result = self
            .call_with_deadline(&mut store, limits.time, async |store| {
                let instance = linker
                    .instantiate_async(&mut *store, &instrumented.module)
                    .await?;
                for name in ["_initialize", INIT_FUNC] {
                    let init = instance.get_typed_func::<(), ()>(&mut *store, name)?;
                    init.call_async(&mut *store, ()).await?;
                }
                let mut state = State {
                    store,
                    instance,
                    failure: None,
                };
                let snapshot = wizer().snapshot(&instrumented.cx, &mut state).await?;
                if let Some(failure) = state.failure {
                    return Err(failure.context("reading the initialised instance's state"));
                }
                let check = instance.get_typed_func::<(), i32>(&mut *store, "check_init")?;
                let checked = check.call_async(&mut *store, ()).await?;
                Ok::<_, wasmtime::Error>((snapshot, checked))
            })
            .await;
        drop(dir);
        let text = String::from_utf8_lossy(&output.take().0).into_owned();
        let snapshot = match result {
            None => {
                return Err(SnapshotError::Stopped(format!(
                    "time limit of {} ms",
                    limits.time.as_millis()
                )));
            }
            Some(Err(e)) => {
                if store.data().limiter.refused() {
                    return Err(SnapshotError::Stopped("memory limit exceeded".into()));
                }
                if crate::engine::is_deadline(&e) {
                    return Err(SnapshotError::Stopped(format!(
                        "time limit of {} ms",
                        limits.time.as_millis()
                    )));
                }
                if let Some(import) = unavailable_at_load(&e) {
                    return Err(SnapshotError::Refused {
                        code: "module_threw".into(),
                        message: format!(
                            "the modules' top-level code used {import}, which StarlingMonkey \
                             cannot reach while it loads them (randomness, the monotonic clock, \
                             timers and the network wait for the handler): call it inside \
                             `handler`"
                        ),
                    });
                }
                return Err(refusal(&text).unwrap_or_else(|| {
                    SnapshotError::Stopped(crate::engine::cap_text(
                        format!("{e:#}"),
                        crate::engine::TRAP_DETAIL_BYTES,
                    ))
                }));
            }
            Some(Ok((_, checked))) if checked != 0 => {
                return Err(SnapshotError::Stopped(format!(
                    "the engine's check after the set-up failed ({checked}): {}",
                    crate::engine::cap_text(text, crate::engine::TRAP_DETAIL_BYTES)
                )));
            }
            Some(Ok((snapshot, _))) => snapshot,
        };
        drop(store);
        let set_up_at = started.elapsed();
        let component = encode(&snapshot)
            .map_err(|e| EngineError::Internal(format!("making the component: {e:#}")))?;
        drop(snapshot);
        let encoded_at = started.elapsed();
        Ok((
            component,
            SetUpTimes {
                instrumented: instrumented_at,
                set_up: set_up_at - instrumented_at,
                encoded: encoded_at - set_up_at,
            },
        ))
    }
}

/// The initialised instance as wizer reads it (its exported globals and memory). A failed
/// read is kept as this snapshot's error (wizer's trait has no error path), not a panic.
struct State<'a> {
    store: &'a mut Store<SetUp>,
    instance: wasmtime::Instance,
    failure: Option<wasmtime::Error>,
}

impl wasmtime_wizer::InstanceState for State<'_> {
    async fn global_get(&mut self, name: &str, _type: ValType) -> SnapshotVal {
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        match value {
            Some(wasmtime::Val::I32(x)) => SnapshotVal::I32(x),
            Some(wasmtime::Val::I64(x)) => SnapshotVal::I64(x),
            Some(wasmtime::Val::F32(x)) => SnapshotVal::F32(x),
            Some(wasmtime::Val::F64(x)) => SnapshotVal::F64(x),
            Some(wasmtime::Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            other => {
                self.failure.get_or_insert_with(|| {
                    wasmtime::Error::msg(format!("global {name}: {other:?}"))
                });
                SnapshotVal::I32(0)
            }
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => {
                self.failure
                    .get_or_insert_with(|| wasmtime::Error::msg(format!("no memory {name}")));
                contents(&[]);
            }
        }
    }
}
