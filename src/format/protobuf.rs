//! `protobuf`: Protobuf in Confluent's wire format, a `.proto` schema per stream registered with
//! `schemaType: PROTOBUF`.
//!
//! The schema follows the Avro one's rules where Protobuf can (`avro::schema::identifier` names, the Airbyte
//! columns first): `proto3`, the namespace as the package, one message named after the stream with
//! `string _airbyte_ab_id = 1; int64 _airbyte_emitted_at = 2;`, then the properties in the catalog's order as
//! `optional` fields (so null and absent stay apart from zero values): `integer` → `int64`, `number` → `double`,
//! `boolean` → `bool`, `string` (dates and times too, as written) → `string`, an object with `properties` → a nested
//! message, an array of one of these → `repeated`; anything else (unions, objects without `properties`, arrays of
//! arrays or of mixed items) → a `string` holding the value's JSON text. Field numbers follow the properties'
//! order, so a property added at the end is a compatible change and a reordering is not (the registry says so).
//! Data fields the schema does not name go, as a JSON object's text, into `optional string
//! _airbyte_additional_properties` (number 536870911, whatever is added); unknown keys of nested objects are not
//! kept. A value that does not fit its field (or a null inside an array) is a rejected record.
//!
//! A message's bytes: magic byte 0, the schema id, the message-index list of the first message (one byte 0), then
//! the Protobuf encoding (written with prost's encoding functions).

use super::avro::schema::{identifier, AB_ID, ADDITIONAL, EMITTED_AT};
use super::checked_json::{self, Entry};
use super::fields::string as unescaped;
use super::json_type;
use super::registry;
use super::well_known;
use prost::encoding::{encode_key, encode_varint, WireType};
use serde_json::{Map, Value};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Int64,
    Double,
    Bool,
    String,
    /// A `string` holding the value's JSON text.
    Json,
    Message(Message),
    Repeated(Box<Kind>),
}

#[derive(Debug, Clone, PartialEq)]
struct Message {
    name: String,
    /// (the data's key, the field's name, its kind); field numbers follow the order, from `first`.
    fields: Vec<(String, String, Kind)>,
}

#[derive(Clone)]
pub struct Protobuf {
    message: Message,
    /// The registered schema's text and the message's full name (the subject strategies' record name).
    pub text: String,
    pub full_name: String,
    framed: Vec<u8>,
}

/// Field numbers of the Airbyte columns; the data's fields follow.
const FIRST_DATA_FIELD: u32 = 3;
/// `_airbyte_additional_properties` keeps one number (Protobuf's largest) whatever fields are added before it.
const ADDITIONAL_FIELD: u32 = 536_870_911;

impl Protobuf {
    pub fn new(json_schema: &Value, stream: &str, namespace: Option<&str>) -> Protobuf {
        let mut schema = json_schema.clone();
        well_known::inline(&mut schema);
        let message = message_of(&schema, identifier(stream));
        let package: Option<String> = namespace.map(|n| n.split('.').map(identifier).collect::<Vec<_>>().join("."));
        let mut text = String::from("syntax = \"proto3\";\n");
        if let Some(package) = &package {
            let _ = writeln!(text, "package {package};");
        }
        write_message(&mut text, &message, 0, true);
        let full_name = package.map_or_else(|| message.name.clone(), |p| format!("{p}.{}", message.name));
        Protobuf { message, text, full_name, framed: Vec::new() }
    }

    /// Starts every message with the registry's frame: magic byte, schema id, and message index 0.
    pub fn framed_by(&mut self, frame: Vec<u8>) {
        self.framed = frame;
        self.framed.push(0);
    }

    /// `data` is valid JSON (the parse stage checked it), read as spans of its text: no tree, and strings without
    /// escapes not copied (only values kept as JSON text, and unknown names, are read into `serde_json` values).
    pub fn encode(&mut self, id: &str, emitted_at: i64, data: &str) -> Result<&[u8], String> {
        let entries = checked_json::entries(data)
            .ok_or("the record's data is not a JSON object, which a Protobuf message needs")?;
        let out = &mut self.framed;
        out.truncate(registry::FRAME + 1);
        string(1, id, out);
        encode_key(2, WireType::Varint, out);
        encode_varint(emitted_at as u64, out);
        let taken = fields(&self.message, &entries, &String::new, FIRST_DATA_FIELD, out)?;
        if taken < entries.len() {
            let named = |key: &str| self.message.fields.iter().any(|(k, _, _)| k == key);
            let mut rest = Map::new();
            for (key, value) in entries.iter().filter(|(key, _)| !named(key)) {
                let value =
                    serde_json::from_str(value).map_err(|e| format!("the record's data cannot be read: {e}"))?;
                rest.insert(key.to_string(), value);
            }
            string(ADDITIONAL_FIELD, &Value::Object(rest).to_string(), out);
        }
        Ok(out)
    }
}

