//! Configuration of the plug-in components: the operator's policy and the Python runtime.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The componentized CPython (policy and Python runtime) built into the binary.
pub const DEFAULT_POLICY_PYTHON: &str = "builtin:policy-python";

/// The operator's policy component.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Consult the policy before any code runs. When false every request is admitted (and
    /// receipts record that no policy was consulted). Default true.
    pub enabled: bool,
    /// The policy component: any component exporting `hypervisor:host/policy`, a file or
    /// `builtin:policy-python` (the default: the componentized CPython embedded in the binary).
    pub component: PathBuf,
    /// The rules document given to the component's `configure`: a TOML or JSON file (by
    /// extension). Unset: an empty document (the component's own defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<PathBuf>,
    /// Live policy instances kept warm; requests beyond this wait for one. Default 4.
    pub instances: usize,
    /// Time allowed for one decision, milliseconds (wall clock: generous, since a decision
    /// takes microseconds and a loaded machine may deschedule it); a slower policy refuses the
    /// request (fail closed) and its instance is replaced. Default 1000.
    pub time_ms: u64,
    /// Linear memory allowed per policy instance, bytes. Default 256 MiB.
    pub memory_bytes: u64,
    /// Most decisions kept for reuse, when the policy marks them reusable
    /// (`verdict.reuse-ms`); 0 asks the policy on every request. Default 4096.
    pub reuse_entries: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            component: PathBuf::from(DEFAULT_POLICY_PYTHON),
            rules: None,
            instances: 4,
            time_ms: 1000,
            memory_bytes: 256 << 20,
            reuse_entries: 4096,
        }
    }
}

/// The runtime of the Python routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PythonConfig {
    /// Serve the Python routes. When false they answer 503 `python_unavailable`. Default true.
    pub enabled: bool,
    /// The runtime component: any component exporting `hypervisor:host/python`, a file or
    /// `builtin:policy-python` (the default).
    pub component: PathBuf,
}

impl Default for PythonConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            component: PathBuf::from(DEFAULT_POLICY_PYTHON),
        }
    }
}

/// The JavaScript runtime built into the binary.
pub const DEFAULT_JS_RUNTIME: &str = "builtin:js-runtime";

/// StarlingMonkey's engine built into the binary, spliced for the handler world.
pub const DEFAULT_STARLINGMONKEY: &str = "builtin:starlingmonkey";

/// JavaScript and TypeScript agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JavascriptConfig {
    /// Accept JavaScript/TypeScript agents. When false, deploying one is refused. Default true.
    pub enabled: bool,
    /// The runtime component (world `hypervisor:host/js-runtime`), a file or
    /// `builtin:js-runtime` (the default).
    pub component: PathBuf,
    /// Serve Assist TEE's environments API (`/environments/*`, docs/PROTOCOL.md §25) over
    /// JavaScript agents. Default true.
    pub environments: bool,
    /// When set, the `/environments/*` routes answer only requests with
    /// `Authorization: Bearer <token>` (Assist's `BEARER_TOKEN`); others get `401`. At least 16
    /// characters. Default: none (open; the host warns at start-up). Never logged. Also
    /// `HYPERVISOR_ENVIRONMENTS_TOKEN`.
    pub environments_token: Option<super::OperatorToken>,
    /// StarlingMonkey's engine for agents deployed with `"engine": "starlingmonkey"`: the
    /// spliced core module `components/starlingmonkey/splice.mjs` makes, a file or
    /// `builtin:starlingmonkey` (the default). `""` refuses that engine.
    pub starlingmonkey: PathBuf,
    /// The most bytes StarlingMonkey's compiled functions may keep in memory for a snapshot
    /// that cannot run over the engine's shared code and is compiled whole (as
    /// `engine.js_function_cache_bytes` does for the default engine: none the host made
    /// itself, so the cache stays empty on a healthy host). Default 64 MiB.
    pub starlingmonkey_function_cache_bytes: usize,
}

impl Default for JavascriptConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            component: PathBuf::from(DEFAULT_JS_RUNTIME),
            environments: true,
            environments_token: None,
            starlingmonkey: PathBuf::from(DEFAULT_STARLINGMONKEY),
            starlingmonkey_function_cache_bytes: 64 << 20,
        }
    }
}

/// The x402 payments component built into the binary.
pub const DEFAULT_PAYMENTS: &str = "builtin:payments";

/// How verified payments are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettlementMode {
    /// Payments are verified offline and recorded; the operator settles them later.
    VerifyOnly,
    /// Payments are verified offline, then by an x402 facilitator (`/verify`), recorded, and
    /// settled on chain by the facilitator (`/settle`) after the work ran. The payments
    /// component may reach the facilitator's origin and nothing else.
    Facilitator,
}

impl SettlementMode {
    /// The name used in configuration and in the component's settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyOnly => "verify-only",
            Self::Facilitator => "facilitator",
        }
    }
}

/// Where a payment is judged in facilitator mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyAt {
    /// The component's offline checks, then the facilitator's `/verify` (it also checks the
    /// payer's balance and the nonce on chain) before the work runs: one round trip per
    /// request.
    Facilitator,
    /// The component's offline checks only (signature, amount, recipient, time window, replay):
    /// each signature is verified once here, and the facilitator judges the payment when it
    /// settles. A payer whose balance is short is then found at settlement: before the
    /// response, the result is withheld (`402 settlement_failed`); after it (see
    /// `settle_after_response_up_to`), the run went unpaid.
    Local,
}

