//! The main thread's loop: each parsed item in input order. A RECORD is encoded (its stream's encoder) and
//! handed to the [`Sink`], which produces it; a STATE closes a checkpoint segment. Delivery reports are served
//! as records flow, and due states are emitted.

use super::checkpoint::{refused_on_its_own, Closing, Counted, InFlight, RecordCounts, SegmentId, Tracker};
use super::dead_letter::{DeadLetter, Rejection};
use super::input::{Input, Next};
use super::parse::{Item, Parsed};
use super::progress::{Progress, Snapshot};
use super::transactions::Transactions;
use crate::airbyte::catalog::{Catalog, Stream};
use crate::airbyte::message::now_ms;
use crate::airbyte::output;
use crate::airbyte::state::State;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::format::{OutgoingRecord, RecordIn, StreamEncoder};
use crate::kafka::producer::{Producer, Sent, Undelivered};
use crate::stop;
use std::time::{Duration, Instant};

/// How long a stop (signal or failure) waits for records already sent before giving up on them: well inside
/// the 10 s `docker stop` gives before SIGKILL, so the TRACE and the due states get out.
const STOP_GRACE: Duration = Duration::from_secs(7);
/// Delivery reports are served every this many records (and whenever input pauses).
const POLL_EVERY: u64 = 256;
/// Unknown message types are logged one by one this many times, then only counted.
const UNKNOWN_LOGGED: u64 = 10;

/// Per-stream totals for the final summary.
#[derive(Default, Clone, Copy)]
struct Tally {
    records: u64,
    bytes: u64,
}

pub struct Pipeline<'a> {
    catalog: &'a Catalog,
    encoders: Vec<StreamEncoder>,
    counts: RecordCounts,
    tallies: Vec<Tally>,
    unknown: u64,
    sink: Sink<'a>,
}

