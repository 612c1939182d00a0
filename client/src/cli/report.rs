//! Printing a finished execution (its output, or a JSON document with `--json`) and choosing the
//! process's exit code from how the guest ended.

use std::io::Write;
use std::process::ExitCode;

use hypervisor_client::Execution;
use hypervisor_protocol::wire::ExitStatus;

/// Prints an execution and chooses the exit code: the guest's own, or 124 (time limit),
/// 125 (trap), 137 (memory), 152 (fuel).
pub fn report(run: &Execution, session: uuid::Uuid, json: bool) -> anyhow::Result<ExitCode> {
    let stdout = run.stdout()?;
    let stderr = run.stderr()?;
    let r = &run.result;
    let code = r.status.process_code(r.exit_code);
    if json {
        let doc = serde_json::json!({
            "session_id": session,
            "status": r.status,
            "exit_code": r.exit_code,
            "stdout": String::from_utf8_lossy(&stdout),
            "stderr": String::from_utf8_lossy(&stderr),
            "stdout_truncated": r.stdout_truncated,
            "stderr_truncated": r.stderr_truncated,
            "duration_us": r.duration_us,
            "trap": r.trap,
            "returned": r.returned,
            "exception": r.exception,
            "error": run.stopped.as_ref().map(|e| serde_json::json!({"code": e.code, "message": e.message})),
            "result_commitment": hex::encode(run.commitment),
            "commitment_verified": true,
            "receipt": run.receipt,
            "settlement": run.settlement,
            "execution_id": run.execution_id,
        });
        println!("{doc}");
    } else {
        std::io::stdout().write_all(&stdout)?;
        if let Some(value) = &r.returned {
            println!("{value}");
        }
        std::io::stderr().write_all(&stderr)?;
        let mut summary = match r.status {
            ExitStatus::Exited => format!("exit {}", r.exit_code.unwrap_or(0)),
            other => format!(
                "{} ({})",
                serde_json::to_value(other)?.as_str().unwrap_or("stopped"),
                run.stopped
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("")
            ),
        };
        if r.stdout_truncated || r.stderr_truncated {
            summary.push_str(", output truncated");
        }
        eprintln!(
            "[{summary} · {:.1} ms · commitment {} verified{}]",
            r.duration_us as f64 / 1000.0,
            &hex::encode(run.commitment)[..16],
            run.execution_id
                .as_deref()
                .map_or_else(String::new, |id| format!(" · execution {id}"))
        );
        if let Some(trap) = &r.trap {
            eprintln!("trap: {trap}");
        }
        if let Some(s) = &run.settlement {
            eprintln!(
                "[payment settled: success={} payer={} transaction={}]",
                s["success"], s["payer"], s["transaction"]
            );
        }
        if let Some(e) = &r.exception {
            eprint!("{}", e.traceback);
        }
    }
    Ok(ExitCode::from(code))
}
