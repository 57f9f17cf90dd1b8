//! Speed Mode's Protobuf messages (`proto/`, compiled at build time) and how a Protobuf record becomes the record
//! the JSON path reads: its positional values rendered as the JSON object a JSONL source would have written, so
//! every value format, key, header and timestamp works on it unchanged.
//!
//! Values take their names from the stream's JSON schema: its top-level properties sorted by name (by UTF-16 code
//! unit, as Kotlin sorts them); a missing trailing value is null, values beyond the schema are ignored. A value
//! that cannot be rendered (a NaN, a date out of range, bytes that are not JSON, a string that is not UTF-8) is
//! written as null and reported as Airbyte reports it: a `NULLED` change with reason
//! `DESTINATION_SERIALIZATION_ERROR` in the record's `meta`.

use super::scan::Scanner;
use chrono::{DateTime, Duration, NaiveDate, Timelike};
use serde_json::Value;
use std::fmt::Write;

/// The generated types.
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/io.airbyte.protocol.protobuf.rs"));
}

use wire::airbyte_value_protobuf::Value as V;

/// The names of a stream's values, in the order Protobuf records carry them.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    names: Vec<String>,
    /// Each name as the key of a JSON object, `"name":`, written once for every record.
    keys: Vec<String>,
}

impl Fields {
    /// From the stream's JSON schema: no top-level `properties`, no values.
    pub fn of(schema: &Value) -> Fields {
        let mut names: Vec<String> =
            schema["properties"].as_object().map_or_else(Vec::new, |p| p.keys().cloned().collect());
        names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        let key = |name: &String| {
            let mut key = String::new();
            json_string(&mut key, name);
            key + ":"
        };
        Fields { keys: names.iter().map(key).collect(), names }
    }
}

/// Appends the record's data, a JSON object, to `out`; the fields written as null because their value could not
/// be rendered go to `nulled`.
pub fn render_data(fields: &Fields, values: &[wire::AirbyteValueProtobuf], out: &mut String, nulled: &mut Vec<String>) {
    out.push('{');
    for (i, (name, key)) in fields.names.iter().zip(&fields.keys).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        let mark = out.len();
        let rendered = match values.get(i) {
            Some(value) if !value.is_null => value.value.as_ref().is_none_or(|v| render(v, out).is_some()),
            _ => true,
        };
        if !rendered {
            out.truncate(mark);
            nulled.push(name.clone());
        }
        if out.len() == mark {
            out.push_str("null");
        }
    }
    out.push('}');
}

/// Appends the record's `meta` (`{"changes":[…]}`) to `out` when it has changes: the source's, then `nulled`.
/// Returns whether it wrote one.
pub fn render_meta(meta: Option<&wire::AirbyteRecordMessageMeta>, nulled: &[String], out: &mut String) -> bool {
    let source = meta.map_or(&[][..], |m| &m.changes[..]);
    if source.is_empty() && nulled.is_empty() {
        return false;
    }
    out.push_str("{\"changes\":[");
    let change_name = |c: i32| wire::AirbyteRecordChangeType::try_from(c).map_or("NULLED", |c| c.as_str_name());
    let reason_name =
        |r: i32| wire::AirbyteRecordChangeReasonType::try_from(r).map_or("SOURCE_RETRIEVAL_ERROR", |r| r.as_str_name());
    let ours = nulled.iter().map(|f| (f.as_str(), "NULLED", "DESTINATION_SERIALIZATION_ERROR"));
    let theirs = source.iter().map(|c| (c.field.as_str(), change_name(c.change), reason_name(c.reason)));
    for (i, (field, change, reason)) in theirs.chain(ours).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"field\":");
        json_string(out, field);
        let _ = write!(out, ",\"change\":\"{change}\",\"reason\":\"{reason}\"}}");
    }
    out.push_str("]}");
    true
}

