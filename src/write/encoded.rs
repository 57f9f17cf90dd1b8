//! The Kafka messages of one chunk's records, made on an encoding thread and sent from the main thread: each
//! record's key, value and headers copied out of its stream encoder's buffers into one buffer per chunk, in input
//! order, so that encoding (the costly part of Avro, Debezium, Connect JSON, keys by field) runs beside the sending.

use crate::format::RecordIn;
use crate::format::{EncodeError, StreamEncoder};
use crate::kafka::record::{Header, OutgoingRecord};
use std::ops::Range;

/// One chunk's messages, taken in the order they were made.
#[derive(Default)]
pub struct Encoded {
    /// Keys and values, back to back.
    bytes: Vec<u8>,
    headers: Vec<Header>,
    messages: Vec<std::result::Result<Message, EncodeError>>,
    /// The next message to take.
    next: usize,
}

/// Where one record's message lies in the chunk's buffers.
struct Message {
    key: Option<Range<usize>>,
    /// `None`: a tombstone.
    value: Option<Range<usize>>,
    headers: Range<usize>,
    timestamp: Option<i64>,
    /// The key of the tombstone that follows the message (after a Debezium delete event).
    follow_up: Option<Range<usize>>,
    /// Values the format had to null.
    nulled: u32,
}

/// A record's message as the main thread sends it.
pub struct Taken<'a> {
    pub message: std::result::Result<OutgoingRecord<'a>, EncodeError>,
    /// The tombstone to send after it.
    pub follow_up: Option<OutgoingRecord<'a>>,
    pub nulled: u32,
}

impl Encoded {
    /// Messages for a chunk of `items`, into `bytes` (a spent chunk's, grown to what a chunk needs).
    pub fn new(mut bytes: Vec<u8>, items: usize) -> Encoded {
        bytes.clear();
        Encoded { bytes, messages: Vec::with_capacity(items), ..Encoded::default() }
    }

    /// The buffer, for another chunk.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Encodes one record with its stream's encoder and keeps the message (or why there is none).
    pub fn push(&mut self, encoder: &mut StreamEncoder, record: &RecordIn<'_>) {
        let nulled_before = encoder.nulled;
        let message = match encoder.encode(record) {
            Ok(outgoing) => {
                let key = outgoing.key.map(|k| self.copy(k));
                let value = outgoing.value.map(|v| self.copy(v));
                let start = self.headers.len();
                self.headers.extend_from_slice(outgoing.headers);
                let (headers, timestamp) = (start..self.headers.len(), outgoing.timestamp);
                let follow_up = encoder.follow_up(timestamp).and_then(|t| t.key).map(|k| self.copy(k));
                let nulled = u32::try_from(encoder.nulled - nulled_before).unwrap_or(u32::MAX);
                Ok(Message { key, value, headers, timestamp, follow_up, nulled })
            }
            Err(why) => Err(why),
        };
        self.messages.push(message);
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// The next record's message, to `topic`.
    pub fn take<'a>(&'a mut self, topic: &'a str) -> Taken<'a> {
        let index = self.next;
        self.next += 1;
        let message = match &self.messages[index] {
            Ok(message) => message,
            Err(why) => return Taken { message: Err(why.clone()), follow_up: None, nulled: 0 },
        };
        let span = |range: &Option<Range<usize>>| range.clone().map(|r| &self.bytes[r]);
        let outgoing = OutgoingRecord {
            topic,
            key: span(&message.key),
            value: span(&message.value),
            headers: &self.headers[message.headers.clone()],
            timestamp: message.timestamp,
        };
        let follow_up = message.follow_up.as_ref().map(|key| OutgoingRecord {
            topic,
            key: Some(&self.bytes[key.clone()]),
            value: None,
            headers: &[],
            timestamp: message.timestamp,
        });
        Taken { message: Ok(outgoing), follow_up, nulled: message.nulled }
    }
}
