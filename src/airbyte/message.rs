//! Input lines: the lenient, zero-copy reading of the Airbyte messages a destination receives.
//!
//! Lines are parsed only as far as routing needs: a RECORD's `data` stays borrowed raw JSON, a STATE stays the
//! original text, so what we echo or produce is exactly what we were given.

use serde::Deserialize;
use serde_json::value::RawValue;
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
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
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

/// Now, in epoch milliseconds: the protocol's unit for `emitted_at`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn excerpt_is_truncated_on_char_boundaries() {
        let long = "é".repeat(500);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), 121);
        assert!(e.ends_with('…'));
    }
}
