//! Settings → librdkafka properties: the one place each config key takes effect on the Kafka client.

use super::properties::Properties;
use super::Settings;
use crate::error::Result;

/// librdkafka's producer properties (its CONFIGURATION.md, scope `P`): a consumer warns about them and ignores them.
const PRODUCER_ONLY: [&str; 30] = [
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "dr_cb",
    "dr_msg_cb",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queuing.strategy",
    "produce.offset.report",
    "partitioner",
    "partitioner_cb",
    "msg_order_cmp",
];

impl Settings {
    /// Bytes of records librdkafka may hold: `buffer_memory`, but never less than `max_request_size`. A record
    /// the size limit allows but the queue could never hold would wait for room forever.
    pub fn queue_bytes(&self) -> i64 {
        self.buffer_memory.max(self.max_request_size)
    }

    /// The librdkafka properties of these settings: the connection's, then the producer's.
    pub fn properties(&self) -> Result<Properties> {
        let mut props = self.connection_properties()?;
        if self.exactly_once() {
            // Transactions need the idempotent producer, which needs acks=all.
            props.set("acks", "all", "delivery_guarantee");
            props.set("enable.idempotence", true, "delivery_guarantee");
            props.set("transaction.timeout.ms", self.transaction_timeout().as_millis(), "transaction_max_ms");
        } else {
            props.set("acks", self.acks.as_str(), "acks");
            props.set("enable.idempotence", self.enable_idempotence, "enable_idempotence");
        }
        props.set("compression.type", self.compression_type.as_str(), "compression_type");
        props.set("batch.size", self.batch_size, "batch_size");
        props.set("linger.ms", self.linger.as_millis(), "linger_ms");
        props.set(
            "max.in.flight.requests.per.connection",
            self.max_in_flight_requests_per_connection,
            "max_in_flight_requests_per_connection",
        );
        props.set("queue.buffering.max.kbytes", ((self.queue_bytes() + 1023) / 1024).max(1), "buffer_memory");
        // librdkafka's ~250 bytes of bookkeeping per message are not in kbytes: one message per KiB of budget
        // keeps the real footprint near `buffer_memory` whatever the message size.
        props.set("queue.buffering.max.messages", (self.buffer_memory / 1024).clamp(1000, 100_000), "buffer_memory");
        props.set("retries", self.retries, "retries");
        props.set("request.timeout.ms", self.request_timeout.as_millis(), "request_timeout_ms");
        props.set("message.timeout.ms", self.message_timeout().as_millis(), "delivery_timeout_ms");
        // Java's default partitioner hashes the key with murmur2: keep records on the same partitions.
        props.set("partitioner", "murmur2_random", "partitioner");
        for (key, value) in &self.kafka_properties {
            props.pass_through(key, value)?;
        }
        Ok(props)
    }

    /// The properties of the progress topic's reader: the connection's, and every `kafka_properties` entry a
    /// consumer reads too (a CA, a DNS or socket setting the brokers need is the user's for every client).
    pub fn reader_properties(&self) -> Result<Properties> {
        let mut props = self.connection_properties()?;
        // Not `receive.message.max.bytes` either: a consumer refuses it below `fetch.max.bytes` + 512, which the
        // user cannot set (a consumer property).
        let for_the_reader = |key: &str| !PRODUCER_ONLY.contains(&key) && key != "receive.message.max.bytes";
        for (key, value) in self.kafka_properties.iter().filter(|(key, _)| for_the_reader(key)) {
            props.pass_through(key, value)?;
        }
        Ok(props)
    }

