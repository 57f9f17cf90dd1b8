//! Speed Mode with exactly-once: items held back so that a transaction can end where no partition is part-read.
//! Once the release policy wants a boundary, a record of a partition not yet begun is not produced: it and
//! everything after it from the same socket wait here (each socket's order kept) until the commit, while the other
//! sockets finish the partitions they began. States go out in `id` order, so a begun partition may need one not yet
//! begun to close first: when every socket waits, the one whose states are furthest behind begins its next
//! partition. The backlog is bounded: past `LIMIT` chunks the wait is given up and the transaction ends at its
//! bounds (`transaction_max_ms`, `transaction_max_records`), as on stdin.

use super::encoded::Encoded;
use super::parse::{Item, Parsed};
use std::collections::VecDeque;

/// Chunks held back, at most (each at most 256 KiB of input, or its Protobuf rendering, and its messages).
const LIMIT: usize = 16;

/// What is left of a chunk: its text, the items not yet handled and their records' messages.
pub struct Pending {
    pub chunk: String,
    pub items: std::vec::IntoIter<Item>,
    pub encoded: Encoded,
    pub source: usize,
}

impl Pending {
    pub fn new(parsed: Parsed, encoded: Encoded) -> Pending {
        Pending { chunk: parsed.chunk, items: parsed.items.into_iter(), encoded, source: parsed.source }
    }
}

#[derive(Default)]
pub struct Backlog {
    /// Per source, in order.
    held: Vec<VecDeque<Pending>>,
}

impl Backlog {
    /// Whether `source` has items waiting (its later chunks must wait behind them).
    pub fn holds(&self, source: usize) -> bool {
        self.held.get(source).is_some_and(|q| !q.is_empty())
    }

    /// Holds `pending` behind what its source already has waiting (`first`: in front of it, as the head).
    pub fn hold(&mut self, pending: Pending, first: bool) {
        if self.held.len() <= pending.source {
            self.held.resize_with(pending.source + 1, VecDeque::new);
        }
        let queue = &mut self.held[pending.source];
        if first {
            queue.push_front(pending);
        } else {
            queue.push_back(pending);
        }
    }

    /// The next waiting chunk: the head of the source with the most waiting.
    pub fn next(&mut self) -> Option<Pending> {
        let queue = self.held.iter_mut().filter(|q| !q.is_empty()).max_by_key(|q| q.len())?;
        queue.pop_front()
    }

    /// How many sources have chunks waiting.
    pub fn sources(&self) -> usize {
        self.held.iter().filter(|q| !q.is_empty()).count()
    }

    /// The head of the waiting source for which `key` is least.
    pub fn next_by(&mut self, key: impl Fn(usize) -> i64) -> Option<Pending> {
        let (_, queue) =
            self.held.iter_mut().enumerate().filter(|(_, q)| !q.is_empty()).min_by_key(|(i, _)| key(*i))?;
        queue.pop_front()
    }

    /// Whether holding more would cost more memory than the wait is worth.
    pub fn full(&self) -> bool {
        self.held.iter().map(VecDeque::len).sum::<usize>() >= LIMIT
    }
}
