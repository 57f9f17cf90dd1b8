//! A property test of the parse stage, run as a bounded fuzzer: any bytes as input never panic, never lose a
//! record silently, and give, line by line, exactly what an independent reading (serde_json `Value`s) of the
//! same line says: the record with the same data, a state, nothing (a message type to ignore), or a failure
//! naming that line.
//!
//! `cargo test` runs a few hundred cases; `PARSE_FUZZ_SECONDS=60` runs for that long (scripts/test does).
//! Seeds: `tests/fuzz/parse-corpus.jsonl`; failures found are kept in `tests/fuzz/parse.proptest-regressions`
//! and replayed first.

use super::parse::{Item, Parser};
use crate::airbyte::catalog::Catalog;
use crate::airbyte::message::Message;
use crate::airbyte::state::Counted;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CORPUS: &str = include_str!("../../tests/fuzz/parse-corpus.jsonl");

fn catalog() -> Arc<Catalog> {
    let catalog = json!({"streams": [{"name": "a"}, {"name": "b", "namespace": "n"}]});
    Arc::new(Catalog::from_value(&catalog, "{stream}", None).unwrap())
}

/// What a line must give, read independently.
#[derive(Debug)]
enum Expect {
    Record {
        stream: usize,
        data: Value,
    },
    State,
    Nothing,
    Unknown,
    Failure,
    /// Nested beyond `Value`'s recursion limit: the oracle cannot tell, only "no panic" is checked.
    Unreadable,
    /// Valid JSON by its grammar, with a lone surrogate escape (`"\ud83d"`) that `Value` cannot hold. The parser
    /// passes the parts it keeps raw (data, meta, state) through as written, and fails the line where it decodes
    /// one (type, stream, namespace, keys): so either a failure naming the line, or what the line read with each
    /// lone surrogate replaced by a marker gives (data compared the same way).
    LoneSurrogate(Box<Expect>),
}

/// Each `\uXXXX` escape of a surrogate that is not half of a pair, made an escaped marker no generator writes.
fn mark_lone_surrogates(line: &[u8]) -> Vec<u8> {
    let hex = |at: usize| {
        line.get(at..at + 6)
            .filter(|e| e.starts_with(b"\\u"))
            .and_then(|e| u16::from_str_radix(std::str::from_utf8(&e[2..]).ok()?, 16).ok())
    };
    let (mut out, mut i) = (Vec::with_capacity(line.len()), 0);
    while i < line.len() {
        if line[i] == b'\\' && i + 1 < line.len() {
            match hex(i) {
                Some(0xD800..=0xDBFF) if hex(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) => {
                    out.extend_from_slice(&line[i..i + 12]);
                    i += 12;
                }
                Some(0xD800..=0xDFFF) => {
                    out.extend_from_slice(br"\u0001\u0002");
                    i += 6;
                }
                // Any other escape, kept whole so that `\\` is not read as the start of one.
                _ => {
                    out.extend_from_slice(&line[i..i + 2]);
                    i += 2;
                }
            }
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

fn expect(line: &[u8]) -> Expect {
    let Ok(text) = std::str::from_utf8(line) else { return Expect::Failure };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("recursion limit") => return Expect::Unreadable,
        Err(_) => {
            let marked = mark_lone_surrogates(line);
            return match serde_json::from_slice::<Value>(&marked) {
                Ok(_) if marked != line => Expect::LoneSurrogate(Box::new(expect(&marked))),
                _ => Expect::Failure,
            };
        }
    };
    let Some(message) = value.as_object() else { return Expect::Failure };
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Expect::Failure,
    };
    // A `record` key is read whatever the type, so it must be well formed (or null) on every message.
    let record = match message.get("record") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) if record_fields_ok(r) => Some(r),
        Some(_) => return Expect::Failure,
    };
    match kind {
        "RECORD" => record.map_or(Expect::Failure, route),
        "STATE" => match message.get("state") {
            Some(Value::Object(_)) => Expect::State,
            _ => Expect::Failure,
        },
        "LOG" | "TRACE" | "CONTROL" | "SPEC" | "CONNECTION_STATUS" | "CATALOG" | "DESTINATION_CATALOG" => {
            Expect::Nothing
        }
        k if k.eq_ignore_ascii_case("RECORD") || k.eq_ignore_ascii_case("STATE") => Expect::Failure,
        _ => Expect::Unknown,
    }
}