    /// What every client of this connection shares (the producer, and the reader of the progress topic): where
    /// the brokers are, how to reach them, who we are.
    pub fn connection_properties(&self) -> Result<Properties> {
        let mut props = Properties::default();
        props.set("bootstrap.servers", &self.bootstrap_servers, "bootstrap_servers");
        props.set("client.dns.lookup", self.client_dns_lookup.as_str(), "client_dns_lookup");
        props.set("message.max.bytes", self.max_request_size, "max_request_size");
        props.set(
            "socket.connection.setup.timeout.ms",
            self.socket_connection_setup_timeout.as_millis(),
            "socket_connection_setup_timeout_ms",
        );
        // Java's -1 means "OS default", which librdkafka spells 0.
        props.set("socket.send.buffer.bytes", self.send_buffer_bytes.max(0), "send_buffer_bytes");
        props.set("socket.receive.buffer.bytes", self.receive_buffer_bytes.max(0), "receive_buffer_bytes");
        // `RUST_LOG=debug` (or `trace`) also turns on librdkafka's own debug logs; never `security`, which could
        // show credentials.
        if tracing::enabled!(tracing::Level::TRACE) {
            props.set("debug", "generic,broker,topic,msg,eos,protocol,queue", "RUST_LOG");
        } else if tracing::enabled!(tracing::Level::DEBUG) {
            props.set("debug", "generic,broker,topic,msg,eos", "RUST_LOG");
        }
        if let Some(client_id) = self.client_id.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            props.set("client.id", client_id, "client_id");
        }
        self.security.apply(&mut props)?;
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{java_config, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn java_shape_maps_to_librdkafka() {
        let c = with(with(java_config(), "linger_ms", json!("5")), "receive_buffer_bytes", json!(32768));
        let s = Settings::from_value(with(c, "compression_type", json!("zstd"))).unwrap();
        let props = s.properties().unwrap();
        assert_eq!(props.get("queue.buffering.max.kbytes"), Some("32768"));
        assert_eq!(props.get("queue.buffering.max.messages"), Some("32768"));
        assert_eq!(props.get("linger.ms"), Some("5"));
        assert_eq!(props.get("socket.send.buffer.bytes"), Some("0"), "Java's -1 is librdkafka's 0");
        assert_eq!(props.get("socket.receive.buffer.bytes"), Some("32768"));
        assert_eq!(props.get("message.timeout.ms"), Some("120000"));
        assert_eq!(props.get("message.max.bytes"), Some("1048576"));
        assert_eq!(props.get("partitioner"), Some("murmur2_random"));
        assert_eq!(props.get("security.protocol"), Some("PLAINTEXT"));
        assert_eq!(props.get("acks"), Some("all"));
        assert_eq!(props.get("compression.type"), Some("zstd"));
        assert_eq!(props.get("client.id"), None);
    }

    #[test]
    fn the_queue_holds_the_largest_record_allowed() {
        let c = with(with(java_config(), "buffer_memory", json!("1048576")), "max_request_size", json!(3_000_001));
        let s = Settings::from_value(c).unwrap();
        assert_eq!(s.properties().unwrap().get("queue.buffering.max.kbytes"), Some("2930"));
        assert_eq!(s.properties().unwrap().get("queue.buffering.max.messages"), Some("1024"));
    }

    #[test]
    fn exactly_once_is_idempotent_with_acks_all_and_clamps_the_message_timeout() {
        let c = with(with(java_config(), "acks", json!("1")), "enable_idempotence", json!(false));
        let c = with(with(c, "delivery_guarantee", json!("exactly_once")), "transaction_max_ms", json!(20000));
        let s = Settings::from_value(c).unwrap();
        let props = s.properties().unwrap();
        assert_eq!((props.get("acks"), props.get("enable.idempotence")), (Some("all"), Some("true")));
        assert_eq!(props.get("transaction.timeout.ms"), Some("40000"));
        assert_eq!(props.get("message.timeout.ms"), Some("40000"), "delivery_timeout_ms 120000 is cut");
        let caveats = s.caveats().join(" | ");
        assert!(caveats.contains("acks=all") && caveats.contains("cut to that"), "{caveats}");
    }

    #[test]
    fn dns_lookup_default_is_use_all_dns_ips() {
        let s = Settings::from_value(with(java_config(), "client_dns_lookup", json!("default"))).unwrap();
        assert_eq!(s.properties().unwrap().get("client.dns.lookup"), Some("use_all_dns_ips"));
    }

    #[test]
    fn kafka_properties_pass_through_unless_they_take_over_a_promise() {
        let c = with(
            java_config(),
            "kafka_properties",
            json!({"socket.keepalive.enable": true, "partitioner": "consistent_random", "sticky.partitioning.linger.ms": 5,
                   "receive.message.max.bytes": 10_000_000}),
        );
        let settings = Settings::from_value(c).unwrap();
        let props = settings.properties().unwrap();
        assert_eq!(props.get("socket.keepalive.enable"), Some("true"));
        assert_eq!(props.get("partitioner"), Some("consistent_random"));
        // The progress topic's reader gets the connection's entries, not the producer's (scope `P` in
        // librdkafka's CONFIGURATION.md).
        let reader = settings.reader_properties().unwrap();
        let keys =
            ["socket.keepalive.enable", "partitioner", "sticky.partitioning.linger.ms", "receive.message.max.bytes"];
        assert_eq!(keys.map(|k| reader.get(k)), [Some("true"), None, None, None]);
        assert_eq!(props.get("receive.message.max.bytes"), Some("10000000"));
        assert!(!format!("{props:?}").contains("consistent_random"), "values are treated as secrets");
        for (key, value, why) in [
            ("acks", json!("0"), "set from `acks`"),
            ("sasl.password", json!("x"), "set from `protocol.sasl_jaas_config`"),
            ("enable.idempotence", json!(false), "set from `enable_idempotence`"),
            ("transactional.id", json!("t"), "transactional_id"),
            ("delivery.report.only.error", json!(true), "delivery report of every record"),
            ("enable.auto.commit", json!(true), "consumer property"),
            ("fetch.max.bytes", json!(1), "consumer property"),
            ("group.protocol", json!("consumer"), "consumer property"),
            ("socket.keepalive.enable", json!([1]), "is not of types"),
        ] {
            let jaas = "x.PlainLoginModule required username=\"u\" password=\"p\";";
            let c = with(
                java_config(),
                "protocol",
                json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_jaas_config": jaas}),
            );
            let c = with(c, "kafka_properties", json!({ key: value }));
            let err = Settings::from_value(c).err().unwrap().to_string();
            assert!(err.contains(&format!("`kafka_properties.{key}`")) && err.contains(why), "{key}: {err}");
            assert!(!err.contains("\"p\""), "no secret in {err}");
        }
        // acks=0 with exactly-once: `acks` is set (to all) by `delivery_guarantee`.
        let c = with(
            with(java_config(), "delivery_guarantee", json!("exactly_once")),
            "kafka_properties",
            json!({"acks": 0}),
        );
        assert!(Settings::from_value(c).err().unwrap().to_string().contains("set from `delivery_guarantee`"));
    }
}
