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
    #[serde(default = "broker_default", deserialize_with = "number")]
    pub topic_partitions: i64,
    /// Replication factor of topics the connector creates; -1 = the broker's `default.replication.factor`.
    #[serde(default = "broker_default", deserialize_with = "number")]
    pub topic_replication_factor: i64,
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
    as_whole_number(&value).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a whole number or a numeric string, got {value}"
        ))
    })
}

fn as_whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| whole(s.trim().parse().ok()?)),
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
        other => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other}"
        ))),
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
            return config(
                "config field `bootstrap_servers` is empty: give host:port[,host:port...]".into(),
            );
        }
        if self.topic_partitions == 0
            || self.topic_partitions < -1
            || self.topic_partitions > i32::MAX as i64
        {
            return config(
                "config field `topic_partitions` must be -1 (broker default) or a positive number"
                    .into(),
            );
        }
        if self.topic_replication_factor == 0
            || self.topic_replication_factor < -1
            || self.topic_replication_factor > 32767
        {
            return config("config field `topic_replication_factor` must be -1 (broker default) or a positive number".into());
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

    /// The sanitised test topic, when one is configured (blank counts as none, as in Java).
    pub fn test_topic(&self) -> Option<String> {
        self.test_topic
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(naming::sanitize)
    }

    /// librdkafka properties, each with the config field it came from (to name it when librdkafka refuses it).
    pub fn properties(&self) -> Result<Vec<Property>> {
        let mut props = vec![
            Property::new(
                "bootstrap.servers",
                &self.bootstrap_servers,
                "bootstrap_servers",
            ),
            Property::new("acks", &self.acks, "acks"),
            Property::new(
                "enable.idempotence",
                self.enable_idempotence,
                "enable_idempotence",
            ),
            Property::new(
                "compression.type",
                &self.compression_type,
                "compression_type",
            ),
            Property::new("batch.size", self.batch_size, "batch_size"),
            Property::new("linger.ms", self.linger_ms, "linger_ms"),
            Property::new(
                "max.in.flight.requests.per.connection",
                self.max_in_flight_requests_per_connection,
                "max_in_flight_requests_per_connection",
            ),
            Property::new(
                "client.dns.lookup",
                dns_lookup(&self.client_dns_lookup),
                "client_dns_lookup",
            ),
            Property::new(
                "queue.buffering.max.kbytes",
                (self.buffer_memory / 1024).max(1),
                "buffer_memory",
            ),
            Property::new(
                "message.max.bytes",
                self.max_request_size,
                "max_request_size",
            ),
            Property::new("retries", self.retries, "retries"),
            Property::new(
                "socket.connection.setup.timeout.ms",
                self.socket_connection_setup_timeout_ms,
                "socket_connection_setup_timeout_ms",
            ),
            Property::new(
                "request.timeout.ms",
                self.request_timeout_ms,
                "request_timeout_ms",
            ),
            Property::new(
                "message.timeout.ms",
                self.delivery_timeout_ms,
                "delivery_timeout_ms",
            ),
            // Java's -1 means "OS default", which librdkafka spells 0.
            Property::new(
                "socket.send.buffer.bytes",
                self.send_buffer_bytes.max(0),
                "send_buffer_bytes",
            ),
            Property::new(
                "socket.receive.buffer.bytes",
                self.receive_buffer_bytes.max(0),
                "receive_buffer_bytes",
            ),
            // Java's default partitioner hashes the key with murmur2: keep records on the same partitions.
            Property::new("partitioner", "murmur2_random", "partitioner"),
        ];
        if let Some(client_id) = self
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            props.push(Property::new("client.id", client_id, "client_id"));
        }
        let (security, sasl) = match &self.protocol {
            Protocol::Plaintext => ("PLAINTEXT", None),
            Protocol::SaslPlaintext(sasl) => ("SASL_PLAINTEXT", Some(sasl)),
            Protocol::SaslSsl(sasl) => ("SASL_SSL", Some(sasl)),
        };
        props.push(Property::new(
            "security.protocol",
            security,
            "protocol.security_protocol",
        ));
        if let Some(sasl) = sasl {
            props.push(Property::new(
                "sasl.mechanism",
                &sasl.sasl_mechanism,
                "protocol.sasl_mechanism",
            ));
            let bad_jaas =
                |m: String| Error::Config(format!("config field `protocol.sasl_jaas_config` {m}"));
            let jaas = jaas::parse(sasl.sasl_jaas_config.expose()).map_err(bad_jaas)?;
            for (key, value) in
                jaas::sasl_properties(&sasl.sasl_mechanism, &jaas).map_err(bad_jaas)?
            {
                props.push(Property::new(key, value, "protocol.sasl_jaas_config"));
            }
        }
        Ok(props)
    }

    /// A librdkafka client (producer or admin) with these settings plus `overrides`. librdkafka checks ranges
    /// and combinations here; its complaint is turned into a config error naming the user's field.
    pub fn client<C, T>(&self, context: C, overrides: &[(&str, &str)]) -> Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        let props = self.properties()?;
        let mut config = ClientConfig::new();
        for p in &props {
            config.set(p.key, &p.value);
        }
        for (key, value) in overrides {
            config.set(*key, *value);
        }
        config
            .create_with_context(context)
            .map_err(|e| Error::Config(explain_rejection(&e.to_string(), &props)))
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
        Property {
            key,
            value: value.to_string(),
            field,
        }
    }
}

/// Turns librdkafka's complaint about `some.property` into one about the user's field.
fn explain_rejection(message: &str, props: &[Property]) -> String {
    let culprit = props.iter().find(|p| {
        message.contains(&format!("\"{}\"", p.key)) || message.contains(&format!("`{}`", p.key))
    });
    match culprit {
        Some(p) => format!(
            "config field `{}` (librdkafka `{}`) is refused: {message}",
            p.field, p.key
        ),
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
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), config.as_object_mut())
    else {
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
