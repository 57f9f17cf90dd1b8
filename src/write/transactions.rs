//! Exactly-once delivery (`delivery_guarantee: exactly_once`), the release policy that owns the Kafka
//! transactions: the records between commits go in one transaction, and a STATE goes out only after the
//! transaction holding its records is committed.
//!
//! Commits happen at a STATE boundary (never in the middle of a checkpoint, so a killed sync leaves nothing
//! committed past its last emitted STATE), at most once per `transaction_commit_interval_ms`: one commit then
//! covers every STATE since the previous one. In Speed Mode a boundary is a moment when no partition is part-read:
//! once the interval has passed, the write path starts no new partition until one is reached. Input pausing, the
//! end of input, and the bounds `transaction_max_ms` / `transaction_max_records` also commit; only the bounds may
//! commit records whose STATE has not arrived yet.
//!
//! With `replay_detection` (stdin only), each commit also writes the progress record (`replay`), and a sync that
//! finds one holds each checkpoint in a transaction of its own until one is not a replay: a replayed checkpoint's
//! transaction is aborted (its records were committed once already) and its STATE goes out.

use super::checkpoint::Closing;
use super::release::Release;
use super::replay::{Replays, Verdict};
use super::sink::{Limit, Sink, Waited};
use crate::airbyte::catalog::Stream;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka::producer::TxnError;
use crate::kafka::reader::{self, Seen};
use crate::kafka::record::OutgoingRecord;
use crate::stop::stopped;
use std::time::{Duration, Instant};

/// How long one attempt of a transaction call may block; a retriable timeout is tried again (and a stop looked at).
const ATTEMPT: Duration = Duration::from_secs(5);
/// Between two attempts of a transaction call that failed at once.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub struct ExactlyOnce {
    id: String,
    interval: Duration,
    max_age: Duration,
    max_records: u64,
    /// When the open transaction got its first record.
    began: Option<Instant>,
    last_commit: Instant,
    /// Records in the open transaction.
    records: u64,
    /// Whether every record of the open transaction is covered by a closed STATE.
    boundary: bool,
    commits: u64,
    /// The producer cannot go on (fenced, or a fatal error): nothing is left to abort.
    fatal: bool,
    /// `replay_detection`: where the progress record goes, and this sync's id.
    detection: Option<Detection>,
    /// What earlier attempts committed (read at start), and this sync's checkpoints.
    replays: Option<Replays>,
    /// The verdict on the checkpoint the last STATE closed.
    verdict: Option<Verdict>,
}

/// Replay detection's settings: the progress topic, the sync (the catalog's `sync_id`), and a digest of what
/// decides where and how records are written (the settings and the catalog): history written under another one
/// is not recognised.
pub struct Detection {
    pub topic: String,
    pub sync_id: Option<i64>,
    pub setup: u128,
}

impl ExactlyOnce {
    pub fn new(settings: &Settings, id: String, detection: Option<Detection>) -> ExactlyOnce {
        ExactlyOnce {
            id,
            interval: settings.transaction_commit_interval,
            max_age: settings.transaction_max_age,
            max_records: settings.transaction_max_records.max(1) as u64,
            began: None,
            last_commit: Instant::now(),
            records: 0,
            boundary: true,
            commits: 0,
            fatal: false,
            detection,
            replays: None,
            verdict: None,
        }
    }

    /// Fences any older writer with the same id (aborting what it left open), then opens the first transaction.
    fn init(&mut self, sink: &mut Sink) -> Result<()> {
        sink.allow_before(0);
        let deadline = Instant::now() + sink.settings().metadata_timeout();
        let mut last = None;
        let id = format!("transactional.id `{}`", self.id);
        let init = |s: &mut Sink| self.attempt(s.producer().init_transactions(ATTEMPT), &mut last);
        let waiting = "waiting for the broker to start transactions";
        let waited = sink.wait_until(waiting, Limit::Until(deadline), init).map_err(|e| e.context(&id))?;
        self.finish_wait(waited, "start transactions", last).map_err(|e| e.context(&id))?;
        // What earlier attempts committed is read now: an attempt left open was just aborted.
        if let Some(detection) = &self.detection {
            // Committed records only: an aborted attempt's progress record claims what was never committed. An
            // older record (another writer's open transaction holding the reader back) only recognises less.
            let id = [self.id.as_bytes()];
            let read = reader::latest(sink.settings(), &detection.topic, &id, Seen::Committed, sink.stop())?;
            let replays = Replays::new(detection.sync_id, detection.setup, read[0].as_deref());
            if replays.checking() {
                tracing::info!(
                    "replay detection: `{}` holds checkpoints an earlier attempt committed; each checkpoint gets a \
                     transaction of its own until one is not a replay of them",
                    detection.topic
                );
            }
            self.replays = Some(replays);
        }
        sink.producer().begin_transaction().map_err(|e| self.failed(e))?;
        tracing::info!("exactly-once: transactional.id `{}`, a transaction per checkpoint", self.id);
        Ok(())
    }

