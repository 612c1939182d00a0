//! Execution records from the client side (`GET /executions[/{id}]`): each record is shown
//! to the key that ran it and to the owner of the agent that ran, so every read is signed
//! (action `read-executions`, `docs/PROTOCOL.md` §17).

use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::OwnerAction;

use crate::error::server_error;
use crate::{Client, ClientError};

impl Client {
    /// `GET /executions/{id}`: an execution record, read by the key that ran it or the owner
    /// of the agent that ran (signed, action `read-executions`).
    ///
    /// # Errors
    /// Transport or server errors (`404 execution_not_found` also for a record `key` may not
    /// read).
    pub fn execution(
        &self,
        key: &ClientSecret,
        id: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/executions/{id}");
        // The signature names the id in its canonical form, whichever form the path has.
        let name = uuid::Uuid::parse_str(id).map_or_else(|_| id.to_string(), |u| u.to_string());
        let (status, json) =
            self.signed_request("GET", key, OwnerAction::ReadExecutions, &name, &path)?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        Ok(json)
    }

    /// `GET /executions?since_ms=&limit=`: the first `limit` records `key` may read (those it
    /// ran, and those of the agents it owns) started at or after `since_ms`, oldest first. The
    /// answer's `next` (`{since_ms, after}`) is where the following page starts.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn executions(
        &self,
        key: &ClientSecret,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let path = format!("/executions?since_ms={since_ms}&limit={limit}");
        let (status, json) =
            self.signed_request("GET", key, OwnerAction::ReadExecutions, "", &path)?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json["executions"].clone())
            .map_err(|e| ClientError::BadResponse(format!("executions: {e}")))
    }
}