fn message_of(schema: &Value, name: String) -> Message {
    let properties = schema["properties"].as_object();
    let mut taken: Vec<String> = vec![AB_ID.into(), EMITTED_AT.into(), ADDITIONAL.into()];
    let mut fields = Vec::new();
    for (key, property) in properties.into_iter().flatten() {
        let mut field = identifier(key);
        while taken.contains(&field) {
            field.push('_');
        }
        taken.push(field.clone());
        let kind = kind_of(property, &field);
        fields.push((key.clone(), field, kind));
    }
    Message { name, fields }
}

fn kind_of(schema: &Value, field: &str) -> Kind {
    match json_type::single(schema) {
        Some(("integer", _)) => Kind::Int64,
        Some(("number", _)) => Kind::Double,
        Some(("boolean", _)) => Kind::Bool,
        Some(("string", _)) => Kind::String,
        Some(("object", s)) if s["properties"].is_object() => {
            let mut name = field.trim_start_matches('_').to_string();
            if let Some(first) = name.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            Kind::Message(message_of(s, format!("{name}Message")))
        }
        Some(("array", s)) => match kind_of(&s["items"], field) {
            Kind::Json | Kind::Repeated(_) => Kind::Json,
            item => Kind::Repeated(Box::new(item)),
        },
        _ => Kind::Json,
    }
}

fn type_name(kind: &Kind) -> &str {
    match kind {
        Kind::Int64 => "int64",
        Kind::Double => "double",
        Kind::Bool => "bool",
        Kind::String | Kind::Json => "string",
        Kind::Message(m) => &m.name,
        Kind::Repeated(item) => type_name(item),
    }
}

