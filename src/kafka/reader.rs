//! Reading back the latest record of one key in a (compacted) topic, as a `read_committed` consumer sees it: the
//! progress record replay detection keeps. Every partition is read from its start to its end (librdkafka's
//! partition EOF, which for `read_committed` is the last stable offset). The partitions are assigned, not
//! subscribed to: the consumer group librdkafka asks for is never joined, and no offset is committed.

use super::client::{self, Context};
use super::msk_iam::MskIam;
use crate::config::Settings;
use crate::error::{describe, Error, Result};
use crate::stop::Stop;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The value of the last record with `key` in `topic` (`None`: no such record, or its last one is a tombstone).
pub fn latest(settings: &Settings, topic: &str, key: &[u8], stop: &Stop) -> Result<Option<Vec<u8>>> {
    let mut props = settings.connection_properties()?;
    props.set("isolation.level", "read_committed", "replay_detection");
    props.set("enable.partition.eof", true, "replay_detection");
    props.set("enable.auto.commit", false, "replay_detection");
    // librdkafka's consumer needs a group to assign partitions; none is joined and no offset is committed.
    props.set("group.id", "airbyte-destination-kafka-progress-reader", "replay_detection");
    let consumer: BaseConsumer<Context<()>> = client::create(&props, Context::new((), MskIam::of(settings)?))?;
    let unreadable = |e: KafkaError| {
        let why = format!(
            "cannot read the progress topic `{topic}` ({}); replay detection needs READ and DESCRIBE on it",
            describe(&e)
        );
        match Error::kafka(String::new(), e).failure_type() {
            crate::error::FailureType::ConfigError => Error::Config(why),
            _ => Error::Transient(why),
        }
    };
    let deadline = Instant::now() + settings.metadata_timeout();
    let metadata = consumer.fetch_metadata(Some(topic), settings.metadata_timeout()).map_err(unreadable)?;
    if let Some(code) = metadata.topics().iter().find_map(|t| t.error()) {
        return Err(unreadable(KafkaError::MetadataFetch(code.into())));
    }
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning).map_err(unreadable)?;
    }
    consumer.assign(&assignment).map_err(unreadable)?;
    let (mut ended, mut latest) = (HashSet::new(), None);
    while ended.len() < partitions.len() {
        stop.check()?;
        if Instant::now() >= deadline {
            return Err(Error::Transient(format!(
                "the progress topic `{topic}` was not read to its end within {} s",
                settings.metadata_timeout().as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) if message.key() == Some(key) => latest = message.payload().map(<[u8]>::to_vec),
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            // A connection that drops is tried again by librdkafka, until the deadline.
            Some(Err(e)) if unreadable(e.clone()).is_transient() => tracing::debug!("reading the progress topic: {e}"),
            Some(Err(e)) => return Err(unreadable(e)),
        }
    }
    Ok(latest)
}