/// The protocol's types, as leniently as real sources need.
fn record_fields_ok(r: &serde_json::Map<String, Value>) -> bool {
    let string_or_null = |key: &str| matches!(r.get(key), None | Some(Value::Null | Value::String(_)));
    let emitted_at_ok = match r.get("emitted_at") {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64().is_some() || n.as_f64().is_some_and(|f| f.abs() < 9.2e18),
        Some(Value::String(s)) => {
            s.trim().parse::<i64>().is_ok() || s.trim().parse::<f64>().is_ok_and(|f| f.is_finite() && f.abs() < 9.2e18)
        }
        Some(_) => false,
    };
    string_or_null("stream") && string_or_null("namespace") && emitted_at_ok
}

fn route(r: &serde_json::Map<String, Value>) -> Expect {
    let Some(stream) = r.get("stream").and_then(Value::as_str) else { return Expect::Failure };
    let namespace = r.get("namespace").and_then(Value::as_str).filter(|ns| !ns.is_empty());
    let data = match r.get("data") {
        None | Some(Value::Null) => return Expect::Failure,
        Some(data) => data.clone(),
    };
    match (stream, namespace) {
        ("a", None) => Expect::Record { stream: 0, data },
        ("b", Some("n")) => Expect::Record { stream: 1, data },
        _ => Expect::Failure,
    }
}

/// Parses `input` in chunks of whole lines (as the stdin reader hands them over) and checks every line.
fn check(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut parser = Parser::new(catalog());
    let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    if input.last() == Some(&b'\n') {
        lines.pop();
    }
    // Chunk boundaries at line ends.
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (lines.len() + 1)).collect();
    bounds.push(lines.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut first = 0;
    let mut line_no = 0u64;
    for end in bounds {
        let chunk_lines = &lines[first..end];
        first = end;
        if chunk_lines.is_empty() {
            continue;
        }
        let mut chunk = chunk_lines.join(&b'\n');
        chunk.push(b'\n');
        let parsed = parser.parse(super::parse::Block::Lines(chunk));
        let mut items = parsed.items.iter().peekable();
        for line in chunk_lines {
            line_no += 1;
            let line = line.trim_ascii_end();
            if line.is_empty() {
                continue;
            }
            fast_reading_agrees(line)?;
            let names_this_line = |item: &&Item| match item {
                Item::Failure(e) => e.to_string().starts_with(&format!("input line {line_no}:")),
                _ => false,
            };
            let expected = match expect(line) {
                Expect::LoneSurrogate(_) if items.peek().is_some_and(names_this_line) => {
                    items.next();
                    continue;
                }
                Expect::LoneSurrogate(otherwise) => *otherwise,
                expected => expected,
            };
            let item = match expected {
                Expect::Nothing => continue,
                _ => items.next(),
            };
            let Some(item) = item else {
                return Err(TestCaseError::fail(format!("line {line_no} gave no item, expected {expected:?}")));
            };
            match (&expected, item) {
                (Expect::Record { stream, data }, Item::Record { stream: got, data: range, line, .. }) => {
                    prop_assert_eq!(*line, line_no);
                    prop_assert_eq!(got, stream);
                    let got: Value =
                        serde_json::from_slice(&mark_lone_surrogates(parsed.chunk[range.clone()].as_bytes())).unwrap();
                    prop_assert_eq!(&got, data, "line {} re-serialises differently", line_no);
                }
                (Expect::State, Item::State { counted, .. }) => {
                    prop_assert!(matches!(counted, Counted::Global | Counted::Stream(_)))
                }
                (Expect::Unknown, Item::Unknown { line, .. }) => prop_assert_eq!(*line, line_no),
                (Expect::Failure, Item::Failure(e)) => {
                    let said = e.to_string();
                    prop_assert!(said.starts_with(&format!("input line {line_no}:")), "{}", said);
                }
                (Expect::Unreadable, _) => {}
                (expected, _) => {
                    return Err(TestCaseError::fail(format!("line {line_no}: expected {expected:?}, got another item")))
                }
            }
        }
        prop_assert!(items.next().is_none(), "more items than lines");
    }
    Ok(())
}