    /// Still comparing checkpoints with what an earlier attempt committed.
    fn checking(&self) -> bool {
        self.replays.as_ref().is_some_and(Replays::checking)
    }

    /// Records went into the open transaction since the last commit.
    fn open(&self) -> bool {
        self.records > 0
    }

    /// At a STATE boundary: whether to commit now.
    fn due(&self) -> bool {
        self.open() && (self.last_commit.elapsed() >= self.interval || self.overdue())
    }

    /// Past a bound: commit even without a STATE.
    fn overdue(&self) -> bool {
        self.records >= self.max_records || self.began.is_some_and(|b| b.elapsed() >= self.max_age)
    }

    /// Commits the open transaction once every record sent is acknowledged (the progress line going on while the
    /// broker is waited for) and lets out the STATEs it covers. With nothing open, the STATEs waiting are for
    /// records in transactions already committed. Any failure is returned: the caller aborts, no later STATE goes
    /// out.
    fn commit(&mut self, sink: &mut Sink) -> Result<()> {
        let open_segment = sink.tracker().open_segment();
        if !self.open() {
            sink.allow_before(open_segment);
            return sink.release();
        }
        if let (Some(replays), Some(detection)) = (&self.replays, &self.detection) {
            let progress = replays.progress();
            let record = OutgoingRecord {
                topic: &detection.topic,
                key: Some(self.id.as_bytes()),
                value: Some(&progress),
                headers: &[],
                timestamp: None,
            };
            sink.produce_own(&record)?;
        }
        self.end_transaction(sink, Ending::Commit)?;
        self.commits += 1;
        tracing::debug!("transaction {} committed: {} records", self.commits, self.records);
        crash_point(self.commits);
        if let Some(replays) = &mut self.replays {
            replays.committed();
        }
        (self.records, self.began, self.last_commit) = (0, None, Instant::now());
        sink.allow_before(open_segment);
        sink.producer().begin_transaction().map_err(|e| self.failed(e))?;
        sink.release()
    }

    /// A replayed checkpoint: its transaction is aborted once its records are acknowledged (so none is purged,
    /// which would break its STATE's promise), and its STATE goes out; its records were committed once already.
    fn drop_replayed(&mut self, sink: &mut Sink) -> Result<()> {
        let open_segment = sink.tracker().open_segment();
        if self.open() {
            self.end_transaction(sink, Ending::Abort)?;
            (self.records, self.began) = (0, None);
            sink.producer().begin_transaction().map_err(|e| self.failed(e))?;
        }
        sink.allow_before(open_segment);
        sink.release()
    }

    /// Ends the open transaction once every record sent is acknowledged, trying the call again while the broker
    /// answers with a retriable error, within the delivery budget.
    fn end_transaction(&mut self, sink: &mut Sink, ending: Ending) -> Result<()> {
        let (before, cannot, waiting, call) = match ending {
            Ending::Commit => (
                "waiting for the acknowledgements before a commit",
                "the transaction cannot be committed",
                "waiting for the broker to commit the transaction",
                "commit the transaction",
            ),
            Ending::Abort => (
                "waiting for the acknowledgements before an abort",
                "the transaction cannot be aborted",
                "waiting for the broker to abort the transaction",
                "abort the transaction",
            ),
        };
        let deadline = sink.wait_acknowledged(before, cannot)?;
        let mut last = None;
        let end = |s: &mut Sink| {
            let result = match ending {
                Ending::Commit => s.producer().commit_transaction(ATTEMPT),
                Ending::Abort => s.producer().abort_transaction(ATTEMPT),
            };
            self.attempt(result, &mut last)
        };
        let waited = sink.wait_until(waiting, Limit::Until(deadline), end)?;
        self.finish_wait(waited, call, last)
    }

    /// Past a bound (`transaction_max_records`, `transaction_max_ms`) the broker would abort the transaction: it is
    /// committed, with records whose STATE has not come, so their checkpoint can no longer be dropped whole.
    fn commit_at_bound(&mut self, sink: &mut Sink) -> Result<()> {
        if let Some(replays) = &mut self.replays {
            replays.split();
        }
        self.commit(sink)
    }

