//! The record seam: how one Airbyte RECORD becomes one Kafka message. Each stream gets its encoder once, at
//! startup, from the config and the catalog (registering its schema, for the registry formats); the write path
//! only calls [`StreamEncoder::encode`]. The key (`key`), the value (`format`: the Java envelope, the record's
//! data, Airbyte v2 JSON, Avro or JSON Schema with a schema registry), the headers (`headers`) and the timestamp
//! (`timestamp`) are each decided in their own module.

pub mod avro;
pub mod envelope;
pub mod fields;
pub mod headers;
pub mod key;
pub mod registry;
pub mod timestamp;
pub mod v2;

use crate::airbyte::catalog::Stream;
use crate::config::Settings;
use crate::error::{Error, Result};
use avro::schema::Record;
use envelope::Envelope;
use fields::FieldPath;
use headers::Headers;
use key::KeyEncoder;
use registry::{Registry, RegistrySettings};
use serde::Deserialize;
use timestamp::Timestamp;
use uuid::Uuid;
use v2::V2;

/// `format` in the config: what the value of each message is.
#[derive(Debug, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FormatSettings {
    /// The Java connector's envelope, byte for byte.
    #[default]
    AirbyteJson,
    /// The record's `data`, verbatim.
    Json,
    /// The record with Airbyte's current (v2) metadata.
    AirbyteV2Json,
    /// Avro in Confluent's wire format, the schema registered.
    Avro(RegistrySettings),
    /// JSON in Confluent's wire format, with its JSON schema registered.
    JsonSchema(RegistrySettings),
}

impl FormatSettings {
    pub fn registry(&self) -> Option<&RegistrySettings> {
        match self {
            FormatSettings::Avro(r) | FormatSettings::JsonSchema(r) => Some(r),
            _ => None,
        }
    }
}

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
    /// The record's `meta`, if any (its `changes` go into Airbyte v2 metadata).
    pub meta: Option<&'a [u8]>,
}

impl RecordIn<'_> {
    fn text(&self) -> std::result::Result<&str, String> {
        std::str::from_utf8(self.data).map_err(|e| format!("the record's data is not UTF-8: {e}"))
    }
}

/// The value of each message of a stream.
enum Value {
    Envelope(Envelope),
    Json,
    V2(V2),
    /// Avro datums of the stream's schema, framed with its registry id.
    Avro {
        schema: Record,
        framed: Vec<u8>,
    },
    /// The data, framed with the id of the stream's JSON schema.
    JsonSchema {
        framed: Vec<u8>,
    },
}

/// Confluent's wire format: magic byte 0, then the schema id, 4 bytes big-endian.
fn frame(id: u32) -> Vec<u8> {
    let mut framed = Vec::with_capacity(4096);
    framed.push(0);
    framed.extend_from_slice(&id.to_be_bytes());
    framed
}

/// Registers a stream's schema under the subject its strategy names (`record`: the schema's record name or
/// title) and returns the start of its messages in the wire format.
fn register(
    registry: &Registry,
    settings: &RegistrySettings,
    stream: &Stream,
    record: &str,
    schema: &str,
    schema_type: &str,
    kind: &str,
) -> Result<Vec<u8>> {
    let subject = settings.subject_name_strategy.subject(&stream.topic, record);
    let id = registry.register(&subject, schema, schema_type)?;
    tracing::info!("stream `{}`: {kind} schema registered as subject `{subject}`, id {id}", stream.describe());
    Ok(frame(id))
}

/// Encodes the records of one stream, into buffers reused from record to record.
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
    key_bytes: Vec<u8>,
    /// Values the format had to null (Avro), for the summary.
    pub nulled: u64,
}

/// The field Airbyte's CDC sources set on a deleted row.
const CDC_DELETED_AT: &str = "_ab_cdc_deleted_at";

