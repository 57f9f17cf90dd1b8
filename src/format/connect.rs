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

use super::datetime;
use super::json_type;
use super::well_known;
use serde_json::{json, Map, Value};

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

    /// The payload of one record's data (already read as a JSON object).
    pub fn payload(&self, data: Map<String, Value>) -> Result<Value, String> {
        convert_struct(data, &self.fields, "")
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

/// A record's data as a JSON object, which a Connect struct needs.
pub fn object(data: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(data).map_err(|e| format!("the record's data cannot be read: {e}"))? {
        Value::Object(data) => Ok(data),
        _ => Err("the record's data is not a JSON object, which a Connect struct needs".into()),
    }
}

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
        let payload = self.row.payload(object(data)?)?;
        self.out.clear();
        self.out.extend_from_slice(self.head.as_bytes());
        serde_json::to_writer(&mut self.out, &payload).expect("writing JSON to a Vec");
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

fn convert_struct(mut data: Map<String, Value>, fields: &[(String, Kind)], at: &str) -> Result<Value, String> {
    for (name, kind) in fields {
        if let Some(value) = data.get_mut(name) {
            let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
            *value = convert(std::mem::take(value), kind, &path)?;
        }
    }
    Ok(Value::Object(data))
}

pub fn convert(value: Value, kind: &Kind, path: &str) -> Result<Value, String> {
    let unfit = |what: &str| format!("field `{path}` is not {what}, which its schema declares");
    Ok(match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Json, value) => Value::String(value.to_string()),
        (Kind::Int64, Value::Number(n)) if n.is_i64() => Value::Number(n),
        (Kind::Int64, _) => return Err(unfit("a 64-bit integer")),
        (Kind::Float64, Value::Number(n)) => Value::Number(n),
        (Kind::Float64, _) => return Err(unfit("a number")),
        (Kind::Boolean, Value::Bool(b)) => Value::Bool(b),
        (Kind::Boolean, _) => return Err(unfit("a boolean")),
        (Kind::String, Value::String(s)) => Value::String(s),
        (Kind::String, _) => return Err(unfit("a string")),
        (Kind::Date, Value::String(s)) => {
            let days = datetime::days(&s).and_then(|d| i32::try_from(d).ok()).ok_or_else(|| unfit("a date"))?;
            json!(days)
        }
        (Kind::Date, _) => return Err(unfit("a date")),
        (Kind::Timestamp, Value::String(s)) => json!(datetime::micros(&s).ok_or_else(|| unfit("a date-time"))? / 1000),
        (Kind::Timestamp, _) => return Err(unfit("a date-time")),
        (Kind::Array(item), Value::Array(items)) => {
            let items: Result<Vec<Value>, String> = items.into_iter().map(|v| convert(v, item, path)).collect();
            Value::Array(items?)
        }
        (Kind::Array(_), _) => return Err(unfit("an array")),
        (Kind::Struct(fields), Value::Object(object)) => convert_struct(object, fields, path)?,
        (Kind::Struct(_), _) => return Err(unfit("an object")),
    })
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
    }
}
