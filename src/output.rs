//! The one writer of stdout. Every Airbyte message is written whole, under the lock, so LOG lines from other
//! threads never land inside a STATE line.

use std::io::Write;

pub fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}
