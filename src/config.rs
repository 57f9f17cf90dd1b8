//! The connector's config: validated against the spec, parsed into typed settings, mapped to librdkafka.
//!
//! Saved Java configs come in several shapes (numbers as strings, strings as numbers, 0.1.0 numbers): every
//! numeric field accepts both, and anything else is a config error naming the field.

use crate::error::{Error, Result};
use crate::{jaas, naming, spec};
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::ClientConfig;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Typed settings. `Debug` never shows the JAAS string (it holds the password).
#[derive(Debug, Deserialize)]
pub struct Settings {
    pub bootstrap_servers: String,
    pub topic_pattern: String,
    #[serde(default)]
    pub test_topic: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub sync_producer: bool,
    pub protocol: Protocol,
    #[serde(default)]
    pub client_id: Option<String>,
    pub acks: String,
    #[serde(deserialize_with = "lenient_bool")]
    pub enable_idempotence: bool,
    pub compression_type: String,
    #[serde(deserialize_with = "number")]
    pub batch_size: i64,
    #[serde(deserialize_with = "number")]
    pub linger_ms: i64,
    #[serde(deserialize_with = "number")]
    pub max_in_flight_requests_per_connection: i64,
    pub client_dns_lookup: String,
    #[serde(deserialize_with = "number")]
    pub buffer_memory: i64,
    #[serde(deserialize_with = "number")]
    pub max_request_size: i64,
    #[serde(deserialize_with = "number")]
    pub retries: i64,
    #[serde(deserialize_with = "number")]
    pub socket_connection_setup_timeout_ms: i64,
    /// Validated for compatibility; librdkafka has no equivalent (see README).
    #[serde(deserialize_with = "number")]
    pub socket_connection_setup_timeout_max_ms: i64,
    #[serde(deserialize_with = "number")]
    pub max_block_ms: i64,
    #[serde(deserialize_with = "number")]
    pub request_timeout_ms: i64,
    #[serde(deserialize_with = "number")]
    pub delivery_timeout_ms: i64,
    #[serde(deserialize_with = "number")]
    pub send_buffer_bytes: i64,
    #[serde(deserialize_with = "number")]
    pub receive_buffer_bytes: i64,
    /// Partitions of topics the connector creates; -1 = the broker's `num.partitions`.
    #[serde(default = "one", deserialize_with = "number")]
    pub topic_partitions: i64,
    /// Replication factor of topics the connector creates; -1 = the broker's `default.replication.factor`.
    #[serde(default = "broker_default", deserialize_with = "number")]
    pub topic_replication_factor: i64,
}

fn one() -> i64 {
    1
}

fn broker_default() -> i64 {
    -1
}

#[derive(Debug, Deserialize)]
#[serde(tag = "security_protocol")]
pub enum Protocol {
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext(Sasl),
    #[serde(rename = "SASL_SSL")]
    SaslSsl(Sasl),
}

#[derive(Debug, Deserialize)]
pub struct Sasl {
    pub sasl_mechanism: String,
    pub sasl_jaas_config: Secret,
}

/// A string that must never reach a log or an error message.
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A whole number given as a JSON number (`5`, `5.0`) or a numeric string (`"5"`).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(d)?;
    as_whole_number(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number or a numeric string, got {value}")))
}

fn as_whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| whole(s.trim().parse().ok()?)),
        _ => None,
    }
}

