//! The Python routes: `POST /test/policy/unsafe/python` and `.../attest`. The client's script
//! runs in a fresh instance of the Python runtime component, never in the policy's instances.

use hypervisor_protocol::wire::{PythonRequest, ScriptException};

use super::admission::{Admission, Admitted};
use super::binary::{BinaryField, Sent};
use super::execute::route_subject;
use super::open::{EncryptedRequest, Program};
use super::route::RouteKind;
use super::seal::{ExecuteOutcome, result_document};
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
        binary: Option<BinaryField>,
        route: RouteKind,
        payment: Option<PaymentHeader>,
    ) -> Result<ExecuteOutcome, ApiError> {
        let runtime = self.python.as_ref().ok_or(ApiError::PythonUnavailable)?;
        // the program: in the JSON body or in a binary part, never in both
        let program = Sent::required("encrypted_python", &req.encrypted_python, binary)?;
        // payment verified, request opened, the script's own check, admission, payment
        // recorded
        let verified = self
            .verify_payment(self.route_charge(route), payment)
            .await?;
        let opened = self.open(
            EncryptedRequest::execution(
                "encrypted_python",
                program,
                &req.encrypted_arguments,
                req.encrypted_stdin.as_deref(),
                &req.public_key,
                req.session_id,
                req.limits.as_ref(),
            ),
            route,
        )?;
        drop(req);
        let Program::Plain { bytes: script, .. } = &opened.program else {
            return Err(ApiError::Internal(
                "a script request without its script".into(),
            ));
        };
        let script = script.clone();
        let source = std::str::from_utf8(&script)
            .map_err(|_| ApiError::InvalidScript("the script is not valid UTF-8".into()))?;
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            reservation,
        } = self
            .admit(
                opened,
                route_subject(route, ProgramKind::PythonScript),
                verified,
            )
            .await?;

        // a fresh runtime instance runs the script (a failure without a result drops, and so
        // releases, the reservation)
        let run = runtime
            .run(source, &opened.args, opened.input.clone(), limits)
            .await?;

        // seal, receipt, record, settle
        let mut doc = result_document(&run.outcome, &limits);
        doc.returned = run
            .returned
            .map(|json| serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)));
        doc.exception = run.exception.map(|e| ScriptException {
            kind: e.kind,
            message: e.message,
            traceback: e.traceback,
        });
        self.finish(&opened, route, &doc, policy, reservation).await
    }
}
