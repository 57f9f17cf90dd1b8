//! The main thread's loop: each parsed item in input order. A RECORD is encoded (its stream's encoder) and handed
//! to the [`Sink`]; a STATE closes a checkpoint segment; the release policy hears of both, of input pausing and of
//! the end. At the end, what is in flight is waited for and the sync is summed up.

use super::acknowledge::InFlight;
use super::checkpoint::Closing;
use super::input::{Input, LineLimit, Next};
use super::parse::{Item, Parsed};
use super::partitions::Ledger;
use super::release::Release;
use super::sink::Sink;
use crate::airbyte::catalog::Catalog;
use crate::airbyte::message::now_ms;
use crate::airbyte::state::{Additions, Counted, RecordCounts, State};
use crate::error::{Error, Result};
use crate::format::{RecordIn, StreamEncoder};
use crate::stop::Stop;
use std::time::Duration;

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
    release: Box<dyn Release>,
    /// Speed Mode: states follow their partitions' counts, not the input's order.
    ledger: Option<Ledger>,
    limit: LineLimit,
    stop: Stop,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        catalog: &'a Catalog,
        encoders: Vec<StreamEncoder>,
        sink: Sink<'a>,
        release: Box<dyn Release>,
        ledger: Option<Ledger>,
        limit: LineLimit,
        stop: &Stop,
    ) -> Pipeline<'a> {
        let n = catalog.streams.len();
        Pipeline {
            catalog,
            encoders,
            counts: RecordCounts::new(n),
            tallies: vec![Tally::default(); n],
            unknown: 0,
            sink,
            release,
            ledger,
            limit,
            stop: stop.clone(),
        }
    }

    /// Reads until end of input, a stop signal or the first failure.
    pub fn consume(&mut self, input: Input<Parsed>) -> Result<()> {
        loop {
            self.stop.check()?;
            let wait = if self.sink.tracker().lock().in_flight() > 0 { 10 } else { 200 };
            match input.next(Duration::from_millis(wait))? {
                Next::Chunk(parsed) => {
                    self.sink.read(parsed.chunk.len());
                    for item in parsed.items {
                        match item {
                            Item::Record { stream, emitted_at, data, meta, partition, line } => {
                                if let Some(ledger) = &mut self.ledger {
                                    let Some(partition) = partition else {
                                        return Err(Error::Input {
                                            line,
                                            reason: "a RECORD without `partition_id`: in Speed Mode every record \
                                                     names the partition its STATE counts"
                                                .into(),
                                        });
                                    };
                                    ledger.read(&parsed.chunk[partition], stream, data.len() as u64)?;
                                }
                                let emitted_at = emitted_at.unwrap_or_else(now_ms);
                                let meta = meta.map(|m| &parsed.chunk[m]);
                                self.record(stream, line, &RecordIn { emitted_at, data: &parsed.chunk[data], meta })?
                            }
                            Item::State { counted, state } => self.state(counted, state)?,
                            Item::Unknown { kind, line } => self.unknown(&kind, line),
                            Item::StreamComplete => self.ledger.iter_mut().for_each(Ledger::stream_complete),
                            Item::TooLong { stream, kind, emitted_at, length, line } => {
                                self.too_long(stream, kind, emitted_at, length, line)?
                            }
                            Item::Failure(error) => return Err(error),
                        }
                    }
                    input.recycle(parsed.chunk.into_bytes());
                    self.close_due()?;
                    self.sink.settle("reading input")?;
                }
                Next::Idle => {
                    self.release.idle(&mut self.sink)?;
                    self.sink.settle("waiting for input")?
                }
                Next::End => return self.ledger.as_ref().map_or(Ok(()), Ledger::end),
            }
        }
    }

    fn record(&mut self, stream: usize, line: u64, record: &RecordIn<'_>) -> Result<()> {
        let segment = self.sink.tracker().open_segment();
        let at = InFlight { segment, line, stream, emitted_at: record.emitted_at, dead_letter: false };
        let bytes = match self.encoders[stream].encode(record) {
            Ok(outgoing) => {
                let bytes = outgoing.value.map_or(0, <[u8]>::len) as u64;
                self.sink.produce(&outgoing, at)?;
                bytes
            }
            Err(why) => {
                self.sink.reject(at, record.data.as_bytes(), why.into())?;
                0
            }
        };
        self.counts.record(stream);
        self.tallies[stream].records += 1;
        self.tallies[stream].bytes += bytes;
        self.release.sent(&mut self.sink)
    }

    /// A STATE closes the open segment; it goes out once its records are acknowledged (and the policy allows).
    fn state(&mut self, counted: Counted, state: State) -> Result<()> {
        if let Some(ledger) = &mut self.ledger {
            return ledger.hold(counted, state);
        }
        let records = self.counts.take(&counted);
        self.close(Closing { state, records, counted, more: Additions::default() })
    }

    fn close(&mut self, closing: Closing) -> Result<()> {
        self.sink.close_segment(closing);
        self.release.state(&mut self.sink)
    }

    /// Speed Mode: the held states whose records have all been read close their segments now.
    fn close_due(&mut self) -> Result<()> {
        let Some(mut ledger) = self.ledger.take() else {
            return Ok(());
        };
        let closed = ledger.due(|closing| self.close(closing));
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
        self.release.sent(&mut self.sink)
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
        if let Some(line) = self.release.summary() {
            tracing::info!("{line}");
        }
    }
}
