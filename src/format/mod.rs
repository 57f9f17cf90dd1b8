//! The record seam: how one Airbyte RECORD becomes one Kafka message. Each stream gets its encoder once, at
//! startup, from the config and the catalog; the write path only calls [`StreamEncoder::encode`]. The key
//! (`key`), the value (the Java envelope), the headers (`headers`) and the timestamp (`timestamp`) are each
//! decided in their own module.

pub mod envelope;
pub mod fields;
pub mod headers;
pub mod key;
pub mod timestamp;

use crate::airbyte::catalog::Stream;
use crate::config::Settings;
use crate::error::{Error, Result};
use envelope::Envelope;
use fields::FieldPath;
use headers::Headers;
use key::KeyEncoder;
use timestamp::Timestamp;
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
    /// The record's `data`, as the source wrote it (UTF-8: the parse stage checked it).
    pub data: &'a [u8],
}

impl RecordIn<'_> {
    fn text(&self) -> std::result::Result<&str, String> {
        std::str::from_utf8(self.data).map_err(|e| format!("the record's data is not UTF-8: {e}"))
    }
}

/// Encodes the records of one stream, into buffers reused from record to record.
pub struct StreamEncoder {
    topic: String,
    key: KeyEncoder,
    value: Envelope,
    headers: Option<Headers>,
    timestamp: Timestamp,
    /// `append_dedup`: a record whose `_ab_cdc_deleted_at` is set becomes a tombstone.
    tombstones: bool,
    /// The record's id as UUID text: the envelope's `_airbyte_ab_id` and, as in Java, the default key.
    id: [u8; 36],
    key_bytes: Vec<u8>,
}

/// The field Airbyte's CDC sources set on a deleted row.
const CDC_DELETED_AT: &str = "_ab_cdc_deleted_at";

impl StreamEncoder {
    pub fn new(settings: &Settings, stream: &Stream) -> Result<StreamEncoder> {
        let timestamp = Timestamp::new(&settings.timestamp).map_err(Error::Config)?;
        Ok(StreamEncoder {
            topic: stream.topic.clone(),
            key: KeyEncoder::for_stream(&settings.key, stream)?,
            value: Envelope::new(&stream.name),
            headers: settings.headers.then(|| Headers::new(stream)),
            timestamp,
            tombstones: stream.dedup,
            id: [0; 36],
            key_bytes: Vec::new(),
        })
    }

    /// The Java connector's encoding: UUID key, envelope, no headers, the producer's clock.
    pub fn java(stream: &Stream) -> StreamEncoder {
        StreamEncoder {
            topic: stream.topic.clone(),
            key: KeyEncoder::Uuid,
            value: Envelope::new(&stream.name),
            headers: None,
            timestamp: Timestamp::ProduceTime,
            tombstones: false,
            id: [0; 36],
            key_bytes: Vec::new(),
        }
    }

