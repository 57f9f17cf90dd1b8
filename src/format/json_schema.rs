//! The `json_schema` format's registered schema: the stream's catalog schema, with Airbyte's well-known types
//! inlined and a `title` (which the record-name subject strategies use).

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
        assert_eq!(
            schema,
            json!({"type": "object", "title": "_9shop.user_list", "properties": {"n": {"type": "integer"}}})
        );
        s.json_schema = json!({"title": "Mine"});
        assert_eq!(of_stream(&s).0, "Mine");
        s.json_schema = json!({});
        assert_eq!(of_stream(&s).1, json!({"type": "object", "title": "_9shop.user_list"}));
    }
}
