//! The encode stage's threads: each parsed chunk goes to whichever of a few encoding threads is free (each with
//! its own copy of the streams' encoders), and the main thread gets the chunks back in the order they were read, so
//! the STATE promise is untouched. While the main thread sends one chunk, up to one more than there are threads
//! are being encoded or wait for it, so a thread always has the next chunk to encode and memory stays bounded (in
//! chunks: a chunk holds its messages too, which some formats make larger than its input). With no thread to spare
//! (one CPU), the main thread encodes each chunk itself, the same way.

use super::backlog::Pending;
use super::encoded::Encoded;
use super::input::{Input, Next};
use super::parse::{Item, Parsed};
use crate::airbyte::message::now_ms;
use crate::error::{Error, Result};
use crate::format::{RecordIn, StreamEncoder};
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Encoding threads at most: past this, the main thread's sending is the limit.
const MAX_THREADS: usize = 4;

/// Sets the number of encoding threads (0: the main thread encodes), for tuning and benchmarks.
pub const THREADS_VARIABLE: &str = "DESTINATION_KAFKA_ENCODE_THREADS";

type Job = (Parsed, SyncSender<Pending>);
type Shared<T> = Arc<Mutex<T>>;

/// The input, encoded.
pub struct Workers {
    input: Input<Parsed>,
    encoding: Encoding,
    /// Spent chunks' message buffers, to be filled again.
    spare: SyncSender<Vec<u8>>,
    spares: Shared<Receiver<Vec<u8>>>,
    /// What was handed on, in input order: a chunk being encoded or encoded, or a source that ended after the
    /// chunks before.
    waiting: VecDeque<Waiting>,
    capacity: usize,
    /// Sources not yet ended, as far as the chunks handed out go.
    open: usize,
    /// A failure of the input, told once the chunks read before it are handed out.
    failed: Option<Error>,
}

/// Where chunks are encoded.
enum Encoding {
    Threads(SyncSender<Job>),
    /// On the main thread, with these encoders.
    Here(Vec<StreamEncoder>),
}

enum Waiting {
    Chunk(Receiver<Pending>),
    Encoded(Pending),
    SourceEnded,
}

/// How many encoding threads: `configured` (the variable's value) if set, else one per CPU the process may use
/// beyond the one the main thread and librdkafka need; none with one CPU, where a thread would only take turns
/// with the main thread.
pub fn threads(configured: Option<&str>, cpus: usize) -> Result<usize> {
    match configured {
        None => Ok(cpus.saturating_sub(1).min(MAX_THREADS)),
        Some(text) => text.trim().parse().ok().filter(|n| *n <= MAX_THREADS).ok_or_else(|| {
            Error::Config(format!("{THREADS_VARIABLE} is `{text}`: it must be a number from 0 to {MAX_THREADS}"))
        }),
    }
}

impl Workers {
    /// Starts `threads` encoding threads (0: the main thread encodes).
    pub fn spawn(input: Input<Parsed>, encoders: Vec<StreamEncoder>, threads: usize) -> Workers {
        let (spare, spares) = sync_channel(threads.max(1));
        let spares = Arc::new(Mutex::new(spares));
        let encoding = match threads {
            0 => Encoding::Here(encoders),
            _ => Encoding::Threads(start(threads, &encoders, &spares)),
        };
        let capacity = if threads == 0 { 1 } else { threads + 1 };
        let (waiting, open) = (VecDeque::new(), input.open());
        Workers { input, encoding, spare, spares, waiting, capacity, open, failed: None }
    }

    /// The next encoded chunk, `Idle` if the input had none within `wait`, `End` once every source has ended and
    /// every chunk was handed out. A chunk being encoded is waited for: it takes milliseconds, and the input is not
    /// idle meanwhile.
    pub fn next(&mut self, wait: Duration) -> Result<Next<Pending>> {
        loop {
            // Read ahead while there is room, without waiting when a chunk is on its way.
            if self.failed.is_none() && self.input.open() > 0 && self.waiting.len() < self.capacity {
                let open = self.input.open();
                let next = self.input.next(if self.waiting.is_empty() { wait } else { Duration::ZERO });
                let ended = open - self.input.open();
                self.waiting.extend(std::iter::repeat_with(|| Waiting::SourceEnded).take(ended));
                match next {
                    Ok(Next::Chunk(parsed)) => {
                        self.submit(parsed)?;
                        continue;
                    }
                    // A source's end, not a wait: read on.
                    Ok(Next::Idle) if ended > 0 => continue,
                    Ok(Next::Idle | Next::End) => {}
                    Err(e) => self.failed = Some(e),
                }
            }
            return match self.waiting.pop_front() {
                Some(Waiting::SourceEnded) => {
                    self.open -= 1;
                    continue;
                }
                Some(Waiting::Encoded(pending)) => Ok(Next::Chunk(pending)),
                Some(Waiting::Chunk(chunk)) => chunk.recv().map(Next::Chunk).map_err(|_| stopped()),
                None => match self.failed.take() {
                    Some(e) => Err(e),
                    None if self.input.open() == 0 => Ok(Next::End),
                    None => Ok(Next::Idle),
                },
            };
        }
    }

