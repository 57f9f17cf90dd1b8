//! Our side of every librdkafka client: its creation (a refusal names the user's field), its logs become ours,
//! and the errors it reports on its own are kept to explain a later timeout.

use super::diagnostics::Diagnostics;
use super::msk_iam::MskIam;
use crate::config::properties::Properties;
use crate::error::{Error, Result};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::ClientConfig;
use std::sync::Mutex;

/// A librdkafka client (producer or admin) with these properties. librdkafka checks ranges and combinations
/// here; its complaint becomes a config error naming the user's field (or the TLS material at fault), never a
/// secret.
pub fn create<C: ClientContext, T: FromClientConfigAndContext<C>>(props: &Properties, context: C) -> Result<T> {
    let mut config = ClientConfig::new();
    for (key, value) in props.iter() {
        config.set(key, value);
    }
    config.create_with_context(context).map_err(|e| Error::Config(explain_refusal(props, &e.to_string())))
}

fn explain_refusal(props: &Properties, message: &str) -> String {
    // Read before the secrets are masked (a password may be an ordinary word of the message); says only fixed words.
    let tls = super::tls::explain(message, props.get("ssl.certificate.pem").is_some());
    let message = props.mask(message);
    match (tls, props.culprit(&message)) {
        (Some(why), _) => format!("{why} ({message})"),
        (None, Some((field, key))) => format!("config field `{field}` (librdkafka `{key}`) is refused: {message}"),
        (None, None) => format!("the producer settings are refused by librdkafka: {message}"),
    }
}

/// The client context: logs, diagnostics and statistics, plus whatever the client kind needs (`extra`: the
/// delivery listener of a producer).
pub struct Context<X> {
    pub diagnostics: Diagnostics,
    pub stats: Mutex<Option<Stats>>,
    /// Makes OAUTHBEARER tokens for AWS MSK IAM.
    pub msk_iam: Option<MskIam>,
    pub extra: X,
}

impl<X> Context<X> {
    pub fn new(extra: X, msk_iam: Option<MskIam>) -> Context<X> {
        Context { diagnostics: Diagnostics::default(), stats: Mutex::new(None), msk_iam, extra }
    }
}

/// What an operator looks at when a sync is slow, from librdkafka's latest statistics (`statistics.interval.ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Average broker round trip, the slowest broker's, in milliseconds.
    pub round_trip_ms: f64,
    /// Messages and bytes waiting in the producer's queues or in flight.
    pub queued_messages: u64,
    pub queued_bytes: u64,
    /// Average batch: messages and bytes (the topics' averages, weighted by nothing: an indication).
    pub batch_messages: f64,
    pub batch_bytes: f64,
    /// Produce requests sent again, since the start.
    pub retries: u64,
}

impl Stats {
    fn of(s: &Statistics) -> Stats {
        let round_trip_us = s.brokers.values().filter_map(|b| b.rtt.as_ref()).map(|w| w.avg).max().unwrap_or(0);
        let batches: Vec<_> = s.topics.values().filter(|t| t.batchcnt.avg > 0).collect();
        let mean = |f: &dyn Fn(&rdkafka::statistics::Topic) -> i64| {
            if batches.is_empty() {
                0.0
            } else {
                batches.iter().map(|t| f(t) as f64).sum::<f64>() / batches.len() as f64
            }
        };
        Stats {
            round_trip_ms: round_trip_us as f64 / 1000.0,
            queued_messages: s.msg_cnt,
            queued_bytes: s.msg_size,
            batch_messages: mean(&|t| t.batchcnt.avg),
            batch_bytes: mean(&|t| t.batchsize.avg),
            retries: s.brokers.values().map(|b| b.txretries).sum(),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "broker round trip {:.1} ms, {} messages ({:.1} MB) queued, batches of {:.0} messages ({:.0} KB) on \
             average, {} retries",
            self.round_trip_ms,
            self.queued_messages,
            self.queued_bytes as f64 / 1e6,
            self.batch_messages,
            self.batch_bytes / 1e3,
            self.retries
        )
    }
}

/// The reader of the progress topic is a consumer with the same context (logs, diagnostics, MSK IAM tokens).
impl<X: Send + Sync + 'static> rdkafka::consumer::ConsumerContext for Context<X> {}

