//! The parse → route stage. It runs on each reading thread, beside encoding and producing on the main thread:
//! each chunk of whole lines (or Protobuf frames, `frames`) becomes a list of items that point back into the
//! chunk, in input order.

use crate::airbyte::catalog::{describe, Catalog};
use crate::airbyte::message::{excerpt, Head, Message};
use crate::airbyte::protobuf::Fields;
use crate::airbyte::state::{Counted, Scope, State};
use crate::error::Error;
use std::ops::Range;
use std::sync::Arc;

/// What the parse stage gets from the stdin reader.
pub enum Block {
    /// Whole lines.
    Lines(Vec<u8>),
    /// One line over its limit: its first bytes (`input::HEAD`), and its length (at least this many bytes).
    TooLong { head: Vec<u8>, length: usize },
    /// Whole length-delimited Protobuf messages.
    Frames(Vec<u8>),
    /// The input cannot be read on: why.
    Broken(String),
}

pub enum Item {
    Record {
        /// The stream's catalog index.
        stream: usize,
        emitted_at: Option<i64>,
        data: Range<usize>,
        /// The record's `meta`, when it has one.
        meta: Option<Range<usize>>,
        /// Speed Mode's partition, when the record names one.
        partition: Option<Range<usize>>,
        line: u64,
    },
    /// A STATE, parsed once here: what it counts and its echo.
    State { counted: Counted, state: State },
    /// Speed Mode: a TRACE saying a stream is COMPLETE.
    StreamComplete,
    /// A message of a type this protocol version does not define: skipped, but never silently.
    Unknown { kind: String, line: u64 },
    /// A line over its length limit, of which only the head was read: a RECORD of a known stream (which the
    /// record-error policy then rejects), or anything else (which fails the sync).
    TooLong { stream: Option<usize>, kind: Option<String>, emitted_at: Option<i64>, length: usize, line: u64 },
    /// The sync stops here: what came before is still produced and acknowledged.
    Failure(Error),
}

/// A chunk of input (as far as it is valid UTF-8) and what it holds.
pub struct Parsed {
    pub chunk: String,
    pub items: Vec<Item>,
    /// Which source it was read from (its index in the input's sources).
    pub source: usize,
}

pub struct Parser {
    pub(super) catalog: Arc<Catalog>,
    /// Lines (or Protobuf messages) read so far.
    pub(super) line_no: u64,
    last_stream: Option<usize>,
    /// Where the input is read from, named in failures when it is not stdin, and its index.
    source: Option<String>,
    index: usize,
    /// Per stream, the names of a Protobuf record's values, once it had one.
    pub(super) fields: Vec<Option<Fields>>,
}

impl Parser {
    pub fn new(catalog: Arc<Catalog>) -> Parser {
        let fields = vec![None; catalog.streams.len()];
        Parser { catalog, line_no: 0, last_stream: None, source: None, index: 0, fields }
    }

    /// A parser for one of several sources, named in what it reports.
    pub fn of_source(catalog: Arc<Catalog>, source: &str, index: usize) -> Parser {
        Parser { source: Some(source.to_string()), index, ..Parser::new(catalog) }
    }

    pub fn parse(&mut self, block: Block) -> Parsed {
        let mut parsed = self.parse_block(block);
        parsed.source = self.index;
        if let Some(source) = &self.source {
            for item in &mut parsed.items {
                if let Item::Failure(e) = item {
                    *e = std::mem::replace(e, Error::System(String::new())).context(source);
                }
            }
        }
        parsed
    }

    fn parse_block(&mut self, block: Block) -> Parsed {
        match block {
            Block::Lines(chunk) => self.lines(chunk),
            Block::Frames(frames) => self.frames(frames),
            Block::Broken(reason) => {
                let item = Item::Failure(Error::Input { line: self.line_no + 1, reason });
                Parsed { chunk: String::new(), items: vec![item], source: 0 }
            }
            Block::TooLong { head, length } => {
                self.line_no += 1;
                let head = Head::read(&head);
                let stream = match (head.kind.as_deref(), &head.stream) {
                    (Some("RECORD"), Some(name)) => self.catalog.find(head.namespace.as_deref(), name),
                    _ => None,
                };
                let item =
                    Item::TooLong { stream, kind: head.kind, emitted_at: head.emitted_at, length, line: self.line_no };
                Parsed { chunk: String::new(), items: vec![item], source: 0 }
            }
        }
    }

    fn lines(&mut self, chunk: Vec<u8>) -> Parsed {
        let (chunk, bad) = text_of(chunk);
        let mut bad = bad.into_iter().peekable();
        let mut items = Vec::with_capacity(chunk.len() / 256);
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', chunk.as_bytes())
            .map(|i| i + 1)
            .chain((!chunk.is_empty() && !chunk.ends_with('\n')).then_some(chunk.len()));
        for end in ends {
            let line = chunk[start..end].trim_ascii_end();
            let range = start..start + line.len();
            start = end;
            self.line_no += 1;
            if let Some((_, reason)) = bad.next_if(|(at, _)| *at == range.start) {
                items.push(Item::Failure(Error::Input { line: self.line_no, reason }));
                continue;
            }
            if range.is_empty() {
                continue;
            }
            if let Some(item) = self.item(&chunk, range) {
                items.push(item);
            }
        }
        Parsed { chunk, items, source: 0 }
    }