    /// The message of one record, or why it cannot be made (a key or timestamp field missing or unusable).
    pub fn encode(&mut self, record: &RecordIn<'_>) -> std::result::Result<OutgoingRecord<'_>, String> {
        Uuid::new_v4().hyphenated().encode_lower(&mut self.id);
        let key = match &self.key {
            KeyEncoder::Uuid => Some(&self.id[..]),
            KeyEncoder::None => None,
            KeyEncoder::Fields(paths) => {
                KeyEncoder::fields_key(paths, record.text()?, &mut self.key_bytes)?;
                Some(&self.key_bytes[..])
            }
        };
        let timestamp = match self.timestamp {
            Timestamp::ProduceTime => None,
            ref t => t.of(record.emitted_at, record.text()?)?,
        };
        let deleted = self.tombstones && is_deleted(record.text()?)?;
        let value = if deleted { None } else { Some(self.value.encode(&self.id, record)) };
        let headers = match &mut self.headers {
            Some(h) => h.for_record(record.emitted_at, &self.id),
            None => &[],
        };
        Ok(OutgoingRecord { topic: &self.topic, key, value, headers, timestamp })
    }
}

fn is_deleted(data: &str) -> std::result::Result<bool, String> {
    let path = [FieldPath(vec![CDC_DELETED_AT.to_string()])];
    let found = fields::lookup(data, &path).map_err(|e| format!("the record's data cannot be read: {e}"))?;
    Ok(found[0].is_some_and(|v| v.get() != "null"))
}

/// One encoder per catalog stream, in catalog order.
pub fn encoders(settings: &Settings, streams: &[Stream]) -> Result<Vec<StreamEncoder>> {
    streams.iter().map(|stream| StreamEncoder::new(settings, stream)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::java_config;
    use serde_json::json;

    fn stream(name: &str) -> Stream {
        Stream {
            name: name.into(),
            topic: format!("t_{name}"),
            primary_key: vec![vec!["id".into()]],
            ..Stream::default()
        }
    }

    fn settings(change: impl FnOnce(&mut serde_json::Value)) -> Settings {
        let mut config = java_config();
        change(&mut config);
        Settings::from_value(config).unwrap()
    }

    #[test]
    fn java_defaults_key_is_the_records_uuid_and_fresh_each_time() {
        let mut enc = StreamEncoder::new(&settings(|_| {}), &stream("s")).unwrap();
        let first = enc.encode(&RecordIn { emitted_at: 0, data: b"{}" }).unwrap();
        assert_eq!(first.topic, "t_s");
        let key = std::str::from_utf8(first.key.unwrap()).unwrap().to_string();
        let uuid = Uuid::parse_str(&key).unwrap();
        assert_eq!((uuid.get_version_num(), key.to_lowercase()), (4, key.clone()));
        let value: serde_json::Value = serde_json::from_slice(first.value.unwrap()).unwrap();
        assert_eq!(value["_airbyte_ab_id"], key.as_str());
        assert!(first.headers.is_empty() && first.timestamp.is_none());
        assert_ne!(enc.encode(&RecordIn { emitted_at: 0, data: b"{}" }).unwrap().key.unwrap(), key.as_bytes());
    }

    #[test]
    fn keys_headers_and_timestamps_from_the_config() {
        let s = settings(|c| {
            c["key"] = json!({"mode": "fields", "fields": ["customer.id"]});
            c["headers"] = json!(true);
            c["timestamp"] = json!({"source": "emitted_at"});
        });
        let mut enc = StreamEncoder::new(&s, &stream("s")).unwrap();
        let out = enc.encode(&RecordIn { emitted_at: 1700000000000, data: br#"{"customer":{"id":17}}"# }).unwrap();
        assert_eq!(out.key, Some(&b"17"[..]));
        assert_eq!(out.timestamp, Some(1700000000000));
        assert_eq!(out.headers.len(), 3);
        let err = enc.encode(&RecordIn { emitted_at: 1, data: br#"{"customer":{}}"# }).err().unwrap();
        assert_eq!(err, "key field `customer.id` is missing");
        let s = settings(|c| c["key"] = json!({"mode": "none"}));
        let mut enc = StreamEncoder::new(&s, &stream("s")).unwrap();
        assert!(enc.encode(&RecordIn { emitted_at: 1, data: b"{}" }).unwrap().key.is_none());
    }

    #[test]
    fn dedup_streams_key_by_primary_key_and_delete_with_tombstones() {
        let s = settings(|c| c["key"] = json!({"mode": "uuid"}));
        let mut dedup = stream("s");
        dedup.dedup = true;
        let mut enc = StreamEncoder::new(&s, &dedup).unwrap();
        let live = enc.encode(&RecordIn { emitted_at: 1, data: br#"{"id":"a","_ab_cdc_deleted_at":null}"# }).unwrap();
        assert_eq!((live.key, live.value.is_some()), (Some(&b"a"[..]), true));
        let gone =
            enc.encode(&RecordIn { emitted_at: 1, data: br#"{"id":"a","_ab_cdc_deleted_at":"2024-01-01"}"# }).unwrap();
        assert_eq!((gone.key, gone.value), (Some(&b"a"[..]), None));
    }
}