    fn submit(&mut self, parsed: Parsed) -> Result<()> {
        match &mut self.encoding {
            Encoding::Threads(jobs) => {
                let (done, chunk) = sync_channel(1);
                jobs.send((parsed, done)).map_err(|_| stopped())?;
                self.waiting.push_back(Waiting::Chunk(chunk));
            }
            Encoding::Here(encoders) => {
                let bytes = take_spare(&self.spares);
                self.waiting.push_back(Waiting::Encoded(encode(parsed, bytes, encoders)));
            }
        }
        Ok(())
    }

    /// Sources not yet ended, as far as the chunks handed out go.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Gives a handled chunk's buffers back: its text to the readers, its messages' to the encoding threads.
    pub fn recycle(&self, spent: Pending) {
        self.input.recycle(spent.chunk.into_bytes());
        let _ = self.spare.try_send(spent.encoded.into_bytes());
    }
}

/// Starts the encoding threads, each with its own copy of the encoders.
fn start(threads: usize, encoders: &[StreamEncoder], spares: &Shared<Receiver<Vec<u8>>>) -> SyncSender<Job> {
    let (jobs, queue) = sync_channel::<Job>(1);
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..threads {
        let (queue, spares, mut encoders) = (Arc::clone(&queue), Arc::clone(spares), encoders.to_vec());
        std::thread::Builder::new()
            .name(format!("encode {i}"))
            .spawn(move || loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((parsed, done)) = job else { return };
                let _ = done.send(encode(parsed, take_spare(&spares), &mut encoders));
            })
            .expect("spawning an encoding thread");
    }
    jobs
}

/// A spent chunk's message buffer, if one is back, or a new one.
fn take_spare(spares: &Shared<Receiver<Vec<u8>>>) -> Vec<u8> {
    spares.lock().unwrap_or_else(|e| e.into_inner()).try_recv().unwrap_or_default()
}

fn stopped() -> Error {
    Error::System(
        "a thread encoding records stopped (an internal error, logged above); records after the last one sent were \
         not written"
            .into(),
    )
}

