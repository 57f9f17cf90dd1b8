//! The timestamp of each message (`timestamp` in the config): the producer's clock (Java), the record's
//! `emitted_at`, or a field of the record.

use super::error::{EncodeError, Role};
use super::fields::{self, FieldPath};
use crate::config::encoding::TimestampSettings;
use crate::number::json_i64;
use serde_json::Value;

/// How one stream's message timestamps are made.
#[derive(Clone)]
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
    pub fn of(&self, emitted_at: i64, data: &str) -> Result<Option<i64>, EncodeError> {
        match self {
            Timestamp::ProduceTime => Ok(None),
            Timestamp::EmittedAt => Ok(Some(emitted_at)),
            Timestamp::Field(path) => {
                let raw = fields::lookup(data, std::slice::from_ref(path))?
                    .pop()
                    .flatten()
                    .ok_or_else(|| EncodeError::Missing(Role::Timestamp, path.display()))?;
                let value: Value =
                    serde_json::from_str(raw.get()).map_err(|e| EncodeError::Unreadable(e.to_string()))?;
                epoch_ms(&value).map(Some).ok_or_else(|| EncodeError::NotATimestamp(path.display(), value.to_string()))
            }
        }
    }
}

/// ISO-8601 date-time (with an offset, or without one: UTC), date (midnight UTC), or epoch milliseconds as a
/// number or numeric string.
fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => json_i64(n),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(ms) = s.parse::<i64>() {
                return Some(ms);
            }
            if let Some(micros) = super::datetime::micros(s) {
                return Some(micros.div_euclid(1000));
            }
            (s.len() == 10).then(|| super::datetime::days(s)).flatten().map(|days| days * 86_400_000)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(data: &str) -> Result<Option<i64>, EncodeError> {
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
        assert_eq!(field(r#"{"x":1}"#).unwrap_err().to_string(), "timestamp field `t` is missing");
        assert!(field(r#"{"t":"yesterday"}"#).unwrap_err().to_string().contains("not a date"));
        assert!(field(r#"{"t":true}"#).is_err());
    }
}
