//! The connector's config: validated against the spec, parsed into typed settings, mapped to librdkafka
//! properties (`librdkafka`), with security (`security`) and the encoders' settings (`encoding`) in their own
//! modules. It depends on nothing else of the connector: the commands, the encoders and the Kafka layer read it.
//!
//! Saved Java configs come in several shapes (numbers as strings, strings as numbers, 0.1.0 numbers): every
//! numeric field accepts both (`lenient`), and anything else is a config error naming the field.

pub mod channel;
pub mod delivery;
pub mod encoding;
pub mod jaas;
pub mod lenient;
pub mod librdkafka;
pub mod properties;
pub mod security;
pub mod spec;

use crate::error::{Error, Result};
use crate::naming;
use encoding::Encoding;
use security::Security;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Typed settings. `Debug` never shows a secret.
#[derive(Debug, Deserialize)]
pub struct Settings {
    pub bootstrap_servers: String,
    pub topic_pattern: String,
    #[serde(default)]
    pub test_topic: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub sync_producer: bool,
    #[serde(rename = "protocol")]
    pub security: Security,
    #[serde(default)]
    pub client_id: Option<String>,
    pub acks: Acks,
    #[serde(deserialize_with = "lenient::boolean")]
    pub enable_idempotence: bool,
    pub compression_type: Compression,
    #[serde(deserialize_with = "lenient::number")]
    pub batch_size: i64,
    #[serde(rename = "linger_ms", deserialize_with = "lenient::millis")]
    pub linger: Duration,
    #[serde(deserialize_with = "lenient::number")]
    pub max_in_flight_requests_per_connection: i64,
    pub client_dns_lookup: DnsLookup,
    /// Bytes.
    #[serde(deserialize_with = "lenient::number")]
    pub buffer_memory: i64,
    /// Bytes.
    #[serde(deserialize_with = "lenient::number")]
    pub max_request_size: i64,
    #[serde(deserialize_with = "lenient::number")]
    pub retries: i64,
    #[serde(rename = "socket_connection_setup_timeout_ms", deserialize_with = "lenient::millis")]
    pub socket_connection_setup_timeout: Duration,
    /// Validated for compatibility; librdkafka has no equivalent (see README).
    #[serde(rename = "socket_connection_setup_timeout_max_ms", deserialize_with = "lenient::millis")]
    pub socket_connection_setup_timeout_max: Duration,
    /// How long a full producer queue may go without progress (and the startup budget).
    #[serde(rename = "max_block_ms", deserialize_with = "lenient::millis")]
    pub max_block: Duration,
    #[serde(rename = "request_timeout_ms", deserialize_with = "lenient::millis")]
    pub request_timeout: Duration,
    #[serde(rename = "delivery_timeout_ms", deserialize_with = "lenient::millis")]
    pub delivery_timeout: Duration,
    /// Java's -1 = the OS default.
    #[serde(deserialize_with = "lenient::number")]
    pub send_buffer_bytes: i64,
    #[serde(deserialize_with = "lenient::number")]
    pub receive_buffer_bytes: i64,
    /// Partitions of topics the connector creates; -1 = the broker's `num.partitions`.
    #[serde(default = "one", deserialize_with = "lenient::number")]
    pub topic_partitions: i64,
    /// Replication factor of topics the connector creates; -1 = the broker's `default.replication.factor`.
    #[serde(default = "broker_default", deserialize_with = "lenient::number")]
    pub topic_replication_factor: i64,
    #[serde(default)]
    pub delivery_guarantee: DeliveryGuarantee,
    /// Blank: derived from the connection (see `transactional_id`).
    #[serde(default)]
    pub transactional_id: String,
    #[serde(
        rename = "transaction_commit_interval_ms",
        default = "commit_interval",
        deserialize_with = "lenient::millis"
    )]
    pub transaction_commit_interval: Duration,
    #[serde(rename = "transaction_max_ms", default = "transaction_max_age", deserialize_with = "lenient::millis")]
    pub transaction_max_age: Duration,
    #[serde(default = "transaction_max_records", deserialize_with = "lenient::number")]
    pub transaction_max_records: i64,
    /// exactly_once: recognise a retry's replay of checkpoints an earlier attempt committed (see `write::replay`).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub replay_detection: bool,
    /// The compacted topic that keeps, per transactional id, what the last commits covered.
    #[serde(default = "progress_topic")]
    pub progress_topic: String,
    /// Speed Mode: how long to wait for each socket file to appear.
    #[serde(rename = "socket_wait_ms", default = "channel::socket_wait", deserialize_with = "lenient::millis")]
    pub socket_wait: Duration,
    /// `key`, `headers`, `timestamp`, `format`: how a record becomes a message.
    #[serde(flatten)]
    pub encoding: Encoding,
    #[serde(default)]
    pub record_errors: RecordErrors,
    /// Extra librdkafka properties, applied last (see `librdkafka::Properties::pass_through`).
    #[serde(default)]
    pub kafka_properties: std::collections::BTreeMap<String, Value>,
}

