//! Avro schemas from the catalog's JSON schemas, by the rules of Airbyte's own converter (the S3/GCS destinations'
//! `JsonToAvroSchemaConverter`), so a topic reads like the files Airbyte writes:
//!
//! - names sanitised as Airbyte does (NFKD, marks dropped, `[A-Za-z0-9_]`, a leading `_` when needed), the original
//!   in `doc` as `_airbyte_original_name:<name>`;
//! - the root record: `_airbyte_ab_id` (string, uuid), `_airbyte_emitted_at` (long, timestamp-millis), the stream's
//!   fields, then `_airbyte_additional_properties` (nullable map of strings), which every record gets;
//! - every field a union with `null` first and `default: null`; integer → long, number → double, boolean, string;
//!   `date` → int/date, `date-time` and timestamps → long/timestamp-micros, times → long/time-micros, each logical
//!   type with a `string` fallback last in the union; objects → nested records (namespace: the path of the enclosing
//!   records; `""` under the root); arrays (untyped items: nullable strings; a list of item schemas: their union);
//!   anyOf / oneOf / allOf and type lists → unions, their record members merged into one.

use crate::format::well_known;
use crate::naming;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Avro {
    Null,
    Boolean,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Uuid,
    Date,
    TimestampMillis,
    TimestampMicros,
    TimeMicros,
    Array(Box<Avro>),
    /// A map of strings (`_airbyte_additional_properties`).
    StringMap,
    Record(Record),
    Union(Vec<Avro>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub namespace: Option<String>,
    pub doc: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Avro name.
    pub name: String,
    /// The key in the JSON record.
    pub original: String,
    pub doc: Option<String>,
    pub schema: Avro,
    pub default_null: bool,
}

pub const AB_ID: &str = "_airbyte_ab_id";
pub const EMITTED_AT: &str = "_airbyte_emitted_at";
pub const ADDITIONAL: &str = "_airbyte_additional_properties";
/// Keys of `data` whose object goes into the record's additional-properties map.
pub const ADDITIONAL_KEYS: [&str; 2] = ["_ab_additional_properties", "_airbyte_additional_properties"];

/// Airbyte's Avro identifier: sanitised, with a leading `_` unless it starts with a letter or `_`.
pub fn identifier(name: &str) -> String {
    let sanitized = naming::sanitize(name);
    match sanitized.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => sanitized,
        _ => format!("_{sanitized}"),
    }
}

/// Each dot-separated part an identifier.
fn namespace_of(namespace: &str) -> String {
    namespace.split('.').filter(|p| !p.is_empty()).map(identifier).collect::<Vec<_>>().join(".")
}

fn doc_for(original: &str, name: &str) -> Option<String> {
    (original != name).then(|| format!("_airbyte_original_name:{original}"))
}

fn additional_properties() -> Field {
    Field {
        name: ADDITIONAL.into(),
        original: ADDITIONAL.into(),
        doc: None,
        schema: Avro::Union(vec![Avro::Null, Avro::StringMap]),
        default_null: true,
    }
}

/// The schema of a stream's records.
pub fn for_stream(json_schema: &Value, stream: &str, namespace: Option<&str>) -> Record {
    let name = identifier(stream);
    let mut fields = vec![
        Field { name: AB_ID.into(), original: AB_ID.into(), doc: None, schema: Avro::Uuid, default_null: false },
        Field {
            name: EMITTED_AT.into(),
            original: EMITTED_AT.into(),
            doc: None,
            schema: Avro::TimestampMillis,
            default_null: false,
        },
    ];
    fields.extend(properties(json_schema, None));
    unique_names(&mut fields[2..], &[AB_ID, EMITTED_AT, ADDITIONAL]);
    fields.push(additional_properties());
    Record {
        doc: doc_for(stream, &name),
        name,
        namespace: namespace.filter(|n| !n.is_empty()).map(namespace_of),
        fields,
    }
}

