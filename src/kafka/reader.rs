//! Reading back the latest record of some keys in the connector's progress topic (replay detection's records,
//! where truncated generations begin). Every partition is read from its start to its end (librdkafka's partition
//! EOF); a `read_committed` reader cannot pass another writer's open transaction, so it stops once it has read
//! nothing for a while (`Seen::Committed`). The partitions are assigned, not subscribed to: the consumer group
//! librdkafka asks for is never joined, and no offset is committed.

use super::client::{self, Context};
use super::msk_iam::MskIam;
use crate::config::Settings;
use crate::error::{describe, Error, Result};
use crate::stop::Stop;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How much of the topic a reader sees.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Only committed records (`read_committed`). Another writer's open transaction holds such a reader back at
    /// its first offset: after a few seconds without a record, what was read is the answer (it may be older than
    /// the latest committed value, which the caller must be able to live with).
    Committed,
    /// Every record written, committed, open or aborted (`read_uncommitted`), always to the end.
    Written,
}

/// A committed reader held back this long (another writer's transaction open) answers with what it read.
const HELD_BACK: Duration = Duration::from_secs(5);

/// The value of the last record with each of `keys` in `topic` (`None`: no such record, or its last one is a
/// tombstone).
pub fn latest(
    settings: &Settings,
    topic: &str,
    keys: &[&[u8]],
    seen: Seen,
    stop: &Stop,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut props = settings.reader_properties()?;
    let isolation = if seen == Seen::Committed { "read_committed" } else { "read_uncommitted" };
    props.set("isolation.level", isolation, "progress_topic");
    props.set("enable.partition.eof", true, "progress_topic");
    props.set("enable.auto.commit", false, "progress_topic");
    // librdkafka's consumer needs a group to assign partitions; none is joined and no offset is committed.
    props.set("group.id", "airbyte-destination-kafka-progress-reader", "progress_topic");
    let consumer: BaseConsumer<Context<()>> = client::create(&props, Context::new((), MskIam::of(settings)?))?;
    let unreadable = |e: KafkaError| {
        let why = format!(
            "cannot read the progress topic `{topic}` ({}); the connector needs READ and DESCRIBE on it",
            describe(&e)
        );
        match Error::kafka(String::new(), e).failure_type() {
            crate::error::FailureType::ConfigError => Error::Config(why),
            _ => Error::Transient(why),
        }
    };
    let deadline = Instant::now() + settings.metadata_timeout();
    // A topic just created (by this sync, or by another one at the same moment) takes a moment to be known.
    let partitions: Vec<i32> = loop {
        stop.check()?;
        let metadata = consumer.fetch_metadata(Some(topic), settings.metadata_timeout()).map_err(unreadable)?;
        match metadata.topics().iter().find_map(|t| t.error()) {
            None => break metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect(),
            Some(code) => {
                let error = unreadable(KafkaError::MetadataFetch(code.into()));
                if !error.is_transient() || Instant::now() >= deadline {
                    return Err(error);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning).map_err(unreadable)?;
    }
    consumer.assign(&assignment).map_err(unreadable)?;
    let (mut ended, mut latest) = (HashSet::new(), vec![None; keys.len()]);
    let mut last_read = Instant::now();
    while ended.len() < partitions.len() {
        stop.check()?;
        if seen == Seen::Committed && last_read.elapsed() >= HELD_BACK {
            tracing::info!("`{topic}` has transactions of other writers open: read up to the first of them");
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::Transient(format!(
                "the progress topic `{topic}` was not read to its end within {} s",
                settings.metadata_timeout().as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                last_read = Instant::now();
                if let Some(i) = keys.iter().position(|key| message.key() == Some(*key)) {
                    latest[i] = message.payload().map(<[u8]>::to_vec);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                last_read = Instant::now();
                ended.insert(partition);
            }
            // librdkafka looks for the group's coordinator although the partitions are assigned from their
            // beginning, and nothing is asked of the group: a broker that allows no group refuses only that.
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
                tracing::debug!("reading the progress topic without its group: {e}")
            }
            // A connection that drops is tried again by librdkafka, until the deadline.
            Some(Err(e)) if unreadable(e.clone()).is_transient() => tracing::debug!("reading the progress topic: {e}"),
            Some(Err(e)) => return Err(unreadable(e)),
        }
    }
    Ok(latest)
}