/// Produce → acknowledge → (commit →) state: the producer, the checkpoint tracker it reports to, the transactions
/// of exactly-once delivery, and what is emitted.
struct Sink<'a> {
    settings: &'a Settings,
    streams: &'a [Stream],
    /// `record_errors: dead_letter`.
    dead_letters: bool,
    producer: Producer<Tracker>,
    /// Exactly-once; `None` is at-least-once.
    transactions: Option<Transactions>,
    /// The segment records are sent in now (the tracker's open segment).
    segment: SegmentId,
    records_since_state: u64,
    records: u64,
    bytes_read: u64,
    states_emitted: u64,
    progress: Progress,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        settings: &'a Settings,
        catalog: &'a Catalog,
        encoders: Vec<StreamEncoder>,
        producer: Producer<Tracker>,
        transactions: Option<Transactions>,
    ) -> Pipeline<'a> {
        let n = catalog.streams.len();
        let segment = producer.listener().lock().open_segment();
        Pipeline {
            catalog,
            encoders,
            counts: RecordCounts::new(n),
            tallies: vec![Tally::default(); n],
            unknown: 0,
            sink: Sink {
                settings,
                streams: &catalog.streams,
                dead_letters: settings.record_errors.dead_letter_pattern().is_some(),
                producer,
                transactions,
                segment,
                records_since_state: 0,
                records: 0,
                bytes_read: 0,
                states_emitted: 0,
                progress: Progress::new(),
            },
        }
    }

    /// Reads until end of input, a stop signal or the first failure.
    pub fn consume(&mut self, input: Input<Parsed>) -> Result<()> {
        loop {
            stop::check()?;
            let wait = if self.sink.tracker().lock().in_flight() > 0 { 10 } else { 200 };
            let next = input.next(Duration::from_millis(wait)).map_err(|e| Error::io("cannot read stdin", e))?;
            match next {
                Next::Chunk(parsed) => {
                    self.sink.bytes_read += parsed.chunk.len() as u64;
                    for item in parsed.items {
                        match item {
                            Item::Record { stream, emitted_at, data, meta, line } => {
                                let emitted_at = emitted_at.unwrap_or_else(now_ms);
                                let meta = meta.map(|m| &parsed.chunk[m]);
                                self.record(stream, line, &RecordIn { emitted_at, data: &parsed.chunk[data], meta })?
                            }
                            Item::State { counted, state } => self.state(counted, state)?,
                            Item::Unknown { kind, line } => self.unknown(&kind, line),
                            Item::Failure(error) => return Err(error),
                        }
                    }
                    input.recycle(parsed.chunk);
                    self.sink.settle("reading input")?;
                }
                Next::Idle => {
                    self.sink.commit_when_idle()?;
                    self.sink.settle("waiting for input")?
                }
                Next::End => return Ok(()),
            }
        }
    }

    fn record(&mut self, stream: usize, line: u64, record: &RecordIn<'_>) -> Result<()> {
        let catalog = self.catalog;
        let at =
            InFlight { segment: self.sink.segment, line, stream, emitted_at: record.emitted_at, dead_letter: false };
        let bytes = match self.encoders[stream].encode(record) {
            Ok(outgoing) => {
                let bytes = outgoing.value.map_or(0, <[u8]>::len) as u64;
                self.sink.produce(&outgoing, at, true)?;
                bytes
            }
            Err(why) if self.sink.dead_letters => {
                let why = Rejection::not_encodable(why);
                self.sink.dead_letter(at, None, Some(record.data.to_vec()), &why, true)?;
                0
            }
            Err(why) => {
                return Err(
                    Error::Config(format!("stream `{}`: {why}", catalog.streams[stream].describe())).at_line(line)
                )
            }
        };
        self.counts.record(stream);
        self.tallies[stream].records += 1;
        self.tallies[stream].bytes += bytes;
        Ok(())
    }

    /// A STATE closes the open segment; it goes out once its records are acknowledged.
    fn state(&mut self, counted: Counted, state: State) -> Result<()> {
        let records = self.counts.take(&counted);
        self.sink.close_segment(Closing { state, records, counted })
    }

    fn unknown(&mut self, kind: &str, line: u64) {
        self.unknown += 1;
        if self.unknown <= UNKNOWN_LOGGED {
            tracing::warn!("input line {line}: message type `{kind}` is not one this destination knows; skipped");
        }
    }

    /// Waits for what is in flight (all of it at end of input, a bounded time after a failure or a stop), emits
    /// the states that completes, and reports.
    pub fn finish(mut self, outcome: Result<()>) -> Result<()> {
        let settled = self.sink.drain(outcome.is_ok());
        self.sink.tick("summary", true);
        for (i, (stream, tally)) in self.catalog.streams.iter().zip(&self.tallies).enumerate() {
            let rejected = match &stream.dead_letter_topic {
                Some(topic) => format!(", {} rejected to `{topic}`", self.sink.tracker().lock().rejected_of(i)),
                None => String::new(),
            };
            let nulled = match self.encoders[i].nulled {
                0 => String::new(),
                n => format!(", {n} values nulled (they fit no type of the schema; see the `airbyte.changes` header)"),
            };
            tracing::info!(
                "stream `{}` → topic `{}`: {} records, {} bytes{rejected}{nulled}",
                stream.describe(),
                stream.topic,
                tally.records,
                tally.bytes
            );
        }
        if self.unknown > 0 {
            tracing::warn!("{} input lines of unknown message types were skipped", self.unknown);
        }
        if let Some(transactions) = &self.sink.transactions {
            tracing::info!("exactly-once: {} transactions committed", transactions.commits);
        }
        // The first broken promise is the cause; input or signal errors come next.
        if let Some(error) = self.sink.tracker().lock().take_failure() {
            return Err(error);
        }
        outcome?;
        stop::check()?;
        if !settled? {
            let in_flight = self.sink.tracker().lock().in_flight();
            let budget = self.sink.settings.delivery_budget().as_secs();
            return Err(self
                .sink
                .producer
                .diagnostics()
                .explain(self.sink.settings, &format!("{in_flight} records were not acknowledged within {budget} s")));
        }
        let pending = self.sink.tracker().lock().pending_states();
        if pending > 0 {
            return Err(Error::System(format!("{pending} states were never released")));
        }
        Ok(())
    }
}

