//! Airbyte's well-known types (`{"$ref": "WellKnownTypes.json#/definitions/<T>"}` in catalog schemas): the one
//! table of what each means as plain JSON schema. The Avro schema reads a reference as its definition; a schema
//! sent to a registry gets it inlined (a registry cannot resolve a file it was never given, and refuses it).

use serde_json::{json, Value};

const PREFIX: &str = "WellKnownTypes.json#/definitions/";

/// The JSON schema a well-known reference stands for.
pub fn definition(reference: &str) -> Option<Value> {
    let with_type =
        |airbyte_type: &str, format: &str| json!({"type": "string", "format": format, "airbyte_type": airbyte_type});
    Some(match reference.strip_prefix(PREFIX)? {
        "String" => json!({"type": "string"}),
        "BinaryData" => json!({"type": "string", "contentEncoding": "base64"}),
        "Boolean" => json!({"type": "boolean"}),
        "Integer" => json!({"type": "integer"}),
        "Number" => json!({"type": "number"}),
        "Date" => json!({"type": "string", "format": "date"}),
        "TimestampWithTimezone" => with_type("timestamp_with_timezone", "date-time"),
        "TimestampWithoutTimezone" => with_type("timestamp_without_timezone", "date-time"),
        "TimeWithTimezone" => with_type("time_with_timezone", "time"),
        "TimeWithoutTimezone" => with_type("time_without_timezone", "time"),
        _ => return None,
    })
}

/// Every well-known reference in `schema` replaced by its definition (other `$ref`s are left as they are).
pub fn inline(schema: &mut Value) {
    match schema {
        Value::Object(o) => match o.get("$ref").and_then(Value::as_str).and_then(definition) {
            Some(Value::Object(d)) => {
                o.remove("$ref");
                o.extend(d);
            }
            _ => o.values_mut().for_each(inline),
        },
        Value::Array(items) => items.iter_mut().for_each(inline),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_inlined_and_others_kept() {
        let mut schema = json!({"type": "object", "properties": {
            "at": {"$ref": "WellKnownTypes.json#/definitions/TimestampWithTimezone"},
            "n": {"oneOf": [{"$ref": "WellKnownTypes.json#/definitions/Integer"}, {"type": "null"}]},
            "local": {"$ref": "#/definitions/x"}}});
        inline(&mut schema);
        assert_eq!(
            schema["properties"],
            json!({"at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                   "n": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
                   "local": {"$ref": "#/definitions/x"}})
        );
    }
}
