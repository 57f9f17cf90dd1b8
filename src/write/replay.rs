//! Replay detection (`replay_detection`, with exactly-once): closing the window between a commit and the platform
//! storing the STATEs it covers. Each transaction also writes a progress record — the last checkpoints committed
//! under this transactional id, each as its STATE's content and a digest of its records — to a compacted topic.
//! A new sync reads it back (`read_committed`) and, until it sees a checkpoint that is not a replay, holds each
//! checkpoint in a transaction of its own: a checkpoint whose STATE and records are the very ones an earlier
//! attempt committed (the next one in that attempt's order) is aborted instead of committed, and its STATE goes
//! out; the first one that differs is committed as usual, and from then on the sync writes as without detection.
//!
//! A checkpoint counts as a replay only when everything about it is the same: the STATE's content (without the
//! platform's `id` and the stats), the number of records, and a digest of each record's stream and data, in
//! order. With the platform's catalog, which names the sync (`sync_id`), only an attempt of the same sync is
//! recognised.

use crate::airbyte::catalog::Stream;
use crate::digest::{self, Xxh3};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Checkpoints the progress record keeps (oldest dropped first): a retry that goes back further than this is not
/// recognised, and writes again what it resends. About 20 kB of progress record per commit.
const HISTORY: usize = 256;
/// The last STATE is kept in the progress record (for people) only up to this size.
const LAST_STATE_MAX: usize = 16 * 1024;

/// One committed checkpoint, as `<state>:<records>:<digest>`: the STATE's content (see `State::content`), the
/// number of records, and the xxh3-128 of their streams and data in order (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint(String);

/// What the progress topic holds for a transactional id.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub version: u32,
    /// The sync the last commit belonged to (the catalog's `sync_id`), when the catalog says.
    pub sync_id: Option<i64>,
    /// What decided where and how records were written (see `transactions::Detection`), hex.
    pub setup: String,
    /// The last STATE committed, as it was echoed (for people reading the topic).
    pub last_state: Option<String>,
    /// Committed checkpoints, oldest first.
    pub checkpoints: VecDeque<Checkpoint>,
}

const VERSION: u32 = 1;

/// Whether a closed checkpoint replays a committed one.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same as the next committed checkpoint: abort its transaction, let its STATE out.
    Replayed,
    /// The first checkpoint that is not a replay: commit it now; checking stops.
    Differs,
    /// Not checking (any more): written as usual.
    New,
}

pub struct Replays {
    sync_id: Option<i64>,
    setup: String,
    /// Committed checkpoints, oldest first: the ones read back, then this sync's.
    history: VecDeque<Checkpoint>,
    /// While checking: where in `history` the next checkpoint must be (`None`: anywhere, before the first).
    checking: Option<Option<usize>>,
    /// The open checkpoint's records.
    digest: Xxh3,
    records: u64,
    /// Closed checkpoints not yet committed, with their echoed STATE.
    closed: Vec<Checkpoint>,
    last_state: Option<String>,
    /// Checkpoints recognised and not written again, and their records.
    pub dropped: (u64, u64),
}

impl Replays {
    /// `read`: what the progress topic held for this transactional id (`None`: nothing yet). A record of another
    /// sync (by `sync_id`) or one this version cannot read is no history: nothing will be dropped.
    pub fn new(sync_id: Option<i64>, setup: u128, read: Option<&[u8]>) -> Replays {
        let setup = format!("{setup:032x}");
        let previous = read.and_then(|bytes| match serde_json::from_slice::<ProgressRecord>(bytes) {
            Ok(record) if record.version == VERSION => Some(record),
            Ok(record) => {
                tracing::warn!("the progress record is of version {}: no replay is recognised", record.version);
                None
            }
            Err(e) => {
                tracing::warn!("the progress record cannot be read ({e}): no replay is recognised");
                None
            }
        });
        let history = match previous {
            Some(record) if sync_id.is_some() && record.sync_id != sync_id => {
                tracing::info!(
                    "replay detection: the last commit belonged to sync {:?}, this is sync {:?}: no replay to recognise",
                    record.sync_id,
                    sync_id
                );
                VecDeque::new()
            }
            Some(record) if record.setup != setup => {
                tracing::info!(
                    "replay detection: the settings or the catalog changed since the last commit (records may go \
                     elsewhere or be encoded otherwise): no replay to recognise"
                );
                VecDeque::new()
            }
            Some(record) => record.checkpoints,
            None => VecDeque::new(),
        };
        Replays {
            sync_id,
            setup,
            checking: (!history.is_empty()).then_some(None),
            history,
            digest: Xxh3::new(),
            records: 0,
            closed: Vec::new(),
            last_state: None,
            dropped: (0, 0),
        }
    }