/// Encodes each record of a chunk with its stream's encoder. A record without its time gets it now, here, so the
/// message and the record's later handling agree on it.
/// `bytes`: a buffer for the messages.
fn encode(mut parsed: Parsed, bytes: Vec<u8>, encoders: &mut [StreamEncoder]) -> Pending {
    let mut encoded = Encoded::new(bytes, parsed.items.len());
    for item in &mut parsed.items {
        if let Item::Record { stream, emitted_at, data, meta, .. } = item {
            let emitted_at = *emitted_at.get_or_insert_with(now_ms);
            let meta = meta.clone().map(|m| &parsed.chunk[m]);
            let record = RecordIn { emitted_at, data: &parsed.chunk[data.clone()], meta };
            encoded.push(&mut encoders[*stream], &record);
        }
    }
    Pending::new(parsed, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::catalog::Catalog;
    use crate::airbyte::message::Head;
    use crate::config::channel::Framing;
    use crate::config::tests::java_config;
    use crate::config::Settings;
    use crate::write::input::{LineLimit, Source};
    use crate::write::parse::Parser;
    use serde_json::json;
    use std::io::Read;

    /// A record as the main thread got it: its source, line, message value and time.
    type Got = (usize, u64, String, i64);

    /// Every record of `sources` (one text each), in the order the main thread gets them, and per chunk, its
    /// source and the sources open once it was handed out.
    fn run(sources: Vec<String>, threads: usize) -> (Vec<Got>, Vec<(usize, usize)>) {
        let sources = sources.into_iter().map(|text| Box::new(std::io::Cursor::new(text)) as Box<dyn Read + Send>);
        let mut workers = spawn(sources.collect(), threads);
        let (mut records, mut open) = (Vec::new(), Vec::new());
        loop {
            match workers.next(Duration::from_secs(10)).unwrap() {
                Next::Chunk(mut pending) => {
                    for item in pending.items.by_ref() {
                        if let Item::Record { line, emitted_at, .. } = item {
                            let taken = pending.encoded.take("t");
                            let value = taken.message.unwrap().value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                            records.push((pending.source, line, value.unwrap(), emitted_at.unwrap()));
                        }
                    }
                    open.push((pending.source, workers.open()));
                }
                Next::Idle => panic!("the workers stalled"),
                Next::End => return (records, open),
            }
        }
    }

    /// The encode stage of a sync of one stream `s` in format `json`, over `sources`.
    fn spawn(sources: Vec<Box<dyn Read + Send>>, threads: usize) -> Workers {
        let catalog = Arc::new(Catalog::from_value(&json!({"streams": [{"name": "s"}]}), "{stream}", None).unwrap());
        let mut config = java_config();
        config["format"] = json!({"type": "json"});
        let settings = Settings::from_value(config).unwrap();
        let encoders = crate::format::encoders(&settings.encoding, &catalog.streams).unwrap();
        let sources =
            sources.into_iter().enumerate().map(|(i, reader)| Source { name: format!("s{i}"), reader }).collect();
        let mut index = 0;
        let parsers = |name: &str| {
            let mut parser = Parser::of_source(Arc::clone(&catalog), name, index);
            index += 1;
            move |block| parser.parse(block)
        };
        let limit = LineLimit::of(1 << 20);
        let input = Input::spawn(sources, Framing::Jsonl, limit, Head::is_record, parsers);
        Workers::spawn(input, encoders, threads)
    }

    fn lines(from: usize, to: usize, pad: usize) -> String {
        (from..to)
            .map(|i| {
                let data = format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(i % pad));
                format!(r#"{{"type":"RECORD","record":{{"stream":"s","emitted_at":{i},"data":{data}}}}}"#) + "\n"
            })
            .collect()
    }

    /// On the main thread, on one thread, and on more threads than this machine may have CPUs.
    const THREADS: [usize; 3] = [0, 1, 3];

    #[test]
    fn chunks_come_out_in_input_order_whichever_thread_encoded_them() {
        // Some 6 MB: a few dozen chunks, of uneven cost.
        for threads in THREADS {
            let (records, _) = run(vec![lines(0, 20_000, 600)], threads);
            assert_eq!(records.len(), 20_000);
            for (n, (_, line, value, emitted_at)) in records.iter().enumerate() {
                assert_eq!(*line, n as u64 + 1, "{threads} threads");
                assert_eq!(*value, format!(r#"{{"i":{n},"pad":"{}"}}"#, "x".repeat(n % 600)));
                assert_eq!(*emitted_at, n as i64);
            }
        }
    }

    #[test]
    fn a_source_counts_as_ended_only_once_its_chunks_are_handed_out() {
        // A short source ends long before the other: while its records are still to come, it is open.
        for threads in THREADS {
            let (records, open) = run(vec![lines(0, 10, 5), lines(0, 20_000, 600)], threads);
            assert_eq!(records.iter().filter(|r| r.0 == 0).count(), 10);
            assert_eq!(records.iter().filter(|r| r.0 == 1).count(), 20_000);
            let short = open.iter().position(|c| c.0 == 0).unwrap();
            assert!(open[..=short].iter().all(|c| c.1 == 2), "{threads} threads: {open:?}");
            // The long source's last chunk: the short one has ended, the long one not yet.
            assert_eq!(open.last(), Some(&(1, 1)), "{threads} threads: {open:?}");
        }
    }

    #[test]
    fn a_record_without_its_time_gets_one_and_keeps_it() {
        let line = r#"{"type":"RECORD","record":{"stream":"s","data":{"a":1}}}"#;
        for threads in THREADS {
            let before = now_ms();
            let (records, _) = run(vec![format!("{line}\n")], threads);
            assert!(records[0].3 >= before && records[0].3 <= now_ms());
        }
    }

    #[test]
    fn a_read_failure_comes_after_the_chunks_read_before_it() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the pipe broke"))
            }
        }
        for threads in THREADS {
            let input = std::io::Cursor::new(lines(0, 20_000, 600)).chain(Failing);
            let mut workers = spawn(vec![Box::new(input)], threads);
            let mut records = 0;
            let error = loop {
                match workers.next(Duration::from_secs(10)) {
                    Ok(Next::Chunk(pending)) => records += pending.items.len(),
                    Ok(Next::Idle) => panic!("the workers stalled"),
                    Ok(Next::End) => panic!("the input ended without its failure"),
                    Err(e) => break e.to_string(),
                }
            };
            assert_eq!(records, 20_000, "{threads} threads");
            assert!(error.contains("cannot read s0") && error.contains("the pipe broke"), "{error}");
        }
    }

    #[test]
    fn one_thread_per_cpu_beyond_the_first_unless_set() {
        // (configured, CPUs) → threads, or the refusal.
        let table: [(Option<&str>, usize, Option<usize>); 8] = [
            (None, 1, Some(0)),
            (None, 2, Some(1)),
            (None, 4, Some(3)),
            (None, 64, Some(4)),
            (Some("0"), 8, Some(0)),
            (Some(" 2 "), 1, Some(2)),
            (Some("5"), 8, None),
            (Some("two"), 8, None),
        ];
        for (configured, cpus, expected) in table {
            match (threads(configured, cpus), expected) {
                (Ok(n), Some(e)) => assert_eq!(n, e, "{configured:?} on {cpus} CPUs"),
                (Err(e), None) => {
                    let text = e.to_string();
                    assert!(text.contains(THREADS_VARIABLE) && text.contains("from 0 to 4"), "{text}");
                }
                (got, _) => panic!("{configured:?} on {cpus} CPUs: {got:?}"),
            }
        }
    }
}