impl StreamEncoder {
    /// `registry`: where the registry formats register the stream's schema (before any record is read).
    pub fn new(settings: &Settings, stream: &Stream, registry: Option<&Registry>) -> Result<StreamEncoder> {
        let timestamp = Timestamp::new(&settings.timestamp).map_err(Error::Config)?;
        let value = match (&settings.format, registry) {
            (FormatSettings::AirbyteJson, _) => Value::Envelope(Envelope::new(&stream.name)),
            (FormatSettings::Json, _) => Value::Json,
            (FormatSettings::AirbyteV2Json, _) => Value::V2(V2::new(stream)),
            (FormatSettings::Avro(r), Some(registry)) => {
                let schema = avro::schema::for_stream(&stream.json_schema, &stream.name, stream.namespace.as_deref());
                let schema_text = schema.to_json().to_string();
                let framed = register(registry, r, stream, &schema.full_name(), &schema_text, "AVRO", "Avro")?;
                Value::Avro { schema, framed }
            }
            (FormatSettings::JsonSchema(r), Some(registry)) => {
                let (title, schema) = json_schema_of(stream);
                Value::JsonSchema {
                    framed: register(registry, r, stream, &title, &schema.to_string(), "JSON", "JSON")?,
                }
            }
            (_, None) => return Err(Error::System("a registry format without a registry".into())),
        };
        Ok(StreamEncoder {
            topic: stream.topic.clone(),
            key: KeyEncoder::for_stream(&settings.key, stream)?,
            value,
            headers: Headers::new(stream, settings.headers),
            timestamp,
            tombstones: stream.dedup,
            id: [0; 36],
            key_bytes: Vec::new(),
            nulled: 0,
        })
    }

    /// The Java connector's encoding: UUID key, envelope, no headers, the producer's clock.
    pub fn java(stream: &Stream) -> StreamEncoder {
        StreamEncoder {
            topic: stream.topic.clone(),
            key: KeyEncoder::Uuid,
            value: Value::Envelope(Envelope::new(&stream.name)),
            headers: Headers::new(stream, false),
            timestamp: Timestamp::ProduceTime,
            tombstones: false,
            id: [0; 36],
            key_bytes: Vec::new(),
            nulled: 0,
        }
    }

