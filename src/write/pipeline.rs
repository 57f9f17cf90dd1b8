//! The main thread's loop: each parsed item in input order. A RECORD's message (made by the encode stage,
//! `workers`) is handed to the [`Sink`]; a STATE closes a checkpoint segment; the release policy hears of both, of
//! input pausing and of the end. At the end, what is in flight is waited for and the sync is summed up.

use super::acknowledge::InFlight;
use super::backlog::{Backlog, Pending};
use super::checkpoint::Closing;
use super::encoded::Encoded;
use super::input::{LineLimit, Next};
use super::parse::Item;
use super::partitions::Ledger;
use super::release::Release;
use super::sink::Sink;
use super::workers::Workers;
use crate::airbyte::catalog::Catalog;
use crate::airbyte::message::now_ms;
use crate::airbyte::state::{Additions, Counted, RecordCounts, State};
use crate::error::{Error, Result};
use crate::stop::Stop;
use std::time::Duration;

/// Unknown message types are logged one by one this many times, then only counted.
const UNKNOWN_LOGGED: u64 = 10;

/// Per-stream totals for the final summary.
#[derive(Default, Clone, Copy)]
struct Tally {
    records: u64,
    bytes: u64,
    /// Values the format had to null.
    nulled: u64,
}

pub struct Pipeline<'a> {
    catalog: &'a Catalog,
    counts: RecordCounts,
    tallies: Vec<Tally>,
    unknown: u64,
    sink: Sink<'a>,
    release: Box<dyn Release>,
    /// Speed Mode: states follow their partitions' counts, not the input's order.
    ledger: Option<Ledger>,
    backlog: Backlog,
    /// The backlog grew too large before a boundary: until the next commit, nothing more waits.
    gave_up: bool,
    /// Per source, the highest state `id` read from it.
    last_ids: Vec<i64>,
    limit: LineLimit,
    stop: Stop,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        catalog: &'a Catalog,
        sink: Sink<'a>,
        release: Box<dyn Release>,
        ledger: Option<Ledger>,
        limit: LineLimit,
        stop: &Stop,
    ) -> Pipeline<'a> {
        let n = catalog.streams.len();
        Pipeline {
            catalog,
            counts: RecordCounts::new(n),
            tallies: vec![Tally::default(); n],
            unknown: 0,
            sink,
            release,
            ledger,
            backlog: Backlog::default(),
            gave_up: false,
            last_ids: Vec::new(),
            limit,
            stop: stop.clone(),
        }
    }

    /// Reads until end of input, a stop signal or the first failure.
    pub fn consume(&mut self, mut input: Workers) -> Result<()> {
        let mut ended = false;
        loop {
            self.stop.check()?;
            let holding = !ended && self.holding();
            let waiting = match &self.ledger {
                Some(ledger) if holding => {
                    // Every socket waits in the backlog, or what was read waits for a partition not begun: waiting
                    // on would only end at the bounds.
                    let every_socket_waits = self.backlog.sources() >= input.open();
                    let stuck = || every_socket_waits || ledger.waits_for_order();
                    let last_ids = &self.last_ids;
                    let behind = |source: usize| last_ids.get(source).copied().unwrap_or(0);
                    self.backlog.next_holding(stuck, |head| begins_partition(ledger, head), behind)
                }
                _ => self.backlog.next().map(|pending| (pending, false)),
            };
            let (pending, begin) = match waiting {
                Some(waiting) => waiting,
                None if ended => return self.ledger.as_ref().map_or(Ok(()), Ledger::end),
                None => {
                    let wait = if self.sink.tracker().lock().in_flight() > 0 { 10 } else { 200 };
                    match input.next(Duration::from_millis(wait))? {
                        Next::Chunk(pending) => {
                            self.sink.read(pending.chunk.len());
                            if self.backlog.holds(pending.source) {
                                self.backlog.hold(pending, false);
                                continue;
                            }
                            (pending, false)
                        }
                        Next::Idle => {
                            self.release.idle(&mut self.sink)?;
                            self.sink.settle("waiting for input")?;
                            continue;
                        }
                        Next::End => {
                            ended = true;
                            continue;
                        }
                    }
                }
            };
            if let Some(spent) = self.handle(pending, holding, begin)? {
                input.recycle(spent);
            }
            self.close_due()?;
            self.sink.settle("reading input")?;
        }
    }

    /// Speed Mode with exactly-once: whether records of partitions not begun wait (see `backlog`).
    fn holding(&mut self) -> bool {
        if self.ledger.is_none() || !self.release.wants_boundary() {
            self.gave_up = false;
            return false;
        }
        self.gave_up |= self.backlog.full();
        !self.gave_up
    }

    /// Handles the items of a chunk in order; `holding`: a record of a partition not begun, and what follows it,
    /// go to the backlog instead (but the first item if `begin`). Returns the chunk once every item is handled.
    fn handle(&mut self, mut pending: Pending, holding: bool, mut begin: bool) -> Result<Option<Pending>> {
        while !pending.items.as_slice().is_empty() {
            if holding
                && !begin
                && begins_partition(self.ledger.as_ref().expect("holding only in Speed Mode"), &pending)
            {
                self.backlog.hold(pending, true);
                return Ok(None);
            }
            begin = false;
            let item = pending.items.next().expect("looked at above");
            if let Item::State { state, .. } = &item {
                if self.last_ids.len() <= pending.source {
                    self.last_ids.resize(pending.source + 1, 0);
                }
                let last = &mut self.last_ids[pending.source];
                *last = (*last).max(state.partitioned.id.unwrap_or(0));
            }
            self.item(item, &pending.chunk, &mut pending.encoded)?;
        }
        Ok(Some(pending))
    }

    fn item(&mut self, item: Item, chunk: &str, encoded: &mut Encoded) -> Result<()> {
        match item {
            Item::Record { stream, emitted_at, data, partition, line, .. } => {
                if let Some(ledger) = &mut self.ledger {
                    let Some(partition) = partition else {
                        return Err(Error::Input {
                            line,
                            reason: "a RECORD without `partition_id`: in Speed Mode every record names the \
                                     partition its STATE counts"
                                .into(),
                        });
                    };
                    ledger.read(&chunk[partition], stream, data.len() as u64)?;
                }
                let emitted_at = emitted_at.expect("the encode stage set it");
                self.record(stream, line, emitted_at, &chunk[data], encoded)
            }
            Item::State { counted, state } => self.state(counted, state),
            Item::Unknown { kind, line } => {
                self.unknown(&kind, line);
                Ok(())
            }
            Item::StreamComplete => {
                self.ledger.iter_mut().for_each(Ledger::stream_complete);
                Ok(())
            }
            Item::TooLong { stream, kind, emitted_at, length, line } => {
                self.too_long(stream, kind, emitted_at, length, line)
            }
            Item::Failure(error) => Err(error),
        }
    }

    fn record(&mut self, stream: usize, line: u64, emitted_at: i64, data: &str, encoded: &mut Encoded) -> Result<()> {
        let segment = self.sink.tracker().open_segment();
        let at = InFlight { segment, line, stream, emitted_at, dead_letter: false };
        let taken = encoded.take(&self.catalog.streams[stream].topic);
        let bytes = match taken.message {
            Ok(outgoing) => {
                // A delete event dead-lettered before it left has no tombstone: it would delete the key downstream
                // though the event that says so is not there.
                if self.sink.produce(&outgoing, at)? {
                    if let Some(tombstone) = &taken.follow_up {
                        self.sink.produce(tombstone, at)?;
                    }
                }
                outgoing.value.map_or(0, <[u8]>::len) as u64
            }
            Err(why) => {
                self.sink.reject(at, data.as_bytes(), why.into())?;
                0
            }
        };
        self.counts.record(stream);
        let tally = &mut self.tallies[stream];
        tally.records += 1;
        tally.bytes += bytes;
        tally.nulled += u64::from(taken.nulled);
        self.release.sent(&mut self.sink, &self.catalog.streams[stream], data)
    }

    /// A STATE closes the open segment; it goes out once its records are acknowledged (and the policy allows).
    fn state(&mut self, counted: Counted, state: State) -> Result<()> {
        if let Some(ledger) = &mut self.ledger {
            return ledger.hold(counted, state);
        }
        let records = self.counts.take(&counted);
        self.close(Closing { state, records, counted, more: Additions::default() }, true)
    }

    /// `boundary`: every record sent so far is covered by a closed STATE.
    fn close(&mut self, closing: Closing, boundary: bool) -> Result<()> {
        self.release.closing(&closing);
        self.sink.close_segment(closing);
        self.release.state(&mut self.sink, boundary)
    }

    /// Speed Mode: the held states whose records have all been read close their segments now.
    fn close_due(&mut self) -> Result<()> {
        let Some(mut ledger) = self.ledger.take() else {
            return Ok(());
        };
        let closed = ledger.due(|closing, boundary| self.close(closing, boundary));
        self.ledger = Some(ledger);
        closed
    }

    /// A line over its limit: a RECORD of a known stream is a rejected record; anything else fails the sync.
    fn too_long(
        &mut self,
        stream: Option<usize>,
        kind: Option<String>,
        emitted_at: Option<i64>,
        length: usize,
        line: u64,
    ) -> Result<()> {
        // Speed Mode counts every record in its partition, which a line read only in part does not name.
        let stream = stream.filter(|_| self.ledger.is_none());
        let Some(stream) = stream else {
            let kind = kind.map_or_else(|| "a line".to_string(), |k| format!("a {k} line"));
            let limit = if kind == "a RECORD line" { self.limit.any } else { self.limit.not_a_record };
            return Err(Error::Input {
                line,
                reason: format!("{kind} of {length} bytes or more, over the {limit} bytes a line may have here"),
            });
        };
        let why = format!(
            "the RECORD is {length} bytes or more, over the {} bytes a line may have (`max_request_size` plus 1 MiB \
             for the message around the data), so it could never be produced; raise `max_request_size` (and the \
             topic's max.message.bytes) to write such records",
            self.limit.any
        );
        let segment = self.sink.tracker().open_segment();
        let emitted_at = emitted_at.unwrap_or_else(now_ms);
        let at = InFlight { segment, line, stream, emitted_at, dead_letter: false };
        self.sink.reject_unread(at, length, Error::Record(why))?;
        self.counts.record(stream);
        self.tallies[stream].records += 1;
        // Its data was not read: only its length is known of it.
        self.release.sent(&mut self.sink, &self.catalog.streams[stream], &format!("(unread: {length} bytes)"))
    }

    fn unknown(&mut self, kind: &str, line: u64) {
        self.unknown += 1;
        if self.unknown <= UNKNOWN_LOGGED {
            tracing::warn!("input line {line}: message type `{kind}` is not one this destination knows; skipped");
        }
    }

    /// Makes what was read count (or aborts it, after a failure or a stop), waits for what is in flight (all of it
    /// at a clean end of input, a bounded time otherwise), emits the states that completes, and reports.
    pub fn finish(mut self, outcome: Result<()>) -> Result<()> {
        let failed = self.sink.tracker().lock().has_failed();
        let ended = if outcome.is_ok() && !failed && !self.stop.requested() {
            self.release.end(&mut self.sink)
        } else {
            Ok(())
        };
        if outcome.is_err() || failed || self.stop.requested() || ended.is_err() {
            self.release.abort(&mut self.sink);
        }
        let clean = outcome.is_ok() && ended.is_ok();
        let settled = self.sink.drain(clean);
        self.summary();
        // The first broken promise is the cause; then what ended the input, then a signal.
        if let Some(error) = self.sink.take_failure() {
            return Err(error);
        }
        outcome?;
        ended?;
        self.stop.check()?;
        if !settled? {
            let in_flight = self.sink.tracker().lock().in_flight();
            let budget = self.sink.settings().delivery_budget().as_secs();
            let waited = format!("{in_flight} records were not acknowledged within {budget} s");
            return Err(self.sink.producer().diagnostics().explain(self.sink.settings(), &waited));
        }
        let pending = self.sink.tracker().lock().pending_states();
        if pending > 0 {
            return Err(Error::System(format!("{pending} states were never released")));
        }
        Ok(())
    }

    fn summary(&mut self) {
        self.sink.tick("summary", true);
        for (i, (stream, tally)) in self.catalog.streams.iter().zip(&self.tallies).enumerate() {
            let rejected = match &stream.dead_letter_topic {
                Some(topic) => format!(", {} rejected to `{topic}`", self.sink.tracker().lock().rejected_of(i)),
                None => String::new(),
            };
            let nulled = match tally.nulled {
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
        if let Some(line) = self.release.summary() {
            tracing::info!("{line}");
        }
    }
}

/// Whether the next item of `pending` is a record of a partition not begun yet.
fn begins_partition(ledger: &Ledger, pending: &Pending) -> bool {
    match pending.items.as_slice().first() {
        Some(Item::Record { partition: Some(p), .. }) => !ledger.is_open(&pending.chunk[p.clone()]),
        _ => false,
    }
}