impl Sink<'_> {
    fn tracker(&self) -> &Tracker {
        self.producer.listener()
    }

    /// Hands one record to the producer; on a full queue, serves reports until it has room, for as long as the
    /// broker makes progress (`max_block_ms`) and no stop is asked for. `new`: a record of the input (not the
    /// dead letter of one already counted).
    fn produce(&mut self, record: &OutgoingRecord<'_>, at: InFlight, new: bool) -> Result<()> {
        let mut token = Box::new(at);
        let mut full_since: Option<(Instant, u64)> = None;
        loop {
            if new {
                self.tracker().sending();
            }
            match self.producer.send(record, token) {
                Ok(Sent::Queued) => break,
                Ok(Sent::QueueFull(back)) => {
                    if new {
                        self.tracker().not_sent();
                    }
                    token = back;
                }
                Err(error) => {
                    if new {
                        self.tracker().not_sent();
                    }
                    // Refused before it left (larger than max_request_size): the record alone is at fault.
                    if self.dead_letters && !at.dead_letter && refused_on_its_own(error.kafka_code()) {
                        let (key, value) = (record.key.map(<[u8]>::to_vec), record.value.map(<[u8]>::to_vec));
                        return self.dead_letter(at, key, value, &Rejection::refused(&error), new);
                    }
                    return Err(error.at_line(at.line));
                }
            }
            stop::check()?;
            let acknowledged = self.tracker().lock().acknowledged_count();
            if full_since.is_none() {
                tracing::debug!("producer queue full at record {} (input line {})", self.records + 1, at.line);
            }
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
            self.release()?;
            self.tick("waiting for room in the producer queue (the broker has not acknowledged enough records)", false);
        }
        if !new {
            return Ok(());
        }
        self.records += 1;
        self.records_since_state += 1;
        if let Some(transactions) = self.transactions.as_mut() {
            transactions.sent();
            if transactions.overdue() {
                self.commit()?;
            }
        }
        if self.settings.sync_producer {
            // Java's meaning: each record acknowledged before the next is sent.
            self.wait_settled(
                Instant::now() + self.settings.delivery_budget(),
                "waiting for the record's acknowledgement",
            )?;
            self.settle("sync producer")?;
        } else if self.records.is_multiple_of(POLL_EVERY) {
            self.settle("producing")?;
        }
        Ok(())
    }

    /// Writes a rejected record to its stream's dead-letter topic; its acknowledgement there settles it.
    fn dead_letter(
        &mut self,
        at: InFlight,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        why: &Rejection,
        new: bool,
    ) -> Result<()> {
        let stream = &self.streams[at.stream];
        tracing::warn!(
            "input line {}: record of stream `{}` rejected to `{}`: {}",
            at.line,
            stream.describe(),
            stream.dead_letter_topic.as_deref().unwrap_or_default(),
            why.message
        );
        let letter = DeadLetter::new(stream, &at, key, value, why, self.settings.max_request_size.max(0) as usize);
        self.produce(&letter.record(), InFlight { dead_letter: true, ..at }, new)
    }

    /// Serves delivery reports, and dead-letters the records the broker refused on their own account.
    fn serve(&mut self) -> Result<bool> {
        let served = self.producer.serve_reports();
        for refused in self.tracker().take_refused() {
            let why = Rejection::refused(&refused.undelivered.error);
            let Undelivered { key, value, .. } = refused.undelivered;
            self.dead_letter(*refused.record, key, value, &why, false)?;
        }
        Ok(served)
    }

    fn close_segment(&mut self, closing: Closing) -> Result<()> {
        let segment = self.tracker().lock().close(closing);
        tracing::debug!("STATE after {} records: waits in segment {}", self.records, segment - 1);
        self.segment = segment;
        self.records_since_state = 0;
        match &self.transactions {
            Some(t) if !t.open() || t.due() => self.commit(),
            _ => self.release(),
        }
    }

    /// Exactly-once: commits the open transaction (once its records are acknowledged, the progress line going on
    /// while the broker is waited for) and emits the states it covers. With nothing open, the states waiting are
    /// for records in transactions already committed.
    fn commit(&mut self) -> Result<()> {
        let Some(transactions) = &self.transactions else { return self.release() };
        if !transactions.open() {
            self.tracker().lock().committed();
            return self.release();
        }
        let budget = self.settings.delivery_budget();
        let deadline = Instant::now() + budget;
        if !self.wait_settled(deadline, "waiting for the acknowledgements before a commit")? {
            return Err(Error::Transient(format!(
                "records were not acknowledged within {} s, so the transaction cannot be committed",
                budget.as_secs()
            )));
        }
        if let Some(error) = self.tracker().lock().take_failure() {
            return Err(error);
        }
        while !self.transactions.as_mut().expect("exactly-once").try_commit(&self.producer, deadline)? {
            self.tick("waiting for the broker to commit the transaction", false);
        }
        self.release()
    }

    /// Exactly-once, when input pauses: states waiting for the commit interval go out now, if the open transaction
    /// ends at a STATE (or is past a bound).
    fn commit_when_idle(&mut self) -> Result<()> {
        match &self.transactions {
            Some(t) if t.open() && (self.records_since_state == 0 || t.overdue()) => self.commit(),
            _ => Ok(()),
        }
    }

    /// Serves delivery reports, releases due states, stops at the first failed delivery.
    fn settle(&mut self, doing: &str) -> Result<()> {
        self.serve()?;
        self.release()?;
        if self.tracker().lock().has_failed() {
            return Err(Error::System("a record could not be delivered".into()));
        }
        self.tick(doing, false);
        Ok(())
    }

    /// Exactly-once, after a failure or a stop: nothing of the open transaction may become visible.
    fn abort(&mut self) {
        if let Some(transactions) = self.transactions.as_mut() {
            transactions.abort(&self.producer);
        }
    }

    /// Writes every STATE whose records are all acknowledged, in input order.
    fn release(&mut self) -> Result<()> {
        let (mut written, mut emitted) = (Ok(()), 0);
        self.producer.listener().lock().take_due(|state| {
            if written.is_ok() {
                written = output::emit(&state);
                emitted += 1;
            }
        });
        if emitted > 0 {
            tracing::debug!("{emitted} STATE(s) emitted, all their records acknowledged");
        }
        self.states_emitted += emitted;
        written.map_err(|e| Error::io("cannot write a STATE to stdout", e))
    }

    /// Serves reports until every record sent is settled (acknowledged or failed), the deadline passes or a stop
    /// is asked for; returns whether everything settled.
    fn wait_settled(&mut self, deadline: Instant, waiting_for: &str) -> Result<bool> {
        loop {
            self.release()?;
            if self.tracker().lock().in_flight() == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            stop::check()?;
            if !self.serve()? {
                std::thread::sleep(Duration::from_micros(200));
            }
            self.tick(waiting_for, false);
        }
    }

    /// After the input: waits for every record in flight (up to the delivery budget at a clean end of input, the
    /// stop grace after a failure or a stop, counted from when it is seen), emitting the states that completes.
    /// Returns whether everything settled.
    fn drain(&mut self, clean: bool) -> Result<bool> {
        // Exactly-once: the end of input commits what is left; anything else aborts it.
        let failed = self.tracker().lock().has_failed();
        if self.transactions.is_some() {
            if clean && !failed && !stop::requested() {
                if let Err(error) = self.commit() {
                    self.abort();
                    return Err(error);
                }
            } else {
                self.abort();
            }
        }
        let mut graced = !clean || stop::requested();
        let mut deadline = Instant::now() + if graced { STOP_GRACE } else { self.settings.delivery_budget() };
        loop {
            self.release()?;
            if self.tracker().lock().in_flight() == 0 {
                return Ok(true);
            }
            if !graced && (stop::requested() || self.tracker().lock().has_failed()) {
                graced = true;
                deadline = deadline.min(Instant::now() + STOP_GRACE);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if !self.serve()? {
                std::thread::sleep(Duration::from_micros(200));
            }
            self.tick("waiting for the last acknowledgements", false);
        }
    }

    fn tick(&mut self, waiting_for: &str, force: bool) {
        let now = Instant::now();
        let checkpoints = self.tracker().lock();
        let (acknowledged, states_pending) = (checkpoints.acknowledged_count(), checkpoints.pending_states());
        let rejected = checkpoints.rejected_count();
        drop(checkpoints);
        self.progress.observe(now, self.records, acknowledged);
        let snapshot = Snapshot {
            records: self.records,
            acknowledged,
            bytes_read: self.bytes_read,
            states_emitted: self.states_emitted,
            states_pending,
            rejected,
            waiting_for,
            last_broker_error: self.producer.diagnostics().cause().map(|(_, reason)| reason),
            client: self.producer.statistics().map(|mut s| {
                // The statistics are seconds old: once every record is acknowledged, nothing is queued.
                if acknowledged == self.records {
                    (s.queued_messages, s.queued_bytes) = (0, 0);
                }
                s.to_string()
            }),
        };
        self.progress.tick(now, &snapshot, force);
    }
}
