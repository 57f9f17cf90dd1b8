//! Airbyte messages: the lenient, zero-copy reading of input lines and the writing of our own messages.
//!
//! Input lines are parsed only as far as routing needs: a RECORD's `data` stays borrowed raw JSON, a STATE
//! stays the original text, so what we echo or produce is exactly what we were given.

use crate::error::FailureType;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;

/// One input line, as far as the destination cares.
#[derive(Debug)]
pub enum Message<'a> {
    Record(Record<'a>),
    State(&'a RawValue),
    /// LOG, TRACE, CONTROL and anything else a source or a platform forwards: not ours to act on.
    Other,
}

#[derive(Debug)]
pub struct Record<'a> {
    pub stream: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    /// Epoch milliseconds; `None` when the source left it out.
    pub emitted_at: Option<i64>,
    pub data: &'a RawValue,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<RawRecord<'a>>,
    #[serde(borrow)]
    state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    emitted_at: Option<serde_json::Number>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Why a line could not be used. The caller adds the line number and an excerpt.
#[derive(Debug, PartialEq)]
pub struct ParseError(pub String);

impl<'a> Message<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Message::from_line(serde_json::from_slice(line))
    }

    /// The same, for text already checked as UTF-8: serde_json then skips checking each string again.
    pub fn parse_str(line: &'a str) -> Result<Message<'a>, ParseError> {
        Message::from_line(serde_json::from_str(line))
    }

    fn from_line(line: serde_json::Result<Line<'a>>) -> Result<Message<'a>, ParseError> {
        let line = line.map_err(|e| ParseError(format!("not an Airbyte message: {e}")))?;
        match line.kind.as_deref() {
            Some("RECORD") => {
                let record = line.record.ok_or_else(|| ParseError("RECORD message without `record`".into()))?;
                let stream = record.stream.ok_or_else(|| ParseError("RECORD without `stream`".into()))?;
                let data = record.data.filter(|d| d.get() != "null");
                let data = data.ok_or_else(|| ParseError(format!("RECORD of stream `{stream}` without `data`")))?;
                Ok(Message::Record(Record {
                    namespace: record.namespace.filter(|n| !n.is_empty()),
                    emitted_at: record.emitted_at.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
                    stream,
                    data,
                }))
            }
            Some("STATE") => {
                line.state.map(Message::State).ok_or_else(|| ParseError("STATE message without `state`".into()))
            }
            _ => Ok(Message::Other),
        }
    }
}

/// A short, safe excerpt of an input line for error messages.
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(line);
    let mut cut: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        cut.push('…');
    }
    cut
}

/// What a STATE checkpoints: everything (LEGACY, GLOBAL) or one stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Stream { name: String, namespace: Option<String> },
}

/// A STATE's top-level entries, kept as raw text with their positions. Duplicate keys (PyAirbyte sends
/// `global_` twice) are kept as they are, never an error.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    entries.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// A STATE ready to be echoed: its scope, and the output line with `destinationStats` filled in.
pub struct StateEcho<'a> {
    line: &'a str,
    state: &'a RawValue,
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> StateEcho<'a> {
    pub fn parse(line: &'a str, state: &'a RawValue) -> Result<StateEcho<'a>, ParseError> {
        let entries = serde_json::from_str::<Entries>(state.get())
            .map_err(|e| ParseError(format!("STATE whose `state` is not an object: {e}")))?
            .0;
        Ok(StateEcho { line, state, entries })
    }

    fn entry(&self, key: &str) -> Option<&'a RawValue> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub fn scope(&self) -> Scope {
        let kind = self.entry("type").and_then(|t| serde_json::from_str::<Option<String>>(t.get()).ok().flatten());
        if kind.as_deref() != Some("STREAM") {
            return Scope::Global;
        }
        let stream: Value = self.entry("stream").and_then(|s| serde_json::from_str(s.get()).ok()).unwrap_or_default();
        let descriptor = &stream["stream_descriptor"];
        Scope::Stream {
            name: descriptor["name"].as_str().unwrap_or_default().to_string(),
            namespace: descriptor["namespace"].as_str().filter(|n| !n.is_empty()).map(str::to_string),
        }
    }

    /// The original line, byte for byte, except that the state's `destinationStats` says `record_count`.
    pub fn render(&self, record_count: u64) -> String {
        let stats = format!("{{\"recordCount\":{record_count}.0}}");
        let state_text = self.state.get();
        let offset = |raw: &RawValue| raw.get().as_ptr() as usize - state_text.as_ptr() as usize;
        let mut state = String::with_capacity(state_text.len() + 40);
        let existing: Vec<_> = self.entries.iter().filter(|(k, _)| k == "destinationStats").map(|(_, v)| *v).collect();
        if existing.is_empty() {
            let close = state_text.rfind('}').unwrap_or(state_text.len());
            state.push_str(&state_text[..close]);
            if !self.entries.is_empty() {
                state.push(',');
            }
            state.push_str("\"destinationStats\":");
            state.push_str(&stats);
            state.push_str(&state_text[close..]);
        } else {
            let mut at = 0;
            for value in existing {
                let start = offset(value);
                state.push_str(&state_text[at..start]);
                state.push_str(&stats);
                at = start + value.get().len();
            }
            state.push_str(&state_text[at..]);
        }
        let start = state_text.as_ptr() as usize - self.line.as_ptr() as usize;
        let mut out = String::with_capacity(self.line.len() + 40);
        out.push_str(&self.line[..start]);
        out.push_str(&state);
        out.push_str(&self.line[start + state_text.len()..]);
        out
    }
}

