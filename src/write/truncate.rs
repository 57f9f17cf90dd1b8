//! Truncate refreshes (`minimum_generation_id` = `generation_id`): once the sync has succeeded, what a stream's
//! earlier generations left in its topic is deleted (Kafka's DeleteRecords), up to where this generation began.
//! Where it began is taken before the generation's first record and kept in the progress topic, so a later attempt
//! of the same generation deletes only what came before the generation, never what an earlier attempt of it wrote
//! and checkpointed. Only a topic the stream writes alone, and not compacted, is truncated; any other gets a
//! warning and keeps everything.

use super::sink::Sink;
use crate::airbyte::catalog::Catalog;
use crate::error::Result;
use crate::kafka::admin;
use crate::kafka::reader::{self, Seen};
use crate::kafka::record::OutgoingRecord;
use crate::stop::Stop;
use serde::{Deserialize, Serialize};

/// Where a generation began in a topic: what the progress topic keeps (key `<connection id>:generation:<topic>`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Start {
    generation: i64,
    /// Partition and offset of the generation's first record there.
    offsets: Vec<(i32, i64)>,
}

/// A topic to truncate once the sync has succeeded.
pub struct Truncation {
    topic: String,
    start: Start,
}

/// The truncations of this sync: where each truncating stream's generation began, read back from the progress
/// topic (an earlier attempt of it) or taken now and written there before any record.
pub fn prepare(sink: &mut Sink, catalog: &Catalog, connection: &str, progress_topic: &str) -> Result<Vec<Truncation>> {
    let mut wanted = Vec::new();
    for stream in catalog.streams.iter().filter(|s| s.truncate) {
        let others: Vec<String> =
            catalog.streams.iter().filter(|o| o.topic == stream.topic && !o.truncate).map(|o| o.describe()).collect();
        if stream.dedup || !others.is_empty() {
            let why = if stream.dedup {
                "it is compacted (append_dedup)".to_string()
            } else {
                format!("stream(s) `{}` write to it too", others.join("`, `"))
            };
            tracing::warn!(
                "stream `{}` asks for a truncate refresh, but its topic `{}` is not truncated: {why}; records of \
                 earlier generations stay, this sync's are appended",
                stream.describe(),
                stream.topic
            );
            continue;
        }
        let generation = stream.generation_id.expect("a truncating stream has a generation");
        if !wanted.iter().any(|(topic, _): &(String, i64)| *topic == stream.topic) {
            wanted.push((stream.topic.clone(), generation));
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<Vec<u8>> =
        wanted.iter().map(|(topic, _)| format!("{connection}:generation:{topic}").into_bytes()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    // Every record written, aborted ones too: a start an aborted attempt wrote is still where the generation began
    // (nothing of it came before), and a committed reader could be held back before the latest start and take a
    // later one, which would delete what an earlier attempt checkpointed.
    let read = reader::latest(sink.settings(), progress_topic, &refs, Seen::Written, sink.stop())?;
    let mut truncations = Vec::new();
    for ((topic, generation), (key, kept)) in wanted.into_iter().zip(keys.iter().zip(read)) {
        let kept: Option<Start> = kept.and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let start = match kept {
            Some(start) if start.generation == generation => {
                tracing::info!("truncate refresh of `{topic}`: generation {generation} began in an earlier attempt");
                start
            }
            _ => {
                let start = Start { generation, offsets: sink.producer().end_offsets(sink.settings(), &topic)? };
                let value = serde_json::to_vec(&start).expect("JSON");
                let record = OutgoingRecord {
                    topic: progress_topic,
                    key: Some(key),
                    value: Some(&value),
                    headers: &[],
                    timestamp: None,
                };
                sink.produce_own(&record)?;
                start
            }
        };
        truncations.push(Truncation { topic, start });
    }
    // Stored before the first record (with exactly-once, in the first transaction, which holds the first records).
    sink.wait_acknowledged(
        "waiting for where the generations begin to be stored",
        "where the generations begin is not stored",
    )?;
    Ok(truncations)
}

/// The sync succeeded: each topic loses what came before its generation.
pub fn apply(settings: &crate::config::Settings, stop: &Stop, truncations: &[Truncation]) -> Result<()> {
    for truncation in truncations {
        admin::delete_before(settings, stop, &truncation.topic, &truncation.start.offsets)?;
        tracing::info!(
            "truncate refresh: `{}` keeps generation {} only (records before offsets {:?} deleted)",
            truncation.topic,
            truncation.start.generation,
            truncation.start.offsets
        );
    }
    Ok(())
}
