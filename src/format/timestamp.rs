//! The timestamp of each message (`timestamp` in the config): the producer's clock (Java), the record's
//! `emitted_at`, or a field of the record.

use super::fields::{self, FieldPath};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum TimestampSettings {
    #[default]
    ProduceTime,
    EmittedAt,
    Field {
        field: String,
    },
}

/// How one stream's message timestamps are made.
pub enum Timestamp {
    ProduceTime,
    EmittedAt,
    Field(FieldPath),
}

impl Timestamp {
    pub fn new(settings: &TimestampSettings) -> Result<Timestamp, String> {
        Ok(match settings {
            TimestampSettings::ProduceTime => Timestamp::ProduceTime,
            TimestampSettings::EmittedAt => Timestamp::EmittedAt,
            TimestampSettings::Field { field } => {
                Timestamp::Field(FieldPath::parse(field).map_err(|e| format!("config field `timestamp.field`: {e}"))?)
            }
        })
    }

    /// Epoch milliseconds for a record, `None` for the producer's clock.
    pub fn of(&self, emitted_at: i64, data: &str) -> Result<Option<i64>, String> {
        match self {
            Timestamp::ProduceTime => Ok(None),
            Timestamp::EmittedAt => Ok(Some(emitted_at)),
            Timestamp::Field(path) => {
                let raw = fields::lookup(data, std::slice::from_ref(path))
                    .map_err(|e| format!("the record's data cannot be read: {e}"))?
                    .pop()
                    .flatten()
                    .ok_or_else(|| format!("timestamp field `{}` is missing", path.display()))?;
                let value: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
                epoch_ms(&value).map(Some).ok_or_else(|| {
                    format!(
                        "timestamp field `{}` is not a date, date-time or epoch milliseconds: {value}",
                        path.display()
                    )
                })
            }
        }
    }
}

/// ISO-8601 date-time (with an offset, or without one: UTC), date (midnight UTC), or epoch milliseconds as a
/// number or numeric string.
fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.2e18).map(|f| f as i64))
        }
        Value::String(s) => {
            let s = s.trim();
            if let Ok(ms) = s.parse::<i64>() {
                return Some(ms);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_millis());
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                    return Some(t.and_utc().timestamp_millis());
                }
            }
            let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(data: &str) -> Result<Option<i64>, String> {
        Timestamp::new(&TimestampSettings::Field { field: "t".into() }).unwrap().of(5, data)
    }

    #[test]
    fn sources() {
        assert_eq!(Timestamp::ProduceTime.of(5, "{}"), Ok(None));
        assert_eq!(Timestamp::EmittedAt.of(5, "{}"), Ok(Some(5)));
    }

    #[test]
    fn field_values() {
        assert_eq!(field(r#"{"t":"2024-01-01T00:00:01.5Z"}"#), Ok(Some(1704067201500)));
        assert_eq!(field(r#"{"t":"2024-01-01T01:00:00+01:00"}"#), Ok(Some(1704067200000)));
        assert_eq!(field(r#"{"t":"2024-01-01T00:00:00"}"#), Ok(Some(1704067200000)));
        assert_eq!(field(r#"{"t":"2024-01-01 00:00:00.250"}"#), Ok(Some(1704067200250)));
        assert_eq!(field(r#"{"t":"2024-01-02"}"#), Ok(Some(1704153600000)));
        assert_eq!(field(r#"{"t":1704067200000}"#), Ok(Some(1704067200000)));
        assert_eq!(field(r#"{"t":"1704067200000"}"#), Ok(Some(1704067200000)));
        assert_eq!(field(r#"{"x":1}"#), Err("timestamp field `t` is missing".into()));
        assert!(field(r#"{"t":"yesterday"}"#).unwrap_err().contains("not a date"));
        assert!(field(r#"{"t":true}"#).is_err());
    }
}
