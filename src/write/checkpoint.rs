//! When a STATE may go out: only once every record read before it is acknowledged by the broker.
//!
//! Records are grouped into segments, one per gap between two STATEs. A segment counts its records still in
//! flight; a STATE closes the open segment. The oldest closed segment whose count reached zero releases its
//! STATE, in input order. A failed delivery poisons its segment: neither its STATE nor any later one is released.
//! With exactly-once delivery a segment must also be committed (in a Kafka transaction) before its STATE goes out.
//! A record rejected to the dead-letter topic counts as settled once the dead-letter topic acknowledged it, and
//! in the `rejectedRecordCount` of the STATE that covers it.

use crate::airbyte::state::State;
use crate::error::Error;
use crate::kafka::producer::{DeliveryListener, Undelivered};
use rdkafka::error::RDKafkaErrorCode;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Identifies the segment a record belongs to.
pub type SegmentId = usize;

/// What a record's delivery report brings back: where it belongs and where it came from.
#[derive(Clone, Copy)]
pub struct InFlight {
    pub segment: SegmentId,
    /// Its input line, to name it if it fails.
    pub line: u64,
    /// Its stream's catalog index.
    pub stream: usize,
    pub emitted_at: i64,
    /// A dead-letter message: its acknowledgement settles a rejected record.
    pub dead_letter: bool,
}

/// A record the broker refused on its own account, waiting to be written to the dead-letter topic.
pub struct Refused {
    pub record: Box<InFlight>,
    pub undelivered: Undelivered,
}

/// The producer's delivery listener: settles records in the checkpoints, whatever thread serves the reports.
///
/// A record is counted before librdkafka gets it, so its report can never arrive first. Counting goes to an
/// atomic (no lock per record); it is folded into the checkpoints, all in the open segment, whenever they are
/// locked, and a segment is closed only under the lock.
pub struct Tracker {
    checkpoints: Mutex<Checkpoints>,
    uncounted: AtomicU64,
    /// `Some` with `record_errors: dead_letter`: refused records, for the write path to dead-letter.
    refused: Option<Mutex<Vec<Refused>>>,
}

impl Tracker {
    /// `committed_only`: a STATE also waits for the commit of its records (exactly-once). `rejects_of_streams`:
    /// rejected records are counted in STATEs, per stream (this many). `refusals`: records the broker refuses on
    /// their own account are handed back for the dead-letter topic instead of failing the sync.
    pub fn new(committed_only: bool, rejects_of_streams: Option<usize>, refusals: bool) -> Tracker {
        Tracker {
            checkpoints: Mutex::new(Checkpoints::new(committed_only, rejects_of_streams)),
            uncounted: AtomicU64::new(0),
            refused: refusals.then(|| Mutex::new(Vec::new())),
        }
    }

    /// The checkpoints, up to date with every record counted.
    pub fn lock(&self) -> MutexGuard<'_, Checkpoints> {
        let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        let uncounted = self.uncounted.swap(0, Ordering::Relaxed);
        if uncounted > 0 {
            checkpoints.sent(uncounted);
        }
        checkpoints
    }

    /// A record is about to be handed to the producer, in the open segment.
    pub fn sending(&self) {
        self.uncounted.fetch_add(1, Ordering::Relaxed);
    }

    /// The producer did not take it after all (its queue was full).
    pub fn not_sent(&self) {
        self.lock().sent_back();
    }

    /// Records the broker refused that are waiting for the dead-letter topic (they are still in flight).
    pub fn take_refused(&self) -> Vec<Refused> {
        self.refused
            .as_ref()
            .map_or_else(Vec::new, |r| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

/// Broker refusals that concern one record alone (never availability, authentication or permissions).
pub fn refused_on_its_own(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(code, Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidRecord))
}

impl DeliveryListener for Tracker {
    type Token = Box<InFlight>;

    fn delivered(&self, record: Box<InFlight>, outcome: std::result::Result<(), Undelivered>) {
        let code = outcome.as_ref().err().and_then(|u| u.error.kafka_code());
        match outcome {
            Ok(()) if record.dead_letter => self.lock().rejected(record.segment, record.stream),
            Ok(()) => self.lock().acknowledged(record.segment),
            // Purged by an abort, which has its own cause: not delivered, but not where the promise broke.
            Err(_) if matches!(code, Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)) => {
                self.lock().cancelled(record.segment)
            }
            Err(undelivered) => match &self.refused {
                // Still in flight: settled when the dead-letter topic acknowledges it.
                Some(refused) if !record.dead_letter && refused_on_its_own(code) => {
                    refused.lock().unwrap_or_else(|e| e.into_inner()).push(Refused { record, undelivered })
                }
                _ => self.lock().failed(record.segment, undelivered.error.at_line(record.line)),
            },
        }
    }
}

