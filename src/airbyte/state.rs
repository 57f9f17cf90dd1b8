//! STATE messages: what they checkpoint, how the platform counts the records each covers, and the line we echo
//! once their records are safe.
//!
//! A state is a black box to the destination: the output line is the input line byte for byte, except that
//! `state.destinationStats` says how many records it covers. It is parsed once, on the stdin thread, into a
//! template the count is later filled into.

use super::message::ParseError;
use crate::digest;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What a STATE checkpoints: everything (LEGACY, GLOBAL) or one stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Stream { name: String, namespace: Option<String> },
}

/// A STATE ready to be echoed: its scope, and the output line with a hole where the record count goes.
#[derive(Debug)]
pub struct State {
    pub scope: Scope,
    /// What the state says, without what the platform adds (`id`) and the stats: the same for the same checkpoint
    /// of a retry (replay detection).
    pub content: u128,
    /// What Speed Mode's sources add (read always, used only when reading sockets).
    pub partitioned: Partitioned,
    /// The output line cut where something is filled in: `pieces[i]`, then what `holes[i]` says, …, the last piece.
    pieces: Vec<String>,
    holes: Vec<Hole>,
}

/// Where the echo of a STATE gets something added.
#[derive(Debug, Clone, Copy)]
enum Hole {
    /// `destinationStats`' value.
    Stats,
    /// Speed Mode: the end of the `index`-th stream state inside a GLOBAL state (`comma`: the object has entries).
    Inner { index: usize, comma: bool },
}

/// What Speed Mode adds to an echoed STATE after its stats: `top` (`,"key":value…`) as entries of the state
/// object, and `inner[i]` (`"key":value…`) to the i-th stream state inside a GLOBAL state.
#[derive(Debug, Default)]
pub struct Additions {
    pub top: String,
    pub inner: Vec<String>,
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

/// A Speed Mode state's `id`, its partitions (its own `partition_id`, and for a GLOBAL state those of the stream
/// states inside it) and how many records they hold (`sourceStats.recordCount`).
#[derive(Debug, Default, PartialEq)]
pub struct Partitioned {
    pub id: Option<i64>,
    pub partitions: Vec<String>,
    pub record_count: Option<f64>,
    /// A GLOBAL state's stream states, by (namespace, name), in order.
    pub inner: Vec<(Option<String>, String)>,
}

#[derive(Deserialize, Default)]
struct SourceStats {
    #[serde(rename = "recordCount")]
    record_count: Option<f64>,
}

/// A GLOBAL state's stream states, kept as raw text with their positions.
#[derive(Deserialize, Default)]
struct Global<'a> {
    #[serde(borrow, default)]
    stream_states: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize, Default)]
struct InnerStreamState {
    partition_id: Option<String>,
    stream_descriptor: Option<Descriptor>,
}

/// A top-level entry's value; of duplicate keys, the last (as serde reads them).
fn entry<'a>(entries: &[(Cow<'_, str>, &'a RawValue)], key: &str) -> Option<&'a RawValue> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// The stream states inside a GLOBAL state (`global.stream_states`), borrowed from the line.
fn inner_states<'a>(entries: &[(Cow<'_, str>, &'a RawValue)]) -> Vec<&'a RawValue> {
    let global: Global<'a> =
        entry(entries, "global").and_then(|g| serde_json::from_str(g.get()).ok()).unwrap_or_default();
    global.stream_states.unwrap_or_default()
}

