//! `debezium_json`: each record becomes a change event as Debezium writes them, `{"before", "after", "source", "op",
//! "ts_ms", "transaction"}`, keyed by the primary key as a JSON object (Debezium's key struct), so that Flink's
//! `debezium-json`, Debezium's `ExtractNewRecordState` and upserting sinks read Airbyte's CDC streams as they read
//! Debezium's own topics.
//!
//! - `op`: `r` (a snapshot read) for a full-refresh stream; in an incremental stream `d` when `_ab_cdc_deleted_at`
//!   is set (the row in `before`, `after` null, then a tombstone), else `op_for_changes` (`c` by default: Airbyte
//!   does not tell an insert from an update, and `u` without a before-image is refused by Flink).
//! - The row: the record's data without the `_ab_cdc_*` columns (unless `keep_cdc_columns`), its values in Kafka
//!   Connect's conventions shared with `connect_json` (what Debezium writes with `time.precision.mode=connect`):
//!   `date` → days since the epoch, `date-time` → epoch milliseconds, `number` → a double.
//! - `source`: connector `airbyte`, `db` and `schema` the namespace, `table` the stream, `ts_ms` from
//!   `_ab_cdc_updated_at` (else `emitted_at`), `snapshot`, and the position columns the stream declares
//!   (`_ab_cdc_lsn` → `lsn`, `_ab_cdc_log_file` → `file`, `_ab_cdc_log_pos` → `pos`, `_ab_cdc_cursor` → `cursor`).
//! - `schemas_enable`: key and value wrapped as Kafka Connect's JsonConverter writes them (`{schema, payload}`).

use super::connect::{self, Kind, Row};
use super::datetime;
use super::error::{EncodeError, Role};
use super::fields::{self, FieldPath};
use super::json_type;
use crate::airbyte::catalog::Stream;
use crate::config::encoding::{ChangeOp, DebeziumSettings};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;

const DELETED_AT: &str = "_ab_cdc_deleted_at";
const UPDATED_AT: &str = "_ab_cdc_updated_at";
/// Airbyte's CDC position columns → Debezium's `source` fields, and the JSON types a column may declare.
const POSITIONS: [(&str, &str, &[&str]); 4] = [
    ("_ab_cdc_lsn", "lsn", &["integer", "number", "string"]),
    ("_ab_cdc_log_file", "file", &["string"]),
    ("_ab_cdc_log_pos", "pos", &["integer", "number"]),
    ("_ab_cdc_cursor", "cursor", &["integer", "number"]),
];

#[derive(Clone)]
pub struct Debezium {
    row: Row,
    /// The primary key's columns: path, name in the key struct (and as JSON), type.
    key: Vec<(FieldPath, String, String, Kind)>,
    /// Position columns the stream declares: column, `,"<source field>":`, the field, type.
    positions: Vec<(&'static str, String, &'static str, Kind)>,
    op: &'static str,
    snapshot: bool,
    keep_cdc_columns: bool,
    tombstones: bool,
    /// `"version":…,"table":…` of `source`, the same for every event.
    source_head: String,
    /// `{"schema":…,"payload":` with `schemas_enable`, else nothing; then `}` closes it.
    value_head: String,
    key_head: String,
    value: Vec<u8>,
    key_bytes: Vec<u8>,
    /// The last event was a delete: its tombstone is due.
    deleted: bool,
}