impl<X: Send + Sync + 'static> ClientContext for Context<X> {
    /// librdkafka asks for OAUTHBEARER tokens here: MSK IAM's, or the refresh of an unsecured JWT (JAAS configs;
    /// librdkafka makes only the first of those itself when events are on).
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        if let Some(iam) = &self.msk_iam {
            let token = iam.token()?;
            return Ok(OAuthToken {
                token: token.value,
                principal_name: "destination-kafka".into(),
                lifetime_ms: token.expires_ms,
            });
        }
        match config {
            Some(config) => Ok(unsecured_jwt(config)),
            None => Err("no OAUTHBEARER token source is configured".into()),
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
        // Error logs carry the concrete cause ("Connection refused") that error events summarise.
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            let reason = message.split_once("]: ").map_or(message, |(_, rest)| rest);
            self.diagnostics.push(None, reason);
        }
    }

    /// librdkafka also logs these; they are kept to explain a later timeout.
    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.push(error.rdkafka_error_code(), reason);
    }

    fn stats(&self, statistics: Statistics) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stats::of(&statistics));
    }
}

/// An unsecured JWT (`alg: none`), as librdkafka makes from `sasl.oauthbearer.config` (`principal=.. scope=..`):
/// for development brokers only, as in Java.
fn unsecured_jwt(config: &str) -> OAuthToken {
    use base64::Engine as _;
    let option = |key: &str| config.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
    let principal = option("principal").unwrap_or("destination-kafka").to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut claims = serde_json::json!({"sub": principal, "iat": now, "exp": now + 3600});
    if let Some(scope) = option("scope") {
        claims["scope"] = scope.split(',').collect::<Vec<_>>().into();
    }
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims.to_string()));
    OAuthToken { token, principal_name: principal, lifetime_ms: (now as i64 + 3600) * 1000 }
}

fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!("librdkafka {facility}: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {facility}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!("librdkafka {facility}: {message}"),
        RDKafkaLogLevel::Debug => tracing::debug!("librdkafka {facility}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{java_config, with};
    use crate::config::Settings;
    use base64::Engine as _;
    use serde_json::json;

    fn producer(s: &Settings) -> Result<rdkafka::producer::BaseProducer> {
        create(&s.properties().unwrap(), rdkafka::producer::DefaultProducerContext)
    }

    #[test]
    fn librdkafka_refusals_name_the_field() {
        let s = Settings::from_value(with(java_config(), "batch_size", json!(-5))).unwrap();
        let err = producer(&s);
        let err = err.err().unwrap().to_string();
        assert!(err.contains("`batch_size`") && err.contains("batch.size"), "{err}");

        // Idempotence needs acks=all, in Java and in librdkafka alike.
        let s = Settings::from_value(with(with(java_config(), "acks", json!("1")), "enable_idempotence", json!(true)));
        let s = s.unwrap();
        let err = producer(&s);
        assert!(matches!(err, Err(Error::Config(_))));
        // librdkafka checks what `kafka_properties` passes through, and its refusal names the entry.
        let c = with(java_config(), "kafka_properties", json!({"no.such.property": "1"}));
        let err = producer(&Settings::from_value(c).unwrap());
        let err = err.err().unwrap().to_string();
        assert!(err.contains("`kafka_properties.no.such.property`"), "{err}");
    }

    #[test]
    fn this_build_has_oidc_and_tls() {
        let protocol = json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
            "oauth_token_endpoint_url": "https://127.0.0.1:9/token", "oauth_client_id": "id", "oauth_client_secret": "s"});
        let s = Settings::from_value(with(java_config(), "protocol", protocol)).unwrap();
        let client = producer(&s);
        assert!(client.is_ok(), "OIDC needs librdkafka built with libcurl: {:?}", client.err());
    }

    #[test]
    fn unsecured_jwts_carry_the_principal_and_scope() {
        let token = unsecured_jwt("principal=svc scope=read,write");
        assert_eq!(token.principal_name, "svc");
        let parts: Vec<&str> = token.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap();
        assert_eq!(decode(parts[0]), br#"{"alg":"none"}"#);
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(
            (claims["sub"].as_str(), claims["scope"].clone()),
            (Some("svc"), serde_json::json!(["read", "write"]))
        );
        assert_eq!(claims["exp"].as_i64().unwrap() * 1000, token.lifetime_ms);
    }
}