impl Partitioned {
    fn read(entries: &[(Cow<'_, str>, &RawValue)], inner: &[&RawValue]) -> Partitioned {
        fn value<T: serde::de::DeserializeOwned + Default>(raw: Option<&RawValue>) -> T {
            raw.and_then(|r| serde_json::from_str::<Option<T>>(r.get()).ok().flatten()).unwrap_or_default()
        }
        let own: Option<String> = value(entry(entries, "partition_id"));
        let inner: Vec<InnerStreamState> = inner.iter().map(|raw| value(Some(*raw))).collect();
        // Each partition once, however often the state names it.
        let mut partitions: Vec<String> = Vec::new();
        for p in own.into_iter().chain(inner.iter().filter_map(|s| s.partition_id.clone())) {
            if !partitions.contains(&p) {
                partitions.push(p);
            }
        }
        let descriptor = |s: &InnerStreamState| {
            let d = s.stream_descriptor.as_ref();
            let namespace = d.and_then(|d| d.namespace.clone()).filter(|n| !n.is_empty());
            (namespace, d.and_then(|d| d.name.clone()).unwrap_or_default())
        };
        Partitioned {
            id: value::<Option<i64>>(entry(entries, "id")),
            partitions,
            record_count: value::<SourceStats>(entry(entries, "sourceStats")).record_count,
            inner: inner.iter().map(descriptor).collect(),
        }
    }
}

/// xxh3-128 of each top-level entry's name and value text, but for `id`, `sourceStats` and `destinationStats`.
fn content_of(entries: &[(Cow<'_, str>, &RawValue)]) -> u128 {
    let mut hash = digest::Xxh3::new();
    for (name, value) in
        entries.iter().filter(|(n, _)| !matches!(n.as_ref(), "id" | "sourceStats" | "destinationStats"))
    {
        digest::add(&mut hash, &[name, value.get()]);
    }
    hash.digest128()
}

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize, Default)]
struct StreamState {
    stream_descriptor: Option<Descriptor>,
}

#[derive(Deserialize, Default)]
struct Descriptor {
    name: Option<String>,
    namespace: Option<String>,
}

impl State {
    /// `line` is the whole input line, `state` its `state` value (borrowed from `line`).
    pub fn parse(line: &str, state: &RawValue) -> Result<State, ParseError> {
        let entries = serde_json::from_str::<Entries>(state.get())
            .map_err(|e| ParseError(format!("STATE whose `state` is not an object: {e}")))?
            .0;
        let kind = entry(&entries, "type").and_then(|t| serde_json::from_str::<Option<String>>(t.get()).ok().flatten());
        let scope = if kind.as_deref() == Some("STREAM") {
            // Only the descriptor is read; `stream_state` is skipped unparsed, however deep it nests.
            let stream: StreamState =
                entry(&entries, "stream").and_then(|s| serde_json::from_str(s.get()).ok()).unwrap_or_default();
            let descriptor = stream.stream_descriptor.unwrap_or_default();
            Scope::Stream {
                name: descriptor.name.unwrap_or_default(),
                namespace: descriptor.namespace.filter(|n| !n.is_empty()),
            }
        } else {
            Scope::Global
        };
        let inner = inner_states(&entries);
        let partitioned = Partitioned::read(&entries, &inner);
        let (pieces, holes) = cut(line, state.get(), &entries, &inner);
        Ok(State { scope, content: content_of(&entries), partitioned, pieces, holes })
    }

    /// The echo: the original line, with `destinationStats` = `{"recordCount":<count>.0}`, and
    /// `"rejectedRecordCount":<n>.0` when records can be rejected (dead-letter topic).
    pub fn render(&self, record_count: u64, rejected: Option<u64>) -> String {
        self.render_with(record_count, rejected, &Additions::default())
    }

    /// [`State::render`] with Speed Mode's additions.
    pub fn render_with(&self, record_count: u64, rejected: Option<u64>, more: &Additions) -> String {
        let top = &more.top;
        let stats = match rejected {
            None => format!("{{\"recordCount\":{record_count}.0}}{top}"),
            Some(rejected) => format!("{{\"recordCount\":{record_count}.0,\"rejectedRecordCount\":{rejected}.0}}{top}"),
        };
        let mut out = String::with_capacity(self.pieces.iter().map(String::len).sum::<usize>() + stats.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            match self.holes.get(i) {
                Some(Hole::Stats) => out.push_str(&stats),
                Some(Hole::Inner { index, comma }) => {
                    if let Some(fill) = more.inner.get(*index).filter(|f| !f.is_empty()) {
                        if *comma {
                            out.push(',');
                        }
                        out.push_str(fill);
                    }
                }
                None => {}
            }
        }
        out
    }
}

/// Cuts the line where something goes: the stats in place of every existing `destinationStats` value, or, when
/// there is none, as a new last entry of the state object; and the end of each stream state inside a GLOBAL state.
fn cut(
    line: &str,
    state: &str,
    entries: &[(Cow<'_, str>, &RawValue)],
    inner: &[&RawValue],
) -> (Vec<String>, Vec<Hole>) {
    let offset = |text: &str| text.as_ptr() as usize - line.as_ptr() as usize;
    // (start, end, text before the hole, hole)
    let mut cuts: Vec<(usize, usize, &str, Hole)> = Vec::new();
    for (_, value) in entries.iter().filter(|(k, _)| k == "destinationStats") {
        let start = offset(value.get());
        cuts.push((start, start + value.get().len(), "", Hole::Stats));
    }
    if cuts.is_empty() {
        let close = offset(state) + state.rfind('}').unwrap_or(state.len());
        let key = if entries.is_empty() { "\"destinationStats\":" } else { ",\"destinationStats\":" };
        cuts.push((close, close, key, Hole::Stats));
    }
    for (index, raw) in inner.iter().enumerate() {
        let text = raw.get();
        let Some(close) = text.rfind('}').filter(|_| text.starts_with('{')) else { continue };
        let comma = !text[1..close].trim().is_empty();
        cuts.push((offset(text) + close, offset(text) + close, "", Hole::Inner { index, comma }));
    }
    cuts.sort_by_key(|c| c.0);
    let (mut pieces, mut holes, mut at) = (Vec::new(), Vec::new(), 0);
    for (start, end, before, hole) in cuts {
        pieces.push(format!("{}{before}", &line[at..start]));
        holes.push(hole);
        at = end;
    }
    pieces.push(line[at..].to_string());
    (pieces, holes)
}

/// What a STATE's record count covers: every record since the last GLOBAL/LEGACY state, or one stream's
/// (its catalog index; `None` for a stream the catalog does not have, whose count is 0).
#[derive(Debug, PartialEq, Eq)]
pub enum Counted {
    Global,
    Stream(Option<usize>),
}

/// Records per STATE, as the platform counts them: per stream since that stream's last STREAM state, and
/// since the last GLOBAL/LEGACY state for those.
pub struct RecordCounts {
    since_global: u64,
    per_stream: Vec<u64>,
}

impl RecordCounts {
    pub fn new(streams: usize) -> RecordCounts {
        RecordCounts { since_global: 0, per_stream: vec![0; streams] }
    }

    pub fn record(&mut self, stream: usize) {
        self.add(stream, 1);
    }

    pub fn add(&mut self, stream: usize, n: u64) {
        self.since_global += n;
        self.per_stream[stream] += n;
    }

    /// The count a STATE of this scope carries, which then starts again from zero.
    pub fn take(&mut self, scope: &Counted) -> u64 {
        match scope {
            Counted::Global => std::mem::take(&mut self.since_global),
            Counted::Stream(stream) => stream.map_or(0, |i| std::mem::take(&mut self.per_stream[i])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::message::Message;

    fn state_of(line: &str) -> State {
        let raw = match Message::parse(line).unwrap() {
            Message::State(raw) => raw,
            _ => panic!("not a state"),
        };
        State::parse(line, raw).unwrap()
    }

    #[test]
    fn content_leaves_out_what_the_platform_and_the_stats_add() {
        let content = |state: &str| state_of(&format!(r#"{{"type":"STATE","state":{state}}}"#)).content;
        let base = content(r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"u"},"stream_state":{"c":1}}}"#);
        let retry = content(
            r#"{"type":"STREAM","id":12,"stream":{"stream_descriptor":{"name":"u"},"stream_state":{"c":1}},"sourceStats":{"recordCount":3.0},"destinationStats":{"recordCount":3.0}}"#,
        );
        assert_eq!(base, retry);
        let other = content(r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"u"},"stream_state":{"c":2}}}"#);
        assert_ne!(base, other);
        assert_ne!(content(r#"{"a":"bc"}"#), content(r#"{"ab":"c"}"#), "names and values do not run together");
    }

    #[test]
    fn legacy_state_gets_stats_and_keeps_everything_else() {
        let line = r#"{"type": "STATE", "state": { "data": {"start_date": "2020-08-31"}}, "x": 1}"#;
        let s = state_of(line);
        assert_eq!(s.scope, Scope::Global);
        assert_eq!(
            s.render(3, None),
            r#"{"type": "STATE", "state": { "data": {"start_date": "2020-08-31"},"destinationStats":{"recordCount":3.0}}, "x": 1}"#
        );
    }

    #[test]
    fn existing_stats_are_replaced_and_ids_kept() {
        let line = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"ns"},"stream_state":{"c":1}},"sourceStats":{"recordCount":2.0},"destinationStats":{"recordCount":99.0},"id":7,"unknown":[1]}}"#;
        let s = state_of(line);
        assert_eq!(s.scope, Scope::Stream { name: "users".into(), namespace: Some("ns".into()) });
        let out = s.render(2, None);
        assert_eq!(
            out,
            line.replace(r#""destinationStats":{"recordCount":99.0}"#, r#""destinationStats":{"recordCount":2.0}"#)
        );
    }

    #[test]
    fn stream_descriptor_is_found_whatever_the_depth_of_stream_state() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let line = format!(
            r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_state":{deep},"stream_descriptor":{{"name":"users","namespace":null}}}}}}}}"#
        );
        let s = state_of(&line);
        assert_eq!(s.scope, Scope::Stream { name: "users".into(), namespace: None });
        assert!(s.render(2, None).ends_with(r#"}},"destinationStats":{"recordCount":2.0}}}"#));
    }

    #[test]
    fn global_state_with_duplicate_keys_and_empty_state() {
        let line = r#"{"type":"STATE","state":{"type":"GLOBAL","global_":{"shared_state":{}},"global_":{"shared_state":{"a":1}},"id":1}}"#;
        let s = state_of(line);
        assert_eq!(s.scope, Scope::Global);
        assert!(s.render(5, None).ends_with(r#""id":1,"destinationStats":{"recordCount":5.0}}}"#));
        assert!(s
            .render(5, Some(2))
            .ends_with(r#""destinationStats":{"recordCount":5.0,"rejectedRecordCount":2.0}}}"#));
        let empty = r#"{"type":"STATE","state":{ }}"#;
        assert_eq!(
            state_of(empty).render(0, None),
            r#"{"type":"STATE","state":{ "destinationStats":{"recordCount":0.0}}}"#
        );
    }

    #[test]
    fn speed_mode_fields_are_read_and_counts_added_after_the_stats() {
        let line = r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[{"stream_descriptor":{"name":"a"},"partition_id":"p2"},{"stream_descriptor":{"name":"b"}}]},"partition_id":"p1","id":3,"sourceStats":{"recordCount":12.0}}}"#;
        let s = state_of(line);
        let inner = vec![(None, "a".to_string()), (None, "b".to_string())];
        let expected =
            Partitioned { id: Some(3), partitions: vec!["p1".into(), "p2".into()], record_count: Some(12.0), inner };
        assert_eq!(s.partitioned, expected);
        let more =
            Additions { top: r#","committedRecordsCount":12"#.into(), inner: vec!["\"n\":1".into(), "\"n\":2".into()] };
        let out = s.render_with(12, None, &more);
        let expected = line
            .replace(r#""partition_id":"p2"}"#, r#""partition_id":"p2","n":1}"#)
            .replace(r#""name":"b"}}"#, r#""name":"b"},"n":2}"#)
            .replace(r#"12.0}}}"#, r#"12.0},"destinationStats":{"recordCount":12.0},"committedRecordsCount":12}}"#);
        assert_eq!(out, expected);
        let empty_inner = r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"stream_states":[{ }]}}}"#;
        let more = Additions { top: String::new(), inner: vec!["\"n\":1".into()] };
        assert_eq!(
            state_of(empty_inner).render_with(0, None, &more),
            r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"stream_states":[{ "n":1}]},"destinationStats":{"recordCount":0.0}}}"#
        );
        assert_eq!(state_of(r#"{"type":"STATE","state":{"data":{}}}"#).partitioned, Partitioned::default());
    }

    #[test]
    fn counts_legacy_global_and_stream_states() {
        let mut n = RecordCounts::new(2);
        n.record(0);
        n.record(1);
        n.record(0);
        assert_eq!(n.take(&Counted::Stream(Some(0))), 2);
        assert_eq!(n.take(&Counted::Stream(Some(0))), 0);
        n.record(0);
        // LEGACY and GLOBAL count every record since the previous such state.
        assert_eq!(n.take(&Counted::Global), 4);
        assert_eq!(n.take(&Counted::Global), 0);
        assert_eq!(n.take(&Counted::Stream(Some(1))), 1);
        assert_eq!(n.take(&Counted::Stream(None)), 0);
    }
}