/// The fields of an object schema's `properties`, in order; `namespace` is that of records nested in them.
fn properties(schema: &Value, namespace: Option<&str>) -> Vec<Field> {
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .filter(|(key, _)| !ADDITIONAL_KEYS.contains(&key.as_str()))
        .map(|(key, definition)| {
            let name = identifier(key);
            Field {
                doc: doc_for(key, &name),
                schema: field(key, namespace, definition),
                original: key.clone(),
                name,
                default_null: true,
            }
        })
        .collect()
}

/// Avro field names are unique in a record: a name taken by an earlier field or `reserved` (the Airbyte columns) gets
/// `_2`, `_3`, ... (`名前` and `住所` both sanitise to `__`); the original name stays in `doc`.
fn unique_names(fields: &mut [Field], reserved: &[&str]) {
    let mut taken: Vec<String> = reserved.iter().map(|r| r.to_string()).collect();
    for field in fields {
        let base = field.name.clone();
        let mut n = 1;
        while taken.contains(&field.name) {
            n += 1;
            field.name = format!("{base}_{n}");
        }
        field.doc = doc_for(&field.original, &field.name);
        taken.push(field.name.clone());
    }
}

/// A field's union: its types, `null` first, a `string` fallback after a logical type.
fn field(name: &str, namespace: Option<&str>, definition: &Value) -> Avro {
    finish(union_of(types(name, namespace, definition)))
}

/// The union a field holds: `null` first, and a `string` fallback after a logical type (unless a string member is
/// there); only `null` when nothing else is allowed.
fn finish(mut members: Vec<Avro>) -> Avro {
    if members.is_empty() {
        return Avro::Null;
    }
    let logical = members.iter().any(|m| matches!(m, Avro::Date | Avro::TimestampMicros | Avro::TimeMicros));
    if logical && !members.iter().any(|m| underlying(m) == "string") {
        members.push(Avro::String);
    }
    members.insert(0, Avro::Null);
    Avro::Union(members)
}

/// The Avro type a member is stored as: a union holds at most one member of each (a logical type counts as its
/// underlying type; records are named, and merged here instead).
fn underlying(member: &Avro) -> &'static str {
    match member {
        Avro::Null => "null",
        Avro::Boolean => "boolean",
        Avro::Long | Avro::TimestampMillis | Avro::TimestampMicros | Avro::TimeMicros => "long",
        Avro::Date => "int",
        Avro::Float => "float",
        Avro::Double => "double",
        Avro::Bytes => "bytes",
        Avro::String | Avro::Uuid => "string",
        Avro::Array(_) => "array",
        Avro::StringMap => "map",
        Avro::Record(_) => "record",
        Avro::Union(_) => "union",
    }
}