fn whole(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

/// `true`/`false`, also as the strings some hand-written configs use.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected true or false, got {other}"))),
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
        let schema = &spec::spec()["connectionSpecification"];
        coerce_scalars(schema, &mut value);
        validate(schema, &value)?;
        let settings: Settings = serde_path_to_error::deserialize(&value)
            .map_err(|e| Error::Config(format!("config field `{}`: {}", e.path(), e.inner())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the spec cannot express.
    fn validate(&self) -> Result<()> {
        let config = |m: String| Err(Error::Config(m));
        if self.bootstrap_servers.trim().is_empty() {
            return config("config field `bootstrap_servers` is empty: give host:port[,host:port...]".into());
        }
        if self.topic_partitions == 0 || self.topic_partitions < -1 || self.topic_partitions > i32::MAX as i64 {
            return config("config field `topic_partitions` must be -1 (broker default) or a positive number".into());
        }
        if self.topic_replication_factor == 0
            || self.topic_replication_factor < -1
            || self.topic_replication_factor > 32767
        {
            return config(
                "config field `topic_replication_factor` must be -1 (broker default) or a positive number".into(),
            );
        }
        if self.max_block_ms < 0 {
            return config("config field `max_block_ms` must not be negative".into());
        }
        if let Some(test_topic) = self.test_topic() {
            naming::check_topic(&test_topic, "`test_topic`").map_err(Error::Config)?;
        }
        // Builds the properties once so JAAS mistakes show up now, not at the first connection.
        self.properties().map(|_| ())
    }

    /// How long `write` and `discover` wait for the cluster's metadata (and topic creation) at startup: Java's
    /// `max_block_ms` budget, but never under 10 s.
    pub fn metadata_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_block_ms.max(10_000) as u64)
    }

    /// The sanitised test topic, when one is configured (blank counts as none, as in Java).
    pub fn test_topic(&self) -> Option<String> {
        self.test_topic.as_deref().filter(|t| !t.trim().is_empty()).map(naming::sanitize)
    }

    /// librdkafka properties, each with the config field it came from (to name it when librdkafka refuses it).
    pub fn properties(&self) -> Result<Vec<Property>> {
        let mut props = vec![
            Property::new("bootstrap.servers", &self.bootstrap_servers, "bootstrap_servers"),
            Property::new("acks", &self.acks, "acks"),
            Property::new("enable.idempotence", self.enable_idempotence, "enable_idempotence"),
            Property::new("compression.type", &self.compression_type, "compression_type"),
            Property::new("batch.size", self.batch_size, "batch_size"),
            Property::new("linger.ms", self.linger_ms, "linger_ms"),
            Property::new(
                "max.in.flight.requests.per.connection",
                self.max_in_flight_requests_per_connection,
                "max_in_flight_requests_per_connection",
            ),
            Property::new("client.dns.lookup", dns_lookup(&self.client_dns_lookup), "client_dns_lookup"),
            Property::new("queue.buffering.max.kbytes", (self.buffer_memory / 1024).max(1), "buffer_memory"),
            // librdkafka's ~250 bytes of bookkeeping per message are not in kbytes: one message per KiB of budget
            // keeps the real footprint near `buffer_memory` whatever the message size.
            Property::new(
                "queue.buffering.max.messages",
                (self.buffer_memory / 1024).clamp(1000, 100_000),
                "buffer_memory",
            ),
            Property::new("message.max.bytes", self.max_request_size, "max_request_size"),
            Property::new("retries", self.retries, "retries"),
            Property::new(
                "socket.connection.setup.timeout.ms",
                self.socket_connection_setup_timeout_ms,
                "socket_connection_setup_timeout_ms",
            ),
            Property::new("request.timeout.ms", self.request_timeout_ms, "request_timeout_ms"),
            Property::new("message.timeout.ms", self.delivery_timeout_ms, "delivery_timeout_ms"),
            // Java's -1 means "OS default", which librdkafka spells 0.
            Property::new("socket.send.buffer.bytes", self.send_buffer_bytes.max(0), "send_buffer_bytes"),
            Property::new("socket.receive.buffer.bytes", self.receive_buffer_bytes.max(0), "receive_buffer_bytes"),
            // Java's default partitioner hashes the key with murmur2: keep records on the same partitions.
            Property::new("partitioner", "murmur2_random", "partitioner"),
        ];
        if let Some(client_id) = self.client_id.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            props.push(Property::new("client.id", client_id, "client_id"));
        }
        let (security, sasl) = match &self.protocol {
            Protocol::Plaintext => ("PLAINTEXT", None),
            Protocol::SaslPlaintext(sasl) => ("SASL_PLAINTEXT", Some(sasl)),
            Protocol::SaslSsl(sasl) => ("SASL_SSL", Some(sasl)),
        };
        props.push(Property::new("security.protocol", security, "protocol.security_protocol"));
        if let Some(sasl) = sasl {
            props.push(Property::new("sasl.mechanism", &sasl.sasl_mechanism, "protocol.sasl_mechanism"));
            let bad_jaas = |m: String| Error::Config(format!("config field `protocol.sasl_jaas_config` {m}"));
            let jaas = jaas::parse(sasl.sasl_jaas_config.expose()).map_err(bad_jaas)?;
            for (key, value) in jaas::sasl_properties(&sasl.sasl_mechanism, &jaas).map_err(bad_jaas)? {
                props.push(Property::new(key, value, "protocol.sasl_jaas_config"));
            }
        }
        Ok(props)
    }

    /// A librdkafka client (producer or admin) with these settings. librdkafka checks ranges
    /// and combinations here; its complaint is turned into a config error naming the user's field.
    pub fn client<C, T>(&self, context: C) -> Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        let props = self.properties()?;
        let mut config = ClientConfig::new();
        for p in &props {
            config.set(p.key, &p.value);
        }
        config.create_with_context(context).map_err(|e| Error::Config(explain_rejection(&e.to_string(), &props)))
    }
}

