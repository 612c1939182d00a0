//! The public HTTP routes of the host, in one table: each [`Route`] has its path template (as
//! the host's router writes it) and its operations (method, OpenAPI `operationId`, summary).
//!
//! The host builds its router from this table, and its tests check that the router answers
//! exactly these methods on these paths and that `docs/openapi.json` documents exactly these
//! operations.

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
}

impl Method {
    /// Every method of the API (the methods of an HTTP agent's routes).
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
    ];

    /// The method as on the request line (`GET`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }

    /// The key of the operation in an OpenAPI path item (`get`).
    pub const fn openapi_key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// One operation of a route: a method and how the OpenAPI document names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The method.
    pub method: Method,
    /// The OpenAPI `operationId` (unique in the API).
    pub id: &'static str,
    /// The OpenAPI `summary`.
    pub summary: &'static str,
}

/// Declares [`Route`] from one list: variant, path template, operations.
macro_rules! routes {
    ($( $(#[doc = $doc:literal])* $route:ident => $path:literal: [
        $( ($method:ident, $id:literal, $summary:literal) ),+ $(,)?
    ], )*) => {
        /// A public route of the host (see the module documentation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route {
            $( $(#[doc = $doc])* #[doc = concat!("\n\nPath `", $path, "`.")] $route, )*
        }

        impl Route {
            /// Every route, in the order of `docs/openapi.json`.
            pub const ALL: &'static [Route] = &[$(Route::$route,)*];

            /// The path template in the router's syntax: `{name}` is one segment, `{*rest}`
            /// the rest of the path.
            pub const fn path(self) -> &'static str {
                match self {
                    $(Route::$route => $path,)*
                }
            }

            /// The operations of the route, one per method it answers.
            pub const fn operations(self) -> &'static [Operation] {
                match self {
                    $(Route::$route => &[$(Operation {
                        method: Method::$method,
                        id: $id,
                        summary: $summary,
                    },)+],)*
                }
            }
        }
    };
}

