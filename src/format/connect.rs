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
    /// The length of `{"schema":…,"payload":`, written once at the start of `out` and kept there: it is most of a
    /// message's bytes.
    head: usize,
    out: Vec<u8>,
}

impl ConnectJson {
    pub fn new(json_schema: &Value, stream: &str) -> ConnectJson {
        let row = Row::of(json_schema);
        let out = format!("{{\"schema\":{},\"payload\":", row.schema(stream, false)).into_bytes();
        ConnectJson { row, head: out.len(), out }
    }

    /// The message value of one record's data: written in one walk of its text, or, where the walk declines, from
    /// its entries.
    pub fn encode(&mut self, data: &str) -> Result<&[u8], String> {
        self.out.truncate(self.head);
        let start = checked_json::ws(data.as_bytes(), 0);
        let walked = data.as_bytes().get(start) == Some(&b'{')
            && walk_struct(data, start, &self.row.fields, &mut self.out).is_some();
        if !walked {
            self.out.truncate(self.head);
            self.row.write_payload(&object(data)?, |_| true, &mut self.out)?;
        }
        self.out.push(b'}');
        Ok(&self.out)
    }
}

/// Writes the value at `at` of valid JSON `text` as its Connect type reads it, converting while it walks the text
/// once, nested structs and arrays included (finding entries first, then converting, walks nested values twice and
/// allocates for each). `None`, with `out` part written, for what it leaves to the reading by entries: a name with
/// escapes, a repeated name (its last value wins, in its first place), a value that does not fit (the refusal
/// names the field). Where the value ends when it is written.
fn walk(text: &str, at: usize, kind: &Kind, out: &mut Vec<u8>) -> Option<usize> {
    let b = text.as_bytes();
    match (kind, *b.get(at)?) {
        (Kind::Struct(fields), b'{') => walk_struct(text, at, fields, out),
        (Kind::Array(item), b'[') => {
            out.push(b'[');
            let (mut at, mut first) = (checked_json::ws(b, at + 1), true);
            while *b.get(at)? != b']' {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                at = checked_json::ws(b, walk(text, at, item, out)?);
                if b.get(at) == Some(&b',') {
                    at = checked_json::ws(b, at + 1);
                }
            }
            out.push(b']');
            Some(at + 1)
        }
        _ => {
            let end = checked_json::skip(b, at);
            write_value(&text[at..end], kind, &String::new, out).ok()?;
            Some(end)
        }
    }
}

