//! A policy component for the fail-closed tests: it traps when a request carries exactly one
//! argument, never answers when it carries two, and allows everything else. The host must
//! refuse the first two kinds (503 `policy_unavailable`), replace the broken instances, and keep
//! serving the third.

wit_bindgen::generate!({
    path: "../../wit",
    world: "policy-component",
});

use exports::hypervisor::host::policy::{Decision, Guest, Limits, RequestInfo, Verdict};

struct Misbehaving;

impl Guest for Misbehaving {
    fn configure(_rules: String) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(request: RequestInfo) -> Verdict {
        match request.argument_count {
            1 => panic!("policy trap requested"),
            2 => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            _ => Verdict {
                decision: Decision::Allow(Limits {
                    time_ms: None,
                    memory_bytes: None,
                    fuel: None,
                }),
                // Never reused: every request must reach the instance.
                reuse_ms: 0,
            },
        }
    }
}

export!(Misbehaving);
