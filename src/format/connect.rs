//! `connect_json`: the value Kafka Connect's `JsonConverter` reads with `schemas.enable=true`,
//! `{"schema": {...}, "payload": {...}}`, so a Connect sink (JDBC, S3, …) can consume the topic without a registry.
//!
//! The schema is made once per stream from its JSON schema: a struct named after the stream, every field optional
//! (Airbyte values may be null). `integer` → `int64`, `number` → `float64`, `boolean`, `string`; a `date` string →
//! Connect's `Date` (days since the epoch), a `date-time` → `Timestamp` (epoch milliseconds); an object with
//! `properties` → a nested struct; an array of one of these → an array; anything else (an object without
//! `properties`, a union, an array of mixed items) → a `string` holding the value's JSON text. Fields of the data
//! that the schema does not name stay in the payload (Connect ignores them; other readers still see them). A value
//! that does not fit its field's type is a rejected record, as with Avro.

use super::checked_json::{self, Entry};
use super::datetime;
use super::fields;
use super::json_type;
use super::well_known;
use serde_json::{json, Value};
use std::borrow::Cow;

/// A field's Connect type.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Int64,
    Float64,
    Boolean,
    String,
    Date,
    Timestamp,
    /// A `string` holding the value's JSON text.
    Json,
    Array(Box<Kind>),
    Struct(Vec<(String, Kind)>),
}

/// The Connect struct of a stream's records, made from its JSON schema: what `connect_json` sends, and the rows of
/// `debezium_json`'s change events.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub fields: Vec<(String, Kind)>,
}

impl Row {
    pub fn of(json_schema: &Value) -> Row {
        let mut schema = json_schema.clone();
        well_known::inline(&mut schema);
        Row { fields: struct_fields(&schema) }
    }

    /// Its Connect schema, named.
    pub fn schema(&self, name: &str, optional: bool) -> Value {
        let mut connect = connect_schema(&Kind::Struct(self.fields.clone()));
        connect["optional"] = json!(optional);
        connect["name"] = json!(name);
        connect
    }

    /// Writes the payload of one record's data (its entries, from [`object`]): the entries `keep` says, each value
    /// the schema names converted to its Connect type, the others as they are.
    pub fn write_payload(&self, data: &[Entry], keep: impl Fn(&str) -> bool, out: &mut Vec<u8>) -> Result<(), String> {
        write_struct(data, &self.fields, &String::new, &keep, out)
    }

    /// The type of the field at a path (names into nested structs).
    pub fn kind_at(&self, path: &[String]) -> Option<&Kind> {
        kind_in(&self.fields, path)
    }
}

fn kind_in<'a>(fields: &'a [(String, Kind)], path: &[String]) -> Option<&'a Kind> {
    let (first, rest) = path.split_first()?;
    match (fields.iter().find(|(name, _)| name == first).map(|(_, kind)| kind)?, rest) {
        (kind, []) => Some(kind),
        (Kind::Struct(fields), rest) => kind_in(fields, rest),
        _ => None,
    }
}

/// A record's data as the entries of a JSON object, which a Connect struct needs.
pub fn object(data: &str) -> Result<Vec<Entry<'_>>, String> {
    checked_json::entries(data)
        .ok_or_else(|| "the record's data is not a JSON object, which a Connect struct needs".into())
}

#[derive(Clone)]
pub struct ConnectJson {
    row: Row,
    /// `{"schema":…,"payload":` written once.
    head: String,
    out: Vec<u8>,
}

impl ConnectJson {
    pub fn new(json_schema: &Value, stream: &str) -> ConnectJson {
        let row = Row::of(json_schema);
        let head = format!("{{\"schema\":{},\"payload\":", row.schema(stream, false));
        ConnectJson { row, head, out: Vec::new() }
    }

    /// The message value of one record's data.
    pub fn encode(&mut self, data: &str) -> Result<&[u8], String> {
        let data = object(data)?;
        self.out.clear();
        self.out.extend_from_slice(self.head.as_bytes());
        self.row.write_payload(&data, |_| true, &mut self.out)?;
        self.out.push(b'}');
        Ok(&self.out)
    }
}

/// The Connect type of a JSON schema (its `null` alternative dropped: every field is optional).
fn kind_of(schema: &Value) -> Kind {
    match json_type::single(schema) {
        Some(("integer", _)) => Kind::Int64,
        Some(("number", _)) => Kind::Float64,
        Some(("boolean", _)) => Kind::Boolean,
        Some(("string", s)) => match s["format"].as_str() {
            Some("date") => Kind::Date,
            Some("date-time") => Kind::Timestamp,
            _ => Kind::String,
        },
        Some(("object", s)) if s["properties"].is_object() => Kind::Struct(struct_fields(s)),
        Some(("array", s)) => match kind_of(&s["items"]) {
            Kind::Json => Kind::Json,
            item => Kind::Array(Box::new(item)),
        },
        _ => Kind::Json,
    }
}