impl Debezium {
    /// A stream without a primary key, or with a CDC column of the wrong type, is a config error naming it.
    pub fn new(settings: &DebeziumSettings, stream: &Stream) -> Result<Debezium, String> {
        let name = stream.describe();
        if stream.primary_key.is_empty() {
            return Err(format!(
                "stream `{name}` is written as Debezium change events (`format.type: debezium_json`), which are keyed \
                 by the primary key, but the configured catalog gives it no primary key"
            ));
        }
        let properties = &stream.json_schema["properties"];
        let declared = |column: &str, allowed: &[&str]| -> Result<Option<&str>, String> {
            if properties.get(column).is_none() {
                return Ok(None);
            }
            match json_type::single(&properties[column]) {
                Some((t, _)) if allowed.contains(&t) => Ok(Some(t)),
                _ => Err(format!(
                    "stream `{name}`: its CDC column `{column}` is declared {}, but Debezium's change events need {}",
                    properties[column],
                    allowed.join(" or ")
                )),
            }
        };
        declared(DELETED_AT, &["string"])?;
        declared(UPDATED_AT, &["string"])?;
        let mut positions = Vec::new();
        for (column, field, allowed) in POSITIONS {
            if let Some(t) = declared(column, allowed)? {
                let kind = if t == "string" { Kind::String } else { Kind::Int64 };
                positions.push((column, format!(r#","{field}":"#), field, kind));
            }
        }
        let mut row = Row::of(&stream.json_schema);
        if !settings.keep_cdc_columns {
            row.fields.retain(|(name, _)| !name.starts_with("_ab_cdc_"));
        }
        let full = Row::of(&stream.json_schema);
        let mut key = Vec::new();
        for path in &stream.primary_key {
            let name = path.join(".");
            let kind = full.kind_at(path).cloned().ok_or_else(|| {
                format!(
                    "stream `{}`: its primary key column `{name}` is not declared in its JSON schema, so the key \
                     struct of its change events has no type for it",
                    stream.describe()
                )
            })?;
            key.push((FieldPath(path.clone()), name.clone(), json!(name).to_string(), kind));
        }
        let prefix = match &stream.namespace {
            Some(namespace) => format!("airbyte.{namespace}.{}", stream.name),
            None => format!("airbyte.{}", stream.name),
        };
        let namespace = stream.namespace.as_deref();
        let source_head = format!(
            r#""version":{},"connector":"airbyte","name":"airbyte","db":{},"schema":{},"table":{}"#,
            json!(env!("CARGO_PKG_VERSION")),
            json!(namespace.unwrap_or("")),
            json!(namespace),
            json!(stream.name)
        );
        let (value_head, key_head) = if settings.schemas_enable {
            let key_fields: Vec<(String, Kind)> =
                key.iter().map(|(_, name, _, kind)| (name.clone(), kind.clone())).collect();
            let mut key_schema = Row { fields: key_fields }.schema(&format!("{prefix}.Key"), false);
            for field in key_schema["fields"].as_array_mut().expect("a struct's fields") {
                field["optional"] = json!(false);
            }
            let envelope = envelope_schema(&row, &positions, &prefix);
            (format!(r#"{{"schema":{envelope},"payload":"#), format!(r#"{{"schema":{key_schema},"payload":"#))
        } else {
            (String::new(), String::new())
        };
        Ok(Debezium {
            row,
            key,
            positions,
            op: match settings.op_for_changes {
                ChangeOp::Create => "c",
                ChangeOp::Update => "u",
            },
            snapshot: stream.full_refresh,
            keep_cdc_columns: settings.keep_cdc_columns,
            tombstones: settings.tombstones_on_delete,
            source_head,
            value_head,
            key_head,
            value: Vec::new(),
            key_bytes: Vec::new(),
            deleted: false,
        })
    }

    /// The key and value of one record's change event.
    pub fn encode(&mut self, emitted_at: i64, data: &str) -> Result<(&[u8], &[u8]), EncodeError> {
        self.deleted = false;
        let entries = connect::object(data).map_err(EncodeError::Unfit)?;
        let find = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, value)| *value);
        let deleted = !self.snapshot && text(find(DELETED_AT), DELETED_AT)?.is_some();
        let changed_at = match text(find(UPDATED_AT), UPDATED_AT)? {
            Some(at) => datetime::micros(&at)
                .map(|micros| micros.div_euclid(1000))
                .ok_or_else(|| EncodeError::Unfit(format!("CDC column `{UPDATED_AT}` is not a date-time: {at:?}")))?,
            None => emitted_at,
        };
        // The key: the primary key's columns, as a struct.
        let key = &mut self.key_bytes;
        key.clear();
        key.extend_from_slice(self.key_head.as_bytes());
        key.push(b'{');
        for (i, (path, name, quoted, kind)) in self.key.iter().enumerate() {
            let value = match &path.0[..] {
                [column] => find(column),
                _ => fields::lookup(data, std::slice::from_ref(path))?.pop().flatten().map(RawValue::get),
            };
            let value = value.ok_or_else(|| EncodeError::Missing(Role::Key, path.display()))?;
            if value == "null" {
                return Err(EncodeError::Null(Role::Key, path.display()));
            }
            if i > 0 {
                key.push(b',');
            }
            key.extend_from_slice(quoted.as_bytes());
            key.push(b':');
            connect::write_value(value, kind, &|| name.clone(), key).map_err(EncodeError::Unfit)?;
        }
        key.push(b'}');
        close(key, &self.key_head);
        // The event.
        let out = &mut self.value;
        out.clear();
        out.extend_from_slice(self.value_head.as_bytes());
        let keep = |name: &str| self.keep_cdc_columns || !name.starts_with("_ab_cdc_");
        let op = match (self.snapshot, deleted) {
            (true, _) => "r",
            (false, true) => "d",
            (false, false) => self.op,
        };
        out.extend_from_slice(br#"{"before":"#);
        if deleted {
            self.row.write_payload(&entries, keep, out).map_err(EncodeError::Unfit)?;
            out.extend_from_slice(br#","after":null"#);
        } else {
            out.extend_from_slice(br#"null,"after":"#);
            self.row.write_payload(&entries, keep, out).map_err(EncodeError::Unfit)?;
        }
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(br#","source":{"#);
        out.extend_from_slice(self.source_head.as_bytes());
        out.extend_from_slice(br#","ts_ms":"#);
        out.extend_from_slice(number.format(changed_at).as_bytes());
        out.extend_from_slice(if self.snapshot { br#","snapshot":"true""# } else { br#","snapshot":"false""# });
        for (column, field, _, kind) in &self.positions {
            out.extend_from_slice(field.as_bytes());
            match find(column) {
                Some(value) => {
                    connect::write_value(value, kind, &|| column.to_string(), out).map_err(EncodeError::Unfit)?
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(br#"},"op":""#);
        out.extend_from_slice(op.as_bytes());
        out.extend_from_slice(br#"","ts_ms":"#);
        out.extend_from_slice(number.format(emitted_at).as_bytes());
        out.extend_from_slice(br#","transaction":null}"#);
        close(out, &self.value_head);
        self.deleted = deleted && self.tombstones;
        Ok((&self.key_bytes, &self.value))
    }

    /// After a delete event: the key of its tombstone.
    pub fn tombstone(&self) -> Option<&[u8]> {
        self.deleted.then_some(&self.key_bytes[..])
    }
}

/// A CDC column's text, `None` when missing or null.
fn text<'a>(value: Option<&'a str>, column: &str) -> Result<Option<Cow<'a, str>>, EncodeError> {
    match value {
        None | Some("null") => Ok(None),
        Some(json) => fields::string(json)
            .map(Some)
            .ok_or_else(|| EncodeError::Unfit(format!("CDC column `{column}` is not a string: {json}"))),
    }
}

/// Closes the `{schema, payload}` wrapping `head` opened, if any.
fn close(out: &mut Vec<u8>, head: &str) {
    if !head.is_empty() {
        out.push(b'}');
    }
}

/// The Connect schema of the envelope, as Debezium's connectors declare it (`<prefix>.Envelope`, which is how
/// `ExtractNewRecordState` recognises a change event).
fn envelope_schema(row: &Row, positions: &[(&str, String, &str, Kind)], prefix: &str) -> Value {
    let field = |t: &str, name: &str, optional: bool| json!({"type": t, "optional": optional, "field": name});
    let mut source = vec![
        field("string", "version", false),
        field("string", "connector", false),
        field("string", "name", false),
        field("string", "db", false),
        field("string", "schema", true),
        field("string", "table", false),
        field("int64", "ts_ms", false),
        field("string", "snapshot", true),
    ];
    for (_, _, name, kind) in positions {
        let mut position = connect::connect_schema(kind);
        position["field"] = json!(name);
        source.push(position);
    }
    let mut before = row.schema(&format!("{prefix}.Value"), true);
    before["field"] = json!("before");
    let mut after = before.clone();
    after["field"] = json!("after");
    let transaction = json!({"type": "struct", "optional": true, "name": "event.block", "version": 1,
        "field": "transaction", "fields": [field("string", "id", false), field("int64", "total_order", false),
        field("int64", "data_collection_order", false)]});
    json!({"type": "struct", "optional": false, "name": format!("{prefix}.Envelope"), "version": 1, "fields": [
        before, after,
        {"type": "struct", "optional": false, "name": "airbyte.Source", "field": "source", "fields": source},
        field("string", "op", false),
        field("int64", "ts_ms", true),
        transaction]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(full_refresh: bool, schema: Value) -> Stream {
        Stream {
            name: "users".into(),
            namespace: Some("public".into()),
            primary_key: vec![vec!["id".into()]],
            full_refresh,
            json_schema: schema,
            ..Stream::default()
        }
    }

    fn settings(change: impl FnOnce(&mut DebeziumSettings)) -> DebeziumSettings {
        let mut s = DebeziumSettings {
            op_for_changes: ChangeOp::Create,
            keep_cdc_columns: false,
            tombstones_on_delete: true,
            schemas_enable: false,
        };
        change(&mut s);
        s
    }

    fn cdc_schema() -> Value {
        json!({"properties": {"id": {"type": "integer"}, "name": {"type": ["null", "string"]},
            "day": {"type": "string", "format": "date"},
            "_ab_cdc_updated_at": {"type": "string"}, "_ab_cdc_deleted_at": {"type": ["null", "string"]},
            "_ab_cdc_lsn": {"type": "number"}}})
    }

    fn event(d: &mut Debezium, data: &str) -> (Value, Value) {
        let (key, value) = d.encode(1_700_000_000_000, data).unwrap();
        (serde_json::from_slice(key).unwrap(), serde_json::from_slice(value).unwrap())
    }

    /// Written out from Debezium's documentation of the envelope (PostgreSQL connector, JSON without schemas).
    #[test]
    fn change_events_by_op() {
        let mut d = Debezium::new(&settings(|_| {}), &stream(false, cdc_schema())).unwrap();
        let source = |ts: i64, lsn: i64| {
            json!({"version": env!("CARGO_PKG_VERSION"), "connector": "airbyte",
            "name": "airbyte", "db": "public", "schema": "public", "table": "users", "ts_ms": ts,
            "snapshot": "false", "lsn": lsn})
        };
        let (key, value) = event(
            &mut d,
            r#"{"id":1,"name":"Ada","day":"2024-01-02","_ab_cdc_updated_at":"2024-01-01T00:00:01.5Z","_ab_cdc_deleted_at":null,"_ab_cdc_lsn":42}"#,
        );
        assert_eq!(key, json!({"id": 1}));
        assert_eq!(
            value,
            json!({"before": null, "after": {"id": 1, "name": "Ada", "day": 19724},
            "source": source(1_704_067_201_500, 42), "op": "c", "ts_ms": 1_700_000_000_000_i64, "transaction": null})
        );
        assert!(d.tombstone().is_none());
        let (key, value) = event(
            &mut d,
            r#"{"id":1,"name":null,"_ab_cdc_updated_at":"2024-01-01T00:00:02Z","_ab_cdc_deleted_at":"2024-01-01T00:00:02Z","_ab_cdc_lsn":43}"#,
        );
        assert_eq!(key, json!({"id": 1}));
        assert_eq!(value["op"], "d");
        assert_eq!((&value["before"], &value["after"]), (&json!({"id": 1, "name": null}), &Value::Null));
        assert_eq!(d.tombstone(), Some(&br#"{"id":1}"#[..]), "a tombstone follows the delete");
        let mut u =
            Debezium::new(&settings(|s| s.op_for_changes = ChangeOp::Update), &stream(false, cdc_schema())).unwrap();
        assert_eq!(event(&mut u, r#"{"id":2}"#).1["op"], "u");
        let mut quiet =
            Debezium::new(&settings(|s| s.tombstones_on_delete = false), &stream(false, cdc_schema())).unwrap();
        event(&mut quiet, r#"{"id":1,"_ab_cdc_deleted_at":"2024-01-01T00:00:02Z"}"#);
        assert!(quiet.tombstone().is_none());
    }

    #[test]
    fn full_refresh_rows_are_snapshot_reads_and_cdc_columns_may_stay() {
        let mut d = Debezium::new(&settings(|s| s.keep_cdc_columns = true), &stream(true, cdc_schema())).unwrap();
        let (_, value) = event(&mut d, r#"{"id":3,"_ab_cdc_deleted_at":"2024-01-01T00:00:02Z"}"#);
        assert_eq!((value["op"].as_str(), value["source"]["snapshot"].as_str()), (Some("r"), Some("true")));
        assert_eq!(value["after"], json!({"id": 3, "_ab_cdc_deleted_at": "2024-01-01T00:00:02Z"}));
        assert_eq!(value["source"]["ts_ms"], 1_700_000_000_000_i64, "no _ab_cdc_updated_at: emitted_at");
        assert!(d.tombstone().is_none());
    }

    /// Written out from Kafka Connect's JsonConverter envelope (`schemas.enable=true`) and Debezium's names.
    #[test]
    fn schemas_enable_wraps_key_and_value() {
        let mut d = Debezium::new(&settings(|s| s.schemas_enable = true), &stream(false, cdc_schema())).unwrap();
        let (key, value) = event(&mut d, r#"{"id":1,"_ab_cdc_lsn":7}"#);
        assert_eq!(
            key,
            json!({"schema": {"type": "struct", "optional": false, "name": "airbyte.public.users.Key",
            "fields": [{"type": "int64", "optional": false, "field": "id"}]}, "payload": {"id": 1}})
        );
        let schema = &value["schema"];
        assert_eq!(
            (schema["name"].as_str(), schema["type"].as_str()),
            (Some("airbyte.public.users.Envelope"), Some("struct"))
        );
        let fields: Vec<&str> =
            schema["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["before", "after", "source", "op", "ts_ms", "transaction"]);
        let after = &schema["fields"][1];
        assert_eq!(after["name"], "airbyte.public.users.Value");
        let row: Vec<&str> = after["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(row, ["id", "name", "day"], "no _ab_cdc_* columns");
        assert_eq!(
            schema["fields"][2]["fields"].as_array().unwrap().last().unwrap(),
            &json!({"type": "int64", "optional": true, "field": "lsn"})
        );
        assert_eq!(value["payload"]["after"], json!({"id": 1}));
    }

    #[test]
    fn refusals() {
        let no_key = Stream { primary_key: vec![], ..stream(false, cdc_schema()) };
        let err = Debezium::new(&settings(|_| {}), &no_key).err().unwrap();
        assert!(err.contains("stream `public.users`") && err.contains("no primary key"), "{err}");
        let mut schema = cdc_schema();
        schema["properties"]["_ab_cdc_log_pos"] = json!({"type": "string"});
        let err = Debezium::new(&settings(|_| {}), &stream(false, schema)).err().unwrap();
        assert!(err.contains("stream `public.users`") && err.contains("`_ab_cdc_log_pos`"), "{err}");
        let undeclared = Stream { primary_key: vec![vec!["zz".into()]], ..stream(false, cdc_schema()) };
        let err = Debezium::new(&settings(|_| {}), &undeclared).err().unwrap();
        assert!(err.contains("primary key column `zz` is not declared"), "{err}");
        // A record whose values do not fit: rejected, by the record-errors policy.
        let mut d = Debezium::new(&settings(|_| {}), &stream(false, cdc_schema())).unwrap();
        let refused = |d: &mut Debezium, data: &str| d.encode(1, data).err().unwrap().to_string();
        assert_eq!(refused(&mut d, r#"{"name":"x"}"#), "key field `id` is missing");
        assert_eq!(refused(&mut d, r#"{"id":null}"#), "key field `id` is null");
        assert!(refused(&mut d, r#"{"id":1,"_ab_cdc_deleted_at":5}"#).contains("`_ab_cdc_deleted_at` is not a string"));
        assert!(refused(&mut d, r#"{"id":1,"_ab_cdc_updated_at":"soon"}"#).contains("not a date-time"));
        assert!(refused(&mut d, r#"{"id":1,"day":"x"}"#).contains("field `day` is not a date"));
        assert!(refused(&mut d, "[1]").contains("not a JSON object"));
    }
}
