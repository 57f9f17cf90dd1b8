//! The connector specification: `spec/spec.json` is the single source, embedded at build time.

use serde_json::Value;
use std::sync::LazyLock;

static SPEC: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(include_str!("../../spec/spec.json")).expect("spec/spec.json is valid JSON"));

/// The ConnectorSpecification object.
pub fn spec() -> &'static Value {
    &SPEC
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java connector's spec as it shipped (0.1.11), kept as a fixture.
    fn java_spec() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/java-spec-0.1.11.json")).unwrap()
    }

    /// Every key, type and enum of the Java spec is still there, so saved configs keep validating.
    #[test]
    fn keeps_the_java_spec() {
        let java = java_spec();
        let ours = &spec()["connectionSpecification"];
        let java = &java["connectionSpecification"];
        assert_eq!(ours["required"], java["required"]);
        assert_eq!(ours["additionalProperties"], true);
        for (key, prop) in java["properties"].as_object().unwrap() {
            assert_eq!(ours["properties"][key]["type"], prop["type"], "{key}");
            assert_eq!(ours["properties"][key]["enum"], prop["enum"], "{key}");
        }
        // Every Java branch of `protocol` is still there, accepting what it accepted: the same properties with the
        // same types and at least the same values, and nothing newly required.
        let ours_branches = ours["properties"]["protocol"]["oneOf"].as_array().unwrap();
        for branch in java["properties"]["protocol"]["oneOf"].as_array().unwrap() {
            let kind = &branch["properties"]["security_protocol"]["enum"];
            let mine = ours_branches.iter().find(|b| b["properties"]["security_protocol"]["enum"] == *kind).unwrap();
            for (key, prop) in branch["properties"].as_object().unwrap() {
                assert_eq!(mine["properties"][key]["type"], prop["type"], "{kind} {key}");
                for value in prop["enum"].as_array().into_iter().flatten() {
                    assert!(
                        mine["properties"][key]["enum"].as_array().unwrap().contains(value),
                        "{kind} {key} {value}"
                    );
                }
            }
            for required in mine["required"].as_array().unwrap() {
                assert!(branch["required"].as_array().unwrap().contains(required), "{kind}: {required} newly required");
            }
        }
        assert_eq!(spec()["supported_destination_sync_modes"], serde_json::json!(["append", "append_dedup"]));
        // The SSL branch the Java connector lacked.
        assert!(ours_branches
            .iter()
            .any(|b| b["properties"]["security_protocol"]["enum"] == serde_json::json!(["SSL"])));
    }

    #[test]
    fn new_keys_are_documented() {
        let java = java_spec();
        for (key, prop) in spec()["connectionSpecification"]["properties"].as_object().unwrap() {
            assert!(prop["order"].is_u64() && prop["group"].is_string(), "{key} has no UI hints");
            if java["connectionSpecification"]["properties"].get(key).is_none() {
                for field in ["title", "description", "default"] {
                    assert!(prop.get(field).is_some(), "new key {key} has no {field}");
                }
            }
        }
    }
}
