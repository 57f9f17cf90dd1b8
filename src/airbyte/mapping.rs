//! The connection's namespace mapping and stream prefix. On stdin the platform applies them before the destination
//! sees anything; in Speed Mode the source's names arrive unchanged, with the catalog, and the destination applies
//! them itself, exactly as the bulk CDK's `NamespaceMapper` does.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The platform's mapping file: `{"namespaceDefinitionType": "source" | "destination" | "customformat",
/// "namespaceFormat": "…", "streamPrefix": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mapping {
    namespace_definition_type: Definition,
    #[serde(default)]
    namespace_format: Option<String>,
    #[serde(default)]
    stream_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Definition {
    /// The source's namespace.
    Source,
    /// None: the destination's default.
    Destination,
    /// `namespaceFormat`, with `${SOURCE_NAMESPACE}` replaced.
    Customformat,
}

/// The placeholder of a custom namespace format.
const SOURCE_NAMESPACE: &str = "${SOURCE_NAMESPACE}";

impl Mapping {
    /// The identity: what stdin gets.
    pub fn identity() -> Mapping {
        Mapping { namespace_definition_type: Definition::Source, namespace_format: None, stream_prefix: None }
    }

    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the namespace mapping {} (NAMESPACE_MAPPING_CONFIG_PATH): {e}",
                path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("the namespace mapping {} is not one: {e}", path.display())))
    }

    /// A stream's namespace and name as the destination writes them.
    pub fn map(&self, namespace: Option<&str>, name: &str) -> (Option<String>, String) {
        let namespace = match self.namespace_definition_type {
            Definition::Source => namespace.map(str::to_string),
            Definition::Destination => None,
            Definition::Customformat => {
                let format = self.namespace_format.as_deref().filter(|f| !f.trim().is_empty());
                let source = namespace.filter(|n| !n.trim().is_empty()).unwrap_or("");
                format.map(|f| f.replace(SOURCE_NAMESPACE, source)).filter(|n| !n.trim().is_empty())
            }
        };
        let name = match self.stream_prefix.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_string(),
        };
        (namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(json: &str) -> Mapping {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_cdks_rules_written_out() {
        // (mapping, source namespace, source name) → (namespace, name), from NamespaceMapper.kt's rules.
        type Case<'a> = (&'a str, Option<&'a str>, &'a str, Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (r#"{"namespaceDefinitionType":"source"}"#, Some("shop"), "users", Some("shop"), "users"),
            (r#"{"namespaceDefinitionType":"source"}"#, None, "users", None, "users"),
            (r#"{"namespaceDefinitionType":"destination"}"#, Some("shop"), "users", None, "users"),
            (
                r#"{"namespaceDefinitionType":"customformat","namespaceFormat":"raw_${SOURCE_NAMESPACE}_${SOURCE_NAMESPACE}"}"#,
                Some("shop"),
                "users",
                Some("raw_shop_shop"),
                "users",
            ),
            (
                r#"{"namespaceDefinitionType":"customformat","namespaceFormat":"raw_${SOURCE_NAMESPACE}"}"#,
                None,
                "u",
                Some("raw_"),
                "u",
            ),
            (
                r#"{"namespaceDefinitionType":"customformat","namespaceFormat":"${SOURCE_NAMESPACE}"}"#,
                Some(" "),
                "u",
                None,
                "u",
            ),
            (r#"{"namespaceDefinitionType":"customformat","namespaceFormat":"  "}"#, Some("shop"), "u", None, "u"),
            (r#"{"namespaceDefinitionType":"customformat"}"#, Some("shop"), "u", None, "u"),
            (
                r#"{"namespaceDefinitionType":"source","streamPrefix":"pre_"}"#,
                Some("shop"),
                "users",
                Some("shop"),
                "pre_users",
            ),
            (r#"{"namespaceDefinitionType":"source","streamPrefix":"   "}"#, None, "users", None, "users"),
            (
                r#"{"namespaceDefinitionType":"source","streamPrefix":null,"namespaceFormat":null}"#,
                None,
                "u",
                None,
                "u",
            ),
        ];
        for (json, namespace, name, want_namespace, want_name) in cases {
            let got = mapping(json).map(*namespace, name);
            assert_eq!(
                got,
                (want_namespace.map(str::to_string), want_name.to_string()),
                "{json} on {namespace:?}.{name}"
            );
        }
        assert_eq!(Mapping::identity().map(Some("n"), "s"), (Some("n".into()), "s".into()));
    }

    #[test]
    fn unknown_kinds_and_missing_files_are_config_errors() {
        assert!(serde_json::from_str::<Mapping>(r#"{"namespaceDefinitionType":"Source"}"#).is_err());
        match Mapping::load(Path::new("/nonexistent/mapping.json")) {
            Err(Error::Config(m)) => assert!(m.contains("NAMESPACE_MAPPING_CONFIG_PATH"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
