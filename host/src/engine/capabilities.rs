//! Capabilities per role: **the single source of truth** for what a guest's store gets. The
//! table is on [`Capabilities`].

use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use super::outgoing::OutgoingHook;
use super::output::CappedOutput;
use super::state_grant::StateAccess;
use crate::net::Origin;

/// Who a store is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A client's program on the execute routes (a `wasi:cli/command`).
    ClientProgram,
    /// A client's Python script: the Python runtime plug-in, in a fresh instance of its own.
    PythonScript,
    /// The operator's policy plug-in (warm instances, reused between decisions).
    Policy,
    /// The payments plug-in (warm instances, `payments.warm_instances`).
    Payments,
    /// A deployed agent run as a command (`wasi:cli/run`).
    CliAgent,
    /// A deployed agent exporting `hypervisor:host/handler`.
    HandlerAgent,
    /// A deployed agent exporting `wasi:http/incoming-handler`.
    HttpAgent,
}

impl Role {
    /// Whether this is a deployed agent's role (the only ones with state and configuration).
    pub fn is_agent(self) -> bool {
        matches!(self, Role::CliAgent | Role::HandlerAgent | Role::HttpAgent)
    }

    /// The roles that run a component a client supplied. Such a component is checked when it
    /// is prepared, before it is known which of these it will run as.
    pub const CLIENT_COMPONENTS: [Role; 4] = [
        Role::ClientProgram,
        Role::CliAgent,
        Role::HandlerAgent,
        Role::HttpAgent,
    ];
}

/// What `wasi:cli/environment` reports as the guest's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// No arguments.
    None,
    /// The invocation's arguments (`argv[0]` first).
    Invocation,
    /// Exactly one fixed argument (`argv[0]`).
    Fixed(&'static str),
}

/// What `wasi:cli/stdin` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// Nothing (end of file at once).
    Empty,
    /// The invocation's input.
    Invocation,
}

/// The WASI unit: what the guest sees through `wasi:cli`; the parts common to every role are
/// listed on [`Capabilities`] and fixed in [`Self::context`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wasi {
    /// Arguments.
    pub args: Args,
    /// Standard input.
    pub stdin: Stdin,
}

/// What one invocation hands its guest; used only as far as the role's [`Wasi`] allows.
#[derive(Debug, Clone, Default)]
pub struct Invocation<'a> {
    /// Arguments, `argv[0]` first.
    pub args: &'a [String],
    /// Standard input.
    pub stdin: Bytes,
}

impl Wasi {
    /// The WASI context of one store: arguments and stdin as granted, stdout and stderr into
    /// the captures, clocks and random; no environment, no preopens, no sockets.
    pub fn context(
        &self,
        invocation: Invocation<'_>,
        stdout: CappedOutput,
        stderr: CappedOutput,
    ) -> WasiCtx {
        let mut b = WasiCtx::builder();
        match self.args {
            Args::None => {}
            Args::Invocation => {
                b.args(invocation.args);
            }
            Args::Fixed(arg) => {
                b.args(&[arg]);
            }
        }
        let stdin = match self.stdin {
            Stdin::Empty => Bytes::new(),
            Stdin::Invocation => invocation.stdin,
        };
        b.stdin(MemoryInputPipe::new(stdin))
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        b.build()
    }
}

/// The `hypervisor:host` unit: the host interfaces a role's component may import (WASI aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostImports {
    /// `hypervisor:host/crypto`.
    pub crypto: bool,
    /// `hypervisor:host/attestation` (statements bound to the running component's hash).
    pub attestation: bool,
}

impl HostImports {
    /// Both host interfaces.
    pub const ALL: Self = Self {
        crypto: true,
        attestation: true,
    };

    /// Whether the unversioned interface name (`hypervisor:host/crypto`) is granted.
    pub fn allows(&self, interface: &str) -> bool {
        match interface {
            "hypervisor:host/crypto" => self.crypto,
            "hypervisor:host/attestation" => self.attestation,
            _ => false,
        }
    }

    /// The host imports a client-supplied component may have: those granted to every one of
    /// [`Role::CLIENT_COMPONENTS`].
    pub fn of_client_components() -> Self {
        Role::CLIENT_COMPONENTS
            .iter()
            .map(|role| Capabilities::of(*role).host)
            .fold(Self::ALL, |a, b| Self {
                crypto: a.crypto && b.crypto,
                attestation: a.attestation && b.attestation,
            })
    }
}

