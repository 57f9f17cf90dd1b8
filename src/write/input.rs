//! The input — stdin, or the sockets of Speed Mode — each source read in large chunks on its own thread, which
//! also runs a first stage on each chunk (parsing), so the main thread never waits on a read syscall. Each chunk
//! holds whole lines (or whole Protobuf frames) only; at most `DEPTH` chunks are queued, and a line is never held
//! beyond a bound (see [`LineLimit`]), so memory stays bounded whatever the input. Each reader says when its source
//! ended; the input ends when all have: a reader that stops without saying so (a panic) fails the sync.

use super::parse::Block;
use crate::config::channel::Framing;
use crate::error::{Error, Result};
use std::cell::Cell;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes read at once, at most: a chunk and its messages, times the chunks between the stages, stay well within
/// the memory the connector may use (a pipe gives 64 KB at a time anyway).
const CHUNK: usize = 256 << 10;
const DEPTH: usize = 2;
/// Bytes of an over-long line kept, for the stage to tell what it was.
pub const HEAD: usize = 64 << 10;

/// How long a line may grow before it is given up on.
#[derive(Clone, Copy)]
pub struct LineLimit {
    /// Any line: the largest record the config can produce plus room for the message around it.
    pub any: usize,
    /// A line that starts as something else than a RECORD (a STATE can be larger than any record); also the
    /// largest Protobuf frame.
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

/// One source of input: how messages name it, and its bytes.
pub struct Source {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

impl Source {
    pub fn stdin() -> Source {
        Source { name: "stdin".into(), reader: Box::new(std::io::stdin()) }
    }
}

pub struct Input<T> {
    chunks: Receiver<Message<T>>,
    recycle: SyncSender<Vec<u8>>,
    /// Sources not yet ended.
    open: Cell<usize>,
}

enum Message<T> {
    Chunk(T),
    Failed(String, std::io::Error),
    End,
}

pub enum Next<T> {
    Chunk(T),
    Idle,
    End,
}

impl<T: Send + 'static> Input<T> {
    /// Reads each source on a thread of its own and applies there a stage `stage_for` makes for it to each block.
    /// `is_record`: whether the head of a long line says it is a RECORD (decides which limit applies).
    pub fn spawn<S: FnMut(Block) -> T + Send + 'static>(
        sources: Vec<Source>,
        framing: Framing,
        limit: LineLimit,
        is_record: fn(&[u8]) -> bool,
        mut stage_for: impl FnMut(&str) -> S,
    ) -> Input<T> {
        let (tx, chunks) = sync_channel(DEPTH * sources.len().max(1));
        let (recycle, spare) = sync_channel(DEPTH + sources.len());
        let spare = Arc::new(Mutex::new(spare));
        let open = Cell::new(sources.len());
        for source in sources {
            let stage = stage_for(&source.name);
            let reader = Reader { name: source.name, limit, is_record, tx: tx.clone(), spare: Arc::clone(&spare) };
            let thread = format!("read {}", reader.name);
            std::thread::Builder::new()
                .name(thread.chars().take(15).collect())
                .spawn(move || match framing {
                    Framing::Jsonl => reader.lines(source.reader, stage),
                    Framing::Protobuf => reader.frames(source.reader, stage),
                })
                .expect("spawning a reading thread");
        }
        Input { chunks, recycle, open }
    }

    /// The next staged chunk, `Idle` if none arrived within `wait`, `End` once every source has ended.
    pub fn next(&self, wait: Duration) -> Result<Next<T>> {
        if self.open.get() == 0 {
            return Ok(Next::End);
        }
        match self.chunks.recv_timeout(wait) {
            Ok(Message::Chunk(chunk)) => Ok(Next::Chunk(chunk)),
            Ok(Message::Failed(name, e)) => Err(Error::io(format!("cannot read {name}"), e)),
            Ok(Message::End) => {
                self.open.set(self.open.get() - 1);
                Ok(if self.open.get() == 0 { Next::End } else { Next::Idle })
            }
            Err(RecvTimeoutError::Timeout) => Ok(Next::Idle),
            // A reader is gone without saying its input ended: whatever was still to come is not read.
            Err(RecvTimeoutError::Disconnected) => Err(Error::System(
                "a thread reading the input stopped before the end of it (an internal error, logged above); \
                 records after the last one read were not written"
                    .into(),
            )),
        }
    }

    /// Sources not yet ended.
    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// Gives a consumed chunk's buffer back to the readers.
    pub fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.recycle.try_send(chunk);
    }
}

