//! `write`: stdin → parse → route → encode → produce → acknowledge → state.
//!
//! The stdin thread reads and parses (`input`, `parse`); the main thread encodes and hands records to librdkafka
//! without blocking, and serves delivery reports, which settle records in the checkpoint tracker (`checkpoint`);
//! a STATE goes out once every record before it is acknowledged (`pipeline`).

mod checkpoint;
mod dead_letter;
mod input;
mod parse;
#[cfg(test)]
mod parse_fuzz;
mod pipeline;
mod progress;
pub(crate) mod transactions;

use crate::airbyte::catalog::Catalog;
use crate::config::Settings;
use crate::error::Result;
use crate::format;
use crate::kafka::producer::{Options, Producer};
use checkpoint::Tracker;
use input::Input;
use parse::Parser;
use pipeline::Pipeline;
use std::sync::Arc;
use transactions::Transactions;

pub fn run(settings: &Settings, catalog_path: &str) -> Result<()> {
    for caveat in settings.caveats() {
        tracing::warn!("{caveat}");
    }
    // The catalog: the streams of this sync and their topics, which must exist before the first record.
    let dead_letters = settings.record_errors.dead_letter_pattern();
    let catalog = Arc::new(Catalog::load(catalog_path, &settings.topic_pattern, dead_letters)?);
    let encoders = format::encoders(settings, &catalog.streams)?;
    let mut transactions = settings.exactly_once().then(|| Transactions::new(settings, &catalog));
    let id = transactions.as_ref().map(|t| t.id().to_string());
    // Refused records are dead-lettered when asked for; not under exactly-once, where a refused record makes the
    // transaction abort (only records refused before they reach the producer's queue can be dead-lettered there).
    let dead_letter_refusals = dead_letters.is_some() && transactions.is_none();
    let rejects = dead_letters.map(|_| catalog.streams.len());
    let tracker = Tracker::new(transactions.is_some(), rejects, dead_letter_refusals);
    let options = Options { transactional_id: id.as_deref(), statistics: Some(progress::every()) };
    let producer = Producer::new(settings, options, tracker)?;
    producer.ensure_topics(settings, &catalog.topics(), settings.metadata_timeout())?;
    if let Some(transactions) = transactions.as_mut() {
        transactions.start(&producer, settings)?;
    }
    // stdin → parse → route, on the stdin thread.
    let mut parser = Parser::new(Arc::clone(&catalog));
    let input = Input::spawn(std::io::stdin(), move |chunk| parser.parse(chunk));
    // encode → produce → acknowledge → state, here.
    let mut pipeline = Pipeline::new(settings, &catalog, encoders, producer, transactions);
    let outcome = pipeline.consume(input);
    pipeline.finish(outcome)
}
