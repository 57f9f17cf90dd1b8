//! The one writer of stdout, and the messages the connector itself writes there. Every Airbyte message is
//! written whole, under the lock, so LOG lines from other threads never land inside a STATE line.

use super::message::now_ms;
use crate::error::FailureType;
use serde_json::{json, Value};
use std::io::Write;

pub fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

pub fn spec_message(spec: &Value) -> String {
    json!({"type": "SPEC", "spec": spec}).to_string()
}

/// `SUCCEEDED` (with what the user should still know, if anything) or `FAILED` with the reason.
pub fn connection_status(result: Result<Vec<String>, String>) -> String {
    let status = match result {
        Ok(caveats) if caveats.is_empty() => json!({"status": "SUCCEEDED"}),
        Ok(caveats) => json!({"status": "SUCCEEDED", "message": caveats.join("; ")}),
        Err(message) => json!({"status": "FAILED", "message": message}),
    };
    json!({"type": "CONNECTION_STATUS", "connectionStatus": status}).to_string()
}

pub fn trace_error(failure_type: FailureType, message: &str) -> String {
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_ms(), "error": {
        "message": message,
        "internal_message": message,
        "failure_type": failure_type,
    }}})
    .to_string()
}

pub fn log(level: &str, message: &str) -> String {
    json!({"type": "LOG", "log": {"level": level, "message": message}}).to_string()
}

pub fn destination_catalog(operations: Vec<Value>) -> String {
    json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": operations}}).to_string()
}