/// A price: what one paid request costs (x402 "exact" scheme, an EIP-3009 token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceConfig {
    /// Amount in the token's atomic units, decimal string. Default "10000" (0.01 USDC).
    pub amount: String,
    /// Token contract. Default: USDC on Base Sepolia.
    pub asset: String,
    /// Network, CAIP-2. Default `eip155:84532` (Base Sepolia).
    pub network: String,
    /// Recipient address. No default: paid routes need the operator's address.
    pub pay_to: String,
    /// The token's EIP-712 domain name. Default "USDC" (Base Sepolia USDC).
    pub eip712_name: String,
    /// The token's EIP-712 domain version. Default "2".
    pub eip712_version: String,
    /// Seconds a payer's authorization may take. Default 60.
    pub max_timeout_seconds: u32,
}

impl Default for PriceConfig {
    fn default() -> Self {
        Self {
            amount: "10000".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            network: "eip155:84532".into(),
            pay_to: String::new(),
            eip712_name: "USDC".into(),
            eip712_version: "2".into(),
            max_timeout_seconds: 60,
        }
    }
}

/// x402 payments on the paid routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Serve the paid routes. When false they answer 503 `payments_unavailable`. Default
    /// false (a price needs the operator's `pay_to` address).
    pub enabled: bool,
    /// The payments component: any component exporting `hypervisor:host/payments`, a file or
    /// `builtin:payments` (the default).
    pub component: PathBuf,
    /// Settlement mode. Default `verify-only`.
    pub mode: SettlementMode,
    /// The x402 facilitator's base URL (`/verify` and `/settle` are appended), required in
    /// `facilitator` mode. Its origin is the only one the payments component may reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator_url: Option<String>,
    /// Wall-clock limit of one payments call, milliseconds (a facilitator's settlement waits for
    /// the transaction to be mined). Default 30000.
    pub call_timeout_ms: u64,
    /// The public base URL of this host, used in the resource URLs of challenges. Default
    /// `http://<listen>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// The price of every paid route.
    pub price: PriceConfig,
    /// Per-route amounts (route path → atomic units), overriding `price.amount`.
    pub amounts: std::collections::BTreeMap<String, String>,
    /// Facilitator mode: where payments are judged before the work runs. Default
    /// `facilitator`.
    pub verify: VerifyAt,
    /// Configured payments-component instances kept between calls (0: a fresh instance for
    /// every call). Default 4.
    pub warm_instances: usize,
    /// Settle x402 v2 payments of at most this amount (atomic units) after the response
    /// instead of before it (PROTOCOL.md §6b). Facilitator mode: the answer does not wait for
    /// the facilitator (or the chain), at the risk that a settlement refused afterwards leaves
    /// that run unpaid. Verify-only mode, for payments reserved before their run (agents,
    /// identified payments, or all with `reserve_before_run`): the answer does not wait for the
    /// ledger's `settled` mark (the reservation is durable before the work), at the risk that a
    /// host dying before the mark is durable releases the payment, leaving that run unpaid; a
    /// paid code route's payment recorded after its run (the default) is not affected. v1
    /// payments, larger amounts, and runs beyond `deferred_settlements_max` settle before the
    /// response. Default: none (every payment settles before its response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_after_response_up_to: Option<String>,
    /// Settlements after the response allowed in flight at once; past it a payment settles
    /// before its response (the backlog behind a slow facilitator stays bounded). Default 256.
    pub deferred_settlements_max: usize,
    /// x402's `payment-identifier` extension: idempotent paid requests (PROTOCOL.md §6b).
    pub payment_identifier: super::IdentifierConfig,
    /// The address that settles metered (x402 `upto`) payments: payers name it in their
    /// Permit2 authorizations (`witness.facilitator`), and only it can settle them. In
    /// facilitator mode, the facilitator's (its `/supported` lists it as
    /// `extra.facilitatorAddress`); in verify-only mode, the operator's settling account.
    /// Without it, agents with a tariff are refused at deployment. Default: none.
    pub facilitator_address: Option<String>,
    /// Verify-only mode, on the paid code routes (`/x402_execute/…`, `/x402_policy/…`), whose
    /// runs have no effect outside their answer: reserve the payment durably before the run
    /// and mark it settled after it (two ledger writes), as every other paid run does, instead
    /// of recording it settled once, after the run and before the answer. Default false:
    /// recorded once (PROTOCOL.md §6b). True refuses a payment presented on two replicas at
    /// once before either runs, rather than running both and answering one.
    pub reserve_before_run: bool,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            component: PathBuf::from(DEFAULT_PAYMENTS),
            mode: SettlementMode::VerifyOnly,
            facilitator_url: None,
            call_timeout_ms: 30_000,
            public_url: None,
            price: PriceConfig::default(),
            amounts: std::collections::BTreeMap::new(),
            verify: VerifyAt::Facilitator,
            warm_instances: 4,
            settle_after_response_up_to: None,
            deferred_settlements_max: 256,
            payment_identifier: super::IdentifierConfig::default(),
            facilitator_address: None,
            reserve_before_run: false,
        }
    }
}
