//! The record seam: how one Airbyte RECORD becomes one Kafka message. Each stream gets its encoder once, at
//! startup, from the encoding settings and the catalog (registering its schema, for the registry formats); the
//! write path only calls [`StreamEncoder::encode`]. The key (`key`), the value (`format`: the Java envelope, the
//! record's data, Airbyte v2 JSON, Avro or JSON Schema with a schema registry), the headers (`headers`) and the
//! timestamp (`timestamp`) are each decided in their own module.

pub mod avro;
pub mod checked_json;
pub mod connect;
pub mod datetime;
pub mod debezium;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod headers;
pub mod json_schema;
pub mod json_type;
pub mod key;
pub mod protobuf;
pub mod raw;
pub mod record;
pub mod registry;
pub mod timestamp;
pub mod v2;
pub mod well_known;

use crate::airbyte::catalog::Stream;
use crate::config::encoding::{Encoding, FormatSettings, HeaderSettings, DEFAULT_CLOUDEVENTS_SOURCE};
use crate::error::{Error, Result};
use crate::kafka::record::OutgoingRecord;
use crate::naming;
use avro::schema::Record;
use connect::ConnectJson;
use debezium::Debezium;
use envelope::Envelope;
pub use error::EncodeError;
use fields::FieldPath;
use headers::{CloudEvents, Headers};
use key::KeyEncoder;
use protobuf::Protobuf;
use raw::Raw;
pub use record::RecordIn;
use registry::Registry;
use timestamp::Timestamp;
use uuid::Uuid;
use v2::V2;

/// The value of each message of a stream.
#[derive(Clone)]
enum Value {
    Envelope(Envelope),
    Json,
    V2(V2),
    ConnectJson(ConnectJson),
    /// Change events, which make their own key (and tombstone).
    Debezium(Debezium),
    /// Avro datums of the stream's schema, after its registry framing.
    Avro {
        schema: Record,
        framed: Vec<u8>,
    },
    Protobuf(Protobuf),
    Raw(Raw),
    /// The data, after the registry framing of the stream's JSON schema.
    JsonSchema {
        framed: Vec<u8>,
    },
}

/// Encodes the records of one stream, into buffers reused from record to record.
#[derive(Clone)]
pub struct StreamEncoder {
    topic: String,
    key: KeyEncoder,
    value: Value,
    headers: Headers,
    timestamp: Timestamp,
    /// `append_dedup`: a record whose `_ab_cdc_deleted_at` is set becomes a tombstone.
    tombstones: bool,
    /// The record's id as UUID text: the envelope's `_airbyte_ab_id` and, as in Java, the default key.
    id: [u8; 36],
    /// Whether the key, value or headers use the id: drawing one costs as much as a small record's key.
    uses_id: bool,
    key_bytes: Vec<u8>,
    /// Values the format had to null (Avro), for the summary.
    pub nulled: u64,
}

/// The field Airbyte's CDC sources set on a deleted row.
const CDC_DELETED_AT: &str = "_ab_cdc_deleted_at";