routes! {
    /// Liveness: `pong`.
    Ping => "/ping": [(Get, "ping", "Liveness")],
    /// The host's identity: the audience owners sign for.
    Host => "/host": [(Get, "host", "The host's audience and attestation provider")],
    /// The OpenAPI document.
    OpenApi => "/openapi.json": [(Get, "openapi", "This document")],
    /// Prometheus metrics.
    Metrics => "/metrics": [(Get, "metrics", "Prometheus metrics")],
    /// Opens a session.
    CreateKeypair => "/encrypt/create_keypair": [(Post, "createKeypair", "Open a session")],
    /// Opens a session bound to the host's attested key.
    CreateVerifiableKeypair => "/verifiable/encrypt/create_keypair": [
        (Post, "createVerifiableKeypair", "Open a verifiable session"),
    ],
    /// Runs a component.
    ExecuteWasm => "/test/execute/wasm": [(Post, "executeWasm", "Run a component")],
    /// Runs a component with a signed receipt.
    ExecuteWasmVerifiable => "/verifiable/execute/wasm": [
        (Post, "executeWasmVerifiable", "Run a component with a signed receipt"),
    ],
    /// Runs a component, paid (x402).
    ExecuteWasmPaid => "/x402_execute/test/wasm": [
        (Post, "executeWasmPaid", "Run a component, paid (x402)"),
    ],
    /// Runs a component with a signed receipt, paid (x402).
    ExecuteWasmVerifiablePaid => "/x402_execute/verifiable/wasm": [
        (Post, "executeWasmVerifiablePaid", "Run a component with a signed receipt, paid (x402)"),
    ],
    /// Runs a Python script.
    ExecutePython => "/test/policy/unsafe/python": [
        (Post, "executePython", "Run a Python script"),
    ],
    /// Runs a Python script with a signed receipt.
    ExecutePythonVerifiable => "/test/policy/unsafe/python/attest": [
        (Post, "executePythonVerifiable", "Run a Python script with a signed receipt"),
    ],
    /// Runs a Python script, paid (x402).
    ExecutePythonPaid => "/x402_policy/unsafe/python": [
        (Post, "executePythonPaid", "Run a Python script, paid (x402)"),
    ],
    /// The host's attested signing key and its evidence.
    Attestation => "/attestation": [(Get, "attestation", "The host's attested key")],
    /// The host's signature over this TLS connection's exporter value and the client's nonce
    /// (`?nonce=HEX`): the channel binding of `crate::tls`.
    AttestationChannel => "/attestation/channel": [
        (Get, "attestationChannel", "Bind this TLS connection to the host's attested key"),
    ],
    /// MCP (Model Context Protocol, Streamable HTTP): deployed handler agents as tools.
    Mcp => "/mcp": [(Post, "mcp", "MCP: deployed agents as tools (JSON-RPC)")],
    /// The host's A2A agent card: every public handler and CLI agent as a skill.
    HostAgentCard => "/.well-known/agent-card.json": [
        (Get, "hostAgentCard", "A2A: the host's agent card"),
    ],
    /// A2A JSON-RPC (1.0 and 0.3) for any skill, named in the message's metadata.
    A2a => "/a2a": [(Post, "a2a", "A2A: JSON-RPC endpoint for every skill")],
    /// Assist TEE's environments: set one up (a JavaScript/TypeScript agent).
    EnvironmentSetup => "/environments/setup": [
        (Post, "setupEnvironment", "Assist: set up an environment"),
    ],
    /// Assist TEE's environments: list them, newest first.
    Environments => "/environments": [(Get, "listEnvironments", "Assist: list environments")],
    /// Assist TEE's environments: delete one.
    Environment => "/environments/{id}": [
        (Delete, "deleteEnvironment", "Assist: delete an environment"),
    ],
    /// Assist TEE's environments: run its handler once.
    EnvironmentExecute => "/environments/{id}/execute": [
        (Post, "executeEnvironment", "Assist: execute in an environment"),
    ],
    /// Deploys an agent.
    DeployAgent => "/agent/deploy": [(Post, "deployAgent", "Deploy an agent")],
    /// Lists agents.
    Agents => "/agents": [(Get, "listAgents", "List agents")],
    /// One agent: show or delete it.
    Agent => "/agents/{name}": [
        (Get, "getAgent", "Show an agent"),
        (Delete, "deleteAgent", "Delete an agent"),
    ],
    /// An HTTP agent's root path.
    AgentRoot => "/agents/{name}/": [
        (Get, "getHttpAgentRoot", "HTTP agent: root (GET)"),
        (Post, "postHttpAgentRoot", "HTTP agent: root (POST)"),
        (Put, "putHttpAgentRoot", "HTTP agent: root (PUT)"),
        (Delete, "deleteHttpAgentRoot", "HTTP agent: root (DELETE)"),
        (Patch, "patchHttpAgentRoot", "HTTP agent: root (PATCH)"),
    ],
    /// Invokes a handler or CLI agent (`POST`); an HTTP agent's `/invoke` path otherwise.
    AgentInvoke => "/agents/{name}/invoke": [
        (Post, "invokeAgent", "Invoke a handler or CLI agent"),
        (Get, "getAgentInvokePath", "HTTP agent: /invoke (GET)"),
        (Put, "putAgentInvokePath", "HTTP agent: /invoke (PUT)"),
        (Delete, "deleteAgentInvokePath", "HTTP agent: /invoke (DELETE)"),
        (Patch, "patchAgentInvokePath", "HTTP agent: /invoke (PATCH)"),
    ],
    /// An agent's A2A card (`GET`); an HTTP agent's `/.well-known/agent-card.json` path
    /// otherwise.
    AgentCard => "/agents/{name}/.well-known/agent-card.json": [
        (Get, "agentCard", "A2A: an agent's card"),
        (Post, "postAgentCardPath", "HTTP agent: /.well-known/agent-card.json (POST)"),
        (Put, "putAgentCardPath", "HTTP agent: /.well-known/agent-card.json (PUT)"),
        (Delete, "deleteAgentCardPath", "HTTP agent: /.well-known/agent-card.json (DELETE)"),
        (Patch, "patchAgentCardPath", "HTTP agent: /.well-known/agent-card.json (PATCH)"),
    ],
    /// An agent's A2A JSON-RPC endpoint (`POST`); an HTTP agent's `/a2a` path otherwise.
    AgentA2a => "/agents/{name}/a2a": [
        (Post, "agentA2a", "A2A: an agent's JSON-RPC endpoint"),
        (Get, "getAgentA2aPath", "HTTP agent: /a2a (GET)"),
        (Put, "putAgentA2aPath", "HTTP agent: /a2a (PUT)"),
        (Delete, "deleteAgentA2aPath", "HTTP agent: /a2a (DELETE)"),
        (Patch, "patchAgentA2aPath", "HTTP agent: /a2a (PATCH)"),
    ],
    /// An agent's logs (`GET`); an HTTP agent's `/logs` path otherwise.
    AgentLogs => "/agents/{name}/logs": [
        (Get, "agentLogs", "Read an agent's logs"),
        (Post, "postAgentLogsPath", "HTTP agent: /logs (POST)"),
        (Put, "putAgentLogsPath", "HTTP agent: /logs (PUT)"),
        (Delete, "deleteAgentLogsPath", "HTTP agent: /logs (DELETE)"),
        (Patch, "patchAgentLogsPath", "HTTP agent: /logs (PATCH)"),
    ],
    /// An agent's egress grants: read (`GET`) and replace (`PUT`) by the owner; an HTTP
    /// agent's `/grants` path otherwise.
    AgentGrants => "/agents/{name}/grants": [
        (Get, "agentGrants", "Read an agent's grants"),
        (Put, "putAgentGrants", "Replace an agent's grants"),
        (Post, "postAgentGrantsPath", "HTTP agent: /grants (POST)"),
        (Delete, "deleteAgentGrantsPath", "HTTP agent: /grants (DELETE)"),
        (Patch, "patchAgentGrantsPath", "HTTP agent: /grants (PATCH)"),
    ],
    /// An agent's outgoing calls and payments (`GET`, owner); an HTTP agent's `/calls` path
    /// otherwise.
    AgentCalls => "/agents/{name}/calls": [
        (Get, "agentCalls", "List an agent's outgoing calls"),
        (Post, "postAgentCallsPath", "HTTP agent: /calls (POST)"),
        (Put, "putAgentCallsPath", "HTTP agent: /calls (PUT)"),
        (Delete, "deleteAgentCallsPath", "HTTP agent: /calls (DELETE)"),
        (Patch, "patchAgentCallsPath", "HTTP agent: /calls (PATCH)"),
    ],
    /// An agent's wallet: read (`GET`) and attach (`PUT`) by the owner; an HTTP agent's
    /// `/wallet` path otherwise.
    AgentWallet => "/agents/{name}/wallet": [
        (Get, "agentWallet", "Read an agent's wallet"),
        (Put, "putAgentWallet", "Attach an agent's wallet"),
        (Post, "postAgentWalletPath", "HTTP agent: /wallet (POST)"),
        (Delete, "deleteAgentWalletPath", "HTTP agent: /wallet (DELETE)"),
        (Patch, "patchAgentWalletPath", "HTTP agent: /wallet (PATCH)"),
    ],
    /// An agent's configuration (`wasi:config`): set (`PUT`) and read back as names, versions
    /// and hashes (`GET`) by the owner; an HTTP agent's `/config` path otherwise.
    AgentConfig => "/agents/{name}/config": [
        (Get, "agentConfig", "Read an agent's configuration names"),
        (Put, "putAgentConfig", "Change an agent's configuration"),
        (Post, "postAgentConfigPath", "HTTP agent: /config (POST)"),
        (Delete, "deleteAgentConfigPath", "HTTP agent: /config (DELETE)"),
        (Patch, "patchAgentConfigPath", "HTTP agent: /config (PATCH)"),
    ],
    /// An agent's key-value state (`wasi:keyvalue`): wiped by the owner (`DELETE`); an HTTP
    /// agent's `/state` path otherwise.
    AgentState => "/agents/{name}/state": [
        (Get, "getAgentStatePath", "HTTP agent: /state (GET)"),
        (Post, "postAgentStatePath", "HTTP agent: /state (POST)"),
        (Put, "putAgentStatePath", "HTTP agent: /state (PUT)"),
        (Delete, "wipeAgentState", "Wipe an agent's state"),
        (Patch, "patchAgentStatePath", "HTTP agent: /state (PATCH)"),
    ],
    /// An agent's key-value state exported, sealed to the owner's session (`POST`, owner); an
    /// HTTP agent's `/state/export` path otherwise.
    AgentStateExport => "/agents/{name}/state/export": [
        (Get, "getAgentStateExportPath", "HTTP agent: /state/export (GET)"),
        (Post, "exportAgentState", "Export an agent's state"),
        (Put, "putAgentStateExportPath", "HTTP agent: /state/export (PUT)"),
        (Delete, "deleteAgentStateExportPath", "HTTP agent: /state/export (DELETE)"),
        (Patch, "patchAgentStateExportPath", "HTTP agent: /state/export (PATCH)"),
    ],
    /// Key-value state imported into an agent, sealed to the owner's session (`POST`, owner);
    /// an HTTP agent's `/state/import` path otherwise.
    AgentStateImport => "/agents/{name}/state/import": [
        (Get, "getAgentStateImportPath", "HTTP agent: /state/import (GET)"),
        (Post, "importAgentState", "Import state into an agent"),
        (Put, "putAgentStateImportPath", "HTTP agent: /state/import (PUT)"),
        (Delete, "deleteAgentStateImportPath", "HTTP agent: /state/import (DELETE)"),
        (Patch, "patchAgentStateImportPath", "HTTP agent: /state/import (PATCH)"),
    ],
    /// Any other path of an HTTP agent.
    AgentPath => "/agents/{name}/{*rest}": [
        (Get, "getHttpAgentPath", "HTTP agent: any path (GET)"),
        (Post, "postHttpAgentPath", "HTTP agent: any path (POST)"),
        (Put, "putHttpAgentPath", "HTTP agent: any path (PUT)"),
        (Delete, "deleteHttpAgentPath", "HTTP agent: any path (DELETE)"),
        (Patch, "patchHttpAgentPath", "HTTP agent: any path (PATCH)"),
    ],
    /// Searches agents.
    Search => "/search": [(Post, "searchAgents", "Search agents")],
    /// x402 discovery (the `bazaar` extension's listing): the paid resources of this host.
    DiscoveryResources => "/discovery/resources": [
        (Get, "listDiscoveryResources", "x402 discovery: the paid resources (bazaar)")
    ],
    /// x402 discovery: the paid agents matching a query, best first.
    DiscoverySearch => "/discovery/search": [
        (Get, "searchDiscoveryResources", "x402 discovery: search the paid agents")
    ],
    /// The audit listing of executions.
    Executions => "/executions": [(Get, "listExecutions", "Audit listing")],
    /// One execution record.
    Execution => "/executions/{id}": [(Get, "getExecution", "One execution record")],
}