struct Reader<T> {
    name: String,
    limit: LineLimit,
    is_record: fn(&[u8]) -> bool,
    tx: SyncSender<Message<T>>,
    spare: Arc<Mutex<Receiver<Vec<u8>>>>,
}

impl<T> Reader<T> {
    /// The next read into `scratch`: `Some(0)` at the end, `None` once a failure was sent on.
    fn read(&self, source: &mut impl Read, scratch: &mut [u8]) -> Option<usize> {
        loop {
            match source.read(scratch) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = self.tx.send(Message::Failed(self.name.clone(), e));
                    return None;
                }
            }
        }
    }

    fn buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).try_recv();
        let mut chunk = spare.unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        chunk.clear();
        chunk
    }

    fn lines(self, mut source: impl Read, mut stage: impl FnMut(Block) -> T) {
        // Reads land in one buffer zeroed once; chunks get only the bytes read, so a trickling pipe stays cheap.
        let mut scratch = vec![0u8; CHUNK];
        let mut pending: Vec<u8> = Vec::new();
        // An over-long line being skipped: its head and the bytes seen so far.
        let mut skipping: Option<(Vec<u8>, usize)> = None;
        loop {
            let read = match self.read(&mut source, &mut scratch) {
                None => return,
                Some(0) => break,
                Some(n) => n,
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
            let mut chunk = self.buffer();
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
        self.end(last.map(stage));
    }

    /// Length-delimited Protobuf: chunks of whole frames. A frame over the limit, a length that is not a varint
    /// or an end in the middle of a frame is a broken input, after which this source is not read further.
    fn frames(self, mut source: impl Read, mut stage: impl FnMut(Block) -> T) {
        let mut scratch = vec![0u8; CHUNK];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let read = match self.read(&mut source, &mut scratch) {
                None => return,
                Some(0) => break,
                Some(n) => n,
            };
            let mut chunk = self.buffer();
            chunk.append(&mut pending);
            chunk.extend_from_slice(&scratch[..read]);
            let whole = match whole_frames(&chunk, self.limit.not_a_record) {
                Ok(whole) => whole,
                Err(why) => return self.end(Some(stage(Block::Broken(format!("{}: {why}", self.name))))),
            };
            pending.extend_from_slice(&chunk[whole..]);
            chunk.truncate(whole);
            if !chunk.is_empty() && !self.send(stage(Block::Frames(chunk))) {
                return;
            }
        }
        let last = (!pending.is_empty()).then(|| {
            let why =
                format!("{} ended in the middle of a Protobuf message ({} bytes of it read)", self.name, pending.len());
            stage(Block::Broken(why))
        });
        self.end(last);
    }

    fn end(&self, last: Option<T>) {
        if let Some(last) = last {
            if !self.send(last) {
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

/// How many bytes at the start of `bytes` are whole frames (a varint32 length, then that many bytes).
fn whole_frames(bytes: &[u8], limit: usize) -> std::result::Result<usize, String> {
    let mut at = 0;
    loop {
        let mut cursor = &bytes[at..];
        let Ok(length) = prost::encoding::decode_varint(&mut cursor) else {
            // Too few bytes for the length yet (a varint32 has at most 5), or no varint at all.
            return if bytes.len() - at >= 10 { Err("a frame length that is not a varint".into()) } else { Ok(at) };
        };
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > limit {
            return Err(format!("a Protobuf message of {length} bytes, over the {limit} bytes one may have here"));
        }
        let start = bytes.len() - cursor.len();
        if cursor.len() < length {
            return Ok(at);
        }
        at = start + length;
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
            Block::Frames(frames) => frames,
            Block::Broken(why) => format!("<{why}>").into_bytes(),
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

    fn spawn<T: Send + 'static>(
        source: impl Read + Send + 'static,
        limit: LineLimit,
        is_record: fn(&[u8]) -> bool,
        stage: impl FnMut(Block) -> T + Send + 'static,
    ) -> Input<T> {
        let mut stage = Some(stage);
        let source = Source { name: "stdin".into(), reader: Box::new(source) };
        Input::spawn(vec![source], Framing::Jsonl, limit, is_record, |_| stage.take().unwrap())
    }

    /// Every chunk, until the input ends (several sources may take turns being idle).
    fn gather<T: Send + 'static>(input: Input<T>) -> Vec<T> {
        let mut chunks = Vec::new();
        loop {
            match input.next(Duration::from_secs(5)).unwrap() {
                Next::Chunk(c) => chunks.push(c),
                Next::Idle => continue,
                Next::End => return chunks,
            }
        }
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
        assert_eq!(collect(spawn(trickle, NO_LIMIT, never_a_record, lines)), text);
        assert_eq!(collect(spawn(std::io::Cursor::new(text.clone()), NO_LIMIT, never_a_record, lines)), text);
    }

    #[test]
    fn lines_longer_than_a_chunk() {
        let mut text = vec![b'x'; 3 * CHUNK + 5];
        text.push(b'\n');
        text.extend_from_slice(b"y\n");
        assert_eq!(collect(spawn(std::io::Cursor::new(text.clone()), NO_LIMIT, never_a_record, lines)), text);
    }

    #[test]
    fn an_over_long_line_is_given_up_on_without_holding_it() {
        // 5 MB on one line between two short ones, with a 2 MB limit: the reader keeps its head only.
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5_000_000));
        text.extend_from_slice(b"\nb\n");
        let limit = LineLimit { any: 2_000_000, not_a_record: 3_000_000 };
        let read = collect(spawn(Trickle(std::io::Cursor::new(text), 100_000), limit, always_a_record, lines));
        assert_eq!(String::from_utf8(read).unwrap(), format!("a\n<5000000 bytes from {HEAD}>\nb\n"));
        // A line that is not a record may grow to the larger limit; past it, it is given up on too.
        let text = [&vec![b'y'; 2_500_000][..], b"\n", &vec![b'z'; 4_000_000], b"\nend"].concat();
        let read = collect(spawn(std::io::Cursor::new(text), limit, never_a_record, lines));
        let read = String::from_utf8(read).unwrap();
        assert!(read.starts_with(&"y".repeat(2_500_000)), "a 2.5 MB STATE is kept whole");
        assert!(read.ends_with(&format!("\n<4000000 bytes from {HEAD}>\nend")), "{}", &read[read.len() - 60..]);
        // An endless line (no newline before the end of input) ends the same way.
        let endless = std::io::Cursor::new(vec![b'q'; 4_000_000]);
        let read = collect(spawn(endless, limit, always_a_record, lines));
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
        let input = spawn(Trickle(std::io::Cursor::new(text), 7), NO_LIMIT, never_a_record, stage);
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
        assert!(error.to_string().contains("stopped before the end of it"), "{error}");
        assert_eq!(error.failure_type(), crate::error::FailureType::SystemError);
    }

    /// Frames of every size split across reads at any byte, from two sources at once: each source's frames arrive
    /// whole and in order; a frame over the limit and an end inside a frame break the input.
    #[test]
    fn protobuf_frames_arrive_whole_from_every_source() {
        let frames = |tag: u8| -> Vec<u8> {
            let mut out = Vec::new();
            for size in [0usize, 1, 127, 128, 300, 70_000, 3] {
                prost::encoding::encode_varint(size as u64, &mut out);
                out.extend(std::iter::repeat_n(tag, size));
            }
            out
        };
        let sources = vec![
            Source { name: "socket a".into(), reader: Box::new(Trickle(std::io::Cursor::new(frames(b'a')), 7)) },
            Source { name: "socket b".into(), reader: Box::new(std::io::Cursor::new(frames(b'b'))) },
        ];
        let stage = |name: &str| {
            let name = name.to_string();
            move |block: Block| (name.clone(), lines(block))
        };
        let input = Input::spawn(sources, Framing::Protobuf, NO_LIMIT, never_a_record, stage);
        let mut read: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        for (name, bytes) in gather(input) {
            read.entry(name).or_default().extend(bytes);
        }
        assert_eq!(read["socket a"], frames(b'a'));
        assert_eq!(read["socket b"], frames(b'b'));

        let broken = |bytes: Vec<u8>, limit: usize| {
            let limit = LineLimit { any: limit, not_a_record: limit };
            let source = Source { name: "socket c".into(), reader: Box::new(std::io::Cursor::new(bytes)) };
            let input = Input::spawn(vec![source], Framing::Protobuf, limit, never_a_record, |_| lines);
            String::from_utf8_lossy(&gather(input).concat()).into_owned()
        };
        let mut cut = frames(b'c');
        cut.truncate(cut.len() - 1);
        assert!(broken(cut, usize::MAX)
            .ends_with("<socket c ended in the middle of a Protobuf message (3 bytes of it read)>"));
        assert!(broken(frames(b'c'), 1000)
            .ends_with("<socket c: a Protobuf message of 70000 bytes, over the 1000 bytes one may have here>"));
    }
}