impl StreamEncoder {
    /// `registry`: where the registry formats register the stream's schema (before any record is read).
    pub fn new(encoding: &Encoding, stream: &Stream, registry: Option<&Registry>) -> Result<StreamEncoder> {
        let timestamp = Timestamp::new(&encoding.timestamp).map_err(Error::Config)?;
        let value = match (&encoding.format, registry) {
            (FormatSettings::AirbyteJson, _) => Value::Envelope(Envelope::new(&stream.name)),
            (FormatSettings::Json, _) => Value::Json,
            (FormatSettings::AirbyteV2Json, _) => Value::V2(V2::new(stream)),
            (FormatSettings::ConnectJson, _) => Value::ConnectJson(ConnectJson::new(&stream.json_schema, &stream.name)),
            (FormatSettings::DebeziumJson(settings), _) => {
                Value::Debezium(Debezium::new(settings, stream).map_err(Error::Config)?)
            }
            (FormatSettings::Raw { field, base64 }, _) => Value::Raw(
                Raw::new(field, *base64).map_err(|e| Error::Config(format!("config field `format.field`: {e}")))?,
            ),
            (FormatSettings::Avro(settings), Some(registry)) => {
                let schema = avro::schema::for_stream(&stream.json_schema, &stream.name, stream.namespace.as_deref());
                let text = schema.to_json().to_string();
                let framed = registry.register_stream(settings, stream, &schema.full_name(), &text, "AVRO")?;
                Value::Avro { schema, framed }
            }
            (FormatSettings::Protobuf(settings), Some(registry)) => {
                let mut protobuf = Protobuf::new(&stream.json_schema, &stream.name, stream.namespace.as_deref());
                let frame =
                    registry.register_stream(settings, stream, &protobuf.full_name, &protobuf.text, "PROTOBUF")?;
                protobuf.framed_by(frame);
                Value::Protobuf(protobuf)
            }
            (FormatSettings::JsonSchema(settings), Some(registry)) => {
                let (title, schema) = json_schema::of_stream(stream);
                Value::JsonSchema {
                    framed: registry.register_stream(settings, stream, &title, &schema.to_string(), "JSON")?,
                }
            }
            (_, None) => return Err(Error::System("a registry format without a registry".into())),
        };
        // A change event is keyed by the primary key and is its own delete: `key` and dedup's tombstones stand aside.
        let debezium = matches!(value, Value::Debezium(_));
        let key = if debezium { KeyEncoder::None } else { KeyEncoder::for_stream(&encoding.key, stream)? };
        let headers = Headers::new(stream, &encoding.headers, cloudevents(encoding, stream));
        let mut encoder = StreamEncoder {
            key,
            value,
            headers,
            timestamp,
            tombstones: stream.dedup && !debezium,
            ..StreamEncoder::java(stream)
        };
        encoder.uses_id = encoder.id_used();
        Ok(encoder)
    }

    /// The Java connector's encoding: UUID key, envelope, no headers, the producer's clock.
    pub fn java(stream: &Stream) -> StreamEncoder {
        StreamEncoder {
            topic: stream.topic.clone(),
            key: KeyEncoder::Uuid,
            value: Value::Envelope(Envelope::new(&stream.name)),
            headers: Headers::new(stream, &HeaderSettings::Context(false), None),
            timestamp: Timestamp::ProduceTime,
            tombstones: false,
            id: [0; 36],
            uses_id: true,
            key_bytes: Vec::new(),
            nulled: 0,
        }
    }

    /// Whether the key, value or headers carry the record's id.
    fn id_used(&self) -> bool {
        matches!(self.key, KeyEncoder::Uuid)
            || matches!(self.value, Value::Envelope(_) | Value::V2(_) | Value::Protobuf(_) | Value::Avro { .. })
            || self.headers.use_id()
    }