impl Route {
    /// The path template in OpenAPI's syntax (`{*rest}` becomes `{rest}`).
    pub fn openapi_path(self) -> String {
        self.path().replace("{*", "{")
    }

    /// The names of the path parameters, in order (`["name", "rest"]`).
    pub fn parameters(self) -> impl Iterator<Item = &'static str> {
        self.path().split('{').skip(1).filter_map(|s| {
            s.split_once('}')
                .map(|(name, _)| name.trim_start_matches('*'))
        })
    }

    /// The operation of `method` on this route, if it answers `method`.
    pub fn operation(self, method: Method) -> Option<&'static Operation> {
        self.operations().iter().find(|o| o.method == method)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn paths_and_operation_ids_are_unique_and_well_formed() {
        let paths: BTreeSet<&str> = Route::ALL.iter().map(|r| r.path()).collect();
        assert_eq!(paths.len(), Route::ALL.len(), "a path twice");
        let mut ids = BTreeSet::new();
        for &route in Route::ALL {
            assert!(route.path().starts_with('/'), "{route:?}");
            let methods: BTreeSet<Method> = route.operations().iter().map(|o| o.method).collect();
            assert_eq!(methods.len(), route.operations().len(), "{route:?}");
            for op in route.operations() {
                assert!(ids.insert(op.id), "operationId {} twice", op.id);
                assert!(!op.summary.is_empty(), "{}", op.id);
                assert_eq!(route.operation(op.method), Some(op));
            }
        }
    }

    #[test]
    fn paths_in_both_syntaxes() {
        assert_eq!(Route::AgentPath.openapi_path(), "/agents/{name}/{rest}");
        assert_eq!(
            Route::AgentPath.parameters().collect::<Vec<_>>(),
            ["name", "rest"]
        );
        assert_eq!(Route::Ping.parameters().count(), 0);
        assert_eq!(Route::Agent.operation(Method::Post), None);
        assert_eq!(Method::Patch.as_str(), "PATCH");
        assert_eq!(Method::Patch.openapi_key(), "patch");
    }
}
