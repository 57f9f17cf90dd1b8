//! `write`: stdin → parse → route → encode → produce → acknowledge → state.
//!
//! The stdin thread reads and parses (`input`, `parse`); the main thread encodes and hands records to librdkafka
//! without blocking, and serves delivery reports, which settle records in the checkpoint tracker (`checkpoint`);
//! a STATE goes out once every record before it is acknowledged (`pipeline`).

mod checkpoint;
mod input;
mod parse;
mod pipeline;

use crate::airbyte::catalog::Catalog;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::format;
use crate::kafka::producer::Producer;
use checkpoint::Tracker;
use input::Input;
use parse::Parser;
use pipeline::Pipeline;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub fn run(settings: &Settings, catalog_path: &str) -> Result<()> {
    // The catalog: the streams of this sync and their topics, which must exist before the first record.
    let catalog = Arc::new(Catalog::load(catalog_path, &settings.topic_pattern)?);
    let encoders = format::encoders(&catalog.streams);
    let producer = Producer::new(settings, Tracker::default())?;
    producer.ensure_topics(settings, &catalog.topics(), settings.metadata_timeout())?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| Error::io("cannot install the signal handler", e))?;
    }
    // stdin → parse → route, on the stdin thread.
    let mut parser = Parser::new(Arc::clone(&catalog));
    let input = Input::spawn(std::io::stdin(), move |chunk| parser.parse(chunk));
    // encode → produce → acknowledge → state, here.
    let mut pipeline = Pipeline::new(settings, &catalog, encoders, producer);
    let outcome = pipeline.consume(input, &stop);
    pipeline.finish(outcome, &stop)
}
