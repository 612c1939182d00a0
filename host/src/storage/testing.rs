//! Helpers shared by the storage tests (the conformance suite and the backends' own tests) and
//! by tests of what stores through them (the A2A front's running tasks).

use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::a2a::model::{Task, TaskStatus, timestamp};
use hypervisor_protocol::agents::{AgentKind, ChargeRule};
use hypervisor_protocol::wire::Limits;

use super::agents::{AgentCatalog, NewDeployment, OwnerOrder, RegistryError};
use super::tasks::TaskRow;

/// An owner operation signed at `t` with sequence `t`.
pub(super) fn at(t: u64) -> OwnerOrder {
    OwnerOrder {
        signed_at: t,
        sequence: t,
    }
}

/// Deploys a public handler agent through `r`, signed at `order` (and at that time).
pub(super) fn deploy(
    r: &dyn AgentCatalog,
    name: &str,
    owner: &str,
    description: &str,
    tags: &[&str],
    order: OwnerOrder,
) -> Result<u32, RegistryError> {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    r.deploy(&NewDeployment {
        name,
        owner_key: owner,
        description,
        tags: &tags,
        public: true,
        price: None,
        expires_at: None,
        charge: ChargeRule::Success,
        content_type: None,
        grants: &Default::default(),
        schemas: None,
        tariff: None,
        code_hash: hypervisor_protocol::sha256(format!("{name}-{description}").as_bytes()),
        kind: AgentKind::Handler,
        world: AgentKind::Handler.world(),
        size: 10,
        limits: Limits::default(),
        order,
        now: order.signed_at,
    })
}

/// A task `id` of `caller` on agent `echo`, in `state`, created and changed at `at` (Unix ms).
pub(crate) fn task(id: &str, caller: &str, state: TaskState, at: u64) -> TaskRow {
    TaskRow {
        task: Task {
            id: id.into(),
            context_id: "ctx".into(),
            status: TaskStatus {
                state,
                message: None,
                timestamp: timestamp(at),
            },
            artifacts: Vec::new(),
            history: Vec::new(),
            metadata: None,
        },
        agent: "echo".into(),
        caller: caller.into(),
        pending: None,
        created_ms: at,
        updated_ms: at,
    }
}
