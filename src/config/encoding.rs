//! The settings of how a record becomes a message (`key`, `headers`, `timestamp`, `format`): plain data, read by
//! the encoders (`format`), which take only these, never the whole config.

use super::lenient;
use crate::secret::Secret;
use serde::Deserialize;

/// What the encoders are given.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Encoding {
    #[serde(default)]
    pub key: KeySettings,
    /// The `airbyte.*` context headers, or headers of the user's.
    #[serde(default)]
    pub headers: HeaderSettings,
    /// CloudEvents' Kafka binding, binary mode: `ce_*` and `content-type` headers on every message.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub cloudevents: bool,
    /// `ce_source`, with `{namespace}` and `{stream}` filled in; blank = [`DEFAULT_CLOUDEVENTS_SOURCE`].
    #[serde(default)]
    pub cloudevents_source: String,
    #[serde(default)]
    pub timestamp: TimestampSettings,
    #[serde(default)]
    pub format: FormatSettings,
}

/// `headers`: `true` for the `airbyte.*` context headers, or a map of header name → text in which `{namespace}`
/// and `{stream}` are filled in per stream (for consumers that route on headers).
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum HeaderSettings {
    Context(#[serde(deserialize_with = "lenient::boolean")] bool),
    Templates(std::collections::BTreeMap<String, String>),
}

impl Default for HeaderSettings {
    fn default() -> Self {
        HeaderSettings::Context(false)
    }
}

/// The `ce_source` of a stream's events unless `cloudevents_source` says otherwise.
pub const DEFAULT_CLOUDEVENTS_SOURCE: &str = "/airbyte/{namespace}/{stream}";

/// `key`: what each message's key is.
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum KeySettings {
    /// A fresh UUID per record, the envelope's `_airbyte_ab_id` (the Java connector's key).
    #[default]
    Uuid,
    PrimaryKey,
    Fields {
        fields: Vec<String>,
    },
    None,
}

/// `timestamp`: each message's timestamp.
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum TimestampSettings {
    #[default]
    ProduceTime,
    EmittedAt,
    Field {
        field: String,
    },
}

/// `format`: what the value of each message is.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FormatSettings {
    /// The Java connector's envelope, byte for byte.
    #[default]
    AirbyteJson,
    /// The record's `data`, verbatim.
    Json,
    /// The record with Airbyte's current (v2) metadata.
    AirbyteV2Json,
    /// What Kafka Connect's JsonConverter reads (`schemas.enable=true`).
    ConnectJson,
    /// Avro in Confluent's wire format, the schema registered.
    Avro(RegistrySettings),
    /// JSON in Confluent's wire format, with its JSON schema registered.
    JsonSchema(RegistrySettings),
    /// Protobuf in Confluent's wire format, a `.proto` schema registered.
    Protobuf(RegistrySettings),
    /// Debezium's change events, keyed by the primary key.
    DebeziumJson(DebeziumSettings),
    /// The bytes of one field of the record.
    Raw {
        field: String,
        #[serde(default, deserialize_with = "lenient::boolean")]
        base64: bool,
    },
}

impl FormatSettings {
    pub fn registry(&self) -> Option<&RegistrySettings> {
        match self {
            FormatSettings::Avro(r) | FormatSettings::JsonSchema(r) | FormatSettings::Protobuf(r) => Some(r),
            _ => None,
        }
    }
}

/// The settings of `debezium_json`.
#[derive(Debug, Deserialize, PartialEq)]
pub struct DebeziumSettings {
    /// The `op` of a row of an incremental stream that is not deleted: Airbyte does not tell an insert from an update.
    #[serde(default)]
    pub op_for_changes: ChangeOp,
    /// Keep the `_ab_cdc_*` columns in the row (they are in `source` either way).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub keep_cdc_columns: bool,
    /// A tombstone (the key, no value) after each delete event, as Debezium's `tombstones.on.delete`.
    #[serde(default = "yes", deserialize_with = "lenient::boolean")]
    pub tombstones_on_delete: bool,
    /// Kafka Connect's `{schema, payload}` wrapping of key and value (`schemas.enable=true`).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub schemas_enable: bool,
}

fn yes() -> bool {
    true
}

/// Debezium's `op` for a row that is not deleted.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// `c` (create): every reader takes it without a before-image.
    #[default]
    #[serde(rename = "c")]
    Create,
    /// `u` (update), with `before` null: readers that need a before-image (Flink) refuse it.
    #[serde(rename = "u")]
    Update,
}

/// The registry settings of the `avro` and `json_schema` formats.
#[derive(Debug, Deserialize, PartialEq)]
pub struct RegistrySettings {
    pub schema_registry_url: String,
    #[serde(default)]
    pub schema_registry_username: String,
    #[serde(default)]
    pub schema_registry_password: Secret,
    #[serde(default)]
    pub schema_registry_ca_certificates: String,
    #[serde(default)]
    pub subject_name_strategy: SubjectNameStrategy,
}

/// How a subject is named (Confluent's strategies).
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-value`.
    #[default]
    TopicNameStrategy,
    /// The record's full name (Avro) or the schema's title (JSON Schema).
    RecordNameStrategy,
    /// `<topic>-<record full name>`.
    TopicRecordNameStrategy,
}

impl SubjectNameStrategy {
    pub fn subject(self, topic: &str, record: &str) -> String {
        match self {
            SubjectNameStrategy::TopicNameStrategy => format!("{topic}-value"),
            SubjectNameStrategy::RecordNameStrategy => record.to_string(),
            SubjectNameStrategy::TopicRecordNameStrategy => format!("{topic}-{record}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_a_flag_or_the_users_map_checked_by_the_spec() {
        use crate::config::tests::{java_config, with};
        use crate::config::Settings;
        use serde_json::json;
        let headers = |value| Settings::from_value(with(java_config(), "headers", value)).map(|s| s.encoding.headers);
        assert_eq!(headers(json!(true)).unwrap(), HeaderSettings::Context(true));
        assert_eq!(headers(json!("true")).unwrap(), HeaderSettings::Context(true), "saved configs hold strings");
        let map = headers(json!({"route": "{stream}"})).unwrap();
        assert_eq!(map, HeaderSettings::Templates([("route".to_string(), "{stream}".to_string())].into()));
        let refused = headers(json!({"route": 1})).unwrap_err().to_string();
        assert!(refused.contains("headers.route"), "{refused}");
    }

    #[test]
    fn subject_names() {
        use SubjectNameStrategy::*;
        assert_eq!(TopicNameStrategy.subject("orders", "shop.orders"), "orders-value");
        assert_eq!(RecordNameStrategy.subject("orders", "shop.orders"), "shop.orders");
        assert_eq!(TopicRecordNameStrategy.subject("orders", "shop.orders"), "orders-shop.orders");
    }
}