    pub(super) fn item(&mut self, chunk: &str, range: Range<usize>) -> Option<Item> {
        let text = &chunk[range];
        let line_no = self.line_no;
        let bad_line =
            |why: String| Error::Input { line: line_no, reason: format!("{why}: {}", excerpt(text.as_bytes())) };
        let record = match Message::parse(text) {
            Err(e) => return Some(Item::Failure(bad_line(e.0))),
            Ok(Message::State(raw)) => {
                return Some(match State::parse(text, raw) {
                    Ok(state) => Item::State { counted: self.counted(&state.scope), state },
                    Err(e) => Item::Failure(bad_line(e.0)),
                });
            }
            // Speed Mode counts the streams the source reports complete (the bulk CDK's `StreamCompletionTracker`).
            Ok(Message::Other) if self.source.is_some() && is_stream_complete(text) => {
                return Some(Item::StreamComplete)
            }
            Ok(Message::Other) => return None,
            Ok(Message::Unknown(kind)) => return Some(Item::Unknown { kind, line: line_no }),
            Ok(Message::Record(record)) => record,
        };
        let stream = match self.stream_of(record.namespace.as_deref(), &record.stream) {
            Ok(stream) => stream,
            Err(failure) => return Some(Item::Failure(failure)),
        };
        let range_of = |raw: &str| {
            let start = raw.as_ptr() as usize - chunk.as_ptr() as usize;
            start..start + raw.len()
        };
        // A partition id with escapes is not borrowed from the chunk: it is written out after it is read.
        let partition = match record.partition {
            Some(std::borrow::Cow::Borrowed(p)) => Some(range_of(p)),
            Some(std::borrow::Cow::Owned(_)) => {
                return Some(Item::Failure(bad_line("a `partition_id` with escaped characters".into())))
            }
            None => None,
        };
        Some(Item::Record {
            stream,
            emitted_at: record.emitted_at,
            data: range_of(record.data),
            meta: record.meta.map(range_of),
            partition,
            line: line_no,
        })
    }

    /// The catalog index of a record's stream, or the failure of a stream the catalog does not have.
    pub(super) fn stream_of(&mut self, namespace: Option<&str>, name: &str) -> Result<usize, Error> {
        let stream = match self.last_stream {
            Some(i) if self.catalog.streams[i].matches(namespace, name) => i,
            _ => self.catalog.find(namespace, name).ok_or_else(|| Error::Input {
                line: self.line_no,
                reason: format!(
                    "RECORD of stream `{}`, which is not in the configured catalog",
                    describe(namespace, name)
                ),
            })?,
        };
        self.last_stream = Some(stream);
        Ok(stream)
    }

    fn counted(&self, scope: &Scope) -> Counted {
        match scope {
            Scope::Global => Counted::Global,
            Scope::Stream { name, namespace } => Counted::Stream(self.catalog.find(namespace.as_deref(), name)),
        }
    }
}

/// Whether a message is a TRACE of type STREAM_STATUS whose status is COMPLETE.
fn is_stream_complete(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Message {
        trace: Option<Trace>,
    }
    #[derive(serde::Deserialize)]
    struct Trace {
        stream_status: Option<Status>,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        status: Option<String>,
    }
    text.contains("STREAM_STATUS")
        && serde_json::from_str::<Message>(text)
            .is_ok_and(|m| m.trace.and_then(|t| t.stream_status).and_then(|s| s.status).as_deref() == Some("COMPLETE"))
}

