//! The acknowledge stage: each delivery report settles its record in the checkpoints, on whichever thread serves
//! the reports. A record in flight is kept in a table under the index its report brings back (no allocation per
//! record: the table's slots are reused, and it holds at most what the producer's queue holds). A record the broker refuses on its own account (the failure policy's `Record` scope) is handed
//! back for its dead-letter topic when dead letters are on; any other failure breaks the promise of its segment.

use super::checkpoint::{SegmentId, Tracker};
use crate::delivery::{DeliveryListener, Undelivered};
use crate::error::Scope;
use rdkafka::error::RDKafkaErrorCode;
use slab::Slab;
use std::sync::{Mutex, MutexGuard};

/// What a record's delivery report brings back: where it belongs and where it came from.
#[derive(Clone, Copy)]
pub struct InFlight {
    pub segment: SegmentId,
    /// Its input line, to name it if it fails (0: a message of the connector's own).
    pub line: u64,
    /// Its stream's catalog index.
    pub stream: usize,
    pub emitted_at: i64,
    /// A dead-letter message: its acknowledgement settles a rejected record.
    pub dead_letter: bool,
}

impl InFlight {
    /// A message of the connector's own (the progress record): never dead-lettered, never a rejected record.
    pub fn own(&self) -> bool {
        self.line == 0
    }
}

/// A record the broker refused on its own account, waiting to be written to the dead-letter topic.
struct Refused {
    record: InFlight,
    undelivered: Undelivered,
}

/// The producer's delivery listener: settles records in the checkpoints, whatever thread serves the reports.
pub struct Acknowledger {
    pub tracker: Tracker,
    /// Records handed to the producer and not yet reported.
    in_flight: Mutex<Slab<InFlight>>,
    /// `Some` when records the broker refuses on their own account go to the dead-letter topic.
    refused: Option<Mutex<Vec<Refused>>>,
}

impl Acknowledger {
    /// `refusals`: records the broker refuses on their own account are handed back for the dead-letter topic
    /// instead of failing the sync.
    pub fn new(tracker: Tracker, refusals: bool) -> Acknowledger {
        Acknowledger { tracker, in_flight: Mutex::new(Slab::new()), refused: refusals.then(|| Mutex::new(Vec::new())) }
    }

    fn table(&self) -> MutexGuard<'_, Slab<InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A record about to be offered to the producer: its token.
    pub fn admit(&self, record: InFlight) -> usize {
        self.table().insert(record)
    }

    /// A record the producer refused outright (never queued, so never reported).
    pub fn withdraw(&self, token: usize) {
        self.table().try_remove(token);
    }

    /// Records the broker refused that are waiting for the dead-letter topic (they are still in flight).
    pub fn take_refused(&self) -> Vec<(InFlight, Undelivered)> {
        let taken = self.refused.as_ref().map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())));
        taken.unwrap_or_default().into_iter().map(|r| (r.record, r.undelivered)).collect()
    }
}

impl DeliveryListener for Acknowledger {
    type Token = usize;

    fn delivered(&self, token: usize, outcome: std::result::Result<(), Undelivered>) {
        let Some(record) = self.table().try_remove(token) else {
            // Every token is admitted once and reported once, so this is a defect; a panic inside librdkafka's
            // callback would abort. The record it should have settled stays in flight, so the sync fails at its
            // end ("not acknowledged") rather than emit a state past it.
            return tracing::error!("a delivery report for no record in flight (token {token})");
        };
        let code = outcome.as_ref().err().and_then(|u| u.error.kafka_code());
        match outcome {
            Ok(()) if record.dead_letter => self.tracker.lock().rejected(record.segment, record.stream),
            Ok(()) => self.tracker.lock().acknowledged(record.segment),
            // Purged by an abort, which has its own cause: not delivered, but not where the promise broke.
            Err(_) if matches!(code, Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)) => {
                self.tracker.lock().cancelled(record.segment)
            }
            Err(undelivered) => match &self.refused {
                // Still in flight: settled when the dead-letter topic acknowledges it.
                Some(refused)
                    if !record.dead_letter && !record.own() && undelivered.error.failure().scope == Scope::Record =>
                {
                    refused.lock().unwrap_or_else(|e| e.into_inner()).push(Refused { record, undelivered })
                }
                _ => self.tracker.lock().failed(record.segment, undelivered.error.at_line(record.line)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::state::Counted;
    use crate::error::Error;
    use crate::write::checkpoint::{closing, Closing};

    fn st(name: &str) -> Closing {
        closing(name, 0, Counted::Global)
    }

    fn due(t: &Tracker) -> Vec<String> {
        let mut out = vec![];
        t.lock().take_due(SegmentId::MAX, |s| out.push(s));
        out
    }

    #[test]
    fn reports_settle_records_whatever_arrives_first() {
        let a = Acknowledger::new(Tracker::new(None), false);
        let t = &a.tracker;
        // Three records counted; one report arrives before anything locked the checkpoints.
        let at = |segment, line| a.admit(InFlight { segment, line, stream: 0, emitted_at: 0, dead_letter: false });
        t.sending();
        t.sending();
        t.sending();
        a.delivered(at(0, 1), Ok(()));
        let c = t.lock();
        assert_eq!((c.in_flight(), c.acknowledged_count()), (2, 1));
        drop(c);
        // A record the full queue refused is uncounted again, even if its count was already folded in.
        t.sending();
        t.not_sent();
        assert_eq!(t.lock().in_flight(), 2);
        let open = t.close(st("s1"));
        assert_eq!(open, 1);
        t.sending();
        a.delivered(at(0, 2), Ok(()));
        a.delivered(at(0, 3), Err(Undelivered { error: Error::Transient("down".into()), key: None, value: None }));
        assert_eq!(due(t), Vec::<String>::new(), "s1 covers a failed record");
        let mut c = t.lock();
        assert_eq!(c.in_flight(), 1);
        assert_eq!(c.take_failure().unwrap().to_string(), "input line 3: down");
    }

    #[test]
    fn refusals_of_the_record_alone_wait_for_the_dead_letter_topic() {
        let a = Acknowledger::new(Tracker::new(Some(1)), true);
        let record = InFlight { segment: 0, line: 4, stream: 0, emitted_at: 0, dead_letter: false };
        a.tracker.sending();
        let too_large =
            Error::kafka("x", rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge));
        a.delivered(a.admit(record), Err(Undelivered { error: too_large, key: None, value: Some(b"v".to_vec()) }));
        assert!(!a.tracker.lock().has_failed());
        assert_eq!(a.tracker.lock().in_flight(), 1, "still in flight until its dead letter is acknowledged");
        let refused = a.take_refused();
        assert_eq!((refused.len(), refused[0].0.line, refused[0].1.value.as_deref()), (1, 4, Some(&b"v"[..])));
        // An unavailable broker is never the record's own fault.
        a.tracker.sending();
        let down = Error::kafka("x", rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
        a.delivered(a.admit(record), Err(Undelivered { error: down, key: None, value: None }));
        assert!(a.tracker.lock().has_failed() && a.take_refused().is_empty());
    }
}
