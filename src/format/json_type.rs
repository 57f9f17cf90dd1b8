//! The one type a property of a catalog's JSON schema declares, `null` aside: what the schema-making formats
//! (`connect_json`, `protobuf`) map to a type of their own. A union of several types (or none) has no single type.

use serde_json::Value;

/// The type's name and the schema that declares it (`schema` itself, or its one non-null `oneOf`/`anyOf` branch).
pub fn single(schema: &Value) -> Option<(&str, &Value)> {
    match &schema["type"] {
        Value::String(t) => Some((t.as_str(), schema)),
        Value::Array(types) => {
            match types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>()[..] {
                [one] => Some((one, schema)),
                _ => None,
            }
        }
        _ => {
            let branches = schema["oneOf"].as_array().or_else(|| schema["anyOf"].as_array())?;
            match branches.iter().filter(|s| s["type"] != "null").collect::<Vec<_>>()[..] {
                [one] => single(one),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_aside_one_type_or_none() {
        let of = |s: Value| single(&s).map(|(t, _)| t.to_string());
        assert_eq!(of(json!({"type": "integer"})), Some("integer".into()));
        assert_eq!(of(json!({"type": ["null", "string"]})), Some("string".into()));
        assert_eq!(of(json!({"oneOf": [{"type": "null"}, {"type": ["boolean", "null"]}]})), Some("boolean".into()));
        assert_eq!(of(json!({"type": ["string", "integer"]})), None);
        assert_eq!(of(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})), None);
        assert_eq!(of(json!({})), None);
    }
}
