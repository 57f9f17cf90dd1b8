//! Input lines: the lenient, zero-copy reading of the Airbyte messages a destination receives.
//!
//! Lines are parsed only as far as routing needs: a RECORD's `data` stays borrowed raw JSON, a STATE stays the
//! original text, so what we echo or produce is exactly what we were given. Lenient where real clients need it
//! (`null` for absent keys, unknown keys, `global_`), strict where leniency would lose a record: a line must be
//! a JSON object with a `type`, and a RECORD must have `stream` and `data`.

use super::scan::Scanner;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// One input line, as far as the destination cares.
#[derive(Debug)]
pub enum Message<'a> {
    Record(Record<'a>),
    State(&'a RawValue),
    /// LOG, TRACE, CONTROL and the other types a source or a platform forwards: not ours to act on.
    Other,
    /// A `type` this protocol version does not define: ignored for forward compatibility, but counted and logged.
    Unknown(String),
}

#[derive(Debug)]
pub struct Record<'a> {
    pub stream: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    /// Epoch milliseconds; `None` when the source left it out.
    pub emitted_at: Option<i64>,
    /// The record's `data`, as written.
    pub data: &'a str,
    /// `meta` (changes the source made to the record), as written.
    pub meta: Option<&'a str>,
    /// Speed Mode: the source's partition the record counts in (see `write::partitions`).
    pub partition: Option<Cow<'a, str>>,
}

/// The message types of the Airbyte protocol that a destination may see and ignore.
const IGNORED_TYPES: [&str; 7] =
    ["LOG", "TRACE", "CONTROL", "SPEC", "CONNECTION_STATUS", "CATALOG", "DESTINATION_CATALOG"];

struct Line<'a> {
    kind: Option<Cow<'a, str>>,
    record: Option<RawRecord<'a>>,
    state: Option<&'a RawValue>,
}

struct RawRecord<'a> {
    stream: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    emitted_at: Option<EmittedAt>,
    data: Option<&'a RawValue>,
    meta: Option<&'a RawValue>,
    partition: Option<Cow<'a, str>>,
}

/// `emitted_at` as real sources send it: a number (integer or not) or a numeric string, in range.
struct EmittedAt(i64);