    /// The message of one record, or why it cannot be made (a key or timestamp field missing or unusable, data
    /// that is not an object for Avro).
    pub fn encode<'a>(&'a mut self, record: &RecordIn<'a>) -> std::result::Result<OutgoingRecord<'a>, EncodeError> {
        if self.uses_id {
            Uuid::new_v4().hyphenated().encode_lower(&mut self.id);
        }
        let mut key = match &self.key {
            KeyEncoder::Uuid => Some(&self.id[..]),
            KeyEncoder::None => None,
            KeyEncoder::Fields(paths) => {
                KeyEncoder::fields_key(paths, record.data, &mut self.key_bytes)?;
                Some(&self.key_bytes[..])
            }
        };
        let timestamp = match self.timestamp {
            Timestamp::ProduceTime => None,
            ref t => t.of(record.emitted_at, record.data)?,
        };
        let deleted = self.tombstones && is_deleted(record.data)?;
        let mut changes = None;
        let value = if deleted {
            None
        } else {
            Some(match &mut self.value {
                Value::Envelope(envelope) => envelope.encode(&self.id, record),
                Value::Json => record.data.as_bytes(),
                Value::V2(v2) => v2.encode(&self.id, record),
                Value::ConnectJson(connect) => connect.encode(record.data).map_err(EncodeError::Unfit)?,
                Value::Debezium(debezium) => {
                    let (event_key, event) = debezium.encode(record.emitted_at, record.data)?;
                    key = Some(event_key);
                    event
                }
                Value::Raw(raw) => raw.encode(record.data)?,
                Value::Protobuf(protobuf) => {
                    let id = std::str::from_utf8(&self.id).expect("UUID text is ASCII");
                    protobuf.encode(id, record.emitted_at, record.data).map_err(EncodeError::Unfit)?
                }
                Value::JsonSchema { framed } => {
                    framed.truncate(registry::FRAME);
                    framed.extend_from_slice(record.data.as_bytes());
                    &framed[..]
                }
                Value::Avro { schema, framed } => {
                    framed.truncate(registry::FRAME);
                    let mut nulled = Vec::new();
                    let id = std::str::from_utf8(&self.id).expect("UUID text is ASCII");
                    avro::encode::record(schema, id, record.emitted_at, record.data, framed, &mut nulled)?;
                    if !nulled.is_empty() {
                        self.nulled += nulled.len() as u64;
                        changes = Some(nulled_changes(&nulled));
                    }
                    &framed[..]
                }
            })
        };
        let headers = self.headers.for_record(record.emitted_at, &self.id, changes);
        Ok(OutgoingRecord { topic: &self.topic, key, value, headers, timestamp })
    }

    /// The message that follows the last record's, if any: the tombstone after a Debezium delete event (its key,
    /// no value, no headers, the same timestamp).
    pub fn follow_up(&self, timestamp: Option<i64>) -> Option<OutgoingRecord<'_>> {
        let Value::Debezium(debezium) = &self.value else { return None };
        let key = debezium.tombstone()?;
        Some(OutgoingRecord { topic: &self.topic, key: Some(key), value: None, headers: &[], timestamp })
    }
}

/// CloudEvents' attributes of a stream's messages, with `cloudevents: true`. The registry formats' values start with
/// Confluent's 5-byte frame: their media types are Avro's and JSON's, read by a registry-aware deserializer.
fn cloudevents(encoding: &Encoding, stream: &Stream) -> Option<CloudEvents> {
    if !encoding.cloudevents {
        return None;
    }
    let template = match encoding.cloudevents_source.trim() {
        "" => DEFAULT_CLOUDEVENTS_SOURCE,
        configured => configured,
    };
    // Without a namespace, its path segment goes too.
    let template = if stream.namespace.is_none() { template.replace("/{namespace}", "") } else { template.into() };
    let content_type = match encoding.format {
        FormatSettings::Avro(_) => "application/avro",
        FormatSettings::Protobuf(_) => "application/protobuf",
        FormatSettings::Raw { .. } => "application/octet-stream",
        _ => "application/json",
    };
    Some(CloudEvents { source: naming::fill(&template, stream.namespace.as_deref(), &stream.name), content_type })
}

/// `airbyte.changes`: Airbyte's record changes (`_airbyte_meta.changes`) for the values the format nulled.
fn nulled_changes(paths: &[String]) -> Vec<u8> {
    let changes: Vec<serde_json::Value> = paths
        .iter()
        .map(|field| serde_json::json!({"field": field, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}))
        .collect();
    serde_json::to_vec(&changes).expect("JSON")
}

fn is_deleted(data: &str) -> std::result::Result<bool, EncodeError> {
    let path = [FieldPath(vec![CDC_DELETED_AT.to_string()])];
    let found = fields::lookup(data, &path)?;
    Ok(found[0].is_some_and(|v| v.get() != "null"))
}