/// What happens to a record rejected on its own account (`record_errors`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum RecordErrors {
    /// The sync fails (the Java connector's behaviour).
    #[default]
    Fail,
    /// The record goes to a dead-letter topic, and the sync goes on.
    DeadLetter { topic_pattern: String },
}

impl RecordErrors {
    pub fn dead_letter_pattern(&self) -> Option<&str> {
        match self {
            RecordErrors::Fail => None,
            RecordErrors::DeadLetter { topic_pattern } => Some(topic_pattern),
        }
    }
}

/// What a STATE promises (`delivery_guarantee`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryGuarantee {
    /// Every record before it is acknowledged; a retried sync may write records after the last STATE again.
    #[default]
    AtLeastOnce,
    /// Every record before it is in a committed Kafka transaction.
    ExactlyOnce,
}

fn progress_topic() -> String {
    "airbyte-destination-kafka-progress".into()
}

fn commit_interval() -> Duration {
    Duration::from_millis(100)
}

fn transaction_max_age() -> Duration {
    Duration::from_secs(30)
}

fn transaction_max_records() -> i64 {
    500_000
}

fn one() -> i64 {
    1
}

fn broker_default() -> i64 {
    -1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Acks {
    #[serde(rename = "0")]
    None,
    #[serde(rename = "1")]
    Leader,
    #[serde(rename = "all")]
    All,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsLookup {
    /// Kafka removed `default`; it behaved like `use_all_dns_ips` in every client we replace.
    #[serde(alias = "default")]
    UseAllDnsIps,
    ResolveCanonicalBootstrapServersOnly,
}

impl DnsLookup {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsLookup::UseAllDnsIps => "use_all_dns_ips",
            DnsLookup::ResolveCanonicalBootstrapServersOnly => "resolve_canonical_bootstrap_servers_only",
        }
    }
}

