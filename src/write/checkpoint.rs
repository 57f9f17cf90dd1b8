//! When a STATE may go out: only once every record read before it is acknowledged by the broker.
//!
//! Records are grouped into segments, one per gap between two STATEs. A segment counts its records still in
//! flight; a STATE closes the open segment. The oldest closed segment whose count reached zero releases its
//! STATE, in input order. A failed delivery poisons its segment: neither its STATE nor any later one is released.
//! With exactly-once delivery a segment must also be committed (in a Kafka transaction) before its STATE goes out.

use crate::error::{Error, Result};
use crate::kafka::producer::DeliveryListener;
use rdkafka::error::RDKafkaErrorCode;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Identifies the segment a record belongs to.
pub type SegmentId = usize;

/// What a record's delivery report brings back: where it belongs and where it came from.
pub struct InFlight {
    pub segment: SegmentId,
    /// Its input line, to name it if it fails.
    pub line: u64,
}

/// The producer's delivery listener: settles records in the checkpoints, whatever thread serves the reports.
///
/// A record is counted before librdkafka gets it, so its report can never arrive first. Counting goes to an
/// atomic (no lock per record); it is folded into the checkpoints, all in the open segment, whenever they are
/// locked, and a segment is closed only under the lock.
pub struct Tracker {
    checkpoints: Mutex<Checkpoints>,
    uncounted: AtomicU64,
}

impl Tracker {
    /// `committed_only`: a STATE also waits for the commit of its records (exactly-once).
    pub fn new(committed_only: bool) -> Tracker {
        Tracker { checkpoints: Mutex::new(Checkpoints::new(committed_only)), uncounted: AtomicU64::new(0) }
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
}

impl DeliveryListener for Tracker {
    type Token = Box<InFlight>;

    fn delivered(&self, record: Box<InFlight>, outcome: Result<()>) {
        let mut checkpoints = self.lock();
        match outcome {
            Ok(()) => checkpoints.acknowledged(record.segment),
            // Purged by an abort, which has its own cause: not delivered, but not where the promise broke.
            Err(error)
                if matches!(
                    error.kafka_code(),
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                ) =>
            {
                checkpoints.cancelled(record.segment)
            }
            Err(error) => checkpoints.failed(record.segment, error.at_line(record.line)),
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
    /// First segment with a record that was not delivered (failed, or purged by an abort).
    broken: Option<SegmentId>,
    /// First segment with a failed record, and why.
    failure: Option<(SegmentId, Error)>,
    /// Segments before this one are committed (always, at least once).
    committed_before: SegmentId,
}

#[derive(Default)]
struct Segment {
    in_flight: u64,
    state: Option<String>,
}

impl Checkpoints {
    pub fn new(committed_only: bool) -> Checkpoints {
        Checkpoints {
            base: 0,
            segments: VecDeque::from([Segment::default()]),
            in_flight: 0,
            acknowledged: 0,
            broken: None,
            failure: None,
            committed_before: if committed_only { 0 } else { SegmentId::MAX },
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
    pub fn close(&mut self, rendered_state: String) -> SegmentId {
        self.segments.back_mut().expect("an open segment").state = Some(rendered_state);
        self.segments.push_back(Segment::default());
        self.open_segment()
    }

    /// STATEs whose records are all acknowledged, oldest first, removed from the tracker.
    pub fn take_due(&mut self, mut emit: impl FnMut(String)) {
        while self.segments.len() > 1 && self.segments[0].in_flight == 0 && self.base < self.committed_before {
            if self.broken.is_some_and(|broken| broken <= self.base) {
                return;
            }
            let segment = self.segments.pop_front().expect("len > 1");
            self.base += 1;
            emit(segment.state.expect("closed segments hold a state"));
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    pub fn acknowledged_count(&self) -> u64 {
        self.acknowledged
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
        self.since_global += 1;
        self.per_stream[stream] += 1;
    }

    /// The count a STATE of this scope carries, which then starts again from zero. `stream` is the catalog
    /// index of a STREAM state's stream, if the catalog has it.
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

    fn due(c: &mut Checkpoints) -> Vec<String> {
        let mut out = vec![];
        c.take_due(|s| out.push(s));
        out
    }

    #[test]
    fn state_waits_for_every_earlier_record() {
        let mut c = Checkpoints::new(false);
        let a = c.sent(1);
        let b = c.sent(1);
        c.close("s1".into());
        let d = c.sent(1);
        c.close("s2".into());
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
        let mut c = Checkpoints::new(false);
        c.close("s1".into());
        c.close("s2".into());
        let r = c.sent(1);
        c.close("s3".into());
        assert_eq!(due(&mut c), vec!["s1", "s2"]);
        c.acknowledged(r);
        assert_eq!(due(&mut c), vec!["s3"]);
    }

    #[test]
    fn failure_stops_every_later_state() {
        let mut c = Checkpoints::new(false);
        let a = c.sent(1);
        c.close("s1".into());
        let b = c.sent(1);
        c.close("s2".into());
        let d = c.sent(1);
        c.close("s3".into());
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
        let mut c = Checkpoints::new(false);
        let a = c.sent(1);
        c.close("s1".into());
        let b = c.sent(1);
        c.failed(b, Error::Transient("late".into()));
        c.failed(a, Error::Config("early".into()));
        assert!(due(&mut c).is_empty());
        assert_eq!(c.take_failure().unwrap().to_string(), "early");
    }

    #[test]
    fn committed_only_states_wait_for_the_commit_and_purges_are_not_causes() {
        let mut c = Checkpoints::new(true);
        let a = c.sent(1);
        c.close("s1".into());
        c.acknowledged(a);
        assert!(due(&mut c).is_empty(), "acknowledged but not committed");
        let b = c.sent(1);
        c.close("s2".into());
        c.acknowledged(b);
        c.committed();
        assert_eq!(due(&mut c), vec!["s1", "s2"]);
        // An abort purges what is in flight: no state past it, and no cause of its own.
        let d = c.sent(1);
        c.close("s3".into());
        c.cancelled(d);
        c.committed();
        assert!(due(&mut c).is_empty());
        assert!(!c.has_failed() && c.take_failure().is_none());
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn records_can_be_counted_in_bulk() {
        let mut c = Checkpoints::new(false);
        let a = c.sent(2);
        c.close("s1".into());
        assert_eq!(c.open_segment(), a + 1);
        c.acknowledged(a);
        assert!(due(&mut c).is_empty());
        c.acknowledged(a);
        assert_eq!(due(&mut c), vec!["s1"]);
    }

    #[test]
    fn tracker_counts_before_the_producer_can_report() {
        let t = Tracker::new(false);
        // Three records counted; one report arrives before anything locked the checkpoints.
        let at = |segment, line| Box::new(InFlight { segment, line });
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
        let open = t.lock().close("s1".into());
        assert_eq!(open, 1);
        t.sending();
        t.delivered(at(0, 2), Ok(()));
        t.delivered(at(0, 3), Err(Error::Transient("down".into())));
        let mut c = t.lock();
        assert_eq!(due(&mut c), Vec::<String>::new(), "s1 covers a failed record");
        assert_eq!(c.in_flight(), 1);
        assert_eq!(c.take_failure().unwrap().to_string(), "input line 3: down");
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