/// The egress unit: the origins (scheme, host, port) the store's outgoing `wasi:http` requests
/// may reach, or the hook that decides for each request (an agent's grants). Empty, the
/// default, denies every request (`HTTP-request-denied`).
#[derive(Clone, Default)]
pub struct Egress {
    origins: Arc<[Origin]>,
    hook: Option<Arc<dyn OutgoingHook>>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("origins", &self.origins)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl PartialEq for Egress {
    fn eq(&self, other: &Self) -> bool {
        self.origins == other.origins
            && match (&self.hook, &other.hook) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for Egress {}

impl Egress {
    /// Hands every outgoing request to `hook` (an agent's grants, implemented above the
    /// engine); the origins are then not consulted.
    pub fn hook(&mut self, hook: Arc<dyn OutgoingHook>) {
        self.hook = Some(hook);
    }

    /// The hook, if any.
    pub fn hook_of(&self) -> Option<Arc<dyn OutgoingHook>> {
        self.hook.clone()
    }

    /// Adds `origin` to the grant.
    pub fn grant(&mut self, origin: Origin) {
        if !self.origins.contains(&origin) {
            let mut origins = self.origins.to_vec();
            origins.push(origin);
            self.origins = origins.into();
        }
    }

    /// The granted origins (shared, cheap to clone into each store).
    pub fn origins(&self) -> Arc<[Origin]> {
        self.origins.clone()
    }
}

/// Everything a role's store gets: **the single source of truth** of what each role may import
/// and reach.
///
/// Every store the host builds is built for a [`Role`], from that role's [`Capabilities`]
/// ([`Capabilities::of`]). A capability is one small unit that configures its own part of the
/// store (in the spirit of Spin's factors): [`Wasi`] builds the WASI context, [`HostImports`]
/// is the allow-list the import check applies before anything runs, and [`Egress`] is the set
/// of origins the store's outgoing `wasi:http` requests may reach. A role is the composition of
/// the three.
///
/// | Role             | args (`wasi:cli`) | stdin (`wasi:cli`) | `hypervisor:host`   | egress      | state, config (²) |
/// |------------------|-------------------|--------------------|---------------------|-------------|-------------------|
/// | client program   | the request's     | the request's      | crypto, attestation | none        | none              |
/// | Python script    | none (¹)          | the request's      | crypto, attestation | none        | none              |
/// | policy plug-in   | none              | empty              | crypto, attestation | none        | none              |
/// | payments plug-in | none              | empty              | crypto, attestation | facilitator | none              |
/// | CLI agent        | the invocation's  | the invocation's   | crypto, attestation | its grants  | its own           |
/// | handler agent    | the invocation's  | the invocation's   | crypto, attestation | its grants  | its own           |
/// | HTTP agent       | `http-agent`      | empty              | crypto, attestation | its grants  | its own           |
///
/// Common to every role (fixed in [`Wasi::context`], not a per-role choice):
/// - `wasi:cli` stdout and stderr are captured, up to `limits.stdout_bytes` and
///   `limits.stderr_bytes`;
/// - `wasi:clocks` (wall and monotonic) and `wasi:random` are available;
/// - no environment variables, no preopened directories (`wasi:filesystem` sees nothing);
/// - `wasi:sockets` is off: TCP, UDP and name lookup are refused, and every socket address is
///   denied.
///
/// Every role may import any `wasi:*` interface (the linker provides all of WASI 0.2 and
/// `wasi:http`; what an interface can reach is what the table grants) and the `hypervisor:host`
/// interfaces of its [`HostImports`]; anything else is refused before instantiation.
///
/// (¹) A script's arguments reach it through `hypervisor:host/python.run-script`, not
/// `wasi:cli`.
///
/// (²) `wasi:keyvalue` (store, atomics, batch; drafts 1 and 2) and `wasi:config/store`
/// (`wit/state.wit`) are linked for every role; a store without [`Capabilities::state`]
/// answers `access-denied` from `open` and has an empty configuration. An agent's store gets
/// its own buckets (private to the agent, sealed, within the host's quotas) and the values its
/// owner set ([`Capabilities::with_state`], from the pipeline).
///
/// Egress (outgoing `wasi:http` requests) is denied by default: [`Capabilities::of`] grants no origin to any
/// role. A caller extends a store's [`Egress`] explicitly ([`Egress::grant`]); today only the
/// payments plug-in does, in facilitator mode, with exactly the facilitator's origin
/// (`payments.facilitator_url`). An agent's store gets a hook instead ([`Egress::hook`]): the
/// pipeline asks its dispatcher (`crate::egress`) for one per run, which applies the agent's
/// signed grants to every request; an agent without grants is denied everything.
///
/// Where each role's store is built: [`super::Engine::run_command`] (client program, CLI
/// agent), [`super::Engine::run_handler`], [`super::Engine::serve_http`], and the plug-ins in
/// `crate::plugins` (policy, Python runtime, payments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The role these are for.
    pub role: Role,
    /// WASI.
    pub wasi: Wasi,
    /// `hypervisor:host` interfaces.
    pub host: HostImports,
    /// Outgoing `wasi:http` origins; a caller may extend it ([`Egress::grant`]).
    pub egress: Egress,
    /// The state unit: the agent's own `wasi:keyvalue` buckets and `wasi:config` values.
    /// `None` in the table; the pipeline sets it for the agent roles ([`Role::is_agent`]).
    pub state: Option<StateAccess>,
}

impl Capabilities {
    /// The table: the capabilities of `role`, with no outgoing origin granted.
    pub fn of(role: Role) -> Self {
        let invocation = Wasi {
            args: Args::Invocation,
            stdin: Stdin::Invocation,
        };
        let nothing = Wasi {
            args: Args::None,
            stdin: Stdin::Empty,
        };
        let wasi = match role {
            Role::ClientProgram | Role::CliAgent | Role::HandlerAgent => invocation,
            Role::PythonScript => Wasi {
                args: Args::None,
                stdin: Stdin::Invocation,
            },
            Role::Policy | Role::Payments => nothing,
            Role::HttpAgent => Wasi {
                args: Args::Fixed("http-agent"),
                stdin: Stdin::Empty,
            },
        };
        Self {
            role,
            wasi,
            host: HostImports::ALL,
            egress: Egress::default(),
            state: None,
        }
    }

    /// These capabilities with the agent's state and configuration (agent roles only).
    #[must_use]
    pub fn with_state(mut self, access: StateAccess) -> Self {
        if self.role.is_agent() {
            self.state = Some(access);
        }
        self
    }

    /// These capabilities with `origin` added to the egress grant.
    #[must_use]
    pub fn with_egress(mut self, origin: Origin) -> Self {
        self.egress.grant(origin);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in the docs of [`Capabilities`], row by row: change both together.
    #[test]
    fn table_matches_the_docs() {
        use Args::{Fixed, Invocation as Inv};
        let rows = [
            (Role::ClientProgram, Inv, Stdin::Invocation),
            (Role::PythonScript, Args::None, Stdin::Invocation),
            (Role::Policy, Args::None, Stdin::Empty),
            (Role::Payments, Args::None, Stdin::Empty),
            (Role::CliAgent, Inv, Stdin::Invocation),
            (Role::HandlerAgent, Inv, Stdin::Invocation),
            (Role::HttpAgent, Fixed("http-agent"), Stdin::Empty),
        ];
        for (role, args, stdin) in rows {
            let caps = Capabilities::of(role);
            assert_eq!(caps.role, role);
            assert_eq!(caps.wasi, Wasi { args, stdin }, "{role:?}");
            assert_eq!(caps.host, HostImports::ALL, "{role:?}");
        }
    }

    #[test]
    fn no_role_reaches_out_by_default() {
        let roles = [
            Role::ClientProgram,
            Role::PythonScript,
            Role::Policy,
            Role::Payments,
            Role::CliAgent,
            Role::HandlerAgent,
            Role::HttpAgent,
        ];
        for role in roles {
            assert!(
                Capabilities::of(role).egress.origins().is_empty(),
                "{role:?}"
            );
        }
    }

    #[test]
    fn egress_grants_add_each_origin_once() {
        let o = Origin::parse("http://127.0.0.1:4021").unwrap();
        let caps = Capabilities::of(Role::Payments)
            .with_egress(o.clone())
            .with_egress(o.clone());
        assert_eq!(&*caps.egress.origins(), &[o]);
    }

    #[test]
    fn host_imports_by_name() {
        let caps = Capabilities::of(Role::Policy);
        assert!(caps.host.allows("hypervisor:host/crypto"));
        assert!(caps.host.allows("hypervisor:host/attestation"));
        assert!(!caps.host.allows("hypervisor:host/policy"));
        let crypto_only = HostImports {
            crypto: true,
            attestation: false,
        };
        assert!(!crypto_only.allows("hypervisor:host/attestation"));
        assert_eq!(HostImports::of_client_components(), HostImports::ALL);
    }
}