/// One value as JSON; `None` when it cannot be one.
fn render(value: &V, out: &mut String) -> Option<()> {
    match value {
        V::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        V::String(bytes) => json_string(out, utf8(bytes)?),
        V::Integer(n) => out.push_str(itoa::Buffer::new().format(*n)),
        V::BigInteger(text) => out.push_str(&integer(text)?),
        V::Number(n) => write!(out, "{}", serde_json::Number::from_f64(*n)?).ok()?,
        V::BigDecimal(text) => out.push_str(Some(text.trim()).filter(|t| Scanner::is_number(t))?),
        V::Date(days) => quoted(out, date(*days)?),
        V::TimeWithoutTimezone(nanos) => quoted(out, time(*nanos)?),
        V::TimeWithTimezone(t) => quoted(out, format!("{}{}", time(t.nanos_of_day)?, offset(t.offset_seconds)?)),
        V::TimestampWithoutTimezone(t) => {
            quoted(out, format!("{}T{}", date(t.date_days_since_epoch)?, time(t.nanos_of_day)?))
        }
        V::TimestampWithTimezone(t) => {
            let shift = offset(t.offset_seconds)?;
            // The instant is UTC; the offset says which local time to show.
            let at = DateTime::from_timestamp(t.epoch_second, t.nano)?.naive_utc()
                + Duration::seconds(i64::from(t.offset_seconds));
            let nanos = u64::from(at.num_seconds_from_midnight()) * 1_000_000_000 + u64::from(at.nanosecond());
            quoted(out, format!("{}T{}{shift}", at.date().format("%Y-%m-%d"), time(nanos)?))
        }
        V::Json(bytes) => out.push_str(json(bytes)?),
    }
    Some(())
}

/// A value's bytes as text, if they are UTF-8. Most are ASCII, which a word-at-a-time check finds for a fraction of
/// what `str::from_utf8` costs on values this short (measured: 117 instructions a call; the bench's five a record,
/// three strings and two embedded JSON values, 0.7k of the 12.8k per record before this check).
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every byte is below 0x80, and ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// An integer's text, as JSON writes it (no `+`, no leading zeros).
fn integer(text: &str) -> Option<String> {
    let text = text.trim();
    let (sign, digits) = text.strip_prefix('-').map_or(("", text), |d| ("-", d));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.trim_start_matches('0') {
        "" => "0".to_string(),
        significant => format!("{sign}{significant}"),
    })
}

/// Embedded JSON (objects, arrays, unions): kept as written when it is one valid JSON value.
fn json(bytes: &[u8]) -> Option<&str> {
    let text = utf8(bytes)?.trim();
    let mut scanner = Scanner::new(text);
    let valid = match scanner.value() {
        Some(_) => scanner.end().is_some(),
        // Declined (deeper than the scanner goes, or not JSON): serde_json decides.
        None => serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
    };
    valid.then_some(text)
}

fn date(days: i64) -> Option<String> {
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(Duration::try_days(days)?)?;
    Some(date.format("%Y-%m-%d").to_string())
}

/// `HH:MM:SS`, then the fraction without trailing zeros.
fn time(nanos_of_day: u64) -> Option<String> {
    if nanos_of_day >= 86_400 * 1_000_000_000 {
        return None;
    }
    let (seconds, nanos) = (nanos_of_day / 1_000_000_000, nanos_of_day % 1_000_000_000);
    let mut text = format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    Some(text)
}

/// `Z`, `+HH:MM` or `+HH:MM:SS`, as java.time writes offsets.
fn offset(seconds: i32) -> Option<String> {
    if seconds.unsigned_abs() > 18 * 3600 {
        return None;
    }
    if seconds == 0 {
        return Some("Z".into());
    }
    let (sign, s) = (if seconds < 0 { '-' } else { '+' }, seconds.unsigned_abs());
    let mut text = format!("{sign}{:02}:{:02}", s / 3600, s / 60 % 60);
    if s % 60 != 0 {
        let _ = write!(text, ":{:02}", s % 60);
    }
    Some(text)
}

fn quoted(out: &mut String, text: String) {
    out.push('"');
    out.push_str(&text);
    out.push('"');
}

/// A JSON string literal, escaped as serde_json escapes.
pub fn json_string(out: &mut String, text: &str) {
    out.push('"');
    // Most text has nothing to escape: a pass without an early exit (which the compiler vectorizes) finds that.
    if text.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\')) {
        escaped(out, text);
    } else {
        out.push_str(text);
    }
    out.push('"');
}

fn escaped(out: &mut String, text: &str) {
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests;
