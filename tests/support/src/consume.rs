//! Reading topics back, as an independent consumer (librdkafka's, through rdkafka): every message from the
//! earliest offset, failing if fewer or more than expected arrive.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// One message as a consumer reads it back.
#[derive(Debug)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

impl Read {
    pub fn key_text(&self) -> &str {
        std::str::from_utf8(self.key.as_deref().unwrap_or_default()).unwrap()
    }

    pub fn value_json(&self) -> serde_json::Value {
        serde_json::from_slice(self.value.as_deref().expect("not a tombstone")).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| std::str::from_utf8(v).unwrap())
    }
}

/// Every message of a topic (all partitions) from the earliest offset: (partition, key, value), in offset order
/// per partition. Stops when `expected` messages are read, or fails after a timeout.
pub fn consume(bootstrap: &str, topic: &str, expected: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    read_back(bootstrap, topic, expected)
        .into_iter()
        .map(|m| (m.partition, m.key.unwrap_or_default(), m.value.unwrap_or_default()))
        .collect()
}

/// Like `consume`, with everything a message carries.
pub fn read_back(bootstrap: &str, topic: &str, expected: usize) -> Vec<Read> {
    read_back_with(bootstrap, &[], topic, expected)
}

/// Like `read_back`, with more consumer properties (TLS, SASL, `isolation.level`).
pub fn read_back_with(bootstrap: &str, properties: &[(&str, &str)], topic: &str, expected: usize) -> Vec<Read> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "destination-kafka-tests")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10");
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected {
        assert!(Instant::now() < deadline, "read {} of {expected} messages from {topic}", out.len());
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => out.push(read(&msg)),
            // A node of a cluster that is down (a test killed it) is reported, and the consumer goes on.
            Some(Err(e)) if unreachable_node(&e) => {}
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
    // Nothing more than expected: poll a little longer to catch extra messages.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) {
            panic!("unexpected extra message in {topic} at offset {}: {:?}", msg.offset(), read(&msg).value);
        }
    }
    out
}

fn unreachable_node(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode::*;
    matches!(e.rdkafka_error_code(), Some(BrokerTransportFailure | AllBrokersDown))
}

/// Every message a one-partition topic holds now, however many: read until the end of the partition.
pub fn everything(bootstrap: &str, topic: &str) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "destination-kafka-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no end of {topic} within 30 s");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => out.push(read(&msg)),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
}

fn read(msg: &rdkafka::message::BorrowedMessage<'_>) -> Read {
    let headers = msg
        .headers()
        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
        .unwrap_or_default();
    Read {
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: msg.timestamp().to_millis(),
    }
}