/// Why a line could not be used. The caller adds the line number and an excerpt.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl<'a> Message<'a> {
    /// Takes text already checked as UTF-8. A RECORD (or a message to ignore) in the shape sources write is read
    /// in one pass by [`Message::scan`]; anything else, and every error, by [`Message::read`].
    pub fn parse(line: &'a str) -> Result<Message<'a>, ParseError> {
        match Message::scan(line) {
            Some(message) => Ok(message),
            None => Message::read(line),
        }
    }

    /// The fast reading: the JSON checked and the routing fields picked out in one pass, nothing built. `None`
    /// for whatever it does not read this way (a STATE, an escaped key or string, an `emitted_at` that is not a
    /// plain integer, any error); the reference reading then gives the answer.
    pub fn scan(line: &'a str) -> Option<Message<'a>> {
        let mut scanner = Scanner::new(line);
        let (mut kind, mut record) = (None, None);
        scanner.object(|s, key| {
            match key {
                "type" => kind = s.plain_string_or_null()?,
                "record" => record = if s.null() { None } else { Some(scan_record(s)?) },
                _ => drop(s.value()?),
            }
            Some(())
        })?;
        scanner.end()?;
        match kind? {
            "RECORD" => {
                let record = record?;
                Some(Message::Record(Record {
                    stream: Cow::Borrowed(record.stream?),
                    namespace: record.namespace.filter(|n| !n.is_empty()).map(Cow::Borrowed),
                    emitted_at: record.emitted_at,
                    data: record.data?,
                    meta: record.meta,
                    partition: record.partition.map(Cow::Borrowed),
                }))
            }
            kind if IGNORED_TYPES.contains(&kind) => Some(Message::Other),
            _ => None,
        }
    }

    /// The reference reading, with serde_json: every shape the protocol allows, and the error messages.
    pub fn read(line: &'a str) -> Result<Message<'a>, ParseError> {
        let line: Line = serde_json::from_str(line).map_err(|e| ParseError(format!("not an Airbyte message: {e}")))?;
        let kind = line.kind.ok_or_else(|| ParseError("not an Airbyte message: no `type`".into()))?;
        match kind.as_ref() {
            "RECORD" => {
                let record = line.record.ok_or_else(|| ParseError("RECORD message without `record`".into()))?;
                let stream = record.stream.ok_or_else(|| ParseError("RECORD without `stream`".into()))?;
                let data = record.data.filter(|d| d.get() != "null");
                let data = data.ok_or_else(|| ParseError(format!("RECORD of stream `{stream}` without `data`")))?;
                Ok(Message::Record(Record {
                    namespace: record.namespace.filter(|n| !n.is_empty()),
                    emitted_at: record.emitted_at.map(|e| e.0),
                    stream,
                    data: data.get(),
                    meta: record.meta.map(RawValue::get),
                    partition: record.partition,
                }))
            }
            "STATE" => line.state.map(Message::State).ok_or_else(|| ParseError("STATE message without `state`".into())),
            known if IGNORED_TYPES.contains(&known) => Ok(Message::Other),
            // A record or state in the wrong case is a broken message, not a new type: dropping it would lose data.
            other if other.eq_ignore_ascii_case("RECORD") || other.eq_ignore_ascii_case("STATE") => Err(ParseError(
                format!("`type` is `{other}`: Airbyte message types are upper case (`{}`)", other.to_uppercase()),
            )),
            other => Ok(Message::Unknown(other.to_string())),
        }
    }
}

/// What [`Message::scan`] found in `record` (a null is no value, as when serde reads an `Option`).
#[derive(Default)]
struct Scanned<'a> {
    stream: Option<&'a str>,
    namespace: Option<&'a str>,
    emitted_at: Option<i64>,
    data: Option<&'a str>,
    meta: Option<&'a str>,
    partition: Option<&'a str>,
}

fn scan_record<'a>(scanner: &mut Scanner<'a>) -> Option<Scanned<'a>> {
    let mut record = Scanned::default();
    scanner.object(|s, key| {
        match key {
            "stream" => record.stream = s.plain_string_or_null()?,
            "namespace" => record.namespace = s.plain_string_or_null()?,
            "emitted_at" => record.emitted_at = s.integer_or_null()?,
            "data" => record.data = Some(s.value()?).filter(|d| *d != "null"),
            "meta" => record.meta = Some(s.value()?).filter(|m| *m != "null"),
            "partition_id" => record.partition = s.plain_string_or_null()?,
            _ => drop(s.value()?),
        }
        Some(())
    })?;
    Some(record)
}

/// Field names of the two objects we read; everything else is skipped without being parsed into values.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum LineField {
    Type,
    Record,
    State,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RecordField {
    Stream,
    Namespace,
    EmittedAt,
    Data,
    Meta,
    PartitionId,
    #[serde(other)]
    Other,
}

/// Objects only: serde's derived structs would also take a JSON array (`["RECORD", {...}]`) by position.
impl<'de: 'a, 'a> Deserialize<'de> for Line<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Line<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Line<'a>, M::Error> {
                let mut line = Line { kind: None, record: None, state: None };
                while let Some(field) = map.next_key()? {
                    match field {
                        LineField::Type => line.kind = map.next_value::<Option<Borrowed>>()?.map(|b| b.0),
                        LineField::Record => line.record = map.next_value()?,
                        LineField::State => line.state = map.next_value()?,
                        LineField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(line)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawRecord<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawRecord<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<RawRecord<'a>, M::Error> {
                let mut record = RawRecord {
                    stream: None,
                    namespace: None,
                    emitted_at: None,
                    data: None,
                    meta: None,
                    partition: None,
                };
                while let Some(field) = map.next_key()? {
                    match field {
                        RecordField::Stream => record.stream = map.next_value::<Option<Borrowed>>()?.map(|b| b.0),
                        RecordField::Namespace => record.namespace = map.next_value::<Option<Borrowed>>()?.map(|b| b.0),
                        RecordField::EmittedAt => record.emitted_at = map.next_value()?,
                        RecordField::Data => record.data = map.next_value()?,
                        RecordField::Meta => record.meta = map.next_value()?,
                        RecordField::PartitionId => {
                            record.partition = map.next_value::<Option<Borrowed>>()?.map(|b| b.0)
                        }
                        RecordField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(record)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the line when it has no escapes.
struct Borrowed<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct B<'a>(#[serde(borrow)] Cow<'a, str>);
        B::deserialize(d).map(|b| Borrowed(b.0))
    }
}

impl<'de> Deserialize<'de> for EmittedAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Number(serde_json::Number),
            Text(#[serde(borrow)] Cow<'a, str>),
        }
        let (number, text) = match Raw::deserialize(d)? {
            Raw::Number(n) => (n.as_i64().map(Ok).or_else(|| n.as_f64().map(Err)), n.to_string()),
            Raw::Text(t) => {
                let s = t.trim();
                (s.parse::<i64>().map(Ok).ok().or_else(|| s.parse::<f64>().ok().map(Err)), format!("\"{t}\""))
            }
        };
        match number {
            Some(Ok(ms)) => Ok(EmittedAt(ms)),
            // Whole milliseconds; a fraction is dropped, a value beyond what 64 bits hold is refused.
            Some(Err(f)) => crate::number::truncate_to_i64(f).map(EmittedAt).ok_or_else(|| {
                de::Error::custom(format!("`emitted_at` {text} is out of range for epoch milliseconds"))
            }),
            None => Err(de::Error::custom(format!("`emitted_at` {text} is not a number of epoch milliseconds"))),
        }
    }
}

