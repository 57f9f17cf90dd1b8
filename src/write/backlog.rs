//! Speed Mode with exactly-once: items held back so that a transaction can end where no partition is part-read.
//! Once the release policy wants a boundary, a record of a partition not yet begun is not produced: it and
//! everything after it from the same socket wait here (each socket's order kept) until the commit, while the other
//! sockets finish the partitions they began. States go out in `id` order, so a begun partition may need one not yet
//! begun to close first: when every socket waits, or every part-read partition is whole and waits only for an
//! earlier state (the sockets still sending cannot help: a socket not held may have sent all it has), the one whose
//! states are furthest behind begins its next partition. The backlog is bounded: past `LIMIT` chunks the wait is
//! given up and the transaction ends at its bounds (`transaction_max_ms`, `transaction_max_records`), as on stdin.

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

    /// While a boundary is waited for: the head of a source that goes on with what it began (`begins` tells a
    /// head that would begin a partition), else, if `stuck()`, the head of the source whose states are furthest
    /// behind (`behind`: least first), which begins its next partition (`true`). A head that goes on must not wait
    /// for the others: its partition's state may be the one every boundary needs.
    pub fn next_holding(
        &mut self,
        stuck: impl FnOnce() -> bool,
        begins: impl Fn(&Pending) -> bool,
        behind: impl Fn(usize) -> i64,
    ) -> Option<(Pending, bool)> {
        let heads = || self.held.iter().enumerate().filter_map(|(i, q)| Some((i, q.front()?)));
        let (source, begin) = match heads().find(|(_, head)| !begins(head)) {
            Some((source, _)) => (source, false),
            None if stuck() => (heads().min_by_key(|(i, _)| behind(*i))?.0, true),
            None => return None,
        };
        Some((self.held[source].pop_front()?, begin))
    }

    /// Whether holding more would cost more memory than the wait is worth.
    pub fn full(&self) -> bool {
        self.held.iter().map(VecDeque::len).sum::<usize>() >= LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held chunk of `source` whose text says what its head does ("begin" or "go on").
    fn chunk(source: usize, text: &str) -> Pending {
        Pending { chunk: text.into(), items: Vec::new().into_iter(), encoded: Encoded::default(), source }
    }

    fn begins(head: &Pending) -> bool {
        head.chunk.starts_with("begin")
    }

    fn next(backlog: &mut Backlog, stuck: bool, behind: [i64; 3]) -> Option<(usize, String, bool)> {
        let (p, begin) = backlog.next_holding(|| stuck, begins, |source| behind[source])?;
        Some((p.source, p.chunk, begin))
    }

    #[test]
    fn a_head_that_goes_on_is_taken_first_whatever_the_others_wait_for() {
        let mut backlog = Backlog::default();
        backlog.hold(chunk(0, "begin a"), false);
        backlog.hold(chunk(2, "go on c"), false);
        backlog.hold(chunk(2, "begin c2"), false);
        // Source 1 sends nothing and is not in the backlog: the head that goes on does not wait for it.
        assert_eq!(next(&mut backlog, false, [0, 0, 9]), Some((2, "go on c".into(), false)));
        assert_eq!(next(&mut backlog, false, [0, 0, 9]), None, "every head begins a partition, none stuck");
        assert_eq!(backlog.sources(), 2);
    }

    #[test]
    fn when_stuck_the_source_furthest_behind_begins_in_its_order() {
        let mut backlog = Backlog::default();
        backlog.hold(chunk(0, "begin a1"), false);
        backlog.hold(chunk(0, "begin a2"), false);
        backlog.hold(chunk(1, "begin b"), false);
        // Source 1's states are behind source 0's: it begins first; then source 0, in the order it was held.
        assert_eq!(next(&mut backlog, true, [7, 4, 0]), Some((1, "begin b".into(), true)));
        assert_eq!(next(&mut backlog, true, [7, 4, 0]), Some((0, "begin a1".into(), true)));
        // A chunk put back at the head (its first item was a partition not begun) comes before the rest.
        backlog.hold(chunk(0, "go on a1"), true);
        assert_eq!(next(&mut backlog, false, [7, 4, 0]), Some((0, "go on a1".into(), false)));
        assert_eq!(next(&mut backlog, true, [7, 4, 0]), Some((0, "begin a2".into(), true)));
        assert_eq!(next(&mut backlog, true, [7, 4, 0]), None);
    }
}
