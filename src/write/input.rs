//! stdin, read in large chunks on its own thread, which also runs a first stage on each chunk (parsing), so the
//! main thread never waits on a read syscall. Each chunk holds whole lines only; at most `DEPTH` chunks are
//! queued, and a line is never held beyond a bound (see [`LineLimit`]), so memory stays bounded whatever the
//! input. The reader says when the input ended: a reader that stops without saying so (a panic) fails the sync.

use super::parse::Block;
use crate::error::{Error, Result};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 2;
/// Bytes of an over-long line kept, for the stage to tell what it was.
pub const HEAD: usize = 64 << 10;

/// How long a line may grow before it is given up on.
#[derive(Clone, Copy)]
pub struct LineLimit {
    /// Any line: the largest record the config can produce plus room for the message around it.
    pub any: usize,
    /// A line that starts as something else than a RECORD (a STATE can be larger than any record).
    pub not_a_record: usize,
}

impl LineLimit {
    /// Room for what a RECORD line holds besides `data` (the protocol's own keys, `meta`).
    const ENVELOPE: usize = 1 << 20;
    /// A STATE (or another message) may be far larger than any record; this much is still held.
    const NOT_A_RECORD: usize = 64 << 20;

    /// The limits for records of at most `max_request_size` bytes.
    pub fn of(max_request_size: i64) -> LineLimit {
        let any = usize::try_from(max_request_size).unwrap_or(0).saturating_add(Self::ENVELOPE);
        LineLimit { any, not_a_record: any.max(Self::NOT_A_RECORD) }
    }
}

pub struct Input<T> {
    chunks: Receiver<Message<T>>,
    recycle: SyncSender<Vec<u8>>,
}

enum Message<T> {
    Chunk(T),
    Failed(std::io::Error),
    End,
}

pub enum Next<T> {
    Chunk(T),
    Idle,
    End,
}

impl<T: Send + 'static> Input<T> {
    /// Reads `source` on a new thread and applies `stage` there to each block. `is_record`: whether the head of a
    /// long line says it is a RECORD (decides which limit applies).
    pub fn spawn(
        source: impl Read + Send + 'static,
        limit: LineLimit,
        is_record: fn(&[u8]) -> bool,
        stage: impl FnMut(Block) -> T + Send + 'static,
    ) -> Input<T> {
        let (tx, chunks) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(DEPTH + 1);
        let reader = Reader { limit, is_record, tx, spare };
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || reader.run(source, stage))
            .expect("spawning the stdin thread");
        Input { chunks, recycle }
    }

    /// The next staged chunk, `Idle` if none arrived within `wait`, `End` at end of input.
    pub fn next(&self, wait: Duration) -> Result<Next<T>> {
        match self.chunks.recv_timeout(wait) {
            Ok(Message::Chunk(chunk)) => Ok(Next::Chunk(chunk)),
            Ok(Message::Failed(e)) => Err(Error::io("cannot read stdin", e)),
            Ok(Message::End) => Ok(Next::End),
            Err(RecvTimeoutError::Timeout) => Ok(Next::Idle),
            // The reader is gone without saying the input ended: whatever was still to come is not read.
            Err(RecvTimeoutError::Disconnected) => Err(Error::System(
                "the thread reading stdin stopped before the end of the input (an internal error, logged above); \
                 records after the last one read were not written"
                    .into(),
            )),
        }
    }

    /// Gives a consumed chunk's buffer back to the reader.
    pub fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.recycle.try_send(chunk);
    }
}

struct Reader<T> {
    limit: LineLimit,
    is_record: fn(&[u8]) -> bool,
    tx: SyncSender<Message<T>>,
    spare: Receiver<Vec<u8>>,
}

