//! The produce → acknowledge → state end of the write path: hands each encoded record to the producer (waiting
//! for room in its queue while the broker makes progress), writes rejected records to their dead-letter topic,
//! serves delivery reports into the checkpoints, and emits each STATE whose records are acknowledged once the
//! release policy allows it. Every wait of the write path is [`Sink::wait_until`].

mod reject;

use super::acknowledge::{Acknowledger, InFlight};
use super::checkpoint::{Closing, SegmentId, Tracker};
use super::dead_letter::Rejection;
use super::progress::{Progress, Snapshot};
use crate::airbyte::catalog::Stream;
use crate::airbyte::output;
use crate::config::Settings;
use crate::delivery::Undelivered;
use crate::error::{Error, Result, Scope};
use crate::kafka::producer::{Producer, Sent};
use crate::kafka::record::OutgoingRecord;
use crate::stop::{stopped, Stop};
use std::time::{Duration, Instant};

/// How long a stop (signal or failure) waits for records already sent before giving up on them: well inside
/// the 10 s `docker stop` gives before SIGKILL, so the TRACE and the due states get out.
pub const STOP_GRACE: Duration = Duration::from_secs(7);
/// Delivery reports are served every this many records (and whenever input pauses).
const SERVE_EVERY: u64 = 256;
/// A wait with no report ready sleeps this long (a blocking sleep: rdkafka's own short polls spin).
const PAUSE: Duration = Duration::from_micros(250);

/// How long a wait may last.
#[derive(Clone, Copy)]
pub enum Limit {
    /// Until this instant, or a stop.
    Until(Instant),
    /// While the broker acknowledges something at least this often, or until a stop.
    WhileProgressing(Duration),
    /// Until this instant, whatever is asked: the grace records in flight get after a failure or a stop.
    Grace(Instant),
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    Done,
    TimedOut,
    Stopped,
}

pub struct Sink<'a> {
    settings: &'a Settings,
    streams: &'a [Stream],
    /// `record_errors: dead_letter`.
    dead_letters: bool,
    producer: Producer<Acknowledger>,
    stop: Stop,
    /// STATEs of segments before this one may go out: the release policy's decision.
    allowed: SegmentId,
    /// Messages handed on: the input's records (produced or rejected), a delete event's tombstone, a progress record.
    records: u64,
    bytes_read: u64,
    states_emitted: u64,
    progress: Progress,
    /// The producer queue was full at least once (said once in the log).
    queue_filled: bool,
}

