//! The Python routes: `POST /test/policy/unsafe/python` and `.../attest`. The client's script
//! runs in a fresh instance of the Python runtime component, never in the policy's instances.

use hypervisor_protocol::wire::{PythonRequest, ScriptException};

use super::admission::{Admission, Admitted};
use super::execute::result_document;
use super::request::{ExecuteOutcome, RouteKind, Sealed};
use super::{Pipeline, ProgramKind};
use crate::error::ApiError;
use crate::plugins::payments::PaymentHeader;

impl Pipeline {
    /// Runs an encrypted Python script. A script that ends (normally, through `sys.exit`, or
    /// with an exception) is a success whose encrypted result says how; one stopped by its time
    /// or memory limit is [`ApiError::GuestStopped`].
    ///
    /// # Errors
    /// As [`Pipeline::execute_wasm`], plus [`ApiError::PythonUnavailable`] and
    /// [`ApiError::InvalidScript`] for a source that is not UTF-8.
    pub async fn execute_python(
        &self,
        req: PythonRequest,
        route: RouteKind,
        payment: Option<PaymentHeader>,
    ) -> Result<ExecuteOutcome, ApiError> {
        let runtime = self.python.as_ref().ok_or(ApiError::PythonUnavailable)?;
        // 0–4. payment, session, open, limits, the script's own check, admission, payment
        //      recorded
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            paid,
        } = self
            .admit_request(
                Sealed::python(&req),
                route,
                ProgramKind::PythonScript,
                payment,
                |opened| {
                    std::str::from_utf8(&opened.program)
                        .map(|_| ())
                        .map_err(|_| {
                            ApiError::InvalidScript("the script is not valid UTF-8".into())
                        })
                },
            )
            .await?;
        drop(req);
        let source = std::str::from_utf8(&opened.program)
            .map_err(|_| ApiError::InvalidScript("the script is not valid UTF-8".into()))?;

        // 5–6. a fresh runtime instance runs the script
        let run = runtime
            .run(source, &opened.args, opened.stdin.clone(), limits)
            .await
            .map_err(ApiError::from);
        let run = self.or_release(paid.as_ref(), run)?;

        // 7–8. seal, receipt
        let mut doc = result_document(&run.outcome, &limits);
        doc.returned = run
            .returned
            .map(|json| serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)));
        doc.exception = run.exception.map(|e| ScriptException {
            kind: e.kind,
            message: e.message,
            traceback: e.traceback,
        });
        self.finish(&opened, route, &doc, policy, paid.as_ref())
            .await
    }
}