fn struct_fields(schema: &Value) -> Vec<(String, Kind)> {
    let properties = schema["properties"].as_object();
    properties.map_or_else(Vec::new, |p| p.iter().map(|(name, s)| (name.clone(), kind_of(s))).collect())
}

/// Connect's JSON description of a type, as `JsonConverter` writes and reads it.
pub fn connect_schema(kind: &Kind) -> Value {
    let logical = |base: &str, name: &str| json!({"type": base, "optional": true, "name": name, "version": 1});
    match kind {
        Kind::Int64 => json!({"type": "int64", "optional": true}),
        Kind::Float64 => json!({"type": "double", "optional": true}),
        Kind::Boolean => json!({"type": "boolean", "optional": true}),
        Kind::String | Kind::Json => json!({"type": "string", "optional": true}),
        Kind::Date => logical("int32", "org.apache.kafka.connect.data.Date"),
        Kind::Timestamp => logical("int64", "org.apache.kafka.connect.data.Timestamp"),
        Kind::Array(item) => json!({"type": "array", "items": connect_schema(item), "optional": true}),
        Kind::Struct(fields) => {
            let fields: Vec<Value> = fields
                .iter()
                .map(|(name, kind)| {
                    let mut field = connect_schema(kind);
                    field["field"] = json!(name);
                    field
                })
                .collect();
            json!({"type": "struct", "fields": fields, "optional": true})
        }
    }
}

/// Writes an object's entries, converting the values of the fields the schema names (found where the schema has
/// them next, as sources mostly write them in order). `at` names the object in a refusal.
fn write_struct(
    entries: &[Entry],
    fields: &[(String, Kind)],
    at: &dyn Fn() -> String,
    keep: &dyn Fn(&str) -> bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.push(b'{');
    let (mut next, mut first) = (0, true);
    for (name, value) in entries.iter().filter(|(name, _)| keep(name)) {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        match name {
            // As the record wrote it: a name without escapes needs none.
            Cow::Borrowed(plain) => {
                out.push(b'"');
                out.extend_from_slice(plain.as_bytes());
                out.extend_from_slice(b"\":");
            }
            Cow::Owned(unescaped) => {
                serde_json::to_writer(&mut *out, unescaped).expect("writing JSON to a Vec");
                out.push(b':');
            }
        }
        let at_next = fields.get(next).filter(|(field, _)| field == name).map(|_| next);
        match at_next.or_else(|| fields.iter().position(|(field, _)| field == name)) {
            Some(i) => {
                next = i + 1;
                let path = || match at() {
                    at if at.is_empty() => name.to_string(),
                    at => format!("{at}.{name}"),
                };
                write_value(value, &fields[i].1, &path, out)?
            }
            None => out.extend_from_slice(value.as_bytes()),
        }
    }
    out.push(b'}');
    Ok(())
}