/// The one-pass scan, wherever it reads a line, reads exactly what the reference reading (serde_json) does.
fn fast_reading_agrees(line: &[u8]) -> Result<(), TestCaseError> {
    let Ok(text) = std::str::from_utf8(line) else { return Ok(()) };
    if let Some(fast) = Message::scan(text) {
        let reference = Message::read(text).map_err(|e| e.0);
        prop_assert_eq!(format!("{:?}", Ok::<_, String>(fast)), format!("{reference:?}"), "{}", text);
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A line that is, or nearly is, an Airbyte message.
fn message_line() -> impl Strategy<Value = Vec<u8>> {
    let stream = prop_oneof![Just(json!("a")), Just(json!("b")), Just(json!("zz")), Just(json!(null)), Just(json!(3))];
    let namespace = prop_oneof![Just(None), Just(Some(json!("n"))), Just(Some(json!(""))), Just(Some(json!(null)))];
    let emitted_at = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|n| Some(json!(n))),
        any::<i64>().prop_map(|n| Some(json!(n.to_string()))),
        Just(Some(json!(1.7e300))),
        Just(Some(json!("soon"))),
    ];
    let kind = prop_oneof![
        Just(json!("RECORD")),
        Just(json!("STATE")),
        Just(json!("LOG")),
        Just(json!("record")),
        Just(json!("FUTURE")),
        Just(json!(null))
    ];
    (kind, stream, namespace, emitted_at, json_value(), json_value()).prop_map(|(kind, stream, ns, at, data, state)| {
        let mut record = json!({"stream": stream, "data": data});
        if let Some(ns) = ns {
            record["namespace"] = ns;
        }
        if let Some(at) = at {
            record["emitted_at"] = at;
        }
        json!({"type": kind, "record": record, "state": state}).to_string().into_bytes()
    })
}

fn corpus_line() -> impl Strategy<Value = Vec<u8>> {
    let lines: Vec<Vec<u8>> = CORPUS.lines().map(|l| l.as_bytes().to_vec()).collect();
    prop::sample::select(lines)
}

/// Damage: a byte replaced by, or a snippet inserted (NUL, quotes, brackets, invalid UTF-8, whitespace, broken
/// escapes, numbers and literals), or a cut. (No digits or `e`: those can make a number too big for `Value`, which
/// then refuses a line the parser rightly carries as raw data.)
fn mutated(line: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    const SNIPPETS: [&[u8]; 19] = [
        b"\0", b"\"", b"{", b"]", b",", b"\xff", b"\xc3", b"\r", b" ", b"\t", b"\\", b"\\x", b"\\u00", b"\\u00e9",
        b"-", b".", b"[1,]", b"tru", b"null",
    ];
    let edit = (any::<prop::sample::Index>(), prop::sample::select(SNIPPETS.to_vec()), 0..3u8);
    (line, prop::collection::vec(edit, 0..4)).prop_map(|(mut line, edits)| {
        for (at, snippet, how) in edits {
            if line.is_empty() {
                break;
            }
            let i = at.index(line.len());
            match how {
                0 => drop(line.splice(i..i + 1, snippet.iter().copied())),
                1 => drop(line.splice(i..i, snippet.iter().copied())),
                _ => line.truncate(i),
            }
        }
        line.retain(|b| *b != b'\n');
        line
    })
}

fn input() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let line = prop_oneof![
        4 => message_line(),
        3 => corpus_line(),
        3 => mutated(prop_oneof![message_line(), corpus_line()]),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| { b.retain(|c| *c != b'\n'); b }),
        1 => Just(Vec::new()),
    ];
    let lines = prop::collection::vec((line, any::<bool>()), 1..12).prop_map(|lines| {
        let mut input = Vec::new();
        for (line, crlf) in lines {
            input.extend_from_slice(&line);
            input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        input
    });
    (lines, prop::collection::vec(any::<usize>(), 0..3))
}

#[test]
fn any_input_gives_records_states_or_failures_naming_the_line() {
    let budget = std::env::var("PARSE_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
    let config = Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz/parse.proptest-regressions"
        )))),
        ..Config::default()
    };
    let deadline = Instant::now() + Duration::from_secs(budget.unwrap_or(0));
    let mut rounds = 0u64;
    loop {
        let mut runner = TestRunner::new(config.clone());
        if let Err(e) = runner.run(&input(), |(input, cuts)| check(&input, &cuts)) {
            panic!("{e}");
        }
        rounds += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    if budget.is_some() {
        eprintln!("parse fuzz: {} cases in {:?}", rounds * u64::from(config.cases), budget.map(Duration::from_secs));
    }
}

#[test]
fn lone_surrogates_as_the_fuzzer_found_them() {
    let input = concat!(
        r#"{"type":"{ECORD","record":{"stream":"a\u0000b","data":{"s":"\ud83d{ude00 \u2028"}}}"#,
        "\n",
        r#"{"type":"RECORD","record":{"stream":"a","data":{"s":"\ud83d{ude00","t":"\ud83d\ude00"}}}"#,
        "\n",
        r#"{"type":"RECORD","record":{"stream":"a\udc00","data":{}}}"#,
        "\n",
    );
    check(input.as_bytes(), &[]).unwrap();
}