/// The non-null members of one union made of `members`, as Avro allows them: nested unions flattened, one member
/// per underlying type (a plain `long` or `string` wins over a logical type stored as one, as Airbyte's converter
/// lets a plain long win over a timestamp), arrays' items united, records merged into one.
fn union_of(members: impl IntoIterator<Item = Avro>) -> Vec<Avro> {
    let mut out: Vec<Avro> = Vec::new();
    for member in members {
        let flat = match member {
            Avro::Union(inner) => inner,
            other => vec![other],
        };
        for m in flat.into_iter().filter(|m| *m != Avro::Null) {
            let Some(i) = out.iter().position(|o| underlying(o) == underlying(&m)) else {
                out.push(m);
                continue;
            };
            match (&mut out[i], m) {
                (Avro::Record(a), Avro::Record(b)) => *a = merge(a.clone(), &b),
                (Avro::Array(a), Avro::Array(b)) => **a = finish(union_of([(**a).clone(), *b])),
                (existing, m) if matches!(m, Avro::Long | Avro::String) && *existing != m => {
                    // The displaced logical type was text in JSON: its text keeps a string member.
                    let text = matches!(existing, Avro::TimestampMicros | Avro::TimeMicros);
                    out.remove(i);
                    out.push(m);
                    if text && !out.iter().any(|o| underlying(o) == "string") {
                        out.push(Avro::String);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The non-null types a definition allows (before `field` adds null and the fallback).
fn types(name: &str, namespace: Option<&str>, definition: &Value) -> Vec<Avro> {
    for combination in ["anyOf", "allOf", "oneOf"] {
        if let Some(options) = definition[combination].as_array() {
            return combined(name, namespace, options);
        }
    }
    match &definition["type"] {
        Value::Array(list) => {
            list.iter().filter_map(|t| t.as_str()).map(|t| single(name, namespace, t, definition)).collect()
        }
        Value::String(t) => vec![single(name, namespace, t, definition)],
        _ => match definition["$ref"].as_str() {
            // Airbyte's converter writes its BinaryData type as bytes (an inline `contentEncoding` stays a string).
            Some(reference) if reference.ends_with("/BinaryData") => vec![Avro::Bytes],
            Some(reference) => match well_known::definition(reference) {
                Some(known) => types(name, namespace, &known),
                None => vec![Avro::String],
            },
            None => vec![Avro::String],
        },
    }
}

/// One JSON schema type of a definition (its `format`, `airbyte_type` and children read as needed).
fn single(name: &str, namespace: Option<&str>, kind: &str, definition: &Value) -> Avro {
    let airbyte_type = definition["airbyte_type"].as_str();
    match kind {
        "string" if airbyte_type == Some("big_integer") => Avro::String,
        "string" => match definition["format"].as_str() {
            Some("date-time") => Avro::TimestampMicros,
            Some("date") => Avro::Date,
            // Avro's time-micros has no zone: a time with one stays text (Airbyte's rule).
            Some("time") if airbyte_type == Some("time_with_timezone") => Avro::String,
            Some("time") => Avro::TimeMicros,
            _ => Avro::String,
        },
        "integer" => Avro::Long,
        "number" => match airbyte_type {
            Some("integer") => Avro::Long,
            Some("float") => Avro::Float,
            _ => Avro::Double,
        },
        "boolean" => Avro::Boolean,
        "null" => Avro::Null,
        "object" if ADDITIONAL_KEYS.contains(&name) => Avro::StringMap,
        "object" => record(name, namespace, definition),
        "array" => array(name, namespace, definition),
        _ => Avro::String,
    }
}

/// A nested object: a record named after its field, in the namespace of the path that leads to it.
fn record(name: &str, namespace: Option<&str>, definition: &Value) -> Avro {
    let record_name = identifier(name);
    let path = match namespace {
        None | Some("") => record_name.clone(),
        Some(ns) => format!("{ns}.{record_name}"),
    };
    let mut fields = properties(definition, Some(&path));
    unique_names(&mut fields, &[ADDITIONAL]);
    fields.push(additional_properties());
    Avro::Record(Record {
        doc: doc_for(name, &record_name),
        name: record_name,
        namespace: Some(namespace.unwrap_or("").to_string()),
        fields,
    })
}

fn array(name: &str, namespace: Option<&str>, definition: &Value) -> Avro {
    let items = &definition["items"];
    let nullable_strings = || Avro::Array(Box::new(Avro::Union(vec![Avro::Null, Avro::String])));
    match items {
        Value::Object(i) if i.contains_key("type") || i.contains_key("$ref") || has_combination(items) => {
            Avro::Array(Box::new(field(&format!("{name}.items"), namespace, items)))
        }
        Value::Array(list) => Avro::Array(Box::new(finish(combined(&format!("{name}.items"), namespace, list)))),
        _ => nullable_strings(),
    }
}

fn has_combination(definition: &Value) -> bool {
    ["anyOf", "allOf", "oneOf"].iter().any(|c| definition.get(c).is_some())
}

/// The types of several definitions (anyOf, oneOf, allOf, tuple items): one union of them all, the merged record
/// last.
fn combined(name: &str, namespace: Option<&str>, options: &[Value]) -> Vec<Avro> {
    let mut out = union_of(options.iter().flat_map(|option| types(name, namespace, option)));
    out.sort_by_key(|m| matches!(m, Avro::Record(_)));
    out
}

/// Two records of one union as one: every field of both (matched by their JSON name), each a union of the types
/// both give it.
fn merge(a: Record, b: &Record) -> Record {
    let mut fields: Vec<Field> = a.fields.into_iter().filter(|f| f.name != ADDITIONAL).collect();
    for other in b.fields.iter().filter(|f| f.name != ADDITIONAL) {
        match fields.iter_mut().find(|f| f.original == other.original) {
            Some(field) => field.schema = finish(union_of([field.schema.clone(), other.schema.clone()])),
            None => fields.push(other.clone()),
        }
    }
    unique_names(&mut fields, &[ADDITIONAL]);
    fields.push(additional_properties());
    Record { fields, ..a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The Avro JSON of a field defined by `definition` under the root.
    fn field_json(name: &str, definition: Value) -> Value {
        field(name, None, &definition).to_json()
    }

    const ADDITIONAL_JSON: &str =
        r#"{"name":"_airbyte_additional_properties","type":["null",{"type":"map","values":"string"}],"default":null}"#;

    fn additional() -> Value {
        serde_json::from_str(ADDITIONAL_JSON).unwrap()
    }

    #[test]
    fn the_root_record() {
        let schema = json!({"type": "object", "properties": {"node_id": {"type": ["null", "string"]}}});
        assert_eq!(
            for_stream(&schema, "simple_schema", Some("namespace1")).to_json(),
            json!({"type": "record", "name": "simple_schema", "namespace": "namespace1", "fields": [
                {"name": "_airbyte_ab_id", "type": {"type": "string", "logicalType": "uuid"}},
                {"name": "_airbyte_emitted_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "node_id", "type": ["null", "string"], "default": null},
                additional()]})
        );
        // No namespace: none in the schema.
        assert!(for_stream(&json!({}), "s", None).to_json().get("namespace").is_none());
    }

    #[test]
    fn names_are_sanitised_with_the_original_in_doc() {
        let schema =
            json!({"type": "object", "properties": {"node:id": {"type": "string"}, "5field_name": {"type": "string"}}});
        let avro =
            for_stream(&schema, "name_with:spécial:characters", Some("namespace_with:spécial:characters")).to_json();
        assert_eq!(avro["name"], "name_with_special_characters");
        assert_eq!(avro["namespace"], "namespace_with_special_characters");
        assert_eq!(avro["doc"], "_airbyte_original_name:name_with:spécial:characters");
        assert_eq!(
            avro["fields"][2],
            json!({"name": "node_id", "type": ["null", "string"], "doc": "_airbyte_original_name:node:id", "default": null})
        );
        assert_eq!(avro["fields"][3]["name"], "_5field_name");
        assert_eq!(avro["fields"][3]["doc"], "_airbyte_original_name:5field_name");
        assert_eq!(identifier(":message"), "_message");
    }

    #[test]
    fn scalar_types() {
        assert_eq!(field_json("f", json!({"type": "string"})), json!(["null", "string"]));
        assert_eq!(field_json("f", json!({"type": "integer"})), json!(["null", "long"]));
        assert_eq!(field_json("f", json!({"type": "number"})), json!(["null", "double"]));
        assert_eq!(field_json("f", json!({"type": "number", "airbyte_type": "integer"})), json!(["null", "long"]));
        assert_eq!(field_json("f", json!({"type": "number", "airbyte_type": "float"})), json!(["null", "float"]));
        assert_eq!(
            field_json("f", json!({"type": "string", "airbyte_type": "big_integer"})),
            json!(["null", "string"])
        );
        assert_eq!(field_json("f", json!({"type": "boolean"})), json!(["null", "boolean"]));
        assert_eq!(field_json("f", json!({"type": "null"})), json!("null"));
        assert_eq!(field_json("f", json!({})), json!(["null", "string"]), "no type: string");
    }

    #[test]
    fn logical_types_with_a_string_fallback() {
        let ts = json!(["null", {"type": "long", "logicalType": "timestamp-micros"}, "string"]);
        assert_eq!(field_json("f", json!({"type": "string", "format": "date-time"})), ts);
        assert_eq!(
            field_json(
                "f",
                json!({"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"})
            ),
            ts
        );
        assert_eq!(
            field_json("f", json!({"type": "string", "format": "date"})),
            json!(["null", {"type": "int", "logicalType": "date"}, "string"])
        );
        assert_eq!(
            field_json("f", json!({"type": "string", "format": "time"})),
            json!(["null", {"type": "long", "logicalType": "time-micros"}, "string"])
        );
    }

    #[test]
    fn well_known_types() {
        let r = |name: &str| json!({"$ref": format!("WellKnownTypes.json#/definitions/{name}")});
        assert_eq!(field_json("f", r("String")), json!(["null", "string"]));
        assert_eq!(field_json("f", r("Integer")), json!(["null", "long"]));
        assert_eq!(field_json("f", r("Number")), json!(["null", "double"]));
        assert_eq!(field_json("f", r("Boolean")), json!(["null", "boolean"]));
        assert_eq!(field_json("f", r("BinaryData")), json!(["null", "bytes"]));
        assert_eq!(field_json("f", r("Date")), json!(["null", {"type": "int", "logicalType": "date"}, "string"]));
        assert_eq!(
            field_json("f", r("TimestampWithTimezone")),
            json!(["null", {"type": "long", "logicalType": "timestamp-micros"}, "string"])
        );
        assert_eq!(
            field_json("f", r("TimeWithoutTimezone")),
            json!(["null", {"type": "long", "logicalType": "time-micros"}, "string"])
        );
        assert_eq!(field_json("f", r("TimeWithTimezone")), json!(["null", "string"]), "time-micros has no zone");
        let with_zone = json!({"type": "string", "format": "time", "airbyte_type": "time_with_timezone"});
        assert_eq!(field_json("f", with_zone), json!(["null", "string"]));
    }

    #[test]
    fn nested_objects_are_records_in_the_namespace_of_their_path() {
        let schema = json!({"type": "object", "properties": {
            "commit": {"type": "object", "properties": {"author": {"type": "object", "properties": {"pr": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}}}});
        let avro = for_stream(&schema, "s", Some("ns")).to_json();
        let commit = &avro["fields"][2]["type"][1];
        assert_eq!((commit["name"].as_str(), commit["namespace"].as_str()), (Some("commit"), Some("")));
        let author = &commit["fields"][0]["type"][1];
        assert_eq!((author["name"].as_str(), author["namespace"].as_str()), (Some("author"), Some("commit")));
        let pr = &author["fields"][0]["type"][1];
        assert_eq!((pr["name"].as_str(), pr["namespace"].as_str()), (Some("pr"), Some("commit.author")));
        assert_eq!(pr["fields"], json!([{"name": "n", "type": ["null", "long"], "default": null}, additional()]));
    }

    #[test]
    fn objects_without_properties_keep_everything_in_the_map() {
        assert_eq!(
            field_json("object_field_without_properties", json!({"type": "object"})),
            json!(["null", {"type": "record", "name": "object_field_without_properties", "namespace": "", "fields": [additional()]}])
        );
        assert_eq!(
            field_json("_airbyte_additional_properties", json!({"type": "object"})),
            json!(["null", {"type": "map", "values": "string"}])
        );
    }

    #[test]
    fn arrays() {
        let strings = json!(["null", {"type": "array", "items": ["null", "string"]}]);
        assert_eq!(field_json("f", json!({"type": "array"})), strings, "untyped items: nullable strings");
        assert_eq!(field_json("f", json!({"type": "array", "items": {}})), strings);
        assert_eq!(
            field_json("f", json!({"type": "array", "items": {"type": "integer"}})),
            json!(["null", {"type": "array", "items": ["null", "long"]}])
        );
        assert_eq!(
            field_json(
                "f",
                json!({"type": "array", "items": [{"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "string"}]})
            ),
            json!(["null", {"type": "array", "items": ["null", "string", "double", "long"]}])
        );
        let objects = field_json(
            "filters",
            json!({"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}),
        );
        let item = &objects[1]["items"][1];
        assert_eq!(
            (item["name"].as_str(), item["doc"].as_str()),
            (Some("filters_items"), Some("_airbyte_original_name:filters.items"))
        );
    }

    #[test]
    fn combinations_and_type_lists_are_unions() {
        assert_eq!(field_json("f", json!({"type": ["null", "number", "string"]})), json!(["null", "double", "string"]));
        assert_eq!(
            field_json("f", json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}]})),
            json!(["null", "string", "long", "double"])
        );
        assert_eq!(
            field_json(
                "f",
                json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "string", "airbyte_type": "big_integer"}]})
            ),
            json!(["null", "string", "long"])
        );
        // A plain long wins over a timestamp long, and then no string fallback is needed.
        let ts = json!({"$ref": "WellKnownTypes.json#/definitions/TimestampWithTimezone"});
        let int = json!({"$ref": "WellKnownTypes.json#/definitions/Integer"});
        assert_eq!(field_json("f", json!({"anyOf": [ts, {"type": "string"}, int]})), json!(["null", "string", "long"]));
    }

    #[test]
    fn a_union_holds_one_member_per_avro_type() {
        // Two longs (a timestamp and an integer): the plain long wins, the timestamp's text keeps a string member.
        let ts = json!({"type": "string", "format": "date-time"});
        assert_eq!(field_json("f", json!({"anyOf": [ts, {"type": "integer"}]})), json!(["null", "long", "string"]));
        assert_eq!(
            field_json("f", json!({"type": ["string", "integer"], "format": "time"})),
            json!(["null", "long", "string"])
        );
        // Two arrays: one, its items united.
        let arrays = json!({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": "integer"}}]});
        assert_eq!(field_json("f", arrays), json!(["null", {"type": "array", "items": ["null", "string", "long"]}]));
        // Records merged all the way down: one `address` record, not two of the same name.
        let a = json!({"type": "object", "properties": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}}});
        let b = json!({"type": "object", "properties": {"address": {"type": "object", "properties": {"zip": {"type": "integer"}}}}});
        let merged = field_json("f", json!({"oneOf": [a, b]}));
        let address = &merged[1]["fields"][0]["type"];
        assert_eq!(address.as_array().unwrap().len(), 2, "{address}");
        let names: Vec<&str> =
            address[1]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["city", "zip", ADDITIONAL]);
    }

    #[test]
    fn field_and_record_names_are_unique() {
        let schema = json!({"type": "object", "properties": {
            "名前": {"type": "string"}, "住所": {"type": "string"}, "_airbyte_emitted_at": {"type": "integer"},
            "users": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "tags_items": {"type": "object", "properties": {"b": {"type": "string"}}}}});
        let avro = for_stream(&schema, "users", None).to_json();
        let fields = avro["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [AB_ID, EMITTED_AT, "__", "___2", "_airbyte_emitted_at_2", "users", "tags", "tags_items", ADDITIONAL]
        );
        assert_eq!(fields[4]["doc"], "_airbyte_original_name:_airbyte_emitted_at");
        // The nested `users` is not the root `users`; the two `tags_items` records are not one.
        assert_eq!(fields[5]["type"][1]["name"], "users_2");
        assert_eq!(fields[6]["type"][1]["items"][1]["name"], "tags_items");
        assert_eq!(fields[7]["type"][1]["name"], "tags_items_2");
    }

    #[test]
    fn union_records_are_merged() {
        let a = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        let b = json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}});
        let merged = field_json("any_of_field", json!({"anyOf": [a, {"type": "boolean"}, b]}));
        assert_eq!(
            merged,
            json!(["null", "boolean", {"type": "record", "name": "any_of_field", "namespace": "", "fields": [
                {"name": "id", "type": ["null", "long", "string"], "default": null},
                {"name": "name", "type": ["null", "string"], "default": null},
                additional()]}])
        );
    }

    #[test]
    fn named_types_are_defined_once() {
        let same = json!({"type": "object", "properties": {"x": {"type": "integer"}}});
        let schema = json!({"type": "object", "properties": {"a": {"type": "array", "items": same.clone()}, "b": {"type": "array", "items": same}}});
        let avro = for_stream(&schema, "s", None).to_json();
        assert_eq!(avro["fields"][2]["type"][1]["items"][1]["name"], "a_items");
        assert_eq!(avro["fields"][3]["type"][1]["items"][1]["name"], "b_items");
    }
}
