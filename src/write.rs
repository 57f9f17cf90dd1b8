//! `write`: stdin → parse → route → encode → produce → acknowledge → state.
//!
//! The stdin thread reads and parses (`parse`); this one encodes and hands records to librdkafka without
//! blocking, and serves delivery reports, which release each STATE once every record before it is acknowledged.

use crate::catalog::{describe, Routes};
use crate::checkpoint::RecordCounts;
use crate::config::Settings;
use crate::envelope::{Encoder, StreamPart};
use crate::error::{Error, Result};
use crate::input::{Input, Next};
use crate::kafka::{Producer, Sent};
use crate::output;
use crate::parse::{Item, Parsed, Parser};
use crate::protocol::{excerpt, now_ms, Message, Scope, StateEcho};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stop (signal or failure) waits for records already sent before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Delivery reports are served every this many records (and whenever input pauses).
const POLL_EVERY: u64 = 256;

pub fn run(settings: &Settings, catalog_path: &str) -> Result<()> {
    let routes = Arc::new(Routes::load(catalog_path, &settings.topic_pattern)?);
    let producer = Producer::new(settings)?;
    producer.ensure_topics(settings, &routes.topics(), settings.metadata_timeout())?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| Error::System(format!("cannot install the signal handler: {e}")))?;
    }
    let mut sink = Sink::new(settings, &routes, producer);
    let mut parser = Parser::new(Arc::clone(&routes));
    let outcome = sink.consume(Input::spawn(std::io::stdin(), move |chunk| parser.parse(chunk)), &stop);
    sink.finish(outcome, &stop)
}

/// Per-stream totals for the final summary.
#[derive(Default, Clone, Copy)]
struct Tally {
    records: u64,
    bytes: u64,
}

struct Sink<'a> {
    settings: &'a Settings,
    routes: &'a Routes,
    parts: Vec<StreamPart>,
    tallies: Vec<Tally>,
    producer: Producer,
    encoder: Encoder,
    counts: RecordCounts,
    records: u64,
    bytes_read: u64,
    states_emitted: u64,
    started: Instant,
    last_progress: Instant,
}