/// One librdkafka property and the config field it came from.
pub struct Property {
    pub key: &'static str,
    pub value: String,
    pub field: &'static str,
}

impl Property {
    fn new(key: &'static str, value: impl ToString, field: &'static str) -> Property {
        Property { key, value: value.to_string(), field }
    }
}

/// Turns librdkafka's complaint about `some.property` into one about the user's field.
fn explain_rejection(message: &str, props: &[Property]) -> String {
    let culprit =
        props.iter().find(|p| message.contains(&format!("\"{}\"", p.key)) || message.contains(&format!("`{}`", p.key)));
    match culprit {
        Some(p) => format!("config field `{}` (librdkafka `{}`) is refused: {message}", p.field, p.key),
        None => format!("the producer settings are refused by librdkafka: {message}"),
    }
}

/// Kafka removed `default`; it behaved like `use_all_dns_ips` in every client we replace.
fn dns_lookup(value: &str) -> &str {
    if value == "default" {
        "use_all_dns_ips"
    } else {
        value
    }
}

/// Aligns each top-level scalar with the type the spec declares: `"16384"` → 16384 where the spec says integer,
/// `0` → `"0"` where it says string. Saved configs hold both shapes; anything not convertible is left for the
/// validator to name.
fn coerce_scalars(schema: &Value, config: &mut Value) {
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), config.as_object_mut()) else {
        return;
    };
    for (key, value) in obj.iter_mut() {
        match (props.get(key).and_then(|p| p["type"].as_str()), &*value) {
            (Some("integer"), Value::String(_)) => {
                if let Some(n) = as_whole_number(value) {
                    *value = Value::from(n);
                }
            }
            (Some("integer"), Value::Number(n)) if n.as_i64().is_none() => {
                if let Some(n) = as_whole_number(value) {
                    *value = Value::from(n);
                }
            }
            (Some("string"), Value::Number(n)) => *value = Value::String(n.to_string()),
            (Some("boolean"), Value::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                *value = Value::Bool(s.eq_ignore_ascii_case("true"));
            }
            _ => {}
        }
    }
}

