//! An Avro schema as the JSON a registry and readers take: named types defined once, a different record under a
//! name already used renamed `<name>_2`, ...

use super::schema::{Avro, Record};
use serde_json::{json, Map, Value};

impl Avro {
    /// The schema as Avro's JSON, named types defined once.
    pub fn to_json(&self) -> Value {
        self.json(&mut Vec::new())
    }

    fn json(&self, defined: &mut Vec<(String, Record)>) -> Value {
        match self {
            Avro::Null => json!("null"),
            Avro::Boolean => json!("boolean"),
            Avro::Long => json!("long"),
            Avro::Float => json!("float"),
            Avro::Double => json!("double"),
            Avro::Bytes => json!("bytes"),
            Avro::String => json!("string"),
            Avro::Uuid => json!({"type": "string", "logicalType": "uuid"}),
            Avro::Date => json!({"type": "int", "logicalType": "date"}),
            Avro::TimestampMillis => json!({"type": "long", "logicalType": "timestamp-millis"}),
            Avro::TimestampMicros => json!({"type": "long", "logicalType": "timestamp-micros"}),
            Avro::TimeMicros => json!({"type": "long", "logicalType": "time-micros"}),
            Avro::Array(items) => json!({"type": "array", "items": items.json(defined)}),
            Avro::StringMap => json!({"type": "map", "values": "string"}),
            Avro::Union(members) => Value::Array(members.iter().map(|m| m.json(defined)).collect()),
            Avro::Record(r) => r.json(defined),
        }
    }
}

impl Record {
    /// The schema as Avro's JSON, named types defined once.
    pub fn to_json(&self) -> Value {
        self.json(&mut Vec::new())
    }

    /// A record whose full name is defined already is a reference to it when it is the same record; a different
    /// record under that name (a nested `users` in a stream `users`, or two merged `address` records) is renamed
    /// `<name>_2`, ... — the encoder writes records by structure, so only the JSON needs unique names.
    fn json(&self, defined: &mut Vec<(String, Record)>) -> Value {
        let mut name = self.name.clone();
        let mut n = 1;
        let full = loop {
            let full = full_name(self.namespace.as_deref(), &name);
            match defined.iter().find(|(f, _)| *f == full) {
                Some((_, same)) if same == self => return json!(full),
                Some(_) => {
                    n += 1;
                    name = format!("{}_{n}", self.name);
                }
                None => break full,
            }
        };
        defined.push((full, self.clone()));
        let mut out = Map::new();
        out.insert("type".into(), json!("record"));
        out.insert("name".into(), json!(name));
        if let Some(ns) = &self.namespace {
            out.insert("namespace".into(), json!(ns));
        }
        if let Some(doc) = &self.doc {
            out.insert("doc".into(), json!(doc));
        }
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let mut field = Map::new();
                field.insert("name".into(), json!(f.name));
                field.insert("type".into(), f.schema.json(defined));
                if let Some(doc) = &f.doc {
                    field.insert("doc".into(), json!(doc));
                }
                if f.default_null {
                    field.insert("default".into(), Value::Null);
                }
                Value::Object(field)
            })
            .collect();
        out.insert("fields".into(), Value::Array(fields));
        Value::Object(out)
    }

    /// `namespace.name`, as the record-name subject strategies use it.
    pub fn full_name(&self) -> String {
        full_name(self.namespace.as_deref(), &self.name)
    }
}

fn full_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}