/// One encoder per catalog stream, in catalog order; the registry formats register each stream's schema now.
pub fn encoders(encoding: &Encoding, streams: &[Stream]) -> Result<Vec<StreamEncoder>> {
    let registry = encoding.format.registry().map(Registry::new).transpose()?;
    streams.iter().map(|stream| StreamEncoder::new(encoding, stream, registry.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::java_config;
    use crate::config::Settings;
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
        let mut enc = StreamEncoder::new(&settings(|_| {}).encoding, &stream("s"), None).unwrap();
        let first = enc.encode(&RecordIn { emitted_at: 0, data: "{}", meta: None }).unwrap();
        assert_eq!(first.topic, "t_s");
        let key = std::str::from_utf8(first.key.unwrap()).unwrap().to_string();
        let uuid = Uuid::parse_str(&key).unwrap();
        assert_eq!((uuid.get_version_num(), key.to_lowercase()), (4, key.clone()));
        let value: serde_json::Value = serde_json::from_slice(first.value.unwrap()).unwrap();
        assert_eq!(value["_airbyte_ab_id"], key.as_str());
        assert!(first.headers.is_empty() && first.timestamp.is_none());
        assert_ne!(
            enc.encode(&RecordIn { emitted_at: 0, data: "{}", meta: None }).unwrap().key.unwrap(),
            key.as_bytes()
        );
    }

    #[test]
    fn keys_headers_and_timestamps_from_the_config() {
        let s = settings(|c| {
            c["key"] = json!({"mode": "fields", "fields": ["customer.id"]});
            c["headers"] = json!(true);
            c["timestamp"] = json!({"source": "emitted_at"});
        });
        let mut enc = StreamEncoder::new(&s.encoding, &stream("s"), None).unwrap();
        let out =
            enc.encode(&RecordIn { emitted_at: 1700000000000, data: r#"{"customer":{"id":17}}"#, meta: None }).unwrap();
        assert_eq!(out.key, Some(&b"17"[..]));
        assert_eq!(out.timestamp, Some(1700000000000));
        assert_eq!(out.headers.len(), 3);
        let err = enc.encode(&RecordIn { emitted_at: 1, data: r#"{"customer":{}}"#, meta: None }).err().unwrap();
        assert_eq!(err.to_string(), "key field `customer.id` is missing");
        let s = settings(|c| c["key"] = json!({"mode": "none"}));
        let mut enc = StreamEncoder::new(&s.encoding, &stream("s"), None).unwrap();
        assert!(enc.encode(&RecordIn { emitted_at: 1, data: "{}", meta: None }).unwrap().key.is_none());
    }

    #[test]
    fn json_is_the_data_verbatim() {
        let mut enc =
            StreamEncoder::new(&settings(|c| c["format"] = json!({"type": "json"})).encoding, &stream("s"), None)
                .unwrap();
        let data = r#"{ "id": 1.50, "name":"a" }"#;
        assert_eq!(enc.encode(&RecordIn { emitted_at: 1, data, meta: None }).unwrap().value, Some(data.as_bytes()));
    }

    /// Every format and header that carries the record's id gets a fresh UUIDv4 for each record, whatever the key
    /// (the id is drawn only where something uses it).
    #[test]
    fn the_id_is_drawn_wherever_it_is_carried() {
        let v4 = regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").unwrap();
        let ids = |enc: &mut StreamEncoder, carried: &dyn Fn(&OutgoingRecord) -> Vec<u8>| {
            let mut ids = (0..2).map(|_| {
                let out = enc.encode(&RecordIn { emitted_at: 1, data: r#"{"n":1}"#, meta: None }).unwrap();
                let text = String::from_utf8_lossy(&carried(&out)).into_owned();
                v4.find(&text).unwrap_or_else(|| panic!("no UUIDv4 in {text:?}")).as_str().to_string()
            });
            let (first, second) = (ids.next().unwrap(), ids.next().unwrap());
            assert_ne!(first, second);
        };
        let value = |out: &OutgoingRecord| out.value.unwrap().to_vec();
        let keyless = |value: Value| {
            let mut enc = StreamEncoder { value, key: KeyEncoder::None, ..StreamEncoder::java(&stream("s")) };
            enc.uses_id = enc.id_used();
            enc
        };
        let schema = json!({"properties": {"n": {"type": "integer"}}});
        ids(&mut keyless(Value::Envelope(Envelope::new("s"))), &value);
        ids(&mut keyless(Value::V2(V2::new(&stream("s")))), &value);
        let avro = avro::schema::for_stream(&schema, "s", None);
        ids(&mut keyless(Value::Avro { schema: avro, framed: registry::frame(7) }), &value);
        let mut protobuf = Protobuf::new(&schema, "s", None);
        protobuf.framed_by(registry::frame(7));
        ids(&mut keyless(Value::Protobuf(protobuf)), &value);
        for (headers, name) in [("headers", "airbyte.ab_id"), ("cloudevents", "ce_id")] {
            let s = settings(|c| {
                c["format"] = json!({"type": "json"});
                c["key"] = json!({"mode": "none"});
                c[headers] = json!(true);
            });
            let mut enc = StreamEncoder::new(&s.encoding, &stream("s"), None).unwrap();
            ids(&mut enc, &|out| out.headers.iter().find(|(n, _)| n == name).unwrap().1.clone());
        }
    }

    /// The registry formats, with the id the registry gave: Confluent's framing, then the payload.
    fn registered(value: Value) -> StreamEncoder {
        StreamEncoder { value, ..StreamEncoder::java(&stream("s")) }
    }

    #[test]
    fn json_schema_frames_the_data_with_the_schema_id() {
        let mut enc = registered(Value::JsonSchema { framed: registry::frame(0x01020304) });
        for data in [r#"{"id":1}"#, r#"{"id":22}"#] {
            let value = enc.encode(&RecordIn { emitted_at: 1, data, meta: None }).unwrap().value.unwrap().to_vec();
            assert_eq!(value, [&[0, 1, 2, 3, 4][..], data.as_bytes()].concat());
        }
    }

    #[test]
    fn avro_frames_the_datum_and_reports_what_it_nulled() {
        let schema = avro::schema::for_stream(&json!({"properties": {"n": {"type": "integer"}}}), "s", None);
        let mut enc = registered(Value::Avro { schema, framed: registry::frame(7) });
        let good = enc.encode(&RecordIn { emitted_at: 1, data: r#"{"n":1}"#, meta: None }).unwrap();
        assert_eq!(&good.value.unwrap()[..5], &[0, 0, 0, 0, 7]);
        assert!(good.headers.is_empty());
        let bad = enc.encode(&RecordIn { emitted_at: 1, data: r#"{"n":"abc"}"#, meta: None }).unwrap();
        let (name, changes) = &bad.headers[0];
        assert_eq!(*name, "airbyte.changes");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(changes).unwrap(),
            json!([{"field": "n", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}])
        );
        assert_eq!(enc.nulled, 1);
        // Data that is not an object cannot be a record: the record error policy decides.
        assert!(enc.encode(&RecordIn { emitted_at: 1, data: "[1]", meta: None }).is_err());
    }

    #[test]
    fn dedup_streams_key_by_primary_key_and_delete_with_tombstones() {
        let s = settings(|c| c["key"] = json!({"mode": "uuid"}));
        let mut dedup = stream("s");
        dedup.dedup = true;
        let mut enc = StreamEncoder::new(&s.encoding, &dedup, None).unwrap();
        let live = enc
            .encode(&RecordIn { emitted_at: 1, data: r#"{"id":"a","_ab_cdc_deleted_at":null}"#, meta: None })
            .unwrap();
        assert_eq!((live.key, live.value.is_some()), (Some(&b"a"[..]), true));
        let gone = enc
            .encode(&RecordIn { emitted_at: 1, data: r#"{"id":"a","_ab_cdc_deleted_at":"2024-01-01"}"#, meta: None })
            .unwrap();
        assert_eq!((gone.key, gone.value), (Some(&b"a"[..]), None));
    }
}