/// Now, in epoch milliseconds: the protocol's unit for `emitted_at`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn spec_message(spec: &Value) -> String {
    json!({"type": "SPEC", "spec": spec}).to_string()
}

pub fn connection_status(result: Result<(), String>) -> String {
    let status = match result {
        Ok(()) => json!({"status": "SUCCEEDED"}),
        Err(message) => json!({"status": "FAILED", "message": message}),
    };
    json!({"type": "CONNECTION_STATUS", "connectionStatus": status}).to_string()
}

pub fn trace_error(failure_type: FailureType, message: &str) -> String {
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_ms(), "error": {
        "message": message,
        "internal_message": message,
        "failure_type": failure_type,
    }}})
    .to_string()
}

pub fn log(level: &str, message: &str) -> String {
    json!({"type": "LOG", "log": {"level": level, "message": message}}).to_string()
}

pub fn destination_catalog(operations: Vec<Value>) -> String {
    json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": operations}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(line: &str) -> StateEcho<'_> {
        let raw = match Message::parse(line.as_bytes()).unwrap() {
            Message::State(raw) => raw,
            _ => panic!("not a state"),
        };
        StateEcho::parse(line, raw).unwrap()
    }

    #[test]
    fn record_keeps_data_verbatim() {
        let line = br#"{"type": "RECORD", "record": {"stream": "s", "emitted_at": 1602637589000, "data": { "x" : 1e3, "b": 1.10 }}}"#;
        let Message::Record(r) = Message::parse(line).unwrap() else { panic!() };
        assert_eq!(r.stream, "s");
        assert_eq!(r.emitted_at, Some(1602637589000));
        assert_eq!(r.data.get(), r#"{ "x" : 1e3, "b": 1.10 }"#);
        assert!(r.namespace.is_none());
    }

    #[test]
    fn pyairbyte_shaped_lines() {
        let line = br#"{"type":"RECORD","log":null,"spec":null,"connectionStatus":null,"catalog":null,"record":{"namespace":null,"stream":"users","data":{"id":1},"emitted_at":1700000000,"meta":null,"file_reference":null},"state":null,"trace":null,"control":null}"#;
        let Message::Record(r) = Message::parse(line).unwrap() else { panic!() };
        assert_eq!((r.stream.as_ref(), r.emitted_at), ("users", Some(1700000000)));
        let trace = br#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0},"record":null}"#;
        assert!(matches!(Message::parse(trace).unwrap(), Message::Other));
        assert!(matches!(
            Message::parse(br#"{"type":"LOG","log":{"level":"INFO","message":"m"}}"#).unwrap(),
            Message::Other
        ));
    }

    #[test]
    fn escaped_stream_names_are_decoded() {
        let line = br#"{"type":"RECORD","record":{"stream":"a\"b\u00e9","data":{}}}"#;
        let Message::Record(r) = Message::parse(line).unwrap() else { panic!() };
        assert_eq!(r.stream, "a\"bé");
        assert_eq!(r.emitted_at, None);
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(Message::parse(b"not json").unwrap_err().0.contains("not an Airbyte message"));
        assert!(Message::parse(br#"{"type":"RECORD","record":{"data":{}}}"#).unwrap_err().0.contains("`stream`"));
        assert!(Message::parse(br#"{"type":"RECORD","record":{"stream":"s","data":null}}"#)
            .unwrap_err()
            .0
            .contains("`data`"));
        assert!(Message::parse(br#"{"type":"RECORD"}"#).unwrap_err().0.contains("`record`"));
    }

    #[test]
    fn legacy_state_gets_stats_and_keeps_everything_else() {
        let line = r#"{"type": "STATE", "state": { "data": {"start_date": "2020-08-31"}}, "x": 1}"#;
        let s = state_of(line);
        assert_eq!(s.scope(), Scope::Global);
        assert_eq!(
            s.render(3),
            r#"{"type": "STATE", "state": { "data": {"start_date": "2020-08-31"},"destinationStats":{"recordCount":3.0}}, "x": 1}"#
        );
    }

    #[test]
    fn existing_stats_are_replaced_and_ids_kept() {
        let line = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"ns"},"stream_state":{"c":1}},"sourceStats":{"recordCount":2.0},"destinationStats":{"recordCount":99.0},"id":7,"unknown":[1]}}"#;
        let s = state_of(line);
        assert_eq!(s.scope(), Scope::Stream { name: "users".into(), namespace: Some("ns".into()) });
        let out = s.render(2);
        assert_eq!(
            out,
            line.replace(r#""destinationStats":{"recordCount":99.0}"#, r#""destinationStats":{"recordCount":2.0}"#)
        );
    }

    #[test]
    fn global_state_with_duplicate_keys_and_empty_state() {
        let line = r#"{"type":"STATE","state":{"type":"GLOBAL","global_":{"shared_state":{}},"global_":{"shared_state":{"a":1}},"id":1}}"#;
        let s = state_of(line);
        assert_eq!(s.scope(), Scope::Global);
        assert!(s.render(5).ends_with(r#""id":1,"destinationStats":{"recordCount":5.0}}}"#));
        let empty = r#"{"type":"STATE","state":{ }}"#;
        assert_eq!(state_of(empty).render(0), r#"{"type":"STATE","state":{ "destinationStats":{"recordCount":0.0}}}"#);
    }

    #[test]
    fn excerpt_is_truncated_on_char_boundaries() {
        let long = "é".repeat(500);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), 121);
        assert!(e.ends_with('…'));
    }
}