/// The chunk as text, checked as UTF-8 once (later stages borrow `&str` from it). A line that is not valid UTF-8
/// is blanked, its length kept so offsets hold, and what is wrong with it returned by the offset it starts at.
fn text_of(chunk: Vec<u8>) -> (String, Vec<(usize, String)>) {
    let mut bytes = match String::from_utf8(chunk) {
        Ok(text) => return (text, Vec::new()),
        Err(e) => e.into_bytes(),
    };
    let (mut bad, mut from) = (Vec::new(), 0);
    while let Err(e) = std::str::from_utf8(&bytes[from..]) {
        let at = from + e.valid_up_to();
        let start = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let line = bytes[start..end].trim_ascii_end();
        bad.push((start, format!("not valid UTF-8 (at byte {}): {}", at - start, excerpt(line))));
        bytes[start..end].fill(b' ');
        from = end;
    }
    (String::from_utf8(bytes).expect("every bad line blanked"), bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parser() -> Parser {
        let catalog = json!({"streams": [{"name": "a"}, {"name": "b", "namespace": "n"}]});
        Parser::new(Arc::new(Catalog::from_value(&catalog, "{stream}", None).unwrap()))
    }

    #[test]
    fn items_point_into_the_chunk_in_order() {
        let text = concat!(
            "{\"type\":\"RECORD\",\"record\":{\"stream\":\"a\",\"emitted_at\":5,\"data\":{\"x\": 1}}}\r\n",
            "\n",
            "{\"type\":\"LOG\",\"log\":{\"level\":\"INFO\",\"message\":\"m\"}}\n",
            "{\"type\":\"STATE\",\"state\":{\"data\":{}}}\n",
            "{\"type\":\"RECORD\",\"record\":{\"stream\":\"b\",\"namespace\":\"n\",\"data\":[1]}}",
        );
        let parsed = parser().parse(Block::Lines(text.as_bytes().to_vec()));
        let chunk = &parsed.chunk;
        match &parsed.items[..] {
            [Item::Record { stream: 0, emitted_at: Some(5), data: d1, meta: None, partition: None, line: 1 }, Item::State { counted: Counted::Global, state }, Item::Record { stream: 1, emitted_at: None, data: d2, meta: None, partition: None, line: 5 }] =>
            {
                assert_eq!(&chunk[d1.clone()], "{\"x\": 1}");
                assert_eq!(
                    state.render(1, None),
                    "{\"type\":\"STATE\",\"state\":{\"data\":{},\"destinationStats\":{\"recordCount\":1.0}}}"
                );
                assert_eq!(&chunk[d2.clone()], "[1]");
            }
            _ => panic!("unexpected items"),
        }
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_own_line() {
        let mut chunk = b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"a\",\"data\":{}}}\n".to_vec();
        chunk.extend_from_slice(b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"a\",\"data\":{\"x\":\"\xff\"}}}\n");
        let parsed = parser().parse(Block::Lines(chunk));
        assert!(matches!(parsed.items[0], Item::Record { stream: 0, .. }));
        match &parsed.items[1] {
            Item::Failure(e) => assert!(e.to_string().starts_with("input line 2:"), "{e}"),
            _ => panic!("invalid UTF-8 was accepted"),
        }
    }

    #[test]
    fn lone_surrogates_pass_through_in_data_and_fail_in_the_fields_read() {
        // JSON's grammar allows `"\ud83d"` alone; Rust strings cannot hold it. Data is passed through as written
        // (Jackson and Python read such strings too); a stream name must be decoded, so there it fails the line.
        let text = concat!(
            r#"{"type":"RECORD","record":{"stream":"a","data":{"s":"\ud83d!"}}}"#,
            "\n",
            r#"{"type":"RECORD","record":{"stream":"a\ud83d","data":{}}}"#,
            "\n",
        );
        let parsed = parser().parse(Block::Lines(text.as_bytes().to_vec()));
        match &parsed.items[..] {
            [Item::Record { data, line: 1, .. }, Item::Failure(e)] => {
                assert_eq!(&parsed.chunk[data.clone()], r#"{"s":"\ud83d!"}"#);
                assert!(e.to_string().starts_with("input line 2:"), "{e}");
            }
            _ => panic!("unexpected items"),
        }
    }

    #[test]
    fn a_socket_source_reports_streams_complete() {
        let catalog = Arc::new(Catalog::from_value(&json!({"streams": [{"name": "a"}]}), "{stream}", None).unwrap());
        let text = concat!(
            r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","stream_status":{"status":"COMPLETE"}}}"#,
            "\n",
            r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","stream_status":{"status":"RUNNING"}}}"#,
            "\n",
        );
        let parsed =
            Parser::of_source(Arc::clone(&catalog), "socket s", 0).parse(Block::Lines(text.as_bytes().to_vec()));
        assert!(matches!(&parsed.items[..], [Item::StreamComplete]));
        let on_stdin = Parser::new(catalog).parse(Block::Lines(text.as_bytes().to_vec()));
        assert!(on_stdin.items.is_empty(), "stdin is read as before");
    }

    #[test]
    fn failures_carry_the_line_number() {
        let mut p = parser();
        let first =
            p.parse(Block::Lines(b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"a\",\"data\":{}}}\n".to_vec()));
        assert_eq!(first.items.len(), 1);
        let second = p.parse(Block::Lines(
            b"\nnot json\n{\"type\":\"RECORD\",\"record\":{\"stream\":\"zz\",\"data\":{}}}\n".to_vec(),
        ));
        let messages: Vec<String> = second
            .items
            .iter()
            .map(|i| match i {
                Item::Failure(e) => e.to_string(),
                _ => String::new(),
            })
            .collect();
        assert!(messages[0].starts_with("input line 3:") && messages[0].contains("not json"), "{}", messages[0]);
        assert!(messages[1].starts_with("input line 4:") && messages[1].contains("`zz`"), "{}", messages[1]);
    }
}
