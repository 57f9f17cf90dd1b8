//! The `airbyte_v2_json` format: the record with the metadata of Airbyte's current destinations —
//! `{"_airbyte_raw_id":"<uuid>","_airbyte_extracted_at":<emitted_at ms>,"_airbyte_meta":{"sync_id":<n|null>,
//! "changes":[...]},"_airbyte_generation_id":<n>,"_airbyte_data":<data>}`. `changes` are the record's own
//! (`record.meta.changes`, as the source reported them); `sync_id` and `generation_id` come from the configured
//! catalog (null and 0 when it has none).

use super::fields::{self, FieldPath};
use super::record::RecordIn;
use crate::airbyte::catalog::Stream;

#[derive(Clone)]
pub struct V2 {
    /// `","_airbyte_extracted_at":` — then emitted_at.
    meta_head: Vec<u8>,
    /// `,"_airbyte_generation_id":<n>,"_airbyte_data":` — then data.
    tail: Vec<u8>,
    value: Vec<u8>,
}

impl V2 {
    pub fn new(stream: &Stream) -> V2 {
        let sync_id = stream.sync_id.map_or("null".to_string(), |n| n.to_string());
        V2 {
            meta_head: format!(",\"_airbyte_meta\":{{\"sync_id\":{sync_id},\"changes\":").into_bytes(),
            tail: format!("}},\"_airbyte_generation_id\":{},\"_airbyte_data\":", stream.generation_id.unwrap_or(0))
                .into_bytes(),
            value: Vec::with_capacity(4096),
        }
    }

    pub fn encode(&mut self, id: &[u8], record: &RecordIn<'_>) -> &[u8] {
        let value = &mut self.value;
        value.clear();
        value.extend_from_slice(br#"{"_airbyte_raw_id":""#);
        value.extend_from_slice(id);
        value.extend_from_slice(br#"","_airbyte_extracted_at":"#);
        value.extend_from_slice(itoa::Buffer::new().format(record.emitted_at).as_bytes());
        value.extend_from_slice(&self.meta_head);
        value.extend_from_slice(changes(record.meta).as_bytes());
        value.extend_from_slice(&self.tail);
        value.extend_from_slice(record.data.as_bytes());
        value.push(b'}');
        value
    }
}

/// The record's `meta.changes` as JSON text, `[]` when it has none.
fn changes(meta: Option<&str>) -> &str {
    let Some(meta) = meta else { return "[]" };
    let path = [FieldPath(vec!["changes".to_string()])];
    match fields::lookup(meta, &path) {
        Ok(found) => found[0].map(|v| v.get()).filter(|v| v.starts_with('[')).unwrap_or("[]"),
        Err(_) => "[]",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_fields_and_types() {
        let stream = Stream { name: "s".into(), sync_id: Some(42), generation_id: Some(3), ..Stream::default() };
        let mut v2 = V2::new(&stream);
        let meta = r#"{"changes":[{"field":"x","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}"#;
        let record = RecordIn { emitted_at: 1700000000000, data: r#"{"a":1}"#, meta: Some(meta) };
        let value: serde_json::Value = serde_json::from_slice(v2.encode(b"the-id", &record)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"_airbyte_raw_id": "the-id", "_airbyte_extracted_at": 1700000000000_i64,
                "_airbyte_meta": {"sync_id": 42, "changes": [{"field": "x", "change": "TRUNCATED", "reason": "SOURCE_FIELD_SIZE_LIMITATION"}]},
                "_airbyte_generation_id": 3, "_airbyte_data": {"a": 1}})
        );
        let mut bare = V2::new(&Stream::default());
        let value: serde_json::Value =
            serde_json::from_slice(bare.encode(b"i", &RecordIn { emitted_at: 1, data: "{}", meta: None })).unwrap();
        assert_eq!(value["_airbyte_meta"], serde_json::json!({"sync_id": null, "changes": []}));
        assert_eq!(value["_airbyte_generation_id"], 0);
    }
}
