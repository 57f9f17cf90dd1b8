//! `write`: stdin → parse → route → encode → produce → acknowledge → state.
//!
//! The stdin thread reads and parses (`input`, `parse`); the main thread encodes and hands records to librdkafka
//! without blocking (`pipeline`, `sink`) and serves delivery reports, which settle records in the checkpoints
//! (`checkpoint`); a STATE goes out once every record before it is acknowledged, and, under the release policy
//! of the delivery guarantee (`release`, `transactions`), committed.

mod acknowledge;
mod checkpoint;
mod dead_letter;
mod input;
mod parse;
#[cfg(test)]
mod parse_fuzz;
mod pipeline;
mod progress;
mod release;
mod sink;
mod transactions;

use crate::airbyte::catalog::Catalog;
use crate::airbyte::message::Head;
use crate::config::Settings;
use crate::error::Result;
use crate::format;
use crate::kafka::admin::Topic;
use crate::kafka::producer::{Options, Producer};
use crate::stop::Stop;
use acknowledge::Acknowledger;
use checkpoint::Tracker;
use input::{Input, LineLimit};
use parse::Parser;
use pipeline::Pipeline;
use release::{AtLeastOnce, Release};
use sink::Sink;
use std::sync::Arc;
use transactions::ExactlyOnce;

pub fn run(settings: &Settings, catalog_path: &str, stop: &Stop) -> Result<()> {
    for caveat in settings.caveats() {
        tracing::warn!("{caveat}");
    }
    // The catalog: the streams of this sync and their topics, which must exist before the first record.
    let dead_letters = settings.record_errors.dead_letter_pattern();
    let catalog = Arc::new(Catalog::load(catalog_path, &settings.topic_pattern, dead_letters)?);
    let encoders = format::encoders(&settings.encoding, &catalog.streams)?;
    let id = settings.exactly_once().then(|| transactional_id(settings, &catalog));
    let mut release: Box<dyn Release> = match &id {
        None => Box::new(AtLeastOnce),
        Some(id) => Box::new(ExactlyOnce::new(settings, id.clone())),
    };
    let tracker = Tracker::new(dead_letters.map(|_| catalog.streams.len()));
    let listener = Acknowledger::new(tracker, dead_letters.is_some() && release.dead_letters_refusals());
    let options = Options { transactional_id: id.as_deref(), statistics: Some(progress::every()) };
    let producer = Producer::new(settings, options, listener, stop)?;
    let topics: Vec<Topic> = catalog.topics().iter().map(|t| Topic { name: t.name, compact: t.compact }).collect();
    producer.ensure_topics(settings, &topics, settings.metadata_timeout())?;
    let mut sink = Sink::new(settings, &catalog.streams, producer, stop);
    release.start(&mut sink)?;
    // stdin → parse → route, on the stdin thread.
    let mut parser = Parser::new(Arc::clone(&catalog));
    let limit = LineLimit::of(settings.max_request_size);
    let input = Input::spawn(std::io::stdin(), limit, Head::is_record, move |block| parser.parse(block));
    // encode → produce → acknowledge → state, here.
    let mut pipeline = Pipeline::new(&catalog, encoders, sink, release, limit, stop);
    let outcome = pipeline.consume(input);
    pipeline.finish(outcome)
}

/// The producer's transactional id: the configured one, or one derived from this connection's streams.
fn transactional_id(settings: &Settings, catalog: &Catalog) -> String {
    settings.transactional_id(catalog.streams.iter().map(|s| (s.namespace.as_deref(), s.name.as_str())))
}
