//! `write`: stdin → parse → route → encode → produce → acknowledge → state.
//!
//! The stdin thread reads and parses (`input`, `parse`); the main thread encodes and hands records to librdkafka
//! without blocking, and serves delivery reports, which settle records in the checkpoint tracker (`checkpoint`);
//! a STATE goes out once every record before it is acknowledged (`pipeline`).

mod checkpoint;
mod input;
mod parse;
#[cfg(test)]
mod parse_fuzz;
mod pipeline;
mod progress;

use crate::airbyte::catalog::Catalog;
use crate::config::Settings;
use crate::error::Result;
use crate::format;
use crate::kafka::producer::Producer;
use checkpoint::Tracker;
use input::Input;
use parse::Parser;
use pipeline::Pipeline;
use std::sync::Arc;

pub fn run(settings: &Settings, catalog_path: &str) -> Result<()> {
    for caveat in settings.caveats() {
        tracing::warn!("{caveat}");
    }
    // The catalog: the streams of this sync and their topics, which must exist before the first record.
    let catalog = Arc::new(Catalog::load(catalog_path, &settings.topic_pattern)?);
    let encoders = format::encoders(&catalog.streams);
    let producer = Producer::new(settings, Tracker::default())?;
    producer.ensure_topics(settings, &catalog.topics(), settings.metadata_timeout())?;
    // stdin → parse → route, on the stdin thread.
    let mut parser = Parser::new(Arc::clone(&catalog));
    let input = Input::spawn(std::io::stdin(), move |chunk| parser.parse(chunk));
    // encode → produce → acknowledge → state, here.
    let mut pipeline = Pipeline::new(settings, &catalog, encoders, producer);
    let outcome = pipeline.consume(input);
    pipeline.finish(outcome)
}
