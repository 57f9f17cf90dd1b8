//! What follows from the delivery guarantee: exactly-once's timeouts and its transactional id.

use super::{DeliveryGuarantee, Settings};
use sha2::{Digest, Sha256};
use std::time::Duration;

impl Settings {
    pub fn exactly_once(&self) -> bool {
        self.delivery_guarantee == DeliveryGuarantee::ExactlyOnce
    }

    /// librdkafka's `transaction.timeout.ms`: twice `transaction_max_ms`, within what brokers allow by default
    /// (`transaction.max.timeout.ms`, 15 min), so a transaction is committed well before the broker aborts it.
    pub fn transaction_timeout(&self) -> Duration {
        (self.transaction_max_age * 2).clamp(Duration::from_secs(2), Duration::from_secs(900))
    }

    /// How long librdkafka may take to deliver a record: `delivery_timeout_ms`, within the transaction timeout.
    pub fn message_timeout(&self) -> Duration {
        if self.exactly_once() {
            self.delivery_timeout.min(self.transaction_timeout())
        } else {
            self.delivery_timeout
        }
    }

    /// `transactional_id`, or when blank one derived from what identifies this connection's writer: the bootstrap
    /// servers, the topic pattern and the streams (namespace and name, sorted). Two syncs of the same connection
    /// get the same id, so the newer fences a zombie older one; a changed stream set gets a new id.
    pub fn transactional_id<'a>(&self, streams: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> String {
        if !self.transactional_id.trim().is_empty() {
            return self.transactional_id.trim().to_string();
        }
        let mut streams: Vec<String> =
            streams.into_iter().map(|(namespace, name)| format!("{}\u{1f}{name}", namespace.unwrap_or(""))).collect();
        streams.sort_unstable();
        let mut hash = Sha256::new();
        hash.update(self.bootstrap_servers.trim().as_bytes());
        hash.update(b"\n");
        hash.update(self.topic_pattern.as_bytes());
        for stream in streams {
            hash.update(b"\n");
            hash.update(stream.as_bytes());
        }
        let hex: String = hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("airbyte-destination-kafka-{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{java_config, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn derived_transactional_ids_are_stable_and_name_the_connection() {
        let c = with(java_config(), "bootstrap_servers", json!("kafka-broker1:9092,kafka-broker2:9092"));
        let s = Settings::from_value(with(c, "topic_pattern", json!("{namespace}.{stream}.sample"))).unwrap();
        let a = [(None, "users"), (Some("shop"), "orders")];
        let id = s.transactional_id(a);
        assert!(id.starts_with("airbyte-destination-kafka-") && id.len() == 42, "{id}");
        assert_eq!(
            id,
            s.transactional_id([(Some("shop"), "orders"), (None, "users")]),
            "the stream set, not its order"
        );
        assert_ne!(id, s.transactional_id([(None, "users")]));
        let other = Settings::from_value(with(java_config(), "bootstrap_servers", json!("elsewhere:9092"))).unwrap();
        assert_ne!(id, other.transactional_id(a));
        let given = Settings::from_value(with(java_config(), "transactional_id", json!(" mine "))).unwrap();
        assert_eq!(given.transactional_id(a), "mine");
        // The derivation is part of the contract (a new version must not change a connection's id): SHA-256 of
        // "<bootstrap_servers>\n<topic_pattern>\n<namespace>\x1f<name>..." as Python's hashlib gives it.
        assert_eq!(s.transactional_id([(None, "users")]), "airbyte-destination-kafka-4f8dad29220ad316");
    }

    #[test]
    fn replay_detection_needs_exactly_once_and_a_valid_topic() {
        let replays = with(java_config(), "replay_detection", json!(true));
        let err = Settings::from_value(replays.clone()).err().unwrap().to_string();
        assert!(err.contains("`replay_detection` needs `delivery_guarantee: exactly_once`"), "{err}");
        let eos = with(replays, "delivery_guarantee", json!("exactly_once"));
        let s = Settings::from_value(eos.clone()).unwrap();
        assert_eq!((s.replay_detection, s.progress_topic.as_str()), (true, "airbyte-destination-kafka-progress"));
        let err = Settings::from_value(with(eos, "progress_topic", json!("no spaces"))).err().unwrap().to_string();
        assert!(err.contains("`progress_topic`"), "{err}");
    }
}
