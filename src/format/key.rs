//! The key of each message (`key` in the config). One canonical form, so the same entity always gets the same
//! key bytes and the same partition: a single key field as its text (a string without quotes, a number or
//! boolean as JSON writes it); several fields as a compact JSON array of their values.

use super::error::{EncodeError, Role};
use super::fields::{self, FieldPath};
use crate::airbyte::catalog::Stream;
use crate::config::encoding::KeySettings;
use crate::error::{Error, Result};
use serde_json::Value;

/// How one stream's keys are made.
#[derive(Clone)]
pub enum KeyEncoder {
    Uuid,
    Fields(Vec<FieldPath>),
    None,
}

impl KeyEncoder {
    /// A stream in `append_dedup` is keyed by its primary key whatever `key` says: compaction keeps one record per key.
    pub fn for_stream(settings: &KeySettings, stream: &Stream) -> Result<KeyEncoder> {
        let primary_key = || {
            if stream.primary_key.is_empty() {
                let why = if stream.dedup { "is in append_dedup mode" } else { "is keyed by its primary key (`key`)" };
                return Err(Error::Config(format!(
                    "stream `{}` {why} but the configured catalog gives it no primary key",
                    stream.describe()
                )));
            }
            Ok(KeyEncoder::Fields(stream.primary_key.iter().map(|p| FieldPath(p.clone())).collect()))
        };
        if stream.dedup {
            return primary_key();
        }
        match settings {
            KeySettings::Uuid => Ok(KeyEncoder::Uuid),
            KeySettings::None => Ok(KeyEncoder::None),
            KeySettings::PrimaryKey => primary_key(),
            KeySettings::Fields { fields } => {
                let paths = fields.iter().map(|f| FieldPath::parse(f)).collect::<std::result::Result<Vec<_>, _>>();
                Ok(KeyEncoder::Fields(paths.map_err(|e| Error::Config(format!("config field `key.fields`: {e}")))?))
            }
        }
    }

    /// The key of a record with this `data`, into `out` (cleared first).
    pub fn fields_key(paths: &[FieldPath], data: &str, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        out.clear();
        let found = fields::lookup(data, paths)?;
        let mut values = Vec::with_capacity(paths.len());
        for (path, raw) in paths.iter().zip(found) {
            let raw = raw.ok_or_else(|| EncodeError::Missing(Role::Key, path.display()))?;
            let value: Value = serde_json::from_str(raw.get()).map_err(|e| EncodeError::Unreadable(e.to_string()))?;
            match value {
                Value::Null => return Err(EncodeError::Null(Role::Key, path.display())),
                Value::Object(_) | Value::Array(_) => return Err(EncodeError::NotScalar(path.display())),
                scalar => values.push(scalar),
            }
        }
        match values.as_slice() {
            [Value::String(text)] => out.extend_from_slice(text.as_bytes()),
            [single] => serde_json::to_writer(&mut *out, single).expect("writing to a Vec cannot fail"),
            several => serde_json::to_writer(&mut *out, several).expect("writing to a Vec cannot fail"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fields: &[&str], data: &str) -> std::result::Result<String, String> {
        let paths: Vec<FieldPath> = fields.iter().map(|f| FieldPath::parse(f).unwrap()).collect();
        let mut out = Vec::new();
        KeyEncoder::fields_key(&paths, data, &mut out).map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn canonical_key_bytes() {
        assert_eq!(key(&["id"], r#"{"id":"abc"}"#).unwrap(), "abc");
        assert_eq!(key(&["id"], r#"{"id": 42}"#).unwrap(), "42");
        assert_eq!(key(&["id"], r#"{"id": 4.50}"#).unwrap(), "4.5");
        assert_eq!(key(&["id"], r#"{"id": true}"#).unwrap(), "true");
        assert_eq!(key(&["id"], r#"{"id":"a\"b\u00e9"}"#).unwrap(), "a\"bé");
        assert_eq!(key(&["c.id", "n"], r#"{"n": 1, "c": {"id": "x"}}"#).unwrap(), r#"["x",1]"#);
        // The same entity, whatever the order or spacing of the record, gives the same bytes.
        assert_eq!(key(&["c.id", "n"], r#"{ "c" : { "id" : "x" } , "n" : 1 }"#).unwrap(), r#"["x",1]"#);
    }

    #[test]
    fn missing_null_and_nested_key_fields_are_errors() {
        assert_eq!(key(&["id"], r#"{"x":1}"#).unwrap_err(), "key field `id` is missing");
        assert_eq!(key(&["id"], r#"{"id":null}"#).unwrap_err(), "key field `id` is null");
        assert!(key(&["id"], r#"{"id":{"a":1}}"#).unwrap_err().contains("not a scalar"));
        assert!(key(&["id"], r#"{"id":[1]}"#).unwrap_err().contains("not a scalar"));
        assert_eq!(key(&["a.b"], r#"{"a":"flat"}"#).unwrap_err(), "key field `a.b` is missing");
    }

    #[test]
    fn settings_per_stream() {
        let stream = |pk: Vec<Vec<&str>>, dedup| Stream {
            name: "s".into(),
            primary_key: pk.into_iter().map(|p| p.into_iter().map(String::from).collect()).collect(),
            dedup,
            ..Stream::default()
        };
        assert!(matches!(KeyEncoder::for_stream(&KeySettings::Uuid, &stream(vec![], false)), Ok(KeyEncoder::Uuid)));
        let err = KeyEncoder::for_stream(&KeySettings::PrimaryKey, &stream(vec![], false)).err().unwrap().to_string();
        assert!(err.contains("stream `s`") && err.contains("no primary key"), "{err}");
        // append_dedup keys by the primary key whatever `key` says.
        match KeyEncoder::for_stream(&KeySettings::Uuid, &stream(vec![vec!["id"]], true)) {
            Ok(KeyEncoder::Fields(paths)) => assert_eq!(paths, vec![FieldPath(vec!["id".into()])]),
            _ => panic!("dedup must key by the primary key"),
        }
        assert!(KeyEncoder::for_stream(&KeySettings::None, &stream(vec![], true)).is_err());
        let fields = KeySettings::Fields { fields: vec!["a..b".into()] };
        assert!(KeyEncoder::for_stream(&fields, &stream(vec![], false))
            .err()
            .unwrap()
            .to_string()
            .contains("key.fields"));
    }
}