impl Settings {
    /// Reads, validates and parses a config file. Every failure is a config error that names the field.
    pub fn load(path: &str) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the config file {path}: {e}")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("the config file {path} is not valid JSON: {e}")))?;
        Settings::from_value(value)
    }

    pub fn from_value(mut value: Value) -> Result<Settings> {
        if let Some(protocol) = value.get("protocol").filter(|p| !p.is_object()) {
            let kind = match protocol {
                Value::String(_) => "a string",
                Value::Null => "null",
                Value::Array(_) => "an array",
                _ => "a scalar",
            };
            return Err(Error::Config(format!(
                "config field `protocol` must be an object such as {{\"security_protocol\": \"PLAINTEXT\"}}, not {kind}"
            )));
        }
        let schema = &spec::spec()["connectionSpecification"];
        lenient::coerce_scalars(schema, &mut value);
        lenient::validate(schema, &value)?;
        let settings: Settings = serde_path_to_error::deserialize(&value)
            .map_err(|e| Error::Config(format!("config field `{}`: {}", e.path(), e.inner())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the spec cannot express.
    fn validate(&self) -> Result<()> {
        let config = |m: &str| Err(Error::Config(m.to_string()));
        if self.bootstrap_servers.trim().is_empty() {
            return config("config field `bootstrap_servers` is empty: give host:port[,host:port...]");
        }
        // librdkafka takes its own security protocols as a prefix and refuses any other scheme, which it then
        // reports as "no brokers", a transient error; a URL here is a config mistake.
        for server in self.bootstrap_servers.split(',') {
            if let Some((scheme, _)) = server.trim().split_once("://") {
                if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&scheme.to_ascii_lowercase().as_str()) {
                    return Err(Error::Config(format!(
                        "config field `bootstrap_servers`: `{}` is a URL; give host:port pairs (the protocol is set \
                         by `protocol.security_protocol`)",
                        server.trim()
                    )));
                }
            }
        }
        if self.topic_partitions == 0 || self.topic_partitions < -1 || self.topic_partitions > i32::MAX as i64 {
            return config("config field `topic_partitions` must be -1 (broker default) or a positive number");
        }
        if self.topic_replication_factor == 0
            || self.topic_replication_factor < -1
            || self.topic_replication_factor > 32767
        {
            return config("config field `topic_replication_factor` must be -1 (broker default) or a positive number");
        }
        if let Some(test_topic) = self.test_topic() {
            naming::check_topic(&test_topic, "`test_topic`")?;
        }
        // A pattern that fails even for a plain stream name can never give a valid topic.
        let sample = naming::topic_name(&self.topic_pattern, Some("namespace"), "stream");
        naming::check_topic(&sample, "`topic_pattern` (for namespace `namespace`, stream `stream`)")?;
        if let Some(pattern) = self.record_errors.dead_letter_pattern() {
            let sample = naming::topic_name(pattern, Some("namespace"), "stream");
            naming::check_topic(&sample, "`record_errors.topic_pattern` (for namespace `namespace`, stream `stream`)")?;
        }
        if self.replay_detection {
            if !self.exactly_once() {
                return config(
                    "config field `replay_detection` needs `delivery_guarantee: exactly_once`: only a transaction can \
                     hold a replayed checkpoint back and drop it",
                );
            }
            naming::check_object_name(&self.progress_topic, "config field `progress_topic`")?;
        }
        if self.transaction_max_records < 1 {
            return config("config field `transaction_max_records` must be at least 1");
        }
        if self.transaction_max_age < Duration::from_secs(1) {
            return config("config field `transaction_max_ms` must be at least 1000");
        }
        // Builds the properties once so JAAS mistakes show up now, not at the first connection.
        self.properties().map(|_| ())
    }

    /// How long `write` and `discover` wait for the cluster's metadata (and topic creation) at startup: Java's
    /// `max_block_ms` budget, but never under 10 s.
    pub fn metadata_timeout(&self) -> Duration {
        self.max_block.max(Duration::from_secs(10))
    }

    /// How long librdkafka may take to report a record (retries included), plus a margin for the last round trip.
    pub fn delivery_budget(&self) -> Duration {
        self.message_timeout() + Duration::from_secs(5)
    }

    /// What the user should know about these settings before a sync: said as LOG warnings by `write`, and in
    /// `check`'s status.
    pub fn caveats(&self) -> Vec<String> {
        let mut caveats = self.security.caveats();
        if self.acks == Acks::None {
            caveats.push(
                "`acks` is 0: the broker acknowledges nothing, so a STATE then means its records were sent, not \
                 stored, and records in flight when a broker fails are lost without an error; use `1` or `all` for \
                 states that mean stored"
                    .to_string(),
            );
        }
        if self.exactly_once() {
            if self.acks != Acks::All || !self.enable_idempotence {
                caveats.push(
                    "`delivery_guarantee` is exactly_once: the producer is idempotent with acks=all, whatever \
                     `acks` and `enable_idempotence` say"
                        .to_string(),
                );
            }
            if self.delivery_timeout > self.transaction_timeout() {
                caveats.push(format!(
                    "`delivery_timeout_ms` ({} ms) is longer than the transaction timeout ({} ms, twice \
                     `transaction_max_ms`): a record must be delivered within the transaction, so it is cut to that",
                    self.delivery_timeout.as_millis(),
                    self.transaction_timeout().as_millis()
                ));
            }
        }
        if self.max_request_size > self.buffer_memory {
            caveats.push(format!(
                "`buffer_memory` ({} bytes) is smaller than `max_request_size` ({} bytes): the producer queue holds \
                 {} bytes, so that the largest record allowed fits",
                self.buffer_memory,
                self.max_request_size,
                self.queue_bytes()
            ));
        }
        caveats
    }

    /// The sanitised test topic, when one is configured (blank counts as none, as in Java).
    pub fn test_topic(&self) -> Option<String> {
        self.test_topic.as_deref().filter(|t| !t.trim().is_empty()).map(naming::sanitize)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The base config of every test (`tests/fixtures/config.json`): the Java connector's keys as Airbyte saved
    /// them, integers as strings.
    pub fn java_config() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/config.json")).expect("the fixture is JSON")
    }

    pub fn with(mut config: Value, key: &str, value: Value) -> Value {
        config[key] = value;
        config
    }

    #[test]
    fn java_shape_is_typed() {
        let s = Settings::from_value(java_config()).unwrap();
        assert!(!s.sync_producer && s.test_topic().is_none() && s.client_id.is_none());
        assert_eq!(
            (s.acks, s.compression_type, s.client_dns_lookup),
            (Acks::All, Compression::None, DnsLookup::UseAllDnsIps)
        );
        assert_eq!((s.batch_size, s.buffer_memory, s.retries), (16384, 33554432, 2147483647));
        assert_eq!((s.linger, s.max_block), (Duration::ZERO, Duration::from_secs(60)));
        assert_eq!((s.topic_partitions, s.topic_replication_factor), (1, -1));
        assert!(matches!(s.security, Security::Plaintext));
    }

    #[test]
    fn numbers_as_numbers_and_strings() {
        // 0.1.0 configs held numbers where later versions hold strings, and the other way round.
        let mut c = java_config();
        for key in ["batch_size", "retries", "request_timeout_ms", "linger_ms", "buffer_memory", "max_block_ms"] {
            let n: i64 = c[key].as_str().unwrap().parse().unwrap();
            c[key] = json!(n);
        }
        c["max_request_size"] = json!(1048576.0);
        c["sync_producer"] = json!("true");
        c["test_topic"] = json!("test.topic");
        c["client_id"] = json!("  ");
        c["acks"] = json!(1);
        let s = Settings::from_value(c).unwrap();
        assert_eq!(
            (s.batch_size, s.buffer_memory, s.retries, s.max_request_size),
            (16384, 33554432, 2147483647, 1048576)
        );
        assert_eq!((s.linger, s.request_timeout), (Duration::ZERO, Duration::from_secs(30)));
        assert_eq!(s.acks, Acks::Leader);
        assert!(s.sync_producer);
        assert_eq!(s.test_topic().as_deref(), Some("test_topic"));
        assert_eq!(s.properties().unwrap().get("client.id"), None);
    }

    /// Omitting a key means what the spec's `default` says: the spec (which the UI pre-fills) and the code agree.
    #[test]
    fn the_specs_defaults_are_the_codes() {
        let spec = &spec::spec()["connectionSpecification"];
        let base = Settings::from_value(java_config()).unwrap();
        let mut checked = 0;
        for (key, property) in spec["properties"].as_object().unwrap() {
            let Some(default) = property.get("default") else { continue };
            if java_config().get(key).is_some() || key == "protocol" {
                continue;
            }
            let given = Settings::from_value(with(java_config(), key, default.clone()))
                .unwrap_or_else(|e| panic!("the default of `{key}` is refused: {e}"));
            assert_eq!(format!("{given:?}"), format!("{base:?}"), "`{key}`: omitted differs from its default");
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} defaults checked");
        // The choice objects' defaults: each branch's own defaults, inside the object.
        let choices = [
            ("protocol", "security_protocol"),
            ("key", "mode"),
            ("timestamp", "source"),
            ("format", "type"),
            ("record_errors", "policy"),
        ];
        for (key, choices) in choices {
            for branch in spec["properties"][key]["oneOf"].as_array().unwrap() {
                let mut given = serde_json::Map::new();
                let mut omitted = serde_json::Map::new();
                for (field, p) in branch["properties"].as_object().unwrap() {
                    let value = p.get("default").or_else(|| p["enum"].get(0)).or_else(|| p["examples"].get(0)).cloned();
                    let Some(value) = value else { continue };
                    if field == choices || branch["required"].as_array().is_some_and(|r| r.contains(&json!(field))) {
                        let value = if field == "schema_registry_url" { json!("http://registry:8081") } else { value };
                        omitted.insert(field.clone(), value.clone());
                        given.insert(field.clone(), value);
                    } else {
                        given.insert(field.clone(), value);
                    }
                }
                if branch["properties"].get("sasl_mechanism").is_some() {
                    // Any mechanism needs credentials: the same in both.
                    for (field, value) in [("sasl_mechanism", "PLAIN"), ("sasl_username", "u"), ("sasl_password", "p")]
                    {
                        given.insert(field.into(), json!(value));
                        omitted.insert(field.into(), json!(value));
                    }
                }
                let of = |object: serde_json::Map<String, Value>| {
                    Settings::from_value(with(java_config(), key, Value::Object(object)))
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|e| panic!("{key} {branch}: {e}"))
                };
                assert_eq!(of(given), of(omitted), "`{key}`: a branch's defaults differ from the code's");
            }
        }
    }

    #[test]
    fn non_numbers_are_named() {
        for (key, value) in [("batch_size", json!("lots")), ("linger_ms", json!("soon")), ("retries", json!(1.5))] {
            let err = Settings::from_value(with(java_config(), key, value)).err().unwrap();
            assert!(matches!(err, Error::Config(_)));
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
        let err = Settings::from_value(with(java_config(), "acks", json!("2"))).err().unwrap().to_string();
        assert!(err.contains("`acks`"), "{err}");
        let err = Settings::from_value(with(java_config(), "request_timeout_ms", json!(-1))).err().unwrap().to_string();
        assert!(err.contains("`request_timeout_ms`") && err.contains("negative"), "{err}");
    }

    #[test]
    fn missing_required_keys_are_named() {
        let mut c = java_config();
        c.as_object_mut().unwrap().remove("max_block_ms");
        let err = Settings::from_value(c).err().unwrap().to_string();
        assert!(err.contains("max_block_ms"), "{err}");
    }

    #[test]
    fn unknown_keys_are_accepted() {
        assert!(Settings::from_value(with(java_config(), "something_new", json!({"x": 1}))).is_ok());
    }

    #[test]
    fn sasl_branches() {
        let jaas =
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="hunter2";"#;
        for protocol in ["SASL_PLAINTEXT", "SASL_SSL"] {
            let c = with(
                java_config(),
                "protocol",
                json!({"security_protocol": protocol, "sasl_mechanism": "SCRAM-SHA-512", "sasl_jaas_config": jaas}),
            );
            let s = Settings::from_value(c).unwrap();
            let props = s.properties().unwrap();
            assert_eq!(props.get("security.protocol"), Some(protocol));
            assert_eq!(props.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
            assert_eq!(props.get("sasl.username"), Some("u"));
            assert_eq!(props.get("sasl.password"), Some("hunter2"));
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the JAAS string");
            assert!(!format!("{props:?}").contains("hunter2"), "Debug must redact the password");
        }
    }

    #[test]
    fn bad_protocols_are_config_errors_without_the_secret() {
        let bad_jaas = json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
            "sasl_jaas_config": "username=\"u\" password=\"hunter2\""});
        let err = Settings::from_value(with(java_config(), "protocol", bad_jaas)).err().unwrap();
        assert_eq!(err.failure_type(), crate::error::FailureType::ConfigError);
        let err = err.to_string();
        assert!(err.contains("sasl_jaas_config") && !err.contains("hunter2"), "{err}");

        let no_password = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_jaas_config": "x.PlainLoginModule required username=\"u\";"});
        let err = Settings::from_value(with(java_config(), "protocol", no_password)).err().unwrap().to_string();
        assert!(err.contains("`password`"), "{err}");

        let unknown = json!({"security_protocol": "TLS", "sasl_jaas_config": "hunter2"});
        let err = Settings::from_value(with(java_config(), "protocol", unknown)).err().unwrap().to_string();
        assert_eq!(
            err,
            "config field `protocol.security_protocol` must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
        );
    }

    #[test]
    fn bootstrap_servers_are_host_port_pairs_not_urls() {
        let err = Settings::from_value(with(java_config(), "bootstrap_servers", json!("a:9092, http://b:9092")));
        assert_eq!(
            err.err().unwrap().to_string(),
            "config field `bootstrap_servers`: `http://b:9092` is a URL; give host:port pairs (the protocol is set by \
             `protocol.security_protocol`)"
        );
        // librdkafka's own prefixes stay accepted, as Java configs copied from listener settings have them.
        assert!(Settings::from_value(with(java_config(), "bootstrap_servers", json!("PLAINTEXT://a:9092"))).is_ok());
    }

    #[test]
    fn a_choice_object_names_the_choice_or_what_the_chosen_branch_lacks() {
        let err =
            |key: &str, value: Value| Settings::from_value(with(java_config(), key, value)).err().unwrap().to_string();
        assert_eq!(
            err("key", json!({"mode": "primary"})),
            "config field `key.mode` must be one of uuid, primary_key, fields, none"
        );
        assert_eq!(
            err("key", json!({"fields": ["id"]})),
            "config field `key.mode` is required, one of uuid, primary_key, fields, none"
        );
        assert_eq!(err("key", json!({"mode": "fields"})), "config field `key`: \"fields\" is a required property");
        assert_eq!(
            err("key", json!({"mode": "fields", "fields": "id"})),
            "config field `key.fields`: value is not of type \"array\""
        );
        assert_eq!(err("key", json!("uuid")), "config field `key`: value is not of type \"object\"");
        assert_eq!(
            err("format", json!({"type": "avro"})),
            "config field `format`: \"schema_registry_url\" is a required property"
        );
        assert_eq!(
            err("protocol", json!({"security_protocol": "SASL_SSL"})),
            "config field `protocol`: \"sasl_mechanism\" is a required property"
        );
    }

    #[test]
    fn protocol_must_be_an_object() {
        let err = Settings::from_value(with(java_config(), "protocol", json!("PLAINTEXT"))).err().unwrap().to_string();
        assert_eq!(
            err,
            "config field `protocol` must be an object such as {\"security_protocol\": \"PLAINTEXT\"}, not a string"
        );
    }

    #[test]
    fn caveats_of_acks_0_and_a_small_buffer() {
        assert!(Settings::from_value(java_config()).unwrap().caveats().is_empty());
        let c = with(with(java_config(), "acks", json!("0")), "enable_idempotence", json!(false));
        let caveats = Settings::from_value(c).unwrap().caveats();
        assert!(caveats.len() == 1 && caveats[0].contains("sent, not stored"), "{caveats:?}");
        let c = with(java_config(), "buffer_memory", json!("1000000"));
        let caveats = Settings::from_value(c).unwrap().caveats();
        assert!(caveats.len() == 1 && caveats[0].contains("1048576 bytes"), "{caveats:?}");
    }

    #[test]
    fn topic_settings() {
        let s = Settings::from_value(with(java_config(), "topic_partitions", json!("3"))).unwrap();
        assert_eq!(s.topic_partitions, 3);
        let err = Settings::from_value(with(java_config(), "topic_partitions", json!(0))).err().unwrap().to_string();
        assert!(err.contains("topic_partitions"), "{err}");
        let err = Settings::from_value(with(java_config(), "test_topic", json!("x".repeat(300)))).err().unwrap();
        assert!(err.to_string().contains("test_topic"), "{err}");
        for never in ["", "x".repeat(250).as_str()] {
            let err = Settings::from_value(with(java_config(), "topic_pattern", json!(never))).err().unwrap();
            assert!(err.to_string().contains("`topic_pattern`"), "{err}");
        }
        assert!(Settings::from_value(with(java_config(), "topic_pattern", json!("{namespace}"))).is_ok());
    }
}