impl<'a> Sink<'a> {
    pub fn new(
        settings: &'a Settings,
        streams: &'a [Stream],
        producer: Producer<Acknowledger>,
        stop: &Stop,
    ) -> Sink<'a> {
        Sink {
            settings,
            streams,
            dead_letters: settings.record_errors.dead_letter_pattern().is_some(),
            producer,
            stop: stop.clone(),
            allowed: SegmentId::MAX,
            records: 0,
            bytes_read: 0,
            states_emitted: 0,
            progress: Progress::new(),
            queue_filled: false,
        }
    }

    pub fn producer(&self) -> &Producer<Acknowledger> {
        &self.producer
    }

    pub fn tracker(&self) -> &Tracker {
        &self.producer.listener().tracker
    }

    pub fn settings(&self) -> &Settings {
        self.settings
    }

    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// The release policy's limit: STATEs of segments before `segment` may go out.
    pub fn allow_before(&mut self, segment: SegmentId) {
        self.allowed = segment;
    }

    pub fn read(&mut self, bytes: usize) {
        self.bytes_read += bytes as u64;
    }

    /// Produces one record of the input; whether it was sent (or, refused before it left, dead-lettered).
    pub fn produce(&mut self, record: &OutgoingRecord<'_>, at: InFlight) -> Result<bool> {
        let sent = self.send(record, at, true)?;
        if self.settings.sync_producer {
            // Java's meaning: each record acknowledged before the next is sent.
            let deadline = Instant::now() + self.settings.delivery_budget();
            let settled = |s: &mut Sink| Ok(s.tracker().lock().in_flight() == 0);
            if self.wait_until("waiting for the record's acknowledgement", Limit::Until(deadline), settled)?
                == Waited::Stopped
            {
                return Err(stopped());
            }
            self.settle("sync producer")?;
        } else if self.records.is_multiple_of(SERVE_EVERY) {
            self.settle("producing")?;
        }
        Ok(sent)
    }

    /// A message of the connector's own (the progress record), in the open segment: its acknowledgement is waited
    /// for like a record's, and its failure fails the sync.
    pub fn produce_own(&mut self, record: &OutgoingRecord<'_>) -> Result<()> {
        let segment = self.tracker().open_segment();
        self.send(record, InFlight { segment, line: 0, stream: 0, emitted_at: 0, dead_letter: false }, true).map(drop)
    }

    /// Hands a record to the producer; on a full queue, serves reports until it has room, for as long as the
    /// broker makes progress (`max_block_ms`) and no stop is asked for. `new`: a record of the input (not the
    /// dead letter of one already counted). Whether librdkafka took it (`false`: refused, it was dead-lettered).
    fn send(&mut self, record: &OutgoingRecord<'_>, at: InFlight, new: bool) -> Result<bool> {
        let token = self.producer.listener().admit(at);
        let mut refused = None;
        // Done when librdkafka took it, or refused it (that is said below); a full queue is tried again.
        let mut offer = |sink: &mut Sink| {
            if new {
                sink.tracker().sending();
            }
            match sink.producer.send(record, token) {
                Ok(Sent::Queued) => return Ok(true),
                Ok(Sent::QueueFull(_)) => {}
                Err(error) => refused = Some(error),
            }
            if new {
                sink.tracker().not_sent();
            }
            if refused.is_none() && !std::mem::replace(&mut sink.queue_filled, true) {
                tracing::info!(
                    "the producer queue is full at record {} (input line {}): sending waits for the broker to \
                     acknowledge records",
                    sink.records + 1,
                    at.line
                );
            }
            Ok(refused.is_some())
        };
        let waiting = "waiting for room in the producer queue (the broker has not acknowledged enough records)";
        let waited = self.wait_until(waiting, Limit::WhileProgressing(self.settings.max_block), &mut offer);
        if !matches!(waited, Ok(Waited::Done)) || refused.is_some() {
            self.producer.listener().withdraw(token);
        }
        match waited? {
            Waited::Done => {}
            Waited::Stopped => return Err(stopped()),
            Waited::TimedOut => {
                let waited = format!(
                    "the producer queue stayed full for {} ms (max_block_ms) with no record acknowledged",
                    self.settings.max_block.as_millis()
                );
                return Err(self.producer.diagnostics().explain(self.settings, &waited));
            }
        }
        if let Some(error) = refused {
            // Refused before it left (larger than max_request_size): the record alone is at fault.
            if self.dead_letters && !at.dead_letter && !at.own() && error.failure().scope == Scope::Record {
                let (key, value) = (record.key.map(<[u8]>::to_vec), record.value.map(<[u8]>::to_vec));
                return self.dead_letter(at, key, value, &Rejection::refused(&error), new).map(|()| false);
            }
            return Err(error.at_line(at.line));
        }
        if new {
            self.records += 1;
        }
        Ok(true)
    }

    /// Serves delivery reports, and dead-letters the records the broker refused on their own account.
    fn serve(&mut self) -> Result<bool> {
        let served = self.producer.serve_reports();
        for (record, undelivered) in self.producer.listener().take_refused() {
            let why = Rejection::refused(&undelivered.error);
            let Undelivered { key, value, .. } = undelivered;
            self.dead_letter(record, key, value, &why, false)?;
        }
        Ok(served)
    }

    /// A STATE arrived: it waits for every record sent so far. Returns the new open segment.
    pub fn close_segment(&mut self, closing: Closing) -> SegmentId {
        let segment = self.tracker().close(closing);
        tracing::debug!("STATE after {} records: waits in segment {}", self.records, segment - 1);
        segment
    }

    /// Writes every STATE whose records are all acknowledged and that the release policy allows, in input order.
    pub fn release(&mut self) -> Result<()> {
        let (mut written, mut emitted) = (Ok(()), 0);
        self.tracker().lock().take_due(self.allowed, |state| {
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

    /// Waits until every message sent is acknowledged, or one failed (that failure is the error), within the
    /// delivery budget (the progress line going on meanwhile); `cannot` says what a timeout prevents. Returns the
    /// deadline, for what follows to keep to.
    pub fn wait_acknowledged(&mut self, waiting: &str, cannot: &str) -> Result<Instant> {
        let budget = self.settings.delivery_budget();
        let deadline = Instant::now() + budget;
        let settled = |s: &mut Sink| Ok(s.tracker().lock().in_flight() == 0 || s.tracker().lock().has_failed());
        match self.wait_until(waiting, Limit::Until(deadline), settled)? {
            Waited::Done => {}
            Waited::Stopped => return Err(stopped()),
            Waited::TimedOut => {
                return Err(Error::Transient(format!(
                    "records were not acknowledged within {} s, so {cannot}",
                    budget.as_secs()
                )))
            }
        }
        match self.take_failure() {
            Some(error) => Err(error),
            None => Ok(deadline),
        }
    }

    /// The first record that could not be delivered, as the cause the user must see.
    pub fn take_failure(&self) -> Option<Error> {
        self.tracker().lock().take_failure().map(|e| self.producer.cause_of(e))
    }

    /// Serves delivery reports, releases due states, stops at the first failed delivery.
    pub fn settle(&mut self, doing: &str) -> Result<()> {
        self.serve()?;
        self.release()?;
        if self.tracker().lock().has_failed() {
            return Err(self.take_failure().unwrap_or_else(|| Error::System("a record could not be delivered".into())));
        }
        self.tick(doing, false);
        Ok(())
    }

    /// Serves reports, releases due states and keeps the progress line going (saying what is waited for) until
    /// `done` holds, the limit passes, or a stop is asked for (unless the limit is a grace).
    pub fn wait_until(
        &mut self,
        waiting_for: &str,
        limit: Limit,
        mut done: impl FnMut(&mut Sink<'a>) -> Result<bool>,
    ) -> Result<Waited> {
        // Most waits are done at once (a record the queue takes): nothing is read before the first try.
        if done(self)? {
            return Ok(Waited::Done);
        }
        let mut progress = (Instant::now(), self.tracker().lock().acknowledged_count());
        loop {
            let now = Instant::now();
            match limit {
                Limit::Grace(deadline) if now >= deadline => return Ok(Waited::TimedOut),
                Limit::Grace(_) => {}
                _ if self.stop.requested() => return Ok(Waited::Stopped),
                Limit::Until(deadline) if now >= deadline => return Ok(Waited::TimedOut),
                Limit::Until(_) => {}
                Limit::WhileProgressing(patience) => {
                    let acknowledged = self.tracker().lock().acknowledged_count();
                    if acknowledged != progress.1 {
                        progress = (now, acknowledged);
                    } else if now.duration_since(progress.0) > patience {
                        return Ok(Waited::TimedOut);
                    }
                }
            }
            if !self.serve()? {
                std::thread::sleep(PAUSE);
            }
            self.release()?;
            self.tick(waiting_for, false);
            if done(self)? {
                return Ok(Waited::Done);
            }
        }
    }

    /// After the input: waits for every record in flight (up to the delivery budget at a clean end of input, the
    /// stop grace after a failure or a stop, counted from when it is seen), emitting the states that completes.
    /// Returns whether everything settled.
    pub fn drain(&mut self, clean: bool) -> Result<bool> {
        let waiting = "waiting for the last acknowledgements";
        let settled = |s: &mut Sink| Ok(s.tracker().lock().in_flight() == 0);
        if clean && !self.stop.requested() {
            let deadline = Instant::now() + self.settings.delivery_budget();
            let settled_or_failed = |s: &mut Sink| Ok(settled(s)? || s.tracker().lock().has_failed());
            match self.wait_until(waiting, Limit::Until(deadline), settled_or_failed)? {
                Waited::Done if settled(self)? => return Ok(true),
                Waited::TimedOut => return Ok(false),
                _ => {}
            }
        }
        let waited = self.wait_until(waiting, Limit::Grace(Instant::now() + STOP_GRACE), settled)?;
        if waited != Waited::Done {
            let in_flight = self.tracker().lock().in_flight();
            tracing::warn!(
                "{in_flight} records still unacknowledged after the {} s grace: given up",
                STOP_GRACE.as_secs()
            );
        }
        Ok(waited == Waited::Done)
    }

    /// A progress line when one is due (`force`: now, for the summary).
    pub fn tick(&mut self, waiting_for: &str, force: bool) {
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
