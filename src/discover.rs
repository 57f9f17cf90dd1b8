//! `discover`: the topics a sync can append to, each with the schema of the messages we write.

use crate::config::encoding::FormatSettings;
use crate::config::Settings;
use crate::error::Result;
use crate::kafka::producer::{Options, Producer};
use crate::stop::Stop;
use serde_json::{json, Value};

pub fn run(settings: &Settings, stop: &Stop) -> Result<Vec<Value>> {
    let producer = Producer::new(settings, Options::default(), NoRecords, stop)?;
    let metadata = producer.metadata(settings, settings.metadata_timeout())?;
    let mut topics: Vec<&str> =
        metadata.topics().iter().map(|t| t.name()).filter(|name| !name.starts_with("__")).collect();
    topics.sort_unstable();
    // Every topic takes appends, and keyed upserts (append_dedup: keyed by the stream's primary key; compacted
    // topics keep the latest record per key).
    Ok(topics
        .into_iter()
        .flat_map(|topic| {
            ["append", "append_dedup"].map(
                |mode| json!({"object_name": topic, "sync_mode": mode, "json_schema": value_schema(&settings.encoding.format)}),
            )
        })
        .collect())
}

/// `discover` sends nothing.
struct NoRecords;

impl crate::delivery::DeliveryListener for NoRecords {
    type Token = ();
    fn delivered(&self, _: (), _: std::result::Result<(), crate::delivery::Undelivered>) {}
}

/// JSON schema of the value of the messages the connector writes, in the configured format.
fn value_schema(format: &FormatSettings) -> Value {
    match format {
        FormatSettings::AirbyteJson => envelope_schema(),
        FormatSettings::Json => json!({"type": "object", "description": "The record's data, as the source emitted it"}),
        FormatSettings::AirbyteV2Json => json!({
            "type": "object",
            "required": ["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id", "_airbyte_data"],
            "properties": {
                "_airbyte_raw_id": {"type": "string", "format": "uuid"},
                "_airbyte_extracted_at": {"type": "integer", "description": "emitted_at, epoch ms"},
                "_airbyte_meta": {"type": "object", "properties": {"sync_id": {"type": ["null", "integer"]}, "changes": {"type": "array"}}},
                "_airbyte_generation_id": {"type": "integer"},
                "_airbyte_data": {"type": "object"}
            }
        }),
        FormatSettings::Raw { field, .. } => json!({
            "description": format!("The bytes of the record's field `{field}`, as the source serialised them")
        }),
        FormatSettings::DebeziumJson(_) => json!({
            "type": ["object", "null"],
            "required": ["before", "after", "source", "op", "ts_ms"],
            "description": "Debezium's change event (a null value is the tombstone after a delete), keyed by the primary key",
            "properties": {"before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]},
                           "source": {"type": "object"}, "op": {"type": "string", "enum": ["r", "c", "u", "d"]},
                           "ts_ms": {"type": "integer"}}
        }),
        FormatSettings::ConnectJson => json!({
            "type": "object",
            "required": ["schema", "payload"],
            "description": "Kafka Connect's JsonConverter with schemas.enable=true: the Connect schema of the stream and the record's data",
            "properties": {"schema": {"type": "object"}, "payload": {"type": "object"}}
        }),
        FormatSettings::Avro(_) | FormatSettings::JsonSchema(_) | FormatSettings::Protobuf(_) => json!({
            "type": "object",
            "description": "Confluent wire format: the schema of each stream is in the schema registry"
        }),
    }
}

fn envelope_schema() -> Value {
    json!({
        "type": "object",
        "required": ["_airbyte_ab_id", "_airbyte_stream", "_airbyte_emitted_at", "_airbyte_data"],
        "properties": {
            "_airbyte_ab_id": {"type": "string", "format": "uuid", "description": "Random UUIDv4, also the message key"},
            "_airbyte_stream": {"type": "string", "description": "Name of the Airbyte stream"},
            "_airbyte_emitted_at": {"type": "integer", "description": "When the source emitted the record, epoch ms"},
            "_airbyte_data": {"type": "object", "description": "The record, as the source emitted it"}
        }
    })
}