    /// Whether checkpoints are still compared with the committed ones (each then gets a transaction of its own).
    pub fn checking(&self) -> bool {
        self.checking.is_some()
    }

    /// A record of the open checkpoint (produced or rejected alike: both were handed on).
    pub fn record(&mut self, stream: &Stream, data: &str) {
        digest::add(&mut self.digest, &[stream.namespace.as_deref().unwrap_or(""), &stream.name, data]);
        self.records += 1;
    }

    /// A STATE closed the open checkpoint: `content` is the STATE's content, `echo` its output line.
    pub fn close(&mut self, content: u128, echo: String) -> Verdict {
        let records = std::mem::replace(&mut self.records, 0);
        let digest = std::mem::take(&mut self.digest).digest128();
        let checkpoint = Checkpoint(format!("{content:032x}:{records}:{digest:032x}"));
        let verdict = match self.checking {
            None => Verdict::New,
            Some(next) => {
                let found = match next {
                    Some(at) => (self.history.get(at) == Some(&checkpoint)).then_some(at),
                    None => self.history.iter().rposition(|c| *c == checkpoint),
                };
                match found {
                    Some(at) => {
                        self.checking = Some(Some(at + 1));
                        self.dropped = (self.dropped.0 + 1, self.dropped.1 + records);
                        Verdict::Replayed
                    }
                    None => {
                        self.checking = None;
                        Verdict::Differs
                    }
                }
            }
        };
        if verdict != Verdict::Replayed {
            self.closed.push(checkpoint);
            // Checkpoints without records commit nothing: only the latest ones are kept until something does.
            if self.closed.len() > HISTORY {
                self.closed.remove(0);
            }
            self.last_state = (echo.len() <= LAST_STATE_MAX).then_some(echo);
        }
        verdict
    }

    /// Records were committed without their STATE (a transaction bound): what they belong to is no longer a
    /// checkpoint that can be recognised whole.
    pub fn split(&mut self) {
        self.checking = None;
    }

    /// The progress record of the transaction about to be committed: the history with the checkpoints it holds.
    pub fn progress(&self) -> Vec<u8> {
        let mut checkpoints = self.history.clone();
        checkpoints.extend(self.closed.iter().cloned());
        while checkpoints.len() > HISTORY {
            checkpoints.pop_front();
        }
        let record = ProgressRecord {
            version: VERSION,
            sync_id: self.sync_id,
            setup: self.setup.clone(),
            last_state: self.last_state.clone(),
            checkpoints,
        };
        serde_json::to_vec(&record).expect("JSON")
    }

