//! The `hypervisor` binary.

use clap::Parser;
use hypervisor::config::{Action, Cli, Config};
use hypervisor::server::Host;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// objects across threads (HTTP, stores, instances), where glibc's malloc spent about a tenth
/// of the server's CPU time under load (see `benches/http-agents.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often freed memory is given back to the OS while the server is idle.
const RETURN_FREED_MEMORY_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_e` of mimalloc 3.3, which
/// `libmimalloc-sys` builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's default purge delay: how the option is recognised before it is changed.
const MIMALLOC_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// How long freed pages stay resident before they are purged (unless `MIMALLOC_PURGE_DELAY`
/// says otherwise): mimalloc's 1 s kept the ~50 MiB a JavaScript set-up frees resident until
/// well after the set-up had answered (`docs/PERFORMANCE.md`, "Memory over a session").
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`], unless the operator set one.
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: reading and setting an option take no pointers; mimalloc synchronises its
    // options itself. The index is checked against the option's known default first, so a
    // mimalloc whose options are numbered otherwise is left alone.
    #[allow(unsafe_code)]
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MIMALLOC_DEFAULT_PURGE_DELAY_MS
        {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

/// Gives memory freed by finished requests back to the OS, from a thread of its own.
///
/// mimalloc returns ("purges") freed pages only some time after they are freed
/// ([`PURGE_DELAY_MS`]), and only when an allocator call comes by to do it: on a server that
/// goes idle after a large request, the request's memory would stay resident until the next
/// one. Purging at once on every free (`MIMALLOC_PURGE_DELAY=0`) costs ~13% of the HTTP-agent
/// throughput; this thread instead runs the purges that are due, twice a second (a few
/// microseconds when none is).
fn return_freed_memory() {
    let spawned = std::thread::Builder::new()
        .name("memory-purge".into())
        .spawn(|| {
            // SAFETY: takes no arguments. mimalloc ignores `mi_collect` on a thread whose heap
            // was never initialised, and this thread allocates nothing: without this, its
            // collections did nothing, and freed memory was purged only when some other
            // thread happened to collect.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_thread_init()
            };
            loop {
                std::thread::sleep(RETURN_FREED_MEMORY_EVERY);
                // SAFETY: `mi_collect` takes no pointers; it collects the calling thread's own
                // (empty) heap and runs the program-wide arena purges that are due, which
                // mimalloc synchronises itself (it is meant to be called from any thread).
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no memory-purge thread: freed memory returns to the OS later");
    }
}

/// Returns what start-up freed to the OS at once, from every thread that may hold it: compiling
/// the plug-ins (CPython among them, on a first start) leaves freed memory in the heaps of the
/// threads that compiled (rayon's, the blocking pool's), which the purge thread's periodic
/// collection does not reach, so a first start idled at ~330 MiB against ~140 MiB for a start
/// from the compiled cache (`docs/PERFORMANCE.md`, "Memory").
fn collect_everywhere() {
    hypervisor::memory::collect_everywhere();
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colours only for a person at a terminal: escape codes in a file or a log collector are
    // noise, and formatting them was most of the cost of every request's span (the span's
    // fields are formatted when it is made, `docs/PERFORMANCE.md`, "Agents").
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    // A linking child of a host (`engine/riscv.rs`): before anything else starts, it reads an
    // ELF file on standard input, writes the linked blob on standard output, and exits.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == hypervisor::engine::LINK_CHILD_ARG)
    {
        let max = args
            .next()
            .and_then(|m| m.to_str()?.parse().ok())
            .unwrap_or(hypervisor::engine::MAX_ELF_BYTES);
        return hypervisor_riscv::isolate::serve_link_request(max);
    }
    match run(Cli::parse()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("hypervisor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command line; the process's exit status.
fn run(cli: Cli) -> anyhow::Result<u8> {
    let (action, mut config) = cli.resolve()?;
    if matches!(action, Action::Run(_)) && std::env::var_os("RUST_LOG").is_none() {
        // The program's output is what a local run shows; the host's start-up is not news.
        config.log.level = "warn".into();
    }
    if action == Action::PrintConfig {
        print!("{}", config.to_toml());
        return Ok(0);
    }
    init_logging(&config);
    if let Action::Run(args) = action {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(hypervisor::server::local_run::run(config, *args));
    }
    if let Action::Precompile(out) = action {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(hypervisor::server::precompile::run(&config, out))?;
        return Ok(0);
    }
    if action == Action::Launch {
        // RTMR3 will name this binary, and nothing beside it: plug-ins precompiled beside it
        // would be code no measurement covers, so they are compiled here instead.
        if config.precompiled_dir().is_some() {
            tracing::info!(
                "launch: precompiled plug-ins are not used (RTMR3 measures the binary alone)"
            );
        }
        config.precompiled_dir = Some(std::path::PathBuf::new());
        // Before anything is served: the binary that is about to serve is what RTMR3 names.
        let measurement = hypervisor::attestation::launcher::binary_sha256()?;
        hypervisor::attestation::launcher::extend_host_event(
            &measurement,
            &config.attestation.rtmr3_extend_file,
            &config.attestation.runtime_event_log,
        )?;
        tracing::info!(
            host_measurement = %hex::encode(measurement),
            log = %config.attestation.runtime_event_log.display(),
            "RTMR3 extended with this binary's SHA-256 (hypervisor-host-sha256)"
        );
    }
    set_purge_delay();
    return_freed_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let host = Host::build(config).await?;
        tokio::task::spawn_blocking(collect_everywhere).await?;
        host.serve().await
    })?;
    Ok(0)
}