    /// One attempt of a transaction call: done, or (a retriable failure) to be tried again after a pause, so
    /// that an instant failure does not spin; anything else is the failure.
    fn attempt(&mut self, attempt: std::result::Result<(), TxnError>, last: &mut Option<Error>) -> Result<bool> {
        match attempt {
            Ok(()) => Ok(true),
            Err(TxnError::Retriable(e)) => {
                tracing::debug!("a transaction call failed and is tried again: {e}");
                *last = Some(e);
                std::thread::sleep(RETRY_PAUSE);
                Ok(false)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn finish_wait(&self, waited: Waited, call: &str, last: Option<Error>) -> Result<()> {
        match waited {
            Waited::Done => Ok(()),
            Waited::Stopped => Err(stopped()),
            Waited::TimedOut => Err(Error::Transient(format!(
                "the broker did not {call} before the deadline; it kept answering with a retriable error: {}",
                last.map_or_else(|| "none".to_string(), |e| e.to_string())
            ))),
        }
    }

    /// The error of a failed transaction call; after a fatal one there is nothing left to abort.
    fn failed(&mut self, error: TxnError) -> Error {
        self.fatal |= matches!(error, TxnError::Fatal(_));
        error.into_error()
    }
}

/// How a transaction ends.
#[derive(Clone, Copy)]
enum Ending {
    Commit,
    Abort,
}

/// For the tests of replay detection only: `DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS=N` aborts the process right
/// after the N-th commit, before the STATEs it covers go out — the moment a crash leaves the platform without them.
fn crash_point(commits: u64) {
    let at = std::env::var("DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS").ok().and_then(|n| n.parse().ok());
    if at == Some(commits) {
        tracing::warn!("DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS: aborting after commit {commits}");
        std::process::abort();
    }
}

impl Release for ExactlyOnce {
    fn start(&mut self, sink: &mut Sink) -> Result<()> {
        self.init(sink)
    }

    fn sent(&mut self, sink: &mut Sink, stream: &Stream, data: &str) -> Result<()> {
        if let Some(replays) = &mut self.replays {
            replays.record(stream, data);
        }
        self.records += 1;
        self.boundary = false;
        self.began.get_or_insert_with(Instant::now);
        if self.overdue() {
            self.commit_at_bound(sink)?;
        }
        Ok(())
    }

    fn closing(&mut self, closing: &Closing) {
        if let Some(replays) = &mut self.replays {
            self.verdict = Some(replays.close(closing.state.content, closing.state.render(closing.records, None)));
        }
    }

    fn state(&mut self, sink: &mut Sink, boundary: bool) -> Result<()> {
        self.boundary = boundary;
        match self.verdict.take() {
            Some(Verdict::Replayed) => return self.drop_replayed(sink),
            // The first checkpoint that is not a replay is committed alone; what follows is written as usual.
            Some(Verdict::Differs) => return self.commit(sink),
            Some(Verdict::New) | None => {}
        }
        if !self.open() || (boundary && self.due()) || self.overdue() {
            self.commit(sink)
        } else {
            Ok(())
        }
    }

    fn wants_boundary(&self) -> bool {
        self.open() && !self.boundary && self.last_commit.elapsed() >= self.interval
    }

    /// States waiting for the commit interval go out now, if the open transaction ends at a STATE (or is past a
    /// bound).
    fn idle(&mut self, sink: &mut Sink) -> Result<()> {
        if !self.open() {
            return Ok(());
        }
        if self.overdue() {
            return self.commit_at_bound(sink);
        }
        // While checking, a checkpoint waits for its STATE, which decides whether it is committed.
        if self.boundary && !self.checking() {
            return self.commit(sink);
        }
        Ok(())
    }

    /// What is left is committed (a sync without any STATE commits here).
    fn end(&mut self, sink: &mut Sink) -> Result<()> {
        self.commit(sink)
    }

    fn abort(&mut self, sink: &mut Sink) {
        if self.fatal {
            return;
        }
        if let Err(e) = sink.producer().abort_transaction(ATTEMPT) {
            tracing::warn!(
                "the open transaction could not be aborted ({}); the broker aborts it when it times out or when the \
                 next sync with transactional.id `{}` starts",
                e.into_error(),
                self.id
            );
        }
    }

    /// A refused record makes librdkafka abort the transaction: only records refused before they reach the
    /// producer's queue can be dead-lettered.
    fn dead_letters_refusals(&self) -> bool {
        false
    }

    fn summary(&self) -> Option<String> {
        let replays = match &self.replays {
            Some(replays) => format!(
                "; replay detection: {} checkpoints ({} records) were replays of what an earlier attempt committed, \
                 and were not written again",
                replays.dropped.0, replays.dropped.1
            ),
            None => String::new(),
        };
        Some(format!("exactly-once: {} transactions committed{replays}", self.commits))
    }
}
