//! The parse stage for Speed Mode's Protobuf framing: each `AirbyteMessageProtobuf` of a chunk becomes the item a
//! JSON line would have. A record's positional values are rendered into the JSON text a JSONL source would have
//! written (`airbyte::protobuf`), in a text arena the items point into, so everything after this stage is the
//! same for both framings; a JSON protocol message (a state, a trace) goes through the JSON path as it is.

use super::parse::{Item, Parsed, Parser};
use crate::airbyte::protobuf::{render_data, render_meta, wire, Fields};
use crate::error::Error;
use prost::bytes::Bytes;
use prost::Message as _;
use std::mem::take;
use wire::airbyte_message_frame::Type;

impl Parser {
    /// `frames`: whole length-delimited messages (the reader cut the chunk at a frame boundary).
    pub(super) fn frames(&mut self, frames: Vec<u8>) -> Parsed {
        // Decoded from `Bytes`, a record and its values' strings and embedded JSON are slices of the chunk, not copies.
        let mut frames = Bytes::from(frames);
        let mut arena = String::with_capacity(frames.len() * 2);
        let mut items = Vec::with_capacity(frames.len() / 64);
        let mut nulled = Vec::new();
        let mut record = wire::AirbyteRecordMessageProtobuf::default();
        while !frames.is_empty() {
            self.line_no += 1;
            let line = self.line_no;
            let malformed = |e: prost::DecodeError| {
                Item::Failure(Error::Input { line, reason: format!("not an AirbyteMessageProtobuf: {e}") })
            };
            let frame = match wire::AirbyteMessageFrame::decode_length_delimited(&mut frames) {
                Ok(frame) => frame,
                Err(e) => {
                    items.push(malformed(e));
                    break;
                }
            };
            let item = match frame.r#type {
                Some(Type::Record(bytes)) => match emptied(&mut record).merge(bytes) {
                    Ok(()) => self.record(&record, &mut arena, &mut nulled),
                    Err(e) => malformed(e),
                },
                Some(Type::AirbyteProtocolMessage(json)) => {
                    let start = arena.len();
                    arena.push_str(json.trim_ascii());
                    let range = start..arena.len();
                    match self.item(&arena, range) {
                        Some(item) => item,
                        None => continue,
                    }
                }
                Some(Type::Probe(_)) => continue,
                None => Item::Failure(Error::Input {
                    line,
                    reason: "an AirbyteMessageProtobuf with no message in it (none of record, \
                             airbyte_protocol_message, probe)"
                        .into(),
                }),
            };
            let failed = matches!(item, Item::Failure(_));
            items.push(item);
            if failed {
                break;
            }
        }
        Parsed { chunk: arena, items, source: 0 }
    }

    fn record(
        &mut self,
        record: &wire::AirbyteRecordMessageProtobuf,
        arena: &mut String,
        nulled: &mut Vec<String>,
    ) -> Item {
        let namespace = record.stream_namespace.as_deref().filter(|n| !n.is_empty());
        let stream = match self.stream_of(namespace, &record.stream_name) {
            Ok(stream) => stream,
            Err(failure) => return Item::Failure(failure),
        };
        let catalog = &self.catalog;
        let fields = self.fields[stream].get_or_insert_with(|| Fields::of(&catalog.streams[stream].json_schema));
        nulled.clear();
        let start = arena.len();
        render_data(fields, &record.data, arena, nulled);
        let data = start..arena.len();
        let start = arena.len();
        let meta = render_meta(record.meta.as_ref(), nulled, arena).then_some(start..arena.len());
        let start = arena.len();
        arena.push_str(&record.partition_id);
        let partition = (!record.partition_id.is_empty()).then_some(start..arena.len());
        let emitted_at = i64::try_from(record.emitted_at_ms).ok().filter(|ms| *ms > 0);
        Item::Record { stream, emitted_at, data, meta, partition, line: self.line_no }
    }
}

