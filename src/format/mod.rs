//! The record seam: how one Airbyte RECORD becomes one Kafka message. Each stream gets its encoder once, at
//! startup, from the config and the catalog; the write path only calls [`StreamEncoder::encode`].

pub mod envelope;

use crate::airbyte::catalog::Stream;
use envelope::Envelope;
use uuid::Uuid;

/// One Kafka message, ready to produce; borrowed from the encoder's buffers until the next `encode`.
pub struct OutgoingRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'static str, Vec<u8>)],
    /// Epoch milliseconds; `None` lets the producer stamp it (Java's behaviour).
    pub timestamp: Option<i64>,
}

/// What an encoder is given of one RECORD.
pub struct RecordIn<'a> {
    pub emitted_at: i64,
    /// The record's `data`, as the source wrote it.
    pub data: &'a [u8],
}

/// Encodes the records of one stream, into buffers reused from record to record.
pub struct StreamEncoder {
    topic: String,
    value: Envelope,
    /// The record's id as UUID text: the envelope's `_airbyte_ab_id` and, as in Java, the key.
    id: [u8; 36],
}

impl StreamEncoder {
    pub fn new(stream: &Stream) -> StreamEncoder {
        StreamEncoder { topic: stream.topic.clone(), value: Envelope::new(&stream.name), id: [0; 36] }
    }

    pub fn encode(&mut self, record: &RecordIn<'_>) -> OutgoingRecord<'_> {
        Uuid::new_v4().hyphenated().encode_lower(&mut self.id);
        let value = self.value.encode(&self.id, record);
        OutgoingRecord { topic: &self.topic, key: Some(&self.id), value: Some(value), headers: &[], timestamp: None }
    }
}

/// One encoder per catalog stream, in catalog order.
pub fn encoders(streams: &[Stream]) -> Vec<StreamEncoder> {
    streams.iter().map(StreamEncoder::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str) -> Stream {
        Stream { namespace: None, name: name.into(), topic: format!("t_{name}") }
    }

    #[test]
    fn key_is_the_records_uuid_and_fresh_each_time() {
        let mut enc = StreamEncoder::new(&stream("s"));
        let first = enc.encode(&RecordIn { emitted_at: 0, data: b"{}" });
        assert_eq!(first.topic, "t_s");
        let key = std::str::from_utf8(first.key.unwrap()).unwrap().to_string();
        let uuid = Uuid::parse_str(&key).unwrap();
        assert_eq!((uuid.get_version_num(), key.to_lowercase()), (4, key.clone()));
        let value: serde_json::Value = serde_json::from_slice(first.value.unwrap()).unwrap();
        assert_eq!(value["_airbyte_ab_id"], key.as_str());
        assert!(first.headers.is_empty() && first.timestamp.is_none());
        assert_ne!(enc.encode(&RecordIn { emitted_at: 0, data: b"{}" }).key.unwrap(), key.as_bytes());
    }
}
