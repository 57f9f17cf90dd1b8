//! The `json_schema` format's registered schema: the stream's catalog schema, with Airbyte's well-known types
//! inlined, a `title` (which the record-name subject strategies use) and a `$schema` (the draft Airbyte's catalogs
//! are written in, draft-07, when they say none: Apicurio's registry cannot tell a schema without `$schema` or
//! `properties` is a JSON Schema, and refuses it).

use super::avro::schema::identifier;
use super::well_known;
use crate::airbyte::catalog::Stream;
use serde_json::{json, Value};

/// (title, schema) of a stream.
pub fn of_stream(stream: &Stream) -> (String, Value) {
    let mut schema = match &stream.json_schema {
        Value::Object(o) if !o.is_empty() => Value::Object(o.clone()),
        _ => json!({"type": "object"}),
    };
    well_known::inline(&mut schema);
    if schema.get("$schema").is_none() {
        schema["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    }
    let title = match schema["title"].as_str() {
        Some(t) => t.to_string(),
        None => {
            let name = identifier(&stream.name);
            let title = stream.namespace.as_deref().map_or(name.clone(), |ns| format!("{}.{name}", identifier(ns)));
            schema["title"] = title.clone().into();
            title
        }
    };
    (title, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_inlined_types() {
        let mut s = Stream { name: "user list".into(), namespace: Some("9shop".into()), ..Stream::default() };
        s.json_schema =
            json!({"type": "object", "properties": {"n": {"$ref": "WellKnownTypes.json#/definitions/Integer"}}});
        let (title, schema) = of_stream(&s);
        assert_eq!(title, "_9shop.user_list");
        let draft = "http://json-schema.org/draft-07/schema#";
        let properties = json!({"n": {"type": "integer"}});
        assert_eq!(
            schema,
            json!({"$schema": draft, "type": "object", "title": "_9shop.user_list", "properties": properties})
        );
        s.json_schema = json!({"title": "Mine"});
        assert_eq!(of_stream(&s).0, "Mine");
        s.json_schema = json!({});
        assert_eq!(of_stream(&s).1, json!({"$schema": draft, "type": "object", "title": "_9shop.user_list"}));
        s.json_schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
        assert_eq!(of_stream(&s).1["$schema"], "https://json-schema.org/draft/2020-12/schema", "a draft given is kept");
    }
}