impl<'a> Sink<'a> {
    fn new(settings: &'a Settings, routes: &'a Routes, producer: Producer) -> Sink<'a> {
        let n = routes.routes.len();
        Sink {
            settings,
            routes,
            parts: routes.routes.iter().map(|r| StreamPart::new(&r.stream)).collect(),
            tallies: vec![Tally::default(); n],
            producer,
            encoder: Encoder::default(),
            counts: RecordCounts::new(n),
            records: 0,
            bytes_read: 0,
            states_emitted: 0,
            started: Instant::now(),
            last_progress: Instant::now(),
        }
    }

    /// Reads until end of input, a stop signal or the first failure.
    fn consume(&mut self, input: Input<Parsed>, stop: &AtomicBool) -> Result<()> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            let wait = if self.producer.checkpoints().in_flight() > 0 { 10 } else { 200 };
            let next = input
                .next(Duration::from_millis(wait))
                .map_err(|e| Error::System(format!("cannot read stdin: {e}")))?;
            match next {
                Next::Chunk(parsed) => {
                    self.bytes_read += parsed.chunk.len() as u64;
                    for item in parsed.items {
                        match item {
                            Item::Record { route, emitted_at, data } => {
                                self.record(route, emitted_at.unwrap_or_else(now_ms), &parsed.chunk[data])?
                            }
                            Item::State { line, line_no } => self.state(&parsed.chunk[line], line_no)?,
                            Item::Failure(error) => return Err(error),
                        }
                    }
                    input.recycle(parsed.chunk);
                }
                Next::Idle => {}
                Next::End => return Ok(()),
            }
            self.settle()?;
        }
    }

    /// A STATE closes the open segment with its rendered echo; it goes out once its records are acknowledged.
    fn state(&mut self, line: &[u8], line_no: u64) -> Result<()> {
        let bad_line = |why: String| Error::Input(format!("input line {line_no}: {why}: {}", excerpt(line)));
        let text = std::str::from_utf8(line).map_err(|e| bad_line(e.to_string()))?;
        let Ok(Message::State(state)) = Message::parse(line) else {
            return Err(Error::System(format!("internal error: input line {line_no} was read as a STATE, then not")));
        };
        let echo = StateEcho::parse(text, state).map_err(|e| bad_line(e.0))?;
        let scope = echo.scope();
        let stream = match &scope {
            Scope::Stream { name, namespace } => self.routes.find(namespace.as_deref(), name),
            Scope::Global => None,
        };
        let count = self.counts.take(&scope, stream);
        self.producer.close_segment(echo.render(count));
        self.release()
    }

    fn record(&mut self, route: usize, emitted_at: i64, data: &[u8]) -> Result<()> {
        let topic = &self.routes.routes[route].topic;
        let (key, value) = self.encoder.encode(&self.parts[route], emitted_at, data);
        let mut full_since: Option<(Instant, u64)> = None;
        while let Sent::QueueFull = self.producer.send(topic, key, value)? {
            // Back-pressure: serve delivery reports until librdkafka has room, as long as the broker moves.
            let acknowledged = self.producer.checkpoints().acknowledged_count();
            let (since, seen) = *full_since.get_or_insert((Instant::now(), acknowledged));
            if acknowledged != seen {
                full_since = Some((Instant::now(), acknowledged));
            } else if since.elapsed() > Duration::from_millis(self.settings.max_block_ms as u64) {
                return Err(self.producer.diagnostics().explain(
                    self.settings,
                    &format!(
                        "the producer queue stayed full for {} ms (max_block_ms) with no record acknowledged",
                        self.settings.max_block_ms
                    ),
                ));
            }
            // librdkafka frees queue space as delivery reports are served; when none is ready, sleep briefly
            // (a blocking sleep: rdkafka's own short polls spin).
            if !self.producer.serve_reports() {
                std::thread::sleep(Duration::from_micros(500));
            }
            self.states_emitted += release(&self.producer)?;
        }
        self.counts.record(route);
        self.tallies[route].records += 1;
        self.tallies[route].bytes += value.len() as u64;
        self.records += 1;
        if self.settings.sync_producer {
            // Java's meaning: each record acknowledged before the next is sent.
            let deadline = Instant::now() + self.delivery_budget();
            self.producer.wait_settled(deadline, |_| Ok(()))?;
            self.settle()?;
        } else if self.records % POLL_EVERY == 0 {
            self.settle()?;
        }
        Ok(())
    }

    /// Serves delivery reports, releases due states, stops at the first failed delivery.
    fn settle(&mut self) -> Result<()> {
        self.producer.serve_reports();
        self.release()?;
        if self.producer.checkpoints().has_failed() {
            return Err(Error::System("a record could not be delivered".into()));
        }
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            self.progress("progress");
        }
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        self.states_emitted += release(&self.producer)?;
        Ok(())
    }

    fn delivery_budget(&self) -> Duration {
        // librdkafka reports every record within message.timeout.ms; the margin covers the last round trip.
        Duration::from_millis(self.settings.delivery_timeout_ms.max(0) as u64) + Duration::from_secs(5)
    }

    fn progress(&self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let acknowledged = self.producer.checkpoints().acknowledged_count();
        tracing::info!(
            "{what}: {} records read, {acknowledged} acknowledged, {:.0} records/s, {:.1} MB read, {} states emitted, {} pending",
            self.records,
            acknowledged as f64 / secs,
            self.bytes_read as f64 / 1e6,
            self.states_emitted,
            self.producer.checkpoints().pending_states(),
        );
    }

    /// Waits for what is in flight (all of it at end of input, a bounded time after a failure or a stop), emits
    /// the states that completes, and reports.
    fn finish(mut self, outcome: Result<()>, stop: &AtomicBool) -> Result<()> {
        let started = Instant::now();
        let budget = if outcome.is_ok() { self.delivery_budget() } else { STOP_GRACE };
        let mut emitted = 0;
        let settled = self.producer.wait_settled(started + budget, |p| {
            emitted += release(p)?;
            // After a failed delivery (nothing later will be emitted) or a stop signal, earlier records get only
            // the grace period.
            if started.elapsed() >= STOP_GRACE {
                if p.checkpoints().has_failed() {
                    return Err(Error::System("gave up waiting after a failed delivery".into()));
                }
                if stop.load(Ordering::Relaxed) {
                    return Err(stopped());
                }
            }
            Ok(())
        });
        self.states_emitted += emitted;
        let failure = self.producer.checkpoints().take_failure();
        self.progress("summary");
        for (route, tally) in self.routes.routes.iter().zip(&self.tallies) {
            tracing::info!(
                "stream `{}` → topic `{}`: {} records, {} bytes",
                describe(route.namespace.as_deref(), &route.stream),
                route.topic,
                tally.records,
                tally.bytes
            );
        }
        // The first broken promise is the cause; input or signal errors come next.
        if let Some(error) = failure {
            return Err(error);
        }
        outcome?;
        let in_flight = self.producer.checkpoints().in_flight();
        if !settled? || in_flight > 0 {
            return Err(self.producer.diagnostics().explain(
                self.settings,
                &format!("{in_flight} records were not acknowledged within {} s", budget.as_secs()),
            ));
        }
        let pending = self.producer.checkpoints().pending_states();
        if pending > 0 {
            return Err(Error::System(format!("{pending} states were never released")));
        }
        Ok(())
    }
}

/// Writes every STATE whose records are all acknowledged, in input order; returns how many.
fn release(producer: &Producer) -> Result<u64> {
    let mut written = Ok(());
    let mut emitted = 0;
    producer.checkpoints().take_due(|state| {
        if written.is_ok() {
            written = output::emit(&state);
            emitted += 1;
        }
    });
    written.map_err(|e| Error::System(format!("cannot write a STATE to stdout: {e}")))?;
    Ok(emitted)
}

fn stopped() -> Error {
    Error::Transient("stopped by a signal; states of records not acknowledged were not emitted".into())
}
