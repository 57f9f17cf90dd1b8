//! `record_errors: dead_letter`: a record rejected on its own account (the broker refused it alone, or it could
//! not be encoded) becomes a message of its stream's dead-letter topic, and the sync goes on.
//!
//! The message keeps the original key and value bytes when they exist, else the record's `data`, and says why in
//! headers named after Kafka Connect's `__connect.errors.*`, plus the Airbyte context:
//!
//! | header | value |
//! | --- | --- |
//! | `__connect.errors.topic` | the topic the record was meant for |
//! | `__connect.errors.stage` | `READ` (its input line was over the line limit), `ENCODE` (the connector could not make the message) or `KAFKA_PRODUCE` (the broker refused it) |
//! | `__connect.errors.exception.class.name` | `RecordTooLarge`, `RecordNotEncodable`, or librdkafka's error name (`MessageSizeTooLarge`, `InvalidRecord`) |
//! | `__connect.errors.exception.message` | the reason, in words |
//! | `airbyte.stream`, `airbyte.namespace` (when set) | the record's stream |
//! | `airbyte.input_line` | its line in the connector's input |
//! | `airbyte.emitted_at` | its `emitted_at`, epoch ms |
//! | `airbyte.value_dropped` | only when the value itself is over `max_request_size`, or its input line over the line limit (it could not be written anywhere): its size |

use super::acknowledge::InFlight;
use crate::airbyte::catalog::Stream;
use crate::kafka::record::{Header, OutgoingRecord};

/// Why a record is rejected.
pub struct Rejection {
    pub stage: &'static str,
    pub class: String,
    pub message: String,
}

impl Rejection {
    pub fn not_encodable(message: String) -> Rejection {
        Rejection { stage: "ENCODE", class: "RecordNotEncodable".into(), message }
    }

    pub fn too_long(message: String) -> Rejection {
        Rejection { stage: "READ", class: "RecordTooLarge".into(), message }
    }

    pub fn refused(error: &crate::error::Error) -> Rejection {
        let class = error.kafka_code().map_or_else(|| "Unknown".to_string(), |code| format!("{code:?}"));
        Rejection { stage: "KAFKA_PRODUCE", class, message: error.to_string() }
    }
}

/// A dead-letter message, owned (its bytes come from the record, a delivery report, or the input).
pub struct DeadLetter {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

impl DeadLetter {
    /// `value` over `max_value` bytes is dropped (a header says so): the producer could not send it anywhere.
    pub fn new(
        stream: &Stream,
        record: &InFlight,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        why: &Rejection,
        max_value: usize,
    ) -> DeadLetter {
        let mut letter = DeadLetter::unvalued(stream, record, key, why);
        letter.value = match value {
            Some(v) if v.len() > max_value => {
                letter.drop_value(format!("{} bytes, over max_request_size", v.len()));
                None
            }
            other => other,
        };
        letter
    }

    /// A record whose input line was over the line limit, read no further than its head: no value.
    pub fn unread(stream: &Stream, record: &InFlight, why: &Rejection, length: usize) -> DeadLetter {
        let mut letter = DeadLetter::unvalued(stream, record, None, why);
        letter.drop_value(format!("{length} bytes or more, over the line limit"));
        letter
    }

    fn drop_value(&mut self, why: String) {
        self.headers.push(("airbyte.value_dropped".into(), why.into_bytes()));
    }

    fn unvalued(stream: &Stream, record: &InFlight, key: Option<Vec<u8>>, why: &Rejection) -> DeadLetter {
        let mut headers: Vec<Header> = vec![
            ("__connect.errors.topic".into(), stream.topic.clone().into_bytes()),
            ("__connect.errors.stage".into(), why.stage.as_bytes().to_vec()),
            ("__connect.errors.exception.class.name".into(), why.class.clone().into_bytes()),
            ("__connect.errors.exception.message".into(), why.message.clone().into_bytes()),
            ("airbyte.stream".into(), stream.name.clone().into_bytes()),
        ];
        if let Some(namespace) = &stream.namespace {
            headers.push(("airbyte.namespace".into(), namespace.clone().into_bytes()));
        }
        headers.push(("airbyte.input_line".into(), record.line.to_string().into_bytes()));
        headers.push(("airbyte.emitted_at".into(), record.emitted_at.to_string().into_bytes()));
        let topic = stream.dead_letter_topic.clone().expect("dead letters only for streams with a dead-letter topic");
        DeadLetter { topic, key, value: None, headers }
    }

    pub fn record(&self) -> OutgoingRecord<'_> {
        OutgoingRecord {
            topic: &self.topic,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
            timestamp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_why_and_where_from() {
        let stream = Stream {
            name: "users".into(),
            namespace: Some("shop".into()),
            topic: "shop_users".into(),
            dead_letter_topic: Some("shop_users_dlq".into()),
            ..Stream::default()
        };
        let at = InFlight { segment: 0, line: 12, stream: 0, emitted_at: 1700000000000, dead_letter: true };
        let why = Rejection::not_encodable("key field `id` is missing".into());
        let dl = DeadLetter::new(&stream, &at, None, Some(b"{\"x\":1}".to_vec()), &why, 100);
        let record = dl.record();
        assert_eq!((record.topic, record.key, record.value), ("shop_users_dlq", None, Some(&b"{\"x\":1}"[..])));
        let headers: Vec<(&str, String)> =
            record.headers.iter().map(|(k, v)| (k.as_ref(), String::from_utf8(v.clone()).unwrap())).collect();
        assert_eq!(
            headers,
            vec![
                ("__connect.errors.topic", "shop_users".into()),
                ("__connect.errors.stage", "ENCODE".into()),
                ("__connect.errors.exception.class.name", "RecordNotEncodable".into()),
                ("__connect.errors.exception.message", "key field `id` is missing".into()),
                ("airbyte.stream", "users".into()),
                ("airbyte.namespace", "shop".into()),
                ("airbyte.input_line", "12".into()),
                ("airbyte.emitted_at", "1700000000000".into()),
            ]
        );
        let too_big = DeadLetter::new(&stream, &at, Some(b"k".to_vec()), Some(vec![b'x'; 101]), &why, 100);
        assert_eq!(too_big.record().value, None);
        assert_eq!(too_big.record().headers.last().unwrap().1, b"101 bytes, over max_request_size".to_vec());
    }
}
