//! When a STATE may go out: only once every record read before it is acknowledged by the broker.
//!
//! Records are grouped into segments, one per gap between two STATEs. A segment counts its records still in
//! flight; a STATE closes the open segment. The oldest closed segment whose count reached zero releases its
//! STATE, in input order, if the release policy allows it (exactly-once: once its transaction is committed). A
//! failed delivery poisons its segment: neither its STATE nor any later one is released. A record rejected to the
//! dead-letter topic counts as settled once the dead-letter topic acknowledged it, and in the
//! `rejectedRecordCount` of the STATE that covers it.

use crate::airbyte::state::{Additions, Counted, RecordCounts, State};
use crate::error::Error;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Identifies the segment a record belongs to.
pub type SegmentId = usize;

/// The checkpoints, shared with whatever thread serves delivery reports.
///
/// A record is counted before librdkafka gets it, so its report can never arrive first. Counting goes to an
/// atomic (no lock per record); it is folded into the checkpoints, all in the open segment, whenever they are
/// locked, and a segment is closed only under the lock.
pub struct Tracker {
    checkpoints: Mutex<Checkpoints>,
    uncounted: AtomicU64,
    /// The open segment, readable without the lock (it changes only in `close`, under the lock).
    open: AtomicUsize,
}

impl Tracker {
    /// `rejects_of_streams`: rejected records are counted in STATEs, per stream (this many).
    pub fn new(rejects_of_streams: Option<usize>) -> Tracker {
        Tracker {
            checkpoints: Mutex::new(Checkpoints::new(rejects_of_streams)),
            uncounted: AtomicU64::new(0),
            open: AtomicUsize::new(0),
        }
    }

    /// The segment records are sent in now.
    pub fn open_segment(&self) -> SegmentId {
        self.open.load(Ordering::Relaxed)
    }

    /// A STATE arrived: it waits for every record sent so far. Returns the new open segment.
    pub fn close(&self, closing: Closing) -> SegmentId {
        let mut checkpoints = self.lock();
        let open = checkpoints.close(closing);
        self.open.store(open, Ordering::Relaxed);
        open
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
    /// Speed Mode's committed counts, or nothing.
    pub more: Additions,
}

impl Checkpoints {
    pub fn new(rejects_of_streams: Option<usize>) -> Checkpoints {
        Checkpoints {
            base: 0,
            segments: VecDeque::from([Segment::default()]),
            in_flight: 0,
            acknowledged: 0,
            rejected: vec![0; rejects_of_streams.unwrap_or(0)],
            broken: None,
            failure: None,
            rejects: rejects_of_streams.map(RecordCounts::new),
        }
    }

    /// `records` more were handed to the producer in the open segment, whose id their delivery reports carry.
    fn sent(&mut self, records: u64) -> SegmentId {
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

    /// A STATE arrived: it waits for every record sent so far. Returns the new open segment.
    fn close(&mut self, closing: Closing) -> SegmentId {
        self.segments.back_mut().expect("an open segment").state = Some(closing);
        self.segments.push_back(Segment::default());
        self.open_segment()
    }

    /// STATEs of segments before `allowed` (the release policy's limit) whose records are all settled, oldest
    /// first, rendered with their counts and removed from the tracker.
    pub fn take_due(&mut self, allowed: SegmentId, mut emit: impl FnMut(String)) {
        while self.segments.len() > 1 && self.segments[0].in_flight == 0 && self.base < allowed {
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
            emit(closing.state.render_with(closing.records, rejected, &closing.more));
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

/// A STATE named `name` (its `data`), counting `records` records of `counted`: for the tests of the write path.
#[cfg(test)]
pub fn closing(name: &str, records: u64, counted: Counted) -> Closing {
    let line = format!(r#"{{"type":"STATE","state":{{"data":"{name}"}}}}"#);
    let crate::airbyte::message::Message::State(raw) = crate::airbyte::message::Message::parse(&line).unwrap() else {
        unreachable!()
    };
    Closing { state: State::parse(&line, raw).unwrap(), records, counted, more: Additions::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LEGACY state named `name`, counting `records` records.
    fn st(name: &str, records: u64) -> Closing {
        closing(name, records, Counted::Global)
    }

    /// The names of the states released (no release limit).
    fn due(c: &mut Checkpoints) -> Vec<String> {
        due_before(c, SegmentId::MAX)
    }

    fn due_before(c: &mut Checkpoints, allowed: SegmentId) -> Vec<String> {
        let mut out = vec![];
        c.take_due(allowed, |s| {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            out.push(v["state"]["data"].as_str().unwrap().to_string());
        });
        out
    }

    fn stats(c: &mut Checkpoints) -> Vec<serde_json::Value> {
        let mut out = vec![];
        c.take_due(SegmentId::MAX, |s| {
            out.push(serde_json::from_str::<serde_json::Value>(&s).unwrap()["state"]["destinationStats"].clone())
        });
        out
    }

    #[test]
    fn state_waits_for_every_earlier_record() {
        let mut c = Checkpoints::new(None);
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
        let mut c = Checkpoints::new(None);
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
        let mut c = Checkpoints::new(None);
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
        let mut c = Checkpoints::new(None);
        let a = c.sent(1);
        c.close(st("s1", 0));
        let b = c.sent(1);
        c.failed(b, Error::Transient("late".into()));
        c.failed(a, Error::Config("early".into()));
        assert!(due(&mut c).is_empty());
        assert_eq!(c.take_failure().unwrap().to_string(), "early");
    }

    #[test]
    fn states_wait_for_the_release_limit_and_purges_are_not_causes() {
        let mut c = Checkpoints::new(None);
        let a = c.sent(1);
        c.close(st("s1", 0));
        c.acknowledged(a);
        assert!(due_before(&mut c, 0).is_empty(), "acknowledged but not allowed (not committed)");
        let b = c.sent(1);
        let open = c.close(st("s2", 0));
        c.acknowledged(b);
        assert_eq!(due_before(&mut c, open), vec!["s1", "s2"]);
        // An abort purges what is in flight: no state past it, and no cause of its own.
        let d = c.sent(1);
        let open = c.close(st("s3", 0));
        c.cancelled(d);
        assert!(due_before(&mut c, open).is_empty());
        assert!(!c.has_failed() && c.take_failure().is_none());
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn records_can_be_counted_in_bulk() {
        let mut c = Checkpoints::new(None);
        let a = c.sent(2);
        c.close(st("s1", 0));
        assert_eq!(c.open_segment(), a + 1);
        c.acknowledged(a);
        assert!(due(&mut c).is_empty());
        c.acknowledged(a);
        assert_eq!(due(&mut c), vec!["s1"]);
    }

    #[test]
    fn tracker_counts_before_anything_is_locked_and_uncounts_what_was_not_sent() {
        let t = Tracker::new(None);
        t.sending();
        t.sending();
        t.sending();
        t.lock().acknowledged(0);
        let c = t.lock();
        assert_eq!((c.in_flight(), c.acknowledged_count()), (2, 1));
        drop(c);
        // A record the full queue refused is uncounted again, even if its count was already folded in.
        t.sending();
        t.not_sent();
        assert_eq!(t.lock().in_flight(), 2);
        assert_eq!(t.close(st("s1", 0)), 1);
        assert_eq!(t.open_segment(), 1);
    }

    #[test]
    fn rejected_records_are_counted_in_the_state_that_covers_them() {
        let mut c = Checkpoints::new(Some(2));
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
        let mut plain = Checkpoints::new(None);
        plain.close(st("p", 0));
        assert_eq!(stats(&mut plain), vec![serde_json::json!({"recordCount": 0.0})]);
    }
}