pub struct Checkpoints {
    /// Id of `segments[0]`.
    base: SegmentId,
    /// Closed segments (with their STATE) followed by the one open segment.
    segments: VecDeque<Segment>,
    in_flight: u64,
    acknowledged: u64,
    /// Rejected records per stream, for the summary.
    rejected: Vec<u64>,
    /// First segment with a record that was not delivered (failed, or purged by an abort).
    broken: Option<SegmentId>,
    /// First segment with a failed record, and why.
    failure: Option<(SegmentId, Error)>,
    /// Segments before this one are committed (always, at least once).
    committed_before: SegmentId,
    /// Rejected records not yet in a released STATE, counted as the platform counts records; `None` when records
    /// are never rejected (and STATEs say nothing of them).
    rejects: Option<RecordCounts>,
}

#[derive(Default)]
struct Segment {
    in_flight: u64,
    state: Option<Closing>,
    /// Rejected records of this segment, per stream.
    rejected: Vec<(usize, u64)>,
}

/// The STATE that closed a segment, with what its count covers.
pub struct Closing {
    pub state: State,
    pub records: u64,
    pub counted: Counted,
}

impl Checkpoints {
    pub fn new(committed_only: bool, rejects_of_streams: Option<usize>) -> Checkpoints {
        Checkpoints {
            base: 0,
            segments: VecDeque::from([Segment::default()]),
            in_flight: 0,
            acknowledged: 0,
            rejected: vec![0; rejects_of_streams.unwrap_or(0)],
            broken: None,
            failure: None,
            committed_before: if committed_only { 0 } else { SegmentId::MAX },
            rejects: rejects_of_streams.map(RecordCounts::new),
        }
    }

    /// `records` more were handed to the producer in the open segment, whose id their delivery reports carry.
    pub fn sent(&mut self, records: u64) -> SegmentId {
        self.in_flight += records;
        self.segments.back_mut().expect("an open segment").in_flight += records;
        self.open_segment()
    }

    /// Undoes one `sent(1)` of the open segment.
    fn sent_back(&mut self) {
        self.in_flight -= 1;
        self.segments.back_mut().expect("an open segment").in_flight -= 1;
    }

    pub fn open_segment(&self) -> SegmentId {
        self.base + self.segments.len() - 1
    }

    pub fn acknowledged(&mut self, segment: SegmentId) {
        self.in_flight -= 1;
        self.acknowledged += 1;
        self.segments[segment - self.base].in_flight -= 1;
    }