/// Writes one value (its JSON text) as its Connect type reads it: most are the source's own text, checked; dates
/// and date-times become numbers, [`Kind::Json`] the value's JSON text as a string. `path` names the field in a
/// refusal.
pub fn write_value(text: &str, kind: &Kind, path: &dyn Fn() -> String, out: &mut Vec<u8>) -> Result<(), String> {
    let unfit = |what: &str| format!("field `{}` is not {what}, which its schema declares", path());
    let first = text.as_bytes()[0];
    let fits = match kind {
        _ if text == "null" => true,
        Kind::Int64 => text.parse::<i64>().is_ok(),
        Kind::Float64 => first == b'-' || first.is_ascii_digit(),
        Kind::Boolean => first == b't' || first == b'f',
        Kind::String => first == b'"',
        Kind::Date => {
            let days = fields::string(text).and_then(|s| datetime::days(&s)).and_then(|d| i32::try_from(d).ok());
            let days = days.ok_or_else(|| unfit("a date"))?;
            out.extend_from_slice(itoa::Buffer::new().format(days).as_bytes());
            return Ok(());
        }
        Kind::Timestamp => {
            let micros = fields::string(text).and_then(|s| datetime::micros(&s)).ok_or_else(|| unfit("a date-time"))?;
            out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
            return Ok(());
        }
        Kind::Json => {
            let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_writer(&mut *out, &value.to_string()).expect("writing JSON to a Vec");
            return Ok(());
        }
        Kind::Array(item) if first == b'[' => return write_array(text, item, path, out),
        Kind::Struct(fields) if first == b'{' => {
            let entries = checked_json::entries(text).expect("an object");
            return write_struct(&entries, fields, path, &|_| true, out);
        }
        Kind::Array(_) | Kind::Struct(_) => false,
    };
    if !fits {
        return Err(unfit(match kind {
            Kind::Int64 => "a 64-bit integer",
            Kind::Float64 => "a number",
            Kind::Boolean => "a boolean",
            Kind::String => "a string",
            Kind::Array(_) => "an array",
            _ => "an object",
        }));
    }
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// An array's items, each as its Connect type reads it.
fn write_array(text: &str, item: &Kind, path: &dyn Fn() -> String, out: &mut Vec<u8>) -> Result<(), String> {
    out.push(b'[');
    for (i, value) in checked_json::items(text).expect("an array").into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(value, item, path, out)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written out from Kafka Connect's JsonConverter conventions (type names, logical type names and versions).
    #[test]
    fn schema_and_payload_as_json_converter_reads_them() {
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "integer"},
            "price": {"type": ["null", "number"]},
            "ok": {"type": "boolean"},
            "name": {"type": "string"},
            "day": {"$ref": "WellKnownTypes.json#/definitions/Date"},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
            "extra": {"type": "object"},
            "either": {"type": ["string", "integer"]}}});
        let mut c = ConnectJson::new(&schema, "users");
        let data = r#"{"id":1,"price":null,"ok":true,"name":"Ada","day":"2024-01-02","at":"2024-01-01T00:00:01.5Z","tags":["a"],"address":{"city":"Oslo","zip":"0150"},"extra":{"k":[1]},"either":7,"unknown":"kept"}"#;
        let out: Value = serde_json::from_slice(c.encode(data).unwrap()).unwrap();
        let optional = |t: &str, f: &str| json!({"type": t, "optional": true, "field": f});
        assert_eq!(
            out["schema"],
            json!({"type": "struct", "optional": false, "name": "users", "fields": [
                optional("int64", "id"),
                optional("double", "price"),
                optional("boolean", "ok"),
                optional("string", "name"),
                {"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Date", "version": 1, "field": "day"},
                {"type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1, "field": "at"},
                {"type": "array", "items": {"type": "string", "optional": true}, "optional": true, "field": "tags"},
                {"type": "struct", "fields": [optional("string", "city")], "optional": true, "field": "address"},
                optional("string", "extra"),
                optional("string", "either")]})
        );
        assert_eq!(
            out["payload"],
            json!({"id": 1, "price": null, "ok": true, "name": "Ada", "day": 19724, "at": 1_704_067_201_500_i64,
                   "tags": ["a"], "address": {"city": "Oslo", "zip": "0150"}, "extra": "{\"k\":[1]}", "either": "7",
                   "unknown": "kept"})
        );
    }

    #[test]
    fn values_that_do_not_fit_are_rejected_records() {
        let schema = json!({"properties": {"id": {"type": "integer"}, "a": {"type": "object", "properties": {
            "day": {"type": "string", "format": "date"}}}}});
        let mut c = ConnectJson::new(&schema, "s");
        assert!(c.encode(r#"{"id":1.5}"#).unwrap_err().contains("field `id` is not a 64-bit integer"));
        assert!(c.encode(r#"{"a":{"day":"soon"}}"#).unwrap_err().contains("field `a.day` is not a date"));
        assert!(c.encode("[1]").unwrap_err().contains("not a JSON object"));
        for not_int64 in ["1.0", "1e3", "18446744073709551615", "\"1\"", "true"] {
            let err = c.encode(&format!(r#"{{"id":{not_int64}}}"#)).unwrap_err();
            assert!(err.contains("field `id` is not a 64-bit integer"), "{not_int64}: {err}");
        }
        let schema = json!({"properties": {"xs": {"type": "array", "items": {"type": "object", "properties": {
            "n": {"type": "number"}, "ok": {"type": "boolean"}, "s": {"type": "string"}}}}}});
        let mut c = ConnectJson::new(&schema, "s");
        assert!(c.encode(r#"{"xs":[{"n":1},{"n":"2"}]}"#).unwrap_err().contains("field `xs.n` is not a number"));
        assert!(c.encode(r#"{"xs":[{"ok":1}]}"#).unwrap_err().contains("field `xs.ok` is not a boolean"));
        assert!(c.encode(r#"{"xs":[{"s":[]}]}"#).unwrap_err().contains("field `xs.s` is not a string"));
        assert!(c.encode(r#"{"xs":{}}"#).unwrap_err().contains("field `xs` is not an array"));
    }

    /// Values that fit are the source's own text: number forms and string escapes are kept, as JSON readers read
    /// them the same; a repeated name keeps its last value.
    #[test]
    fn fitting_values_keep_the_sources_text() {
        let schema =
            json!({"properties": {"n": {"type": "number"}, "s": {"type": "string"}, "i": {"type": "integer"}}});
        let mut c = ConnectJson::new(&schema, "s");
        let out = c.encode(r#"{"n": 1.50, "s": "a\u00e9\"", "i": -0, "i": 7, "x": {"k" : 1}}"#).unwrap().to_vec();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with(r#""payload":{"n":1.50,"s":"a\u00e9\"","i":7,"x":{"k" : 1}}}"#), "{text}");
        // An escaped name (read by serde_json, not the scanner) is written escaped again.
        let out = c.encode(r#"{"q\"x": 1, "i": 2}"#).unwrap().to_vec();
        assert!(std::str::from_utf8(&out).unwrap().ends_with(r#""payload":{"q\"x":1,"i":2}}"#));
    }
}
