"""`debezium_json`, black box, read by the readers CDC pipelines use: Flink's own debezium-json deserializer
(flink-json's DebeziumJsonDeserializationSchema, scripts/flink-debezium) and Debezium's own ExtractNewRecordState
transform in a Kafka Connect worker (scripts/kafka-connect --debezium). The expected rows are written out by hand
from each reader's documented printing (Flink's RowData text, Connect's Struct text); nothing here asks the
connector how it encodes. Debezium's JDBC sink connector is not on Maven Central, so the database end of such a
pipeline is not shown."""

import base64
import json
import subprocess

from conftest import REPO, configured_catalog, dataset, read_back
from test_formats import avro_name, config_for, read_by_kafka_connect, records_of, write

SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": ["null", "string"]}, "day": {"type": "string", "format": "date"},
    "_ab_cdc_updated_at": {"type": "string"}, "_ab_cdc_deleted_at": {"type": ["null", "string"]},
    "_ab_cdc_lsn": {"type": "number"}}}
ROW = "ROW<`id` BIGINT, `name` STRING, `day` INT>"


def cdc_catalog():
    catalog = configured_catalog({"streams": [{"name": "users", "namespace": "public", "json_schema": SCHEMA}]},
                                 sync_mode="incremental")
    catalog["streams"][0]["primary_key"] = [["id"]]
    return catalog


def cdc_lines():
    """Insert 1 and 2, update 1, delete 2, as Airbyte's Postgres CDC source writes them (LSN-ordered)."""
    def line(data, lsn, deleted=None):
        data = {**data, "_ab_cdc_updated_at": f"2024-01-01T00:00:0{lsn}Z", "_ab_cdc_deleted_at": deleted,
                "_ab_cdc_lsn": lsn}
        return json.dumps({"type": "RECORD", "record": {"namespace": "public", "stream": "users",
                                                        "emitted_at": 1700000000000 + lsn, "data": data}})
    return [line({"id": 1, "name": "Ada", "day": "2024-01-02"}, 1), line({"id": 2, "name": "Bob"}, 2),
            json.dumps({"type": "STATE", "state": {"data": {"lsn": 2}}}),
            line({"id": 1, "name": "Ada Lovelace", "day": "2024-01-03"}, 3),
            line({"id": 2, "name": "Bob"}, 4, deleted="2024-01-01T00:00:04Z"),
            json.dumps({"type": "STATE", "state": {"data": {"lsn": 4}}})]


def flink(row_type, values, schema_include=False):
    """Flink's rows of each message value (None: a tombstone)."""
    stdin = "".join((base64.b64encode(v).decode() if v is not None else "") + "\n" for v in values)
    args = [str(REPO / "scripts" / "flink-debezium"), row_type] + (["--schema-include"] if schema_include else [])
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_cdc_sequence_read_by_flinks_debezium_json(tmp_path, broker):
    """Insert, update, delete of the same keys: Flink reads INSERT, INSERT (`op_for_changes: c`, the default: an
    upsert by key), DELETE with the row, and skips the tombstone; the keys are the primary key as a JSON object. With
    `op_for_changes: u` Flink refuses the update for want of a before-image, which is why `c` is the default."""
    fmt = {"type": "debezium_json"}
    config = config_for(broker, fmt, topic_pattern=f"{broker.prefix}.{{namespace}}.{{stream}}")
    result = write(tmp_path, config, cdc_catalog(), cdc_lines())
    assert result.returncode == 0, result.of_type("TRACE")
    assert len(result.of_type("STATE")) == 2
    messages = read_back(broker.bootstrap, broker.topic("public_users"), 5)
    assert [(m.key(), m.value() is None) for m in messages] == [
        (b'{"id":1}', False), (b'{"id":2}', False), (b'{"id":1}', False), (b'{"id":2}', False), (b'{"id":2}', True)]
    assert [json.loads(m.value())["op"] for m in messages[:4]] == ["c", "c", "c", "d"]
    source = json.loads(messages[3].value())["source"]
    assert (source["connector"], source["db"], source["schema"], source["table"], source["lsn"], source["ts_ms"]) == (
        "airbyte", "public", "public", "users", 4, 1704067204000)
    assert flink(ROW, [m.value() for m in messages]) == [
        "+I(1,Ada,19724)", "+I(2,Bob,null)", "+I(1,Ada Lovelace,19725)", "-D(2,Bob,null)"]

    updates = config_for(broker, {**fmt, "op_for_changes": "u"},
                         topic_pattern=f"{broker.prefix}.{{namespace}}.{{stream}}_u")
    assert write(tmp_path, updates, cdc_catalog(), cdc_lines()).returncode == 0
    messages = read_back(broker.bootstrap, broker.topic("public_users_u"), 5)
    rows = flink(ROW, [m.value() for m in messages[:3]])
    assert rows[0].startswith('! The "before" field of UPDATE message is null'), rows