fn write_message(out: &mut String, message: &Message, depth: usize, top: bool) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}message {} {{", message.name);
    let mut number = 1;
    if top {
        let _ = writeln!(out, "{pad}  string {AB_ID} = 1;\n{pad}  int64 {EMITTED_AT} = 2;");
        number = FIRST_DATA_FIELD;
    }
    for (_, field, kind) in &message.fields {
        let label = match kind {
            Kind::Repeated(_) => "repeated ",
            Kind::Message(_) => "",
            _ => "optional ",
        };
        let _ = writeln!(out, "{pad}  {label}{} {field} = {number};", type_name(kind));
        number += 1;
    }
    if top {
        let _ = writeln!(out, "{pad}  optional string {ADDITIONAL} = {ADDITIONAL_FIELD};");
    }
    for (_, _, kind) in &message.fields {
        let nested = match kind {
            Kind::Message(m) => Some(m),
            Kind::Repeated(item) => match item.as_ref() {
                Kind::Message(m) => Some(m),
                _ => None,
            },
            _ => None,
        };
        if let Some(nested) = nested {
            write_message(out, nested, depth + 1, false);
        }
    }
    let _ = writeln!(out, "{pad}}}");
}

/// A field's or a message's name in a refusal, made only then (most records have none).
type Path<'a> = &'a dyn Fn() -> String;

/// Encodes the values of `entries` (an object's) that the message's fields name, numbered from `first`; how many
/// entries they took (the rest are not in the schema). `at` names the message.
fn fields(message: &Message, entries: &[Entry], at: Path, first: u32, out: &mut Vec<u8>) -> Result<usize, String> {
    let (mut taken, mut next) = (0, 0);
    for (i, (key, _, kind)) in message.fields.iter().enumerate() {
        let Some(j) = checked_json::named(entries, next, key) else { continue };
        (taken, next) = (taken + 1, j + 1);
        let text = entries[j].1;
        if text == "null" {
            continue;
        }
        let path = || match at() {
            at if at.is_empty() => key.clone(),
            at => format!("{at}.{key}"),
        };
        let number = first + i as u32;
        match kind {
            Kind::Repeated(item) => {
                let items = checked_json::items(text)
                    .ok_or_else(|| format!("field `{}` is not an array, which its schema declares", path()))?;
                for item_text in items {
                    if item_text == "null" {
                        return Err(format!("field `{}` holds a null, which a repeated Protobuf field cannot", path()));
                    }
                    value_of(item, item_text, number, &path, out)?;
                }
            }
            kind => value_of(kind, text, number, &path, out)?,
        }
    }
    Ok(taken)
}

/// Encodes one value (its JSON text, not null) as field `number` of `kind`.
fn value_of(kind: &Kind, text: &str, number: u32, path: Path, out: &mut Vec<u8>) -> Result<(), String> {
    let unfit = |what: &str| format!("field `{}` is not {what}, which its schema declares", path());
    match kind {
        Kind::Json => {
            let value: Value = serde_json::from_str(text).map_err(|e| format!("field `{}`: {e}", path()))?;
            string(number, &value.to_string(), out);
        }
        Kind::Int64 => {
            let n: i64 = text.parse().map_err(|_| unfit("a 64-bit integer"))?;
            encode_key(number, WireType::Varint, out);
            encode_varint(n as u64, out);
        }
        Kind::Double => {
            let number_text = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
            let f = number_text.then(|| text.parse::<f64>().ok()).flatten().filter(|f| f.is_finite());
            encode_key(number, WireType::SixtyFourBit, out);
            out.extend_from_slice(&f.ok_or_else(|| unfit("a number"))?.to_le_bytes());
        }
        Kind::Bool => {
            let b = match text {
                "true" => true,
                "false" => false,
                _ => return Err(unfit("a boolean")),
            };
            encode_key(number, WireType::Varint, out);
            encode_varint(u64::from(b), out);
        }
        Kind::String => string(number, &unescaped(text).ok_or_else(|| unfit("a string"))?, out),
        Kind::Message(message) => {
            let entries = checked_json::entries(text).ok_or_else(|| unfit("an object"))?;
            // The nested message is written in place, then its key and length put before it (no buffer of its own).
            let start = out.len();
            fields(message, &entries, path, 1, out)?;
            let mut head = [0u8; 20];
            let mut rest = &mut head[..];
            encode_key(number, WireType::LengthDelimited, &mut rest);
            encode_varint((out.len() - start) as u64, &mut rest);
            let used = 20 - rest.len();
            out.splice(start..start, head[..used].iter().copied());
        }
        Kind::Repeated(_) => return Err(unfit("an array")),
    }
    Ok(())
}

fn string(number: u32, text: &str, out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_written_out() {
        let schema = json!({"properties": {
            "id": {"type": "integer"}, "name": {"type": ["null", "string"]}, "2x": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
            "any": {"type": ["string", "integer"]}}});
        let p = Protobuf::new(&schema, "users", Some("shop"));
        assert_eq!(p.full_name, "shop.users");
        assert_eq!(
            p.text,
            "syntax = \"proto3\";\npackage shop;\nmessage users {\n  string _airbyte_ab_id = 1;\n  int64 _airbyte_emitted_at = 2;\n  \
             optional int64 id = 3;\n  optional string name = 4;\n  optional double _2x = 5;\n  repeated string tags = 6;\n  \
             AddressMessage address = 7;\n  optional string any = 8;\n  optional string _airbyte_additional_properties = 536870911;\n  \
             message AddressMessage {\n    optional string city = 1;\n  }\n}\n"
        );
    }

    /// Bytes written out by hand from Protobuf's encoding rules (field key = number << 3 | wire type).
    #[test]
    fn a_record_encoded_byte_by_byte() {
        let schema = json!({"properties": {"id": {"type": "integer"}, "ok": {"type": "boolean"},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}}}});
        let mut p = Protobuf::new(&schema, "s", None);
        p.framed_by(vec![0, 0, 0, 0, 7]);
        let out = p.encode("u", 300, r#"{"id":-1,"ok":null,"address":{"city":"O"},"x":1}"#).unwrap().to_vec();
        let mut expected = vec![0, 0, 0, 0, 7, 0]; // frame, message index 0
        expected.extend_from_slice(&[0x0a, 1, b'u']); // 1: "u"
        expected.extend_from_slice(&[0x10, 0xac, 0x02]); // 2: 300
        expected.extend_from_slice(&[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]); // 3: -1
        expected.extend_from_slice(&[0x2a, 3, 0x0a, 1, b'O']); // 5: {1: "O"}
        expected.extend_from_slice(&[0xfa, 0xff, 0xff, 0xff, 0x0f, 7]); // 536870911: additional properties
        expected.extend_from_slice(br#"{"x":1}"#);
        assert_eq!(out, expected);
        assert!(p.encode("u", 1, r#"{"id":"7"}"#).unwrap_err().contains("field `id` is not a 64-bit integer"));
        assert!(p
            .encode("u", 1, r#"{"address":{"city":1}}"#)
            .unwrap_err()
            .contains("field `address.city` is not a string"));
        assert!(p.encode("u", 1, "[]").unwrap_err().contains("not a JSON object"));
        let mut p =
            Protobuf::new(&json!({"properties": {"xs": {"type": "array", "items": {"type": "integer"}}}}), "s", None);
        assert!(p.encode("u", 1, r#"{"xs":[1,null]}"#).unwrap_err().contains("field `xs` holds a null"));
        assert!(p.encode("u", 1, r#"{"xs":1}"#).unwrap_err().contains("field `xs` is not an array"));
    }

    /// Values of every kind for the names of `spaced_schema` (and others): fitting or not, nested, escaped.
    fn spaced_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "[a\"\\\n é]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["n", "s", "q"]), inner), 0..4)
                    .prop_map(|e| Value::Object(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Where the data's text has spaces changes nothing: the spans find the same values as in compact text,
        /// nested and in arrays, and give the same bytes or the same refusal.
        #[test]
        fn spacing_changes_nothing(
            entries in proptest::collection::vec(
                (proptest::sample::select(vec!["i", "d", "b", "s", "j", "m", "r", "x"]), spaced_value()), 0..8),
        ) {
            let schema = json!({"properties": {"i": {"type": "integer"}, "d": {"type": "number"},
                "b": {"type": "boolean"}, "s": {"type": "string"}, "j": {"type": ["string", "integer"]},
                "m": {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}},
                "r": {"type": "array", "items": {"type": "object", "properties": {"s": {"type": "string"}}}}}});
            let data = Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let mut p = Protobuf::new(&schema, "s", None);
            p.framed_by(vec![0, 0, 0, 0, 1]);
            let compact = p.encode("u", 1, &data.to_string()).map(<[u8]>::to_vec);
            let pretty = p.encode("u", 1, &serde_json::to_string_pretty(&data).unwrap()).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(compact, pretty);
        }
    }

    /// Spaced text, escapes, a repeated name, nested messages in an array and unknown names, written out by hand:
    /// the unknown names of the record (not of nested messages) kept compact in their order, the last of a repeated
    /// name taken.
    #[test]
    fn spaced_escaped_and_repeated_text_encoded_byte_by_byte() {
        let schema = json!({"properties": {"s": {"type": "string"}, "d": {"type": "number"},
            "xs": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}}}});
        let mut p = Protobuf::new(&schema, "s", None);
        p.framed_by(vec![0, 0, 0, 0, 7]);
        let data = r#" { "z" : [1, 2.50] , "s" : "x", "d" : 2 , "xs" : [ {"n": -0} , {"q": 1, "n":5} ],
            "a": {"k" : null}, "s": "a\"\u00e9" } "#;
        let out = p.encode("u", 1, data).unwrap().to_vec();
        let mut expected = vec![0, 0, 0, 0, 7, 0, 0x0a, 1, b'u', 0x10, 1];
        expected.extend_from_slice(&[0x1a, 4, b'a', b'"', 0xc3, 0xa9]); // 3: the last "s", unescaped
        expected.extend_from_slice(&[0x21, 0, 0, 0, 0, 0, 0, 0, 0x40]); // 4: 2.0 as a little-endian double
        expected.extend_from_slice(&[0x2a, 2, 0x08, 0x00, 0x2a, 2, 0x08, 0x05]); // 5: {1: 0}, {1: 5}
        let rest = br#"{"z":[1,2.5],"a":{"k":null}}"#;
        expected.extend_from_slice(&[0xfa, 0xff, 0xff, 0xff, 0x0f, rest.len() as u8]);
        expected.extend_from_slice(rest);
        assert_eq!(out, expected);
        assert!(p.encode("u", 1, r#"{"d":"1"}"#).unwrap_err().contains("field `d` is not a number"));
        assert!(p.encode("u", 1, r#"{"xs":[{"n":1.5}]}"#).unwrap_err().contains("field `xs.n` is not a 64-bit"));
        assert!(p.encode("u", 1, r#"{"xs":[{"n":9223372036854775808}]}"#).unwrap_err().contains("`xs.n`"));
        assert!(p.encode("u", 1, r#"{"xs":[[]]}"#).unwrap_err().contains("field `xs` is not an object"));
    }
}