    /// The transaction holding the closed checkpoints is committed.
    pub fn committed(&mut self) {
        self.history.extend(self.closed.drain(..));
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Stream {
        Stream { name: "users".into(), ..Stream::default() }
    }

    /// A sync: checkpoints of records `ranges`, each closed by a STATE whose content is its index.
    fn sync(replays: &mut Replays, checkpoints: &[(u128, &[&str])]) -> Vec<Verdict> {
        checkpoints
            .iter()
            .map(|(content, records)| {
                records.iter().for_each(|data| replays.record(&stream(), data));
                replays.close(*content, format!("state {content}"))
            })
            .collect()
    }

    fn committed(checkpoints: &[(u128, &[&str])]) -> Vec<u8> {
        let mut first = Replays::new(Some(7), 1, None);
        assert!(!first.checking(), "no history, nothing to check");
        assert!(sync(&mut first, checkpoints).iter().all(|v| *v == Verdict::New));
        let progress = first.progress();
        first.committed();
        progress
    }

    #[test]
    fn a_replay_of_committed_checkpoints_is_recognised_in_order_until_one_differs() {
        let progress = committed(&[(1, &["{\"i\":1}", "{\"i\":2}"]), (2, &["{\"i\":3}"]), (3, &[])]);
        let mut retry = Replays::new(Some(7), 1, Some(&progress));
        assert!(retry.checking());
        // The platform stored state 1: the retry resends from there.
        let verdicts = sync(&mut retry, &[(2, &["{\"i\":3}"]), (3, &[]), (4, &["{\"i\":4}"]), (5, &["{\"i\":5}"])]);
        assert_eq!(verdicts, [Verdict::Replayed, Verdict::Replayed, Verdict::Differs, Verdict::New]);
        assert!(!retry.checking());
        assert_eq!(retry.dropped, (2, 1));
    }

    #[test]
    fn different_records_or_state_or_sync_are_never_a_replay() {
        let progress = committed(&[(1, &["{\"i\":1}"]), (2, &["{\"i\":2}"])]);
        let verdict = |sync_id, checkpoints: &[(u128, &[&str])]| {
            sync(&mut Replays::new(sync_id, 1, Some(&progress)), checkpoints)
        };
        assert_eq!(verdict(Some(7), &[(1, &["{\"i\":1, \"x\":0}"])]), [Verdict::Differs], "other data");
        assert_eq!(verdict(Some(7), &[(1, &["{\"i\":1}", "{\"i\":1}"])]), [Verdict::Differs], "more records");
        assert_eq!(verdict(Some(7), &[(9, &["{\"i\":1}"])]), [Verdict::Differs], "another state");
        assert_eq!(verdict(Some(8), &[(1, &["{\"i\":1}"])]), [Verdict::New], "another sync: nothing to check");
        // Out of order: the second checkpoint must follow the first one recognised.
        assert_eq!(
            verdict(Some(7), &[(1, &["{\"i\":1}"]), (1, &["{\"i\":1}"])]),
            [Verdict::Replayed, Verdict::Differs]
        );
        // Without sync ids (PyAirbyte, a pipe), the content alone decides.
        let progress = {
            let mut first = Replays::new(None, 1, None);
            sync(&mut first, &[(1, &["a"])]);
            first.progress()
        };
        assert_eq!(sync(&mut Replays::new(None, 1, Some(&progress)), &[(1, &["a"])]), [Verdict::Replayed]);
        // Other settings or another catalog: records may have gone elsewhere, so nothing is recognised.
        assert_eq!(sync(&mut Replays::new(None, 2, Some(&progress)), &[(1, &["a"])]), [Verdict::New]);
        // A record that cannot be read is no history.
        assert!(!Replays::new(Some(7), 1, Some(b"not json")).checking());
    }

    #[test]
    fn the_history_is_bounded_and_keeps_the_latest() {
        let mut replays = Replays::new(None, 1, None);
        for i in 0..(HISTORY as u128 + 10) {
            replays.close(i, String::new());
        }
        let progress: ProgressRecord = serde_json::from_slice(&replays.progress()).unwrap();
        assert_eq!(progress.checkpoints.len(), HISTORY);
        let last = &progress.checkpoints.back().unwrap().0;
        assert!(last.starts_with(&format!("{:032x}:0:", HISTORY + 9)), "{last}");
        assert_eq!(progress.last_state.as_deref(), Some(""));
        replays.close(0, "x".repeat(LAST_STATE_MAX + 1));
        let progress: ProgressRecord = serde_json::from_slice(&replays.progress()).unwrap();
        assert_eq!(progress.last_state, None, "a STATE too large to keep");
    }
}