    /// A rejected record of `stream`, acknowledged by the dead-letter topic.
    pub fn rejected(&mut self, segment: SegmentId, stream: usize) {
        self.acknowledged(segment);
        if let Some(n) = self.rejected.get_mut(stream) {
            *n += 1;
        }
        let rejected = &mut self.segments[segment - self.base].rejected;
        match rejected.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, n)) => *n += 1,
            None => rejected.push((stream, 1)),
        }
    }

    pub fn failed(&mut self, segment: SegmentId, error: Error) {
        self.cancelled(segment);
        // Keep the earliest: it is where the promise broke, and its cause is the one to report.
        if self.failure.as_ref().is_none_or(|(first, _)| segment < *first) {
            self.failure = Some((segment, error));
        }
    }

    /// A record that will never be delivered, for a reason reported elsewhere (an abort purged it).
    pub fn cancelled(&mut self, segment: SegmentId) {
        self.in_flight -= 1;
        self.segments[segment - self.base].in_flight -= 1;
        self.broken = Some(self.broken.map_or(segment, |b| b.min(segment)));
    }

    /// Every record sent so far is in a committed transaction: the STATEs closed before now may go out.
    pub fn committed(&mut self) {
        self.committed_before = self.open_segment();
    }

    /// A STATE arrived: it waits for every record sent so far. Returns the new open segment.
    pub fn close(&mut self, closing: Closing) -> SegmentId {
        self.segments.back_mut().expect("an open segment").state = Some(closing);
        self.segments.push_back(Segment::default());
        self.open_segment()
    }

    /// STATEs whose records are all settled (and committed, when that is asked for), oldest first, rendered with
    /// their counts and removed from the tracker.
    pub fn take_due(&mut self, mut emit: impl FnMut(String)) {
        while self.segments.len() > 1 && self.segments[0].in_flight == 0 && self.base < self.committed_before {
            if self.broken.is_some_and(|broken| broken <= self.base) {
                return;
            }
            let segment = self.segments.pop_front().expect("len > 1");
            self.base += 1;
            let closing = segment.state.expect("closed segments hold a state");
            let rejected = self.rejects.as_mut().map(|rejects| {
                for (stream, n) in segment.rejected {
                    rejects.add(stream, n);
                }
                rejects.take(&closing.counted)
            });
            emit(closing.state.render(closing.records, rejected));
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Records settled: acknowledged in their topic or, rejected, in the dead-letter topic.
    pub fn acknowledged_count(&self) -> u64 {
        self.acknowledged
    }

    pub fn rejected_count(&self) -> u64 {
        self.rejected.iter().sum()
    }

    pub fn rejected_of(&self, stream: usize) -> u64 {
        self.rejected.get(stream).copied().unwrap_or(0)
    }

    /// STATEs read but not yet released.
    pub fn pending_states(&self) -> usize {
        self.segments.len() - 1
    }

    pub fn has_failed(&self) -> bool {
        self.failure.is_some()
    }

    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take().map(|(_, e)| e)
    }
}

/// What a STATE's record count covers: every record since the last GLOBAL/LEGACY state, or one stream's
/// (its catalog index; `None` for a stream the catalog does not have, whose count is 0).
#[derive(Debug, PartialEq, Eq)]
pub enum Counted {
    Global,
    Stream(Option<usize>),
}

/// Records per STATE, as the platform counts them: per stream since that stream's last STREAM state, and
/// since the last GLOBAL/LEGACY state for those.
pub struct RecordCounts {
    since_global: u64,
    per_stream: Vec<u64>,
}

impl RecordCounts {
    pub fn new(streams: usize) -> RecordCounts {
        RecordCounts { since_global: 0, per_stream: vec![0; streams] }
    }

    pub fn record(&mut self, stream: usize) {
        self.add(stream, 1);
    }

    fn add(&mut self, stream: usize, n: u64) {
        self.since_global += n;
        self.per_stream[stream] += n;
    }

