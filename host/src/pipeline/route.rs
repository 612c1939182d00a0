//! The code routes: which one is running, whether it signs a receipt, whether it is paid.

/// Which route is running code, whether it must produce a receipt, and whether it is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKind {
    /// The route path, bound into the receipt and shown to the policy.
    pub path: &'static str,
    /// Verifiable routes need a verifiable session and return a signed receipt.
    pub verifiable: bool,
    /// Paid routes need an x402 payment.
    pub paid: bool,
}

impl RouteKind {
    /// `/test/execute/wasm`.
    pub const TEST: Self = Self {
        path: "/test/execute/wasm",
        verifiable: false,
        paid: false,
    };
    /// `/verifiable/execute/wasm`.
    pub const VERIFIABLE: Self = Self {
        path: "/verifiable/execute/wasm",
        verifiable: true,
        paid: false,
    };
    /// `/test/policy/unsafe/python`.
    pub const PYTHON: Self = Self {
        path: "/test/policy/unsafe/python",
        verifiable: false,
        paid: false,
    };
    /// `/x402_execute/test/wasm`: `/test/execute/wasm`, paid.
    pub const PAID_TEST: Self = Self {
        path: "/x402_execute/test/wasm",
        verifiable: false,
        paid: true,
    };
    /// `/x402_execute/verifiable/wasm`: `/verifiable/execute/wasm`, paid.
    pub const PAID_VERIFIABLE: Self = Self {
        path: "/x402_execute/verifiable/wasm",
        verifiable: true,
        paid: true,
    };
    /// `/x402_policy/unsafe/python`: `/test/policy/unsafe/python`, paid.
    pub const PAID_PYTHON: Self = Self {
        path: "/x402_policy/unsafe/python",
        verifiable: false,
        paid: true,
    };
    /// `/test/policy/unsafe/python/attest`.
    pub const PYTHON_ATTEST: Self = Self {
        path: "/test/policy/unsafe/python/attest",
        verifiable: true,
        paid: false,
    };
}
