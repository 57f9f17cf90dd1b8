//! `write`: stdin/sockets → parse → route → encode → produce → acknowledge → state.
//!
//! A thread per source (stdin, or Speed Mode's sockets: `sockets`) reads and parses (`input`, `parse`, `frames`);
//! a few threads encode the parsed chunks (`workers`, `encoded`); the main thread takes them in input order, hands
//! the messages to librdkafka without blocking (`pipeline`, `sink`) and serves delivery reports, which settle
//! records in the checkpoints (`checkpoint`); a STATE goes out once every record before it is acknowledged (in
//! Speed Mode: every record of its partitions, `partitions`), and, under the release policy of the delivery
//! guarantee (`release`, `transactions`), committed.

mod acknowledge;
mod backlog;
mod checkpoint;
mod dead_letter;
mod encoded;
mod frames;
mod input;
mod parse;
#[cfg(test)]
mod parse_fuzz;
mod partitions;
mod pipeline;
mod progress;
mod release;
mod replay;
mod sink;
mod sockets;
mod transactions;
mod truncate;
mod workers;

use crate::airbyte::catalog::Catalog;
use crate::airbyte::mapping::Mapping;
use crate::airbyte::message::Head;
use crate::config::channel::{Channel, Medium};
use crate::config::Settings;
use crate::digest;
use crate::error::Result;
use crate::format;
use crate::kafka::admin::Topic;
use crate::kafka::producer::{Options, Producer};
use crate::stop::Stop;
use acknowledge::Acknowledger;
use checkpoint::Tracker;
use input::{Input, LineLimit, Source};
use parse::Parser;
use partitions::Ledger;
use pipeline::Pipeline;
use release::{AtLeastOnce, Release};
use sink::Sink;
use std::sync::Arc;
use transactions::{Detection, ExactlyOnce};
use workers::Workers;

pub fn run(settings: &Settings, catalog_path: &str, stop: &Stop) -> Result<()> {
    for caveat in settings.caveats() {
        tracing::warn!("{caveat}");
    }
    let channel = Channel::from_env()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = workers::threads(std::env::var(workers::THREADS_VARIABLE).ok().as_deref(), cpus)?;
    tracing::info!(
        "reading {}; encoding on {}",
        channel.describe(),
        match threads {
            0 => "the main thread".to_string(),
            1 => "a thread of its own".to_string(),
            n => format!("{n} threads of their own"),
        }
    );
    // The catalog: the streams of this sync and their topics, which must exist before the first record. In Speed
    // Mode the platform hands over the source's names, and the destination maps them.
    let mapping = match &channel.namespace_mapping {
        Some(path) => Mapping::load(path)?,
        None => Mapping::identity(),
    };
    let dead_letters = settings.record_errors.dead_letter_pattern();
    let catalog = Arc::new(Catalog::load(catalog_path, &settings.topic_pattern, dead_letters, &mapping)?);
    let encoders = format::encoders(&settings.encoding, &catalog.streams)?;
    // Names this connection's transactions and, in the progress topic, its truncated generations.
    let connection = transactional_id(settings, &catalog);
    let id = settings.exactly_once().then(|| connection.clone());
    let detection = detection(settings, &channel, &catalog);
    let mut topics: Vec<Topic> =
        catalog.topics().iter().map(|t| Topic { name: t.name, compact: t.compact, configs: &[] }).collect();
    let truncating = catalog.streams.iter().any(|s| s.truncate);
    if detection.is_some() || truncating {
        topics.push(Topic { name: &settings.progress_topic, compact: true, configs: PROGRESS_TOPIC });
    }
    let mut release: Box<dyn Release> = match &id {
        None => Box::new(AtLeastOnce),
        Some(id) => Box::new(ExactlyOnce::new(settings, id.clone(), detection)),
    };
    let tracker = Tracker::new(dead_letters.map(|_| catalog.streams.len()));
    let listener = Acknowledger::new(tracker, dead_letters.is_some() && release.dead_letters_refusals());
    let options = Options { transactional_id: id.as_deref(), statistics: Some(progress::every()) };
    let producer = Producer::new(settings, options, listener, stop)?;
    producer.ensure_topics(settings, &topics, settings.metadata_timeout())?;
    let mut sink = Sink::new(settings, &catalog.streams, producer, stop);
    release.start(&mut sink)?;
    let truncations = if truncating {
        truncate::prepare(&mut sink, &catalog, &connection, &settings.progress_topic)?
    } else {
        Vec::new()
    };
    // stdin/sockets → parse → route, on a thread per source.
    let (sources, ledger) = match &channel.medium {
        Medium::Stdio => (vec![Source::stdin()], None),
        Medium::Sockets(paths) => {
            (sockets::connect(paths, settings.socket_wait, stop)?, Some(Ledger::new(Arc::clone(&catalog))))
        }
    };
    let limit = LineLimit::of(settings.max_request_size);
    let mut index = 0;
    let parsers = |name: &str| {
        let mut parser = match &ledger {
            None => Parser::new(Arc::clone(&catalog)),
            Some(_) => Parser::of_source(Arc::clone(&catalog), name, index),
        };
        index += 1;
        move |block| parser.parse(block)
    };
    let input = Input::spawn(sources, channel.framing, limit, Head::is_record, parsers);
    // → encode, on a few threads of its own.
    let input = Workers::spawn(input, encoders, threads);
    // → produce → acknowledge → state, here.
    let mut pipeline = Pipeline::new(&catalog, sink, release, ledger, limit, stop);
    let outcome = pipeline.consume(input);
    pipeline.finish(outcome)?;
    truncate::apply(settings, stop, &truncations)
}

/// The progress topic (replay detection's records, where truncated generations begin), when the connector creates
/// it: compacted, and soon (its segments roll every 10 minutes, and
/// are cleaned once a tenth is dirty), since every commit writes a record of some kilobytes and a sync reads the
/// topic from its start.
const PROGRESS_TOPIC: &[(&str, &str)] = &[("segment.ms", "600000"), ("min.cleanable.dirty.ratio", "0.1")];

/// Replay detection's settings, when it is on. Speed Mode's checkpoints follow partitions, not the input's order,
/// so there it is off (said once).
fn detection(settings: &Settings, channel: &Channel, catalog: &Catalog) -> Option<Detection> {
    if !settings.replay_detection {
        return None;
    }
    if let Medium::Sockets(_) = channel.medium {
        tracing::warn!("`replay_detection` works on stdin only: this sync reads sockets (Speed Mode), so it is off");
        return None;
    }
    let sync_id = catalog.streams.iter().find_map(|s| s.sync_id);
    // Everything that decides where a record goes and what its message is (secrets appear masked).
    let mut setup = digest::Xxh3::new();
    setup.update(format!("{settings:?}").as_bytes());
    for stream in &catalog.streams {
        let schema = stream.json_schema.to_string();
        let dead_letters = stream.dead_letter_topic.as_deref().unwrap_or("");
        digest::add(&mut setup, &[&stream.source_name, &stream.topic, dead_letters, &schema]);
        setup.update(format!("{:?}{}{}", stream.primary_key, stream.dedup, stream.full_refresh).as_bytes());
    }
    Some(Detection { topic: settings.progress_topic.clone(), sync_id, setup: setup.digest128() })
}

/// The producer's transactional id: the configured one, or one derived from this connection's streams.
fn transactional_id(settings: &Settings, catalog: &Catalog) -> String {
    settings.transactional_id(catalog.streams.iter().map(|s| (s.namespace.as_deref(), s.name.as_str())))
}