    /// The count a STATE of this scope carries, which then starts again from zero.
    pub fn take(&mut self, scope: &Counted) -> u64 {
        match scope {
            Counted::Global => std::mem::take(&mut self.since_global),
            Counted::Stream(stream) => stream.map_or(0, |i| std::mem::take(&mut self.per_stream[i])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LEGACY state named `name`, counting `records` records.
    fn st(name: &str, records: u64) -> Closing {
        closing(name, records, Counted::Global)
    }

    fn closing(name: &str, records: u64, counted: Counted) -> Closing {
        let line = format!(r#"{{"type":"STATE","state":{{"data":"{name}"}}}}"#);
        let raw = match crate::airbyte::message::Message::parse(&line).unwrap() {
            crate::airbyte::message::Message::State(raw) => raw,
            _ => unreachable!(),
        };
        Closing { state: State::parse(&line, raw).unwrap(), records, counted }
    }

    /// The names of the states released, or their whole stats when `stats`.
    fn due(c: &mut Checkpoints) -> Vec<String> {
        let mut out = vec![];
        c.take_due(|s| {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            out.push(v["state"]["data"].as_str().unwrap().to_string());
        });
        out
    }

    fn stats(c: &mut Checkpoints) -> Vec<serde_json::Value> {
        let mut out = vec![];
        c.take_due(|s| {
            out.push(serde_json::from_str::<serde_json::Value>(&s).unwrap()["state"]["destinationStats"].clone())
        });
        out
    }

    #[test]
    fn state_waits_for_every_earlier_record() {
        let mut c = Checkpoints::new(false, None);
        let a = c.sent(1);
        let b = c.sent(1);
        c.close(st("s1", 0));
        let d = c.sent(1);
        c.close(st("s2", 0));
        assert!(due(&mut c).is_empty());
        c.acknowledged(d); // a later record acknowledged first releases nothing
        assert!(due(&mut c).is_empty());
        c.acknowledged(a);
        assert!(due(&mut c).is_empty());
        c.acknowledged(b);
        assert_eq!(due(&mut c), vec!["s1", "s2"]);
        assert_eq!((c.in_flight(), c.acknowledged_count(), c.pending_states()), (0, 3, 0));
    }

    #[test]
    fn states_without_records_between_them_go_out_in_order() {
        let mut c = Checkpoints::new(false, None);
        c.close(st("s1", 0));
        c.close(st("s2", 0));
        let r = c.sent(1);
        c.close(st("s3", 0));
        assert_eq!(due(&mut c), vec!["s1", "s2"]);
        c.acknowledged(r);
        assert_eq!(due(&mut c), vec!["s3"]);
    }

    #[test]
    fn failure_stops_every_later_state() {
        let mut c = Checkpoints::new(false, None);
        let a = c.sent(1);
        c.close(st("s1", 0));
        let b = c.sent(1);
        c.close(st("s2", 0));
        let d = c.sent(1);
        c.close(st("s3", 0));
        c.acknowledged(d);
        c.failed(b, Error::Transient("down".into()));
        assert!(due(&mut c).is_empty());
        c.acknowledged(a);
        assert_eq!(due(&mut c), vec!["s1"]);
        assert!(due(&mut c).is_empty());
        assert!(c.has_failed());
        assert_eq!(c.take_failure().unwrap().to_string(), "down");
    }

    #[test]
    fn earliest_failure_wins() {
        let mut c = Checkpoints::new(false, None);
        let a = c.sent(1);
        c.close(st("s1", 0));
        let b = c.sent(1);
        c.failed(b, Error::Transient("late".into()));
        c.failed(a, Error::Config("early".into()));
        assert!(due(&mut c).is_empty());
        assert_eq!(c.take_failure().unwrap().to_string(), "early");
    }

    #[test]
    fn committed_only_states_wait_for_the_commit_and_purges_are_not_causes() {
        let mut c = Checkpoints::new(true, None);
        let a = c.sent(1);
        c.close(st("s1", 0));
        c.acknowledged(a);
        assert!(due(&mut c).is_empty(), "acknowledged but not committed");
        let b = c.sent(1);
        c.close(st("s2", 0));
        c.acknowledged(b);
        c.committed();
        assert_eq!(due(&mut c), vec!["s1", "s2"]);
        // An abort purges what is in flight: no state past it, and no cause of its own.
        let d = c.sent(1);
        c.close(st("s3", 0));
        c.cancelled(d);
        c.committed();
        assert!(due(&mut c).is_empty());
        assert!(!c.has_failed() && c.take_failure().is_none());
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn records_can_be_counted_in_bulk() {
        let mut c = Checkpoints::new(false, None);
        let a = c.sent(2);
        c.close(st("s1", 0));
        assert_eq!(c.open_segment(), a + 1);
        c.acknowledged(a);
        assert!(due(&mut c).is_empty());
        c.acknowledged(a);
        assert_eq!(due(&mut c), vec!["s1"]);
    }

    #[test]
    fn tracker_counts_before_the_producer_can_report() {
        let t = Tracker::new(false, None, false);
        // Three records counted; one report arrives before anything locked the checkpoints.
        let at = |segment, line| Box::new(InFlight { segment, line, stream: 0, emitted_at: 0, dead_letter: false });
        t.sending();
        t.sending();
        t.sending();
        t.delivered(at(0, 1), Ok(()));
        let c = t.lock();
        assert_eq!((c.in_flight(), c.acknowledged_count()), (2, 1));
        drop(c);
        // A record the full queue refused is uncounted again, even if its count was already folded in.
        t.sending();
        t.not_sent();
        assert_eq!(t.lock().in_flight(), 2);
        let open = t.lock().close(st("s1", 0));
        assert_eq!(open, 1);
        t.sending();
        t.delivered(at(0, 2), Ok(()));
        t.delivered(at(0, 3), Err(Undelivered { error: Error::Transient("down".into()), key: None, value: None }));
        let mut c = t.lock();
        assert_eq!(due(&mut c), Vec::<String>::new(), "s1 covers a failed record");
        assert_eq!(c.in_flight(), 1);
        assert_eq!(c.take_failure().unwrap().to_string(), "input line 3: down");
    }

    #[test]
    fn rejected_records_are_counted_in_the_state_that_covers_them() {
        let mut c = Checkpoints::new(false, Some(2));
        let a = c.sent(3);
        c.close(closing("a1", 2, Counted::Stream(Some(0))));
        c.close(closing("g1", 3, Counted::Global));
        let b = c.sent(1);
        c.close(closing("b1", 1, Counted::Stream(Some(1))));
        // Stream 0: two records, one rejected; stream 1's record rejected, acknowledged before the others.
        c.rejected(b, 1);
        c.acknowledged(a);
        c.rejected(a, 0);
        c.acknowledged(a);
        assert_eq!(
            stats(&mut c),
            vec![
                serde_json::json!({"recordCount": 2.0, "rejectedRecordCount": 1.0}),
                serde_json::json!({"recordCount": 3.0, "rejectedRecordCount": 1.0}),
                serde_json::json!({"recordCount": 1.0, "rejectedRecordCount": 1.0}),
            ]
        );
        assert_eq!((c.acknowledged_count(), c.rejected_count()), (4, 2));
        // Without dead letters, states say nothing of rejections.
        let mut plain = Checkpoints::new(false, None);
        plain.close(st("p", 0));
        assert_eq!(stats(&mut plain), vec![serde_json::json!({"recordCount": 0.0})]);
    }

    #[test]
    fn counts_legacy_global_and_stream_states() {
        let mut n = RecordCounts::new(2);
        n.record(0);
        n.record(1);
        n.record(0);
        assert_eq!(n.take(&Counted::Stream(Some(0))), 2);
        assert_eq!(n.take(&Counted::Stream(Some(0))), 0);
        n.record(0);
        // LEGACY and GLOBAL count every record since the previous such state.
        assert_eq!(n.take(&Counted::Global), 4);
        assert_eq!(n.take(&Counted::Global), 0);
        assert_eq!(n.take(&Counted::Stream(Some(1))), 1);
        assert_eq!(n.take(&Counted::Stream(None)), 0);
    }
}