    /// The message of one record, or why it cannot be made (a key or timestamp field missing or unusable, data
    /// that is not an object for Avro).
    pub fn encode<'a>(&'a mut self, record: &RecordIn<'a>) -> std::result::Result<OutgoingRecord<'a>, String> {
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
        let mut changes = None;
        let value = if deleted {
            None
        } else {
            Some(match &mut self.value {
                Value::Envelope(envelope) => envelope.encode(&self.id, record),
                Value::Json => record.data,
                Value::V2(v2) => v2.encode(&self.id, record),
                Value::JsonSchema { framed } => {
                    framed.truncate(5);
                    framed.extend_from_slice(record.data);
                    &framed[..]
                }
                Value::Avro { schema, framed } => {
                    framed.truncate(5);
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
}

/// `airbyte.changes`: Airbyte's record changes (`_airbyte_meta.changes`) for the values the format nulled.
fn nulled_changes(paths: &[String]) -> Vec<u8> {
    let changes: Vec<serde_json::Value> = paths
        .iter()
        .map(|field| serde_json::json!({"field": field, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}))
        .collect();
    serde_json::to_vec(&changes).expect("JSON")
}

/// The JSON schema registered for a stream (its catalog schema, with a `title` for the record-name strategies):
/// (title, schema).
fn json_schema_of(stream: &Stream) -> (String, serde_json::Value) {
    let mut schema = match &stream.json_schema {
        serde_json::Value::Object(o) if !o.is_empty() => serde_json::Value::Object(o.clone()),
        _ => serde_json::json!({"type": "object"}),
    };
    inline_well_known_types(&mut schema);
    let title = match schema["title"].as_str() {
        Some(t) => t.to_string(),
        None => {
            let name = avro::schema::identifier(&stream.name);
            let title = stream
                .namespace
                .as_deref()
                .map_or(name.clone(), |ns| format!("{}.{name}", avro::schema::identifier(ns)));
            schema["title"] = title.clone().into();
            title
        }
    };
    (title, schema)
}

/// Airbyte's `{"$ref": "WellKnownTypes.json#/definitions/<T>"}` replaced by what `<T>` defines: a registry cannot
/// resolve a file it was never given, and refuses the schema.
fn inline_well_known_types(schema: &mut serde_json::Value) {
    use serde_json::json;
    match schema {
        serde_json::Value::Object(o) => {
            let known = o
                .get("$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix("WellKnownTypes.json#/definitions/"));
            let definition = match known {
                Some("String") => json!({"type": "string"}),
                Some("BinaryData") => json!({"type": "string", "contentEncoding": "base64"}),
                Some("Boolean") => json!({"type": "boolean"}),
                Some("Integer") => json!({"type": "integer"}),
                Some("Number") => json!({"type": "number"}),
                Some("Date") => json!({"type": "string", "format": "date"}),
                Some("TimestampWithTimezone") => {
                    json!({"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"})
                }
                Some("TimestampWithoutTimezone") => {
                    json!({"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"})
                }
                Some("TimeWithTimezone") => {
                    json!({"type": "string", "format": "time", "airbyte_type": "time_with_timezone"})
                }
                Some("TimeWithoutTimezone") => {
                    json!({"type": "string", "format": "time", "airbyte_type": "time_without_timezone"})
                }
                _ => return o.values_mut().for_each(inline_well_known_types),
            };
            o.remove("$ref");
            if let serde_json::Value::Object(d) = definition {
                o.extend(d);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(inline_well_known_types),
        _ => {}
    }
}

fn is_deleted(data: &str) -> std::result::Result<bool, String> {
    let path = [FieldPath(vec![CDC_DELETED_AT.to_string()])];
    let found = fields::lookup(data, &path).map_err(|e| format!("the record's data cannot be read: {e}"))?;
    Ok(found[0].is_some_and(|v| v.get() != "null"))
}

/// One encoder per catalog stream, in catalog order; the registry formats register each stream's schema now.
pub fn encoders(settings: &Settings, streams: &[Stream]) -> Result<Vec<StreamEncoder>> {
    let registry = settings.format.registry().map(Registry::new).transpose()?;
    streams.iter().map(|stream| StreamEncoder::new(settings, stream, registry.as_ref())).collect()
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
        let mut enc = StreamEncoder::new(&settings(|_| {}), &stream("s"), None).unwrap();
        let first = enc.encode(&RecordIn { emitted_at: 0, data: b"{}", meta: None }).unwrap();
        assert_eq!(first.topic, "t_s");
        let key = std::str::from_utf8(first.key.unwrap()).unwrap().to_string();
        let uuid = Uuid::parse_str(&key).unwrap();
        assert_eq!((uuid.get_version_num(), key.to_lowercase()), (4, key.clone()));
        let value: serde_json::Value = serde_json::from_slice(first.value.unwrap()).unwrap();
        assert_eq!(value["_airbyte_ab_id"], key.as_str());
        assert!(first.headers.is_empty() && first.timestamp.is_none());
        assert_ne!(
            enc.encode(&RecordIn { emitted_at: 0, data: b"{}", meta: None }).unwrap().key.unwrap(),
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
        let mut enc = StreamEncoder::new(&s, &stream("s"), None).unwrap();
        let out = enc
            .encode(&RecordIn { emitted_at: 1700000000000, data: br#"{"customer":{"id":17}}"#, meta: None })
            .unwrap();
        assert_eq!(out.key, Some(&b"17"[..]));
        assert_eq!(out.timestamp, Some(1700000000000));
        assert_eq!(out.headers.len(), 3);
        let err = enc.encode(&RecordIn { emitted_at: 1, data: br#"{"customer":{}}"#, meta: None }).err().unwrap();
        assert_eq!(err, "key field `customer.id` is missing");
        let s = settings(|c| c["key"] = json!({"mode": "none"}));
        let mut enc = StreamEncoder::new(&s, &stream("s"), None).unwrap();
        assert!(enc.encode(&RecordIn { emitted_at: 1, data: b"{}", meta: None }).unwrap().key.is_none());
    }

    #[test]
    fn json_is_the_data_verbatim() {
        let mut enc =
            StreamEncoder::new(&settings(|c| c["format"] = json!({"type": "json"})), &stream("s"), None).unwrap();
        let data = br#"{ "id": 1.50, "name":"a" }"#;
        assert_eq!(enc.encode(&RecordIn { emitted_at: 1, data, meta: None }).unwrap().value, Some(&data[..]));
    }

    /// The registry formats, with the id the registry gave: Confluent's framing, then the payload.
    fn registered(value: Value) -> StreamEncoder {
        StreamEncoder { value, ..StreamEncoder::java(&stream("s")) }
    }

    #[test]
    fn json_schema_frames_the_data_with_the_schema_id() {
        let mut enc = registered(Value::JsonSchema { framed: frame(0x01020304) });
        for data in [&br#"{"id":1}"#[..], br#"{"id":22}"#] {
            let value = enc.encode(&RecordIn { emitted_at: 1, data, meta: None }).unwrap().value.unwrap().to_vec();
            assert_eq!(value, [&[0, 1, 2, 3, 4][..], data].concat());
        }
    }

    #[test]
    fn avro_frames_the_datum_and_reports_what_it_nulled() {
        let schema = avro::schema::for_stream(&json!({"properties": {"n": {"type": "integer"}}}), "s", None);
        let mut enc = registered(Value::Avro { schema, framed: frame(7) });
        let good = enc.encode(&RecordIn { emitted_at: 1, data: br#"{"n":1}"#, meta: None }).unwrap();
        assert_eq!(&good.value.unwrap()[..5], &[0, 0, 0, 0, 7]);
        assert!(good.headers.is_empty());
        let bad = enc.encode(&RecordIn { emitted_at: 1, data: br#"{"n":"abc"}"#, meta: None }).unwrap();
        let (name, changes) = &bad.headers[0];
        assert_eq!(*name, "airbyte.changes");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(changes).unwrap(),
            json!([{"field": "n", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}])
        );
        assert_eq!(enc.nulled, 1);
        // Data that is not an object cannot be a record: the record error policy decides.
        assert!(enc.encode(&RecordIn { emitted_at: 1, data: b"[1]", meta: None }).is_err());
    }

    #[test]
    fn registered_json_schemas_carry_no_reference_a_registry_cannot_resolve() {
        let mut s = stream("s");
        s.json_schema = json!({"type": "object", "properties": {
            "at": {"$ref": "WellKnownTypes.json#/definitions/TimestampWithTimezone"},
            "n": {"oneOf": [{"$ref": "WellKnownTypes.json#/definitions/Integer"}, {"type": "null"}]},
            "local": {"$ref": "#/definitions/x"}}});
        let (title, schema) = json_schema_of(&s);
        assert_eq!(title, "s");
        assert_eq!(
            schema["properties"],
            json!({"at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                   "n": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
                   "local": {"$ref": "#/definitions/x"}})
        );
    }

    #[test]
    fn dedup_streams_key_by_primary_key_and_delete_with_tombstones() {
        let s = settings(|c| c["key"] = json!({"mode": "uuid"}));
        let mut dedup = stream("s");
        dedup.dedup = true;
        let mut enc = StreamEncoder::new(&s, &dedup, None).unwrap();
        let live = enc
            .encode(&RecordIn { emitted_at: 1, data: br#"{"id":"a","_ab_cdc_deleted_at":null}"#, meta: None })
            .unwrap();
        assert_eq!((live.key, live.value.is_some()), (Some(&b"a"[..]), true));
        let gone = enc
            .encode(&RecordIn { emitted_at: 1, data: br#"{"id":"a","_ab_cdc_deleted_at":"2024-01-01"}"#, meta: None })
            .unwrap();
        assert_eq!((gone.key, gone.value), (Some(&b"a"[..]), None));
    }
}