/// JSON-schema validation with messages that name the field but never show its value (it may be a secret).
fn validate(schema: &Value, config: &Value) -> Result<()> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| Error::System(format!("the embedded spec is not a valid JSON schema: {e}")))?;
    let problems: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let path = e.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            let hint = if field == "protocol" {
                " (security_protocol must be PLAINTEXT, SASL_PLAINTEXT or SASL_SSL; SASL needs sasl_mechanism and sasl_jaas_config)"
            } else {
                ""
            };
            if field.is_empty() {
                format!("config: {}{hint}", e.masked())
            } else {
                format!("config field `{field}`: {}{hint}", e.masked())
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A config as Airbyte's UI saves it for the Java connector 0.1.11.
    fn java_config() -> Value {
        json!({
            "bootstrap_servers": "kafka-broker1:9092,kafka-broker2:9092",
            "topic_pattern": "{namespace}.{stream}.sample",
            "protocol": {"security_protocol": "PLAINTEXT"},
            "acks": "all", "enable_idempotence": true, "compression_type": "zstd",
            "batch_size": 16384, "linger_ms": "5", "max_in_flight_requests_per_connection": 5,
            "client_dns_lookup": "use_all_dns_ips", "buffer_memory": "33554432", "max_request_size": 1048576,
            "retries": 2147483647, "socket_connection_setup_timeout_ms": "10000",
            "socket_connection_setup_timeout_max_ms": "30000", "max_block_ms": "60000",
            "request_timeout_ms": 30000, "delivery_timeout_ms": 120000,
            "send_buffer_bytes": -1, "receive_buffer_bytes": 32768
        })
    }

    fn with(mut config: Value, key: &str, value: Value) -> Value {
        config[key] = value;
        config
    }

    fn prop<'a>(props: &'a [Property], key: &str) -> Option<&'a str> {
        props.iter().find(|p| p.key == key).map(|p| p.value.as_str())
    }

    #[test]
    fn java_shape_maps_to_librdkafka() {
        let s = Settings::from_value(java_config()).unwrap();
        assert!(!s.sync_producer && s.test_topic().is_none() && s.client_id.is_none());
        let props = s.properties().unwrap();
        assert_eq!(prop(&props, "queue.buffering.max.kbytes"), Some("32768"));
        assert_eq!(prop(&props, "queue.buffering.max.messages"), Some("32768"));
        assert_eq!(prop(&props, "linger.ms"), Some("5"));
        assert_eq!(prop(&props, "socket.send.buffer.bytes"), Some("0"));
        assert_eq!(prop(&props, "socket.receive.buffer.bytes"), Some("32768"));
        assert_eq!(prop(&props, "message.timeout.ms"), Some("120000"));
        assert_eq!(prop(&props, "message.max.bytes"), Some("1048576"));
        assert_eq!(prop(&props, "partitioner"), Some("murmur2_random"));
        assert_eq!(prop(&props, "security.protocol"), Some("PLAINTEXT"));
        assert_eq!(prop(&props, "client.id"), None);
        assert_eq!((s.topic_partitions, s.topic_replication_factor), (1, -1));
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        // Java's own acceptance-test config: integers as strings.
        let mut c = java_config();
        for key in ["batch_size", "max_in_flight_requests_per_connection", "retries", "request_timeout_ms"] {
            let n = c[key].as_i64().unwrap();
            c[key] = json!(n.to_string());
        }
        // 0.1.0 configs: the string-typed fields as numbers.
        for key in ["linger_ms", "buffer_memory", "socket_connection_setup_timeout_ms", "max_block_ms"] {
            let n: i64 = c[key].as_str().unwrap().parse().unwrap();
            c[key] = json!(n);
        }
        c["sync_producer"] = json!(true);
        c["test_topic"] = json!("test.topic");
        c["client_id"] = json!("  ");
        let s = Settings::from_value(c).unwrap();
        assert_eq!((s.batch_size, s.linger_ms, s.buffer_memory, s.retries), (16384, 5, 33554432, 2147483647));
        assert!(s.sync_producer);
        assert_eq!(s.test_topic().as_deref(), Some("test_topic"));
        assert_eq!(prop(&s.properties().unwrap(), "client.id"), None);
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
            assert_eq!(prop(&props, "security.protocol"), Some(protocol));
            assert_eq!(prop(&props, "sasl.mechanism"), Some("SCRAM-SHA-512"));
            assert_eq!(prop(&props, "sasl.username"), Some("u"));
            assert_eq!(prop(&props, "sasl.password"), Some("hunter2"));
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the JAAS string");
        }
    }

    #[test]
    fn bad_protocols_are_config_errors_without_the_secret() {
        let bad_jaas = json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
            "sasl_jaas_config": "username=\"u\" password=\"hunter2\""});
        let err = Settings::from_value(with(java_config(), "protocol", bad_jaas)).err().unwrap().to_string();
        assert!(err.contains("sasl_jaas_config") && !err.contains("hunter2"), "{err}");

        let no_password = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_jaas_config": "x.PlainLoginModule required username=\"u\";"});
        let err = Settings::from_value(with(java_config(), "protocol", no_password)).err().unwrap().to_string();
        assert!(err.contains("`password`"), "{err}");

        let ssl_only = json!({"security_protocol": "SSL", "sasl_jaas_config": "hunter2"});
        let err = Settings::from_value(with(java_config(), "protocol", ssl_only)).err().unwrap().to_string();
        assert!(err.contains("`protocol`") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn librdkafka_refusals_name_the_field() {
        let s = Settings::from_value(with(java_config(), "batch_size", json!(-5))).unwrap();
        let err = s.client::<_, rdkafka::producer::BaseProducer>(rdkafka::producer::DefaultProducerContext);
        let err = err.err().unwrap().to_string();
        assert!(err.contains("`batch_size`") && err.contains("batch.size"), "{err}");

        // Idempotence needs acks=all, in Java and in librdkafka alike.
        let s = Settings::from_value(with(java_config(), "acks", json!("1"))).unwrap();
        let err = s.client::<_, rdkafka::producer::BaseProducer>(rdkafka::producer::DefaultProducerContext);
        assert!(matches!(err, Err(Error::Config(_))));
    }

    #[test]
    fn dns_lookup_default_and_new_keys() {
        let c = with(java_config(), "client_dns_lookup", json!("default"));
        let c = with(c, "topic_partitions", json!("3"));
        let s = Settings::from_value(c).unwrap();
        assert_eq!(prop(&s.properties().unwrap(), "client.dns.lookup"), Some("use_all_dns_ips"));
        assert_eq!(s.topic_partitions, 3);
        let err = Settings::from_value(with(java_config(), "topic_partitions", json!(0))).err().unwrap().to_string();
        assert!(err.contains("topic_partitions"), "{err}");
    }

    #[test]
    fn bad_test_topic_is_named() {
        let err = Settings::from_value(with(java_config(), "test_topic", json!("x".repeat(300)))).err().unwrap();
        assert!(err.to_string().contains("test_topic"), "{err}");
    }
}
