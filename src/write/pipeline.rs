//! The main thread's loop: each parsed item in input order; a RECORD is encoded and produced, a STATE closes a
//! checkpoint segment; delivery reports are served as records flow, and due states are emitted.

use super::checkpoint::{Counted, RecordCounts, SegmentId, Tracker};
use super::input::{Input, Next};
use super::parse::{Item, Parsed};
use crate::airbyte::catalog::Catalog;
use crate::airbyte::message::now_ms;
use crate::airbyte::output;
use crate::airbyte::state::State;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::format::{RecordIn, StreamEncoder};
use crate::kafka::producer::{Producer, Sent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a stop (signal or failure) waits for records already sent before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Delivery reports are served every this many records (and whenever input pauses).
const POLL_EVERY: u64 = 256;

/// Per-stream totals for the final summary.
#[derive(Default, Clone, Copy)]
struct Tally {
    records: u64,
    bytes: u64,
}

pub struct Pipeline<'a> {
    settings: &'a Settings,
    catalog: &'a Catalog,
    encoders: Vec<StreamEncoder>,
    tallies: Vec<Tally>,
    producer: Producer<Tracker>,
    /// The segment records are sent in now (the tracker's open segment).
    segment: SegmentId,
    counts: RecordCounts,
    records: u64,
    bytes_read: u64,
    states_emitted: u64,
    started: Instant,
    last_progress: Instant,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        settings: &'a Settings,
        catalog: &'a Catalog,
        encoders: Vec<StreamEncoder>,
        producer: Producer<Tracker>,
    ) -> Pipeline<'a> {
        let n = catalog.streams.len();
        let segment = producer.listener().lock().open_segment();
        Pipeline {
            settings,
            catalog,
            encoders,
            tallies: vec![Tally::default(); n],
            segment,
            producer,
            counts: RecordCounts::new(n),
            records: 0,
            bytes_read: 0,
            states_emitted: 0,
            started: Instant::now(),
            last_progress: Instant::now(),
        }
    }

    fn tracker(&self) -> &Tracker {
        self.producer.listener()
    }

    /// Reads until end of input, a stop signal or the first failure.
    pub fn consume(&mut self, input: Input<Parsed>, stop: &AtomicBool) -> Result<()> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            let wait = if self.tracker().lock().in_flight() > 0 { 10 } else { 200 };
            let next = input.next(Duration::from_millis(wait)).map_err(|e| Error::io("cannot read stdin", e))?;
            match next {
                Next::Chunk(parsed) => {
                    self.bytes_read += parsed.chunk.len() as u64;
                    for item in parsed.items {
                        match item {
                            Item::Record { stream, emitted_at, data } => {
                                let data = &parsed.chunk[data];
                                self.record(stream, &RecordIn { emitted_at: emitted_at.unwrap_or_else(now_ms), data })?
                            }
                            Item::State { counted, state } => self.state(&counted, &state)?,
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

    /// A STATE closes the open segment with its echo; it goes out once its records are acknowledged.
    fn state(&mut self, counted: &Counted, state: &State) -> Result<()> {
        let count = self.counts.take(counted);
        let segment = self.tracker().lock().close(state.render(count));
        self.segment = segment;
        self.release()
    }

    fn record(&mut self, stream: usize, record: &RecordIn<'_>) -> Result<()> {
        let outgoing = self.encoders[stream].encode(record);
        let value_len = outgoing.value.map_or(0, <[u8]>::len) as u64;
        let tracker = self.producer.listener();
        let mut full_since: Option<(Instant, u64)> = None;
        loop {
            tracker.sending();
            match self.producer.send(&outgoing, self.segment) {
                Ok(Sent::Queued) => break,
                Ok(Sent::QueueFull(_)) => tracker.not_sent(),
                Err(error) => {
                    tracker.not_sent();
                    return Err(error);
                }
            }
            // Back-pressure: serve delivery reports until librdkafka has room, as long as the broker moves.
            let acknowledged = tracker.lock().acknowledged_count();
            let (since, seen) = *full_since.get_or_insert((Instant::now(), acknowledged));
            if acknowledged != seen {
                full_since = Some((Instant::now(), acknowledged));
            } else if since.elapsed() > self.settings.max_block {
                return Err(self.producer.diagnostics().explain(
                    self.settings,
                    &format!(
                        "the producer queue stayed full for {} ms (max_block_ms) with no record acknowledged",
                        self.settings.max_block.as_millis()
                    ),
                ));
            }
            // librdkafka frees queue space as delivery reports are served; when none is ready, sleep briefly
            // (a blocking sleep: rdkafka's own short polls spin).
            if !self.producer.serve_reports() {
                std::thread::sleep(Duration::from_micros(500));
            }
            self.states_emitted += release(tracker)?;
        }
        self.counts.record(stream);
        self.tallies[stream].records += 1;
        self.tallies[stream].bytes += value_len;
        self.records += 1;
        if self.settings.sync_producer {
            // Java's meaning: each record acknowledged before the next is sent.
            self.wait_settled(Instant::now() + self.settings.delivery_budget(), |_| Ok(()))?;
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
        if self.tracker().lock().has_failed() {
            return Err(Error::System("a record could not be delivered".into()));
        }
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            self.progress("progress");
        }
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        self.states_emitted += release(self.tracker())?;
        Ok(())
    }

    /// Serves reports until every record sent is settled (acknowledged or failed) or the deadline passes.
    fn wait_settled(&self, deadline: Instant, mut on_progress: impl FnMut(&Tracker) -> Result<()>) -> Result<bool> {
        loop {
            on_progress(self.tracker())?;
            if self.tracker().lock().in_flight() == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if !self.producer.serve_reports() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn progress(&self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let checkpoints = self.tracker().lock();
        let acknowledged = checkpoints.acknowledged_count();
        tracing::info!(
            "{what}: {} records read, {acknowledged} acknowledged, {:.0} records/s, {:.1} MB read, {} states emitted, {} pending",
            self.records,
            acknowledged as f64 / secs,
            self.bytes_read as f64 / 1e6,
            self.states_emitted,
            checkpoints.pending_states(),
        );
    }

    /// Waits for what is in flight (all of it at end of input, a bounded time after a failure or a stop), emits
    /// the states that completes, and reports.
    pub fn finish(mut self, outcome: Result<()>, stop: &AtomicBool) -> Result<()> {
        let started = Instant::now();
        let budget = if outcome.is_ok() { self.settings.delivery_budget() } else { STOP_GRACE };
        let mut emitted = 0;
        let settled = self.wait_settled(started + budget, |tracker| {
            emitted += release(tracker)?;
            // After a failed delivery (nothing later will be emitted) or a stop signal, earlier records get only
            // the grace period.
            if started.elapsed() >= STOP_GRACE {
                if tracker.lock().has_failed() {
                    return Err(Error::System("gave up waiting after a failed delivery".into()));
                }
                if stop.load(Ordering::Relaxed) {
                    return Err(stopped());
                }
            }
            Ok(())
        });
        self.states_emitted += emitted;
        let failure = self.tracker().lock().take_failure();
        self.progress("summary");
        for (stream, tally) in self.catalog.streams.iter().zip(&self.tallies) {
            tracing::info!(
                "stream `{}` → topic `{}`: {} records, {} bytes",
                stream.describe(),
                stream.topic,
                tally.records,
                tally.bytes
            );
        }
        // The first broken promise is the cause; input or signal errors come next.
        if let Some(error) = failure {
            return Err(error);
        }
        outcome?;
        let in_flight = self.tracker().lock().in_flight();
        if !settled? || in_flight > 0 {
            return Err(self.producer.diagnostics().explain(
                self.settings,
                &format!("{in_flight} records were not acknowledged within {} s", budget.as_secs()),
            ));
        }
        let pending = self.tracker().lock().pending_states();
        if pending > 0 {
            return Err(Error::System(format!("{pending} states were never released")));
        }
        Ok(())
    }
}

/// Writes every STATE whose records are all acknowledged, in input order; returns how many.
fn release(tracker: &Tracker) -> Result<u64> {
    let mut written = Ok(());
    let mut emitted = 0;
    tracker.lock().take_due(|state| {
        if written.is_ok() {
            written = output::emit(&state);
            emitted += 1;
        }
    });
    written.map_err(|e| Error::io("cannot write a STATE to stdout", e))?;
    Ok(emitted)
}

fn stopped() -> Error {
    Error::Transient("stopped by a signal; states of records not acknowledged were not emitted".into())
}