impl<T> Reader<T> {
    fn run(self, mut source: impl Read, mut stage: impl FnMut(Block) -> T) {
        // Reads land in one buffer zeroed once; chunks get only the bytes read, so a trickling pipe stays cheap.
        let mut scratch = vec![0u8; CHUNK];
        let mut pending: Vec<u8> = Vec::new();
        // An over-long line being skipped: its head and the bytes seen so far.
        let mut skipping: Option<(Vec<u8>, usize)> = None;
        loop {
            let read = match source.read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = self.tx.send(Message::Failed(e));
                    return;
                }
            };
            let mut bytes = &scratch[..read];
            if let Some((head, length)) = skipping.as_mut() {
                match memchr::memchr(b'\n', bytes) {
                    None => {
                        *length += bytes.len();
                        continue;
                    }
                    Some(end) => {
                        let block = Block::TooLong { head: std::mem::take(head), length: *length + end };
                        skipping = None;
                        if !self.send(stage(block)) {
                            return;
                        }
                        bytes = &bytes[end + 1..];
                    }
                }
            }
            let Some(last_newline) = memchr::memrchr(b'\n', bytes) else {
                pending.extend_from_slice(bytes);
                if let Some(over) = self.over_limit(&pending) {
                    skipping = Some(over);
                    pending.clear();
                }
                continue;
            };
            let mut chunk = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            chunk.clear();
            chunk.append(&mut pending);
            chunk.extend_from_slice(&bytes[..=last_newline]);
            pending.extend_from_slice(&bytes[last_newline + 1..]);
            if !self.send(stage(Block::Lines(chunk))) {
                return;
            }
        }
        // End of input: the last line may lack its newline.
        let last = match skipping {
            Some((head, length)) => Some(Block::TooLong { head, length }),
            None => (!pending.is_empty()).then_some(Block::Lines(pending)),
        };
        if let Some(block) = last {
            if !self.send(stage(block)) {
                return;
            }
        }
        let _ = self.tx.send(Message::End);
    }

    fn send(&self, staged: T) -> bool {
        self.tx.send(Message::Chunk(staged)).is_ok()
    }

    /// The head and length of a partial line past its limit (never a line that ends in a chunk: those are whole).
    fn over_limit(&self, line: &[u8]) -> Option<(Vec<u8>, usize)> {
        let limit = if line.len() > self.limit.any && !(self.is_record)(&line[..HEAD.min(line.len())]) {
            self.limit.not_a_record.max(self.limit.any)
        } else {
            self.limit.any
        };
        (line.len() > limit).then(|| (line[..HEAD.min(line.len())].to_vec(), line.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: LineLimit = LineLimit { any: usize::MAX, not_a_record: usize::MAX };

    /// A reader that hands out its bytes a few at a time, as a pipe does.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len());
            self.0.read(&mut buf[..n])
        }
    }

    fn lines(block: Block) -> Vec<u8> {
        match block {
            Block::Lines(chunk) => chunk,
            Block::TooLong { head, length } => format!("<{length} bytes from {}>\n", head.len()).into_bytes(),
        }
    }

    fn collect(input: Input<Vec<u8>>) -> Vec<u8> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            match input.next(Duration::from_secs(5)).unwrap() {
                Next::Chunk(c) => chunks.push(c),
                Next::Idle => panic!("reader stalled"),
                Next::End => break,
            }
        }
        let (_, whole) = chunks.split_last().unwrap();
        assert!(whole.iter().all(|c| c.ends_with(b"\n")), "every chunk but the last ends a line");
        chunks.concat()
    }

    fn never_a_record(_: &[u8]) -> bool {
        false
    }

    fn always_a_record(_: &[u8]) -> bool {
        true
    }

    #[test]
    fn chunks_are_whole_lines_and_nothing_is_lost() {
        let text: Vec<u8> = (0..10_000).flat_map(|i| format!("line {i}\n").into_bytes()).chain(*b"last").collect();
        let trickle = Trickle(std::io::Cursor::new(text.clone()), 7);
        assert_eq!(collect(Input::spawn(trickle, NO_LIMIT, never_a_record, lines)), text);
        assert_eq!(collect(Input::spawn(std::io::Cursor::new(text.clone()), NO_LIMIT, never_a_record, lines)), text);
    }

    #[test]
    fn lines_longer_than_a_chunk() {
        let mut text = vec![b'x'; 3 * CHUNK + 5];
        text.push(b'\n');
        text.extend_from_slice(b"y\n");
        assert_eq!(collect(Input::spawn(std::io::Cursor::new(text.clone()), NO_LIMIT, never_a_record, lines)), text);
    }

    #[test]
    fn an_over_long_line_is_given_up_on_without_holding_it() {
        // 5 MB on one line between two short ones, with a 2 MB limit: the reader keeps its head only.
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5_000_000));
        text.extend_from_slice(b"\nb\n");
        let limit = LineLimit { any: 2_000_000, not_a_record: 3_000_000 };
        let read = collect(Input::spawn(Trickle(std::io::Cursor::new(text), 100_000), limit, always_a_record, lines));
        assert_eq!(String::from_utf8(read).unwrap(), format!("a\n<5000000 bytes from {HEAD}>\nb\n"));
        // A line that is not a record may grow to the larger limit; past it, it is given up on too.
        let text = [&vec![b'y'; 2_500_000][..], b"\n", &vec![b'z'; 4_000_000], b"\nend"].concat();
        let read = collect(Input::spawn(std::io::Cursor::new(text), limit, never_a_record, lines));
        let read = String::from_utf8(read).unwrap();
        assert!(read.starts_with(&"y".repeat(2_500_000)), "a 2.5 MB STATE is kept whole");
        assert!(read.ends_with(&format!("\n<4000000 bytes from {HEAD}>\nend")), "{}", &read[read.len() - 60..]);
        // An endless line (no newline before the end of input) ends the same way.
        let endless = std::io::Cursor::new(vec![b'q'; 4_000_000]);
        let read = collect(Input::spawn(endless, limit, always_a_record, lines));
        assert_eq!(String::from_utf8(read).unwrap(), format!("<4000000 bytes from {HEAD}>\n"));
    }

    #[test]
    fn a_reader_that_dies_fails_the_input_instead_of_ending_it() {
        // The stage panics on the second chunk: the input must not look ended (which would emit states and exit 0
        // with records unread).
        let text: Vec<u8> = (0..3).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let mut seen = 0;
        let stage = move |block: Block| {
            seen += 1;
            assert!(seen < 2, "a bug in the stage");
            lines(block)
        };
        let input = Input::spawn(Trickle(std::io::Cursor::new(text), 7), NO_LIMIT, never_a_record, stage);
        let mut outcome = Ok(());
        for _ in 0..10 {
            match input.next(Duration::from_secs(5)) {
                Ok(Next::Chunk(_)) => continue,
                Ok(Next::End) => panic!("a dead reader was taken for the end of the input"),
                Ok(Next::Idle) => panic!("reader stalled"),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let error = outcome.unwrap_err();
        assert!(error.to_string().contains("stopped before the end of the input"), "{error}");
        assert_eq!(error.failure_type(), crate::error::FailureType::SystemError);
    }
}
