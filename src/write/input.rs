//! stdin, read in large chunks on its own thread, which also runs a first stage on each chunk (parsing), so
//! the main thread never waits on a read syscall. Each chunk holds whole lines only; at most `DEPTH` chunks are
//! queued, so memory stays bounded.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 2;

pub struct Input<T> {
    chunks: Receiver<std::io::Result<T>>,
    recycle: SyncSender<Vec<u8>>,
}

pub enum Next<T> {
    Chunk(T),
    Idle,
    End,
}

impl<T: Send + 'static> Input<T> {
    /// Reads `source` on a new thread and applies `stage` there to each chunk of whole lines.
    pub fn spawn(source: impl Read + Send + 'static, stage: impl FnMut(Vec<u8>) -> T + Send + 'static) -> Input<T> {
        let (tx, chunks) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(DEPTH + 1);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_chunks(source, stage, tx, spare))
            .expect("spawning the stdin thread");
        Input { chunks, recycle }
    }

    /// The next staged chunk, `Idle` if none arrived within `wait`, `End` at end of input.
    pub fn next(&self, wait: Duration) -> std::io::Result<Next<T>> {
        match self.chunks.recv_timeout(wait) {
            Ok(Ok(chunk)) => Ok(Next::Chunk(chunk)),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Ok(Next::Idle),
            Err(RecvTimeoutError::Disconnected) => Ok(Next::End),
        }
    }

    /// Gives a consumed chunk's buffer back to the reader.
    pub fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.recycle.try_send(chunk);
    }
}

fn read_chunks<T>(
    mut source: impl Read,
    mut stage: impl FnMut(Vec<u8>) -> T,
    tx: SyncSender<std::io::Result<T>>,
    spare: Receiver<Vec<u8>>,
) {
    // Reads land in one buffer zeroed once; chunks get only the bytes read, so a trickling pipe stays cheap.
    let mut scratch = vec![0u8; CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let read = match source.read(&mut scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if read == 0 {
            // End of input: the last line may lack its newline.
            if !pending.is_empty() {
                let _ = tx.send(Ok(stage(pending)));
            }
            return;
        }
        let Some(last_newline) = memchr::memrchr(b'\n', &scratch[..read]) else {
            pending.extend_from_slice(&scratch[..read]);
            continue;
        };
        let mut chunk = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        chunk.clear();
        chunk.append(&mut pending);
        chunk.extend_from_slice(&scratch[..=last_newline]);
        pending.extend_from_slice(&scratch[last_newline + 1..read]);
        if tx.send(Ok(stage(chunk))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes a few at a time, as a pipe does.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len());
            self.0.read(&mut buf[..n])
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

    #[test]
    fn chunks_are_whole_lines_and_nothing_is_lost() {
        let text: Vec<u8> = (0..10_000).flat_map(|i| format!("line {i}\n").into_bytes()).chain(*b"last").collect();
        assert_eq!(collect(Input::spawn(Trickle(std::io::Cursor::new(text.clone()), 7), |c| c)), text);
        assert_eq!(collect(Input::spawn(std::io::Cursor::new(text.clone()), |c| c)), text);
    }

    #[test]
    fn lines_longer_than_a_chunk() {
        let mut text = vec![b'x'; 3 * CHUNK + 5];
        text.push(b'\n');
        text.extend_from_slice(b"y\n");
        assert_eq!(collect(Input::spawn(std::io::Cursor::new(text.clone()), |c| c)), text);
    }
}