/// What the beginning of a line too long to hold says about it, as far as it goes: its `type` and, for a RECORD,
/// its `stream`, `namespace` and `emitted_at` (sources write them before `data`; whatever comes after the cut is
/// unknown).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub kind: Option<String>,
    pub stream: Option<String>,
    pub namespace: Option<String>,
    pub emitted_at: Option<i64>,
}

impl Head {
    pub fn read(prefix: &[u8]) -> Head {
        let head = std::cell::RefCell::new(Head::default());
        let mut de = serde_json::Deserializer::from_slice(prefix);
        // The cut ends the JSON early: the error is expected; what was read before it is kept.
        let _ = de::DeserializeSeed::deserialize(HeadSeed { head: &head, record: false }, &mut de);
        head.into_inner()
    }

    pub fn is_record(prefix: &[u8]) -> bool {
        Head::read(prefix).kind.as_deref() == Some("RECORD")
    }
}

/// Reads an object's keys in order, noting the ones of [`Head`] as they come.
struct HeadSeed<'h> {
    head: &'h std::cell::RefCell<Head>,
    /// Inside `record`.
    record: bool,
}

impl<'de> de::DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeadSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let head = self.head;
            match (self.record, key.as_ref()) {
                (false, "type") => head.borrow_mut().kind = map.next_value::<Option<String>>()?,
                (false, "record") => map.next_value_seed(HeadSeed { head, record: true })?,
                (true, "stream") => head.borrow_mut().stream = map.next_value::<Option<String>>()?,
                (true, "namespace") => head.borrow_mut().namespace = map.next_value::<Option<String>>()?,
                (true, "emitted_at") => {
                    head.borrow_mut().emitted_at = map.next_value::<Option<EmittedAt>>()?.map(|e| e.0)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
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

    fn record(line: &str) -> Record<'_> {
        match Message::parse(line) {
            Ok(Message::Record(r)) => r,
            other => panic!("not a record: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        Message::parse(line).unwrap_err().0
    }

    #[test]
    fn record_keeps_data_verbatim() {
        let r = record(
            r#"{"type": "RECORD", "record": {"stream": "s", "emitted_at": 1602637589000, "data": { "x" : 1e3, "b": 1.10 }}}"#,
        );
        assert_eq!(r.stream, "s");
        assert_eq!(r.emitted_at, Some(1602637589000));
        assert_eq!(r.data, r#"{ "x" : 1e3, "b": 1.10 }"#);
        assert!(r.namespace.is_none());
    }

    #[test]
    fn pyairbyte_shaped_lines() {
        let r = record(
            r#"{"type":"RECORD","log":null,"spec":null,"connectionStatus":null,"catalog":null,"record":{"namespace":null,"stream":"users","data":{"id":1},"emitted_at":1700000000,"meta":null,"file_reference":null},"state":null,"trace":null,"control":null}"#,
        );
        assert_eq!((r.stream.as_ref(), r.emitted_at), ("users", Some(1700000000)));
        let trace = r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0},"record":null}"#;
        assert!(matches!(Message::parse(trace).unwrap(), Message::Other));
        assert!(matches!(
            Message::parse(r#"{"type":"LOG","log":{"level":"INFO","message":"m"}}"#).unwrap(),
            Message::Other
        ));
    }

    #[test]
    fn escaped_stream_names_are_decoded() {
        let r = record(r#"{"type":"RECORD","record":{"stream":"a\"b\u00e9","data":{}}}"#);
        assert_eq!(r.stream, "a\"bé");
        assert_eq!(r.emitted_at, None);
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(error("not json").contains("not an Airbyte message"));
        assert!(error(r#"{"type":"RECORD","record":{"data":{}}}"#).contains("`stream`"));
        assert!(error(r#"{"type":"RECORD","record":{"stream":"s","data":null}}"#).contains("`data`"));
        assert!(error(r#"{"type":"RECORD"}"#).contains("`record`"));
    }

    #[test]
    fn type_is_required_and_case_matters() {
        assert!(error(r#"{"record":{"stream":"s","data":{}}}"#).contains("no `type`"));
        assert!(error(r#"{"type":null,"record":{"stream":"s","data":{}}}"#).contains("no `type`"));
        let e = error(r#"{"type":"record","record":{"stream":"s","data":{}}}"#);
        assert!(e.contains("`record`") && e.contains("upper case"), "{e}");
        assert!(error(r#"{"type":"State","state":{}}"#).contains("upper case"));
        match Message::parse(r#"{"type":"FUTURE_THING","future_thing":{}}"#).unwrap() {
            Message::Unknown(kind) => assert_eq!(kind, "FUTURE_THING"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_objects_are_messages() {
        assert!(error(r#"["RECORD",{"stream":"s","data":{}},null]"#).contains("a JSON object"));
        let e = error(r#"{"type":"RECORD","record":["s",null,1,{}]}"#);
        assert!(e.contains("a JSON object"), "{e}");
    }

    #[test]
    fn emitted_at_as_real_sources_send_it() {
        let at = |v: &str| {
            let line = format!(r#"{{"type":"RECORD","record":{{"stream":"s","emitted_at":{v},"data":{{}}}}}}"#);
            Message::parse(&line).map(|m| match m {
                Message::Record(r) => r.emitted_at,
                _ => panic!(),
            })
        };
        assert_eq!(at("1700000000000").unwrap(), Some(1700000000000));
        assert_eq!(at("\"1700000000000\"").unwrap(), Some(1700000000000));
        assert_eq!(at("\" 1700000000000 \"").unwrap(), Some(1700000000000));
        assert_eq!(at("1700000000000.9").unwrap(), Some(1700000000000));
        assert_eq!(at("1.7e12").unwrap(), Some(1700000000000));
        assert_eq!(at("-5").unwrap(), Some(-5));
        assert_eq!(at("null").unwrap(), None);
        let e = at("1.7e300").unwrap_err().0;
        assert!(e.contains("`emitted_at` 1.7e+300 is out of range"), "{e}");
        assert!(at("\"soon\"").unwrap_err().0.contains("not a number"));
        assert!(at("true").is_err());
    }

    #[test]
    fn deep_data_is_carried_not_parsed() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let line = format!(r#"{{"type":"RECORD","record":{{"stream":"s","data":{deep}}}}}"#);
        assert_eq!(record(&line).data.len(), deep.len());
    }

    #[test]
    fn excerpt_is_truncated_on_char_boundaries() {
        let long = "é".repeat(500);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), 121);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn the_head_of_a_cut_line_says_what_it_was() {
        let line =
            r#"{"type":"RECORD","record":{"namespace":"shop","stream":"users","emitted_at":5,"data":{"blob":"xxxxxxxx"#;
        let head = Head::read(line.as_bytes());
        assert_eq!(
            head,
            Head {
                kind: Some("RECORD".into()),
                stream: Some("users".into()),
                namespace: Some("shop".into()),
                emitted_at: Some(5)
            }
        );
        assert!(Head::is_record(line.as_bytes()));
        let state = r#"{"type": "STATE", "state": {"data": {"cursor": "xxxxx"#;
        assert_eq!(Head::read(state.as_bytes()).kind.as_deref(), Some("STATE"));
        assert!(!Head::is_record(state.as_bytes()));
        // Data first, then the rest: only what came before the cut is known.
        let late = r#"{"record":{"data":{"x":"yyyy"#;
        assert_eq!(Head::read(late.as_bytes()), Head::default());
        assert_eq!(Head::read(b"\xff garbage"), Head::default());
    }
}