def flink_type(schema):
    """Flink SQL's type of an Airbyte JSON schema type, as Debezium's JSON carries it (written out, not asked)."""
    types = [t for t in ([schema["type"]] if isinstance(schema["type"], str) else schema["type"]) if t != "null"]
    return {"integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN", "string": "STRING"}[types[0]]


def java_text(value):
    """How Java prints a field of Flink's row: null, true/false, a double with its `.0`, a string as is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def test_java_datasets_read_by_flinks_debezium_json(tmp_path, broker):
    """The Java connector's acceptance datasets, full refresh: every record is a snapshot read (`r`), which Flink
    reads as an INSERT of exactly the record's values. Each stream is keyed by the column most of its records have;
    a record without it goes to the dead-letter topic (a change event needs its key), never silently away."""
    for name in ["exchange_rate", "edge_case"]:
        catalog, lines = dataset(name)
        configured = configured_catalog(catalog)
        keys = {}
        for stream in configured["streams"]:
            data = [r["data"] for r in records_of(lines) if r["stream"] == stream["stream"]["name"]]
            columns = list(stream["stream"]["json_schema"]["properties"])
            keys[stream["stream"]["name"]] = max(columns, key=lambda c: sum(d.get(c) is not None for d in data))
            stream["primary_key"] = [[keys[stream["stream"]["name"]]]]
        dead_letters = {"policy": "dead_letter", "topic_pattern": f"{broker.prefix}.{name}.{{stream}}.dlq"}
        result = write(tmp_path, config_for(broker, {"type": "debezium_json"}, record_errors=dead_letters),
                       configured, lines)
        assert result.returncode == 0, result.of_type("TRACE")
        for stream in catalog["streams"]:
            records = [r for r in records_of(lines) if r["stream"] == stream["name"]]
            keyed = [r for r in records if r["data"].get(keys[stream["name"]]) is not None]
            if keyed:
                columns = list(stream["json_schema"]["properties"].items())
                row_type = "ROW<" + ", ".join(f"`{c}` {flink_type(s)}" for c, s in columns) + ">"
                messages = read_back(broker.bootstrap, broker.topic(avro_name(stream["name"])), len(keyed))
                assert {json.loads(m.value())["op"] for m in messages} == {"r"}
                expected = ["+I(" + ",".join(java_text(r["data"].get(c)) for c, _ in columns) + ")" for r in keyed]
                assert flink(row_type, [m.value() for m in messages]) == expected, stream["name"]
            if len(keyed) < len(records):
                dlq = broker.topic(f"{name}_{avro_name(stream['name'])}_dlq")
                letters = read_back(broker.bootstrap, dlq, len(records) - len(keyed))
                assert [json.loads(m.value()) for m in letters] == [r["data"] for r in records if r not in keyed]


def test_extract_new_record_state_unwraps_the_events(tmp_path, broker):
    """`schemas_enable`: a Kafka Connect worker reads the events with JsonConverter and Debezium's own
    ExtractNewRecordState (delete.tombstone.handling.mode=rewrite-with-tombstone) unwraps them: rows with
    `__deleted=false`, the deleted row with `__deleted=true`, then the tombstone (a null value). Expected lines are
    Connect's Struct text, written out by hand (dates as java.util.Date in UTC)."""
    config = config_for(broker, {"type": "debezium_json", "schemas_enable": True},
                        topic_pattern=f"{broker.prefix}.{{namespace}}.{{stream}}")
    assert write(tmp_path, config, cdc_catalog(), cdc_lines()).returncode == 0
    got, log = read_by_kafka_connect(
        broker, broker.topic("public_users"), tmp_path / "unwrapped.txt", 5, "--debezium",
        "--sink-property", "transforms=unwrap",
        "--sink-property", "transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState",
        "--sink-property", "transforms.unwrap.delete.tombstone.handling.mode=rewrite-with-tombstone", timeout=90)
    assert got == [
        "Struct{id=1,name=Ada,day=Tue Jan 02 00:00:00 UTC 2024,__deleted=false}",
        "Struct{id=2,name=Bob,__deleted=false}",
        "Struct{id=1,name=Ada Lovelace,day=Wed Jan 03 00:00:00 UTC 2024,__deleted=false}",
        "Struct{id=2,name=Bob,__deleted=true}",
        "null",
    ], log


def test_a_stream_without_a_primary_key_is_a_config_error(tmp_path, broker):
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": SCHEMA}]}, sync_mode="incremental")
    result = write(tmp_path, config_for(broker, {"type": "debezium_json"}), catalog, cdc_lines()[:1])
    (trace,) = result.of_type("TRACE")
    error = trace["trace"]["error"]
    assert result.returncode != 0 and error["failure_type"] == "config_error", error
    assert "stream `users`" in error["message"] and "no primary key" in error["message"], error
