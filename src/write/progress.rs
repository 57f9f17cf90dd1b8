//! The operator's view of a running sync: a LOG line every 30 s whatever the sync is doing (reading, producing,
//! waiting on a full queue or on acknowledgements), saying what it waits for and since when.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Every 30 s; `DESTINATION_KAFKA_PROGRESS_SECONDS` changes it (the tests use 1 s).
pub fn every() -> Duration {
    let seconds = std::env::var("DESTINATION_KAFKA_PROGRESS_SECONDS").ok().and_then(|s| s.parse::<f64>().ok());
    Duration::from_secs_f64(seconds.filter(|s| *s > 0.0).unwrap_or(30.0))
}
/// How finely the send times of records are remembered.
const MARK_EVERY: Duration = Duration::from_millis(100);

/// What the sync has done so far, for one progress line.
pub struct Snapshot<'a> {
    /// Messages handed to the producer: the records, dead letters, and the connector's own (tombstones, progress
    /// records).
    pub records: u64,
    pub acknowledged: u64,
    pub bytes_read: u64,
    pub states_emitted: u64,
    pub states_pending: usize,
    /// Records written to a dead-letter topic.
    pub rejected: u64,
    pub waiting_for: &'a str,
    pub last_broker_error: Option<String>,
    /// librdkafka's own view (round trip, queue, batches, retries), when it has reported.
    pub client: Option<String>,
}

pub struct Progress {
    every: Duration,
    started: Instant,
    last_line: Instant,
    /// (when, records sent by then), kept while some of those records are unacknowledged: the oldest mark past
    /// the acknowledged count tells how long the oldest unacknowledged record has waited.
    marks: VecDeque<(Instant, u64)>,
    acknowledged: u64,
    acknowledged_at: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            every: every(),
            started: now,
            last_line: now,
            marks: VecDeque::new(),
            acknowledged: 0,
            acknowledged_at: now,
        }
    }

    /// Notes how many records are sent and acknowledged now; cheap enough to call on every wait.
    pub fn observe(&mut self, now: Instant, sent: u64, acknowledged: u64) {
        if self.marks.back().is_none_or(|&(at, n)| n < sent && now.duration_since(at) >= MARK_EVERY) {
            self.marks.push_back((now, sent));
        }
        if acknowledged != self.acknowledged {
            self.acknowledged = acknowledged;
            self.acknowledged_at = now;
        }
        while self.marks.front().is_some_and(|&(_, n)| n <= acknowledged) {
            self.marks.pop_front();
        }
    }

    /// At least how long the oldest unacknowledged record has been waiting (records are acknowledged about in
    /// the order they were sent).
    fn oldest_unacknowledged(&self, now: Instant) -> Option<Duration> {
        self.marks.front().map(|&(at, _)| now.duration_since(at))
    }

    /// Logs a line when one is due (`force`: now, for the summary).
    pub fn tick(&mut self, now: Instant, snapshot: &Snapshot<'_>, force: bool) {
        if !force && now.duration_since(self.last_line) < self.every {
            return;
        }
        self.last_line = now;
        tracing::info!("{}", self.line(now, snapshot));
    }

    fn line(&self, now: Instant, s: &Snapshot<'_>) -> String {
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let in_flight = s.records - s.acknowledged;
        let mut line = format!(
            "{} messages sent ({:.1} MB read), {} acknowledged ({:.0}/s), {in_flight} in flight; {} states emitted, {} \
             pending",
            s.records,
            s.bytes_read as f64 / 1e6,
            s.acknowledged,
            s.acknowledged as f64 / secs,
            s.states_emitted,
            s.states_pending
        );
        if s.rejected > 0 {
            line.push_str(&format!("; {} rejected to dead-letter topics", s.rejected));
        }
        line.push_str(&format!("; {}", s.waiting_for));
        if in_flight > 0 {
            line.push_str(&format!(
                "; last acknowledgement {:.0} s ago",
                now.duration_since(self.acknowledged_at).as_secs_f64()
            ));
            if let Some(age) = self.oldest_unacknowledged(now) {
                line.push_str(&format!(", oldest unacknowledged record sent {:.0} s ago", age.as_secs_f64()));
            }
        }
        if let Some(client) = &s.client {
            line.push_str(&format!("; librdkafka: {client}"));
        }
        if let Some(error) = &s.last_broker_error {
            line.push_str(&format!("; last broker error: {error}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(records: u64, acknowledged: u64) -> Snapshot<'static> {
        Snapshot {
            records,
            acknowledged,
            bytes_read: 2_500_000,
            states_emitted: 3,
            states_pending: 1,
            rejected: 0,
            waiting_for: "waiting for the producer queue to drain",
            last_broker_error: Some("Connection refused".into()),
            client: Some("broker round trip 1.5 ms".into()),
        }
    }

    #[test]
    fn says_what_is_waited_for_and_since_when() {
        let mut p = Progress::new();
        let t0 = p.started;
        p.observe(t0, 100, 0);
        p.observe(t0 + Duration::from_secs(1), 200, 100);
        p.observe(t0 + Duration::from_secs(2), 300, 100);
        let now = t0 + Duration::from_secs(40);
        let line = p.line(now, &snapshot(300, 100));
        assert!(line.starts_with("300 messages sent (2.5 MB read), 100 acknowledged (2/s), 200 in flight"), "{line}");
        assert!(line.contains("3 states emitted, 1 pending"), "{line}");
        assert!(line.contains("waiting for the producer queue to drain"), "{line}");
        assert!(line.contains("last acknowledgement 39 s ago"), "{line}");
        // Records 101..200 were sent by second 1: the oldest unacknowledged one has waited at least 39 s.
        assert!(line.contains("oldest unacknowledged record sent 39 s ago"), "{line}");
        assert!(
            line.ends_with("librdkafka: broker round trip 1.5 ms; last broker error: Connection refused"),
            "{line}"
        );
    }

    #[test]
    fn nothing_in_flight_nothing_to_age() {
        let mut p = Progress::new();
        let t0 = p.started;
        p.observe(t0, 50, 50);
        let quiet = Snapshot { last_broker_error: None, client: None, ..snapshot(50, 50) };
        let line = p.line(t0 + Duration::from_secs(5), &quiet);
        assert!(!line.contains("ago") && !line.contains("broker error") && !line.contains("librdkafka"), "{line}");
        assert!(p.marks.is_empty());
    }
}