/// `record` emptied for the next one but keeping what it allocated (its list of values, its names' text): what
/// the next record leaves out must read as the default, not as the last record's.
fn emptied(record: &mut wire::AirbyteRecordMessageProtobuf) -> &mut wire::AirbyteRecordMessageProtobuf {
    let (mut data, mut stream_name, mut partition_id) =
        (take(&mut record.data), take(&mut record.stream_name), take(&mut record.partition_id));
    data.clear();
    stream_name.clear();
    partition_id.clear();
    *record = wire::AirbyteRecordMessageProtobuf { data, stream_name, partition_id, ..Default::default() };
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::catalog::Catalog;
    use crate::write::parse::Block;
    use serde_json::json;
    use std::sync::Arc;

    /// Bytes written out by hand from the field numbers (not by the generated encoder), so a mistake in the
    /// `.proto` shows here: a record of stream `s` (`partition_id` "p1", `emitted_at_ms` 5) with values
    /// [integer -2 (zigzag 3), string "x", is_null], then a probe, then a JSON state, then a record of `s` with
    /// only a string "y" (no partition, no time, two values fewer: none of the first record's may show).
    #[test]
    fn frames_become_the_items_a_json_line_gives() {
        let value_integer = [0x18, 0x03]; // field 3 (sint64), varint 3 = zigzag(-2)
        let value_string = [0x12, 0x01, b'x']; // field 2, length 1
        let value_null = [0x68, 0x01]; // field 13, true
        let mut record = vec![0x12, 0x01, b's', 0x18, 0x05, 0x22, 0x02, b'p', b'1'];
        for value in [&value_integer[..], &value_string[..], &value_null[..]] {
            record.push(0x2a); // field 5, length-delimited
            record.push(value.len() as u8);
            record.extend_from_slice(value);
        }
        let mut message = vec![0x0a, record.len() as u8];
        message.extend_from_slice(&record);
        let probe = [0x1a, 0x00];
        let state = br#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}},"partition_id":"p1","id":1}}"#;
        let mut state_message = vec![0x12, state.len() as u8];
        state_message.extend_from_slice(state);
        let second = [0x0a, 0x08, 0x12, 0x01, b's', 0x2a, 0x03, 0x12, 0x01, b'y'];
        let mut frames = Vec::new();
        for m in [&message[..], &probe[..], &state_message[..], &second[..]] {
            frames.push(m.len() as u8);
            frames.extend_from_slice(m);
        }
        let schema = json!({"properties": {"b": {}, "a": {}, "c": {}}});
        let catalog =
            Catalog::from_value(&json!({"streams": [{"name": "s", "json_schema": schema}]}), "{stream}", None);
        let mut parser = Parser::new(Arc::new(catalog.unwrap()));
        let parsed = parser.parse(Block::Frames(frames));
        match &parsed.items[..] {
            [Item::Record { stream: 0, emitted_at: Some(5), data, meta: None, partition: Some(p), line: 1 }, Item::State { state, .. }, Item::Record { stream: 0, emitted_at: None, data: second, meta: None, partition: None, line: 4 }] =>
            {
                assert_eq!(&parsed.chunk[data.clone()], r#"{"a":-2,"b":"x","c":null}"#);
                assert_eq!(&parsed.chunk[p.clone()], "p1");
                assert_eq!(state.partitioned.id, Some(1));
                assert_eq!(&parsed.chunk[second.clone()], r#"{"a":"y","b":null,"c":null}"#);
            }
            _ => panic!("unexpected items: {}", parsed.items.len()),
        }
    }

    #[test]
    fn an_empty_message_and_an_unknown_stream_fail_the_sync() {
        let catalog = Catalog::from_value(&json!({"streams": [{"name": "s"}]}), "{stream}", None).unwrap();
        let mut parser = Parser::of_source(Arc::new(catalog), "socket /tmp/1.sock", 0);
        let failure = |parsed: Parsed| match &parsed.items[..] {
            [Item::Failure(e)] => e.to_string(),
            _ => panic!("not one failure"),
        };
        let empty = failure(parser.parse(Block::Frames(vec![0x00])));
        assert!(empty.contains("no message in it") && empty.ends_with("(read from socket /tmp/1.sock)"), "{empty}");
        let unknown = failure(parser.parse(Block::Frames(vec![0x05, 0x0a, 0x03, 0x12, 0x01, b'z'])));
        assert!(unknown.starts_with("input line 2: RECORD of stream `z`"), "{unknown}");
    }
}