/// [`walk`] of an object (at its `{`) as a struct of `fields`: the names it does not know copied with their values.
fn walk_struct(text: &str, at: usize, fields: &[(String, Kind)], out: &mut Vec<u8>) -> Option<usize> {
    let b = text.as_bytes();
    // The fields met so far, one bit each, and the names the schema does not have: a name met twice is declined.
    let (mut known, mut others, mut n_others) = (0u64, [""; 8], 0);
    if fields.len() > 64 {
        return None;
    }
    let mut next = 0;
    out.push(b'{');
    let mut at = checked_json::ws(b, at + 1);
    while b.get(at) == Some(&b'"') {
        let (end, escaped) = checked_json::string_end(b, at);
        let name = text.get(at + 1..end.checked_sub(1)?).filter(|_| !escaped)?;
        if known != 0 || n_others != 0 {
            out.push(b',');
        }
        out.extend_from_slice(&b[at..end]);
        out.push(b':');
        // Never missing in JSON the parse stage checked; on other text the walk declines rather than guess.
        let colon = checked_json::ws(b, end);
        if b.get(colon) != Some(&b':') {
            return None;
        }
        at = checked_json::ws(b, colon + 1);
        at = match checked_json::named(fields, next, name) {
            Some(i) if known & 1 << i == 0 => {
                (known, next) = (known | 1 << i, i + 1);
                walk(text, at, &fields[i].1, out)?
            }
            Some(_) => return None,
            None if n_others < others.len() && !others[..n_others].contains(&name) => {
                (others[n_others], n_others) = (name, n_others + 1);
                let end = checked_json::skip(b, at);
                out.extend_from_slice(&b[at..end]);
                end
            }
            None => return None,
        };
        at = checked_json::ws(b, at);
        if b.get(at) == Some(&b',') {
            at = checked_json::ws(b, at + 1);
        }
    }
    out.push(b'}');
    Some(at + 1)
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

/// Writes an object's entries, converting the values of the fields the schema names. `at` names the object in a
/// refusal.
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
        match checked_json::named(fields, next, name) {
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

    /// The schema of the first test, with an array of structs.
    fn every_kind() -> ConnectJson {
        ConnectJson::new(
            &json!({"properties": {
                "id": {"type": "integer"}, "price": {"type": "number"}, "ok": {"type": "boolean"},
                "name": {"type": "string"}, "day": {"type": "string", "format": "date"},
                "at": {"type": "string", "format": "date-time"}, "tags": {"type": "array", "items": {"type": "string"}},
                "address": {"type": "object", "properties": {"city": {"type": "string"}}}, "extra": {"type": "object"},
                "xs": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "number"}}}}}}),
            "s",
        )
    }

    /// What the entries give: the reading `encode` leaves the records to that the walk declines.
    fn by_entries(c: &ConnectJson, data: &str) -> Result<Vec<u8>, String> {
        let mut out = c.out[..c.head].to_vec();
        c.row.write_payload(&object(data)?, |_| true, &mut out)?;
        out.push(b'}');
        Ok(out)
    }

    #[test]
    fn the_walk_declines_what_the_entries_must_read() {
        let c = every_kind();
        let walked = |data: &str| walk_struct(data, 0, &c.row.fields, &mut Vec::new()).is_some();
        assert!(walked(
            r#"{"id":1,"address":{"city":"Oslo","zip":"0150"},"xs":[{"n":1},{"n":null}],"other":{"a":[1]}}"#
        ));
        assert!(walked("{ }") && walked(r#"{"tags" : [ "a" , "b" ] , "at" : null}"#));
        let nine_others: Vec<String> = (0..9).map(|i| format!(r#""o{i}":{i}"#)).collect();
        let nine_others = format!("{{{}}}", nine_others.join(","));
        assert!(!walked(&nine_others) && walked(&nine_others.replace(r#","o8":8"#, "")));
        for declined in [
            r#"{"address":{"ci\u0074y":"x"}}"#,
            r#"{"id" 1}"#,
            r#"{"zz""#,
            r#"{"id":1,"id":2}"#,
            r#"{"other":1,"other":2}"#,
            r#"{"address":{"city":"a","city":"b"}}"#,
            r#"{"na\u006de":"x"}"#,
            r#"{"id":"1"}"#,
            r#"{"xs":[{"n":true}]}"#,
        ] {
            assert!(!walked(declined), "{declined}");
        }
    }

    /// A struct of more than 64 fields is left to the entries (one bit per field).
    #[test]
    fn wide_structs_are_read_by_entries() {
        let properties: serde_json::Map<String, Value> =
            (0..65).map(|i| (format!("f{i}"), json!({"type": "integer"}))).collect();
        let mut c = ConnectJson::new(&json!({ "properties": properties }), "s");
        let data = r#"{"f64":2,"f1":1,"x":[ 1 ]}"#;
        assert!(walk_struct(data, 0, &c.row.fields, &mut Vec::new()).is_none());
        assert!(std::str::from_utf8(c.encode(data).unwrap())
            .unwrap()
            .ends_with(r#""payload":{"f64":2,"f1":1,"x":[ 1 ]}}"#));
    }

    proptest::proptest! {
        /// Whatever the data, walked or not, `encode` gives what the entries give: the same bytes or the same
        /// refusal.
        #[test]
        fn encoding_walked_is_encoding_by_entries(
            entries in proptest::collection::vec((0..14usize, 0..17usize, proptest::bool::weighted(0.1)), 0..10),
            spaced in proptest::bool::ANY,
        ) {
            const NAMES: [&str; 14] = ["id", "price", "ok", "name", "day", "at", "tags", "address", "extra", "xs",
                "other", "more", r#"q\"x"#, "id"];
            const VALUES: [&str; 17] = ["1", "-2", "1.5e3", r#""s""#, r#""a\"b""#, "true", "null", r#""2024-01-02""#,
                r#""2024-01-01T00:00:01.5Z""#, "[1,2]", r#"[ "a" , "b" ]"#, r#"{ "city" : "x" , "zip":1}"#,
                r#"{"k":[1,{"c":2}]}"#, r#"[{"n":1},{"n":"x"}]"#, "[ ]", "{ }", r#"[ {"n":2,"n":3} ]"#];
            // Values that fit each name (most records fit; one value in ten is any value): indexes into VALUES.
            const FITS: [&[usize]; 14] = [&[0, 1, 6], &[0, 1, 2, 6], &[5, 6], &[3, 4, 6], &[7, 6], &[8, 6],
                &[10, 14, 6], &[11, 15, 6], &[12, 9, 3], &[14, 16, 6], &[12, 13], &[0, 11], &[3], &[1]];
            let value = |n: usize, v: usize, any: bool| if any { VALUES[v] } else { VALUES[FITS[n][v % FITS[n].len()]] };
            let body: Vec<String> =
                entries.iter().map(|&(n, v, any)| format!(r#""{}":{}"#, NAMES[n], value(n, v, any))).collect();
            let sep = if spaced { " , " } else { "," };
            let data = format!("{{{}}}", body.join(sep));
            let mut c = every_kind();
            let expected = by_entries(&c, &data);
            proptest::prop_assert_eq!(c.encode(&data).map(<[u8]>::to_vec), expected);
        }
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
