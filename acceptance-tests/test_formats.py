"""The value formats, black box: json, airbyte_v2_json, and Avro / JSON Schema with a schema registry.

The registry is a real one: Apicurio Registry 3 through its Confluent-compatible API (scripts/schema-registry), with
its own compatibility rules. The assertions are made by independent readers of what landed in Kafka: confluent-kafka's
own AvroDeserializer and JSONDeserializer (asking the registry for the schema by id, as a real consumer does) and
fastavro with the registered schema; every registered Avro schema is also parsed by Apache Avro's own Python
implementation. A test double (registry_double.py) is kept only for what Apicurio cannot be made to do here: HTTP
basic credentials, and failing on purpose (429, 5xx)."""

import datetime
import http.server
import importlib.util
import io
import json
import pathlib
import ssl
import subprocess
import threading
import time
import unicodedata

import avro.schema
import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import REPO, Launched, RealRegistry, configured_catalog, dataset, java_acceptance_config, read_back, run
from registry_double import Registry


@pytest.fixture
def registry(apicurio):
    return apicurio


def config_for(broker, fmt, **extra):
    c = java_acceptance_config(broker)
    c.update({"topic_pattern": f"{broker.prefix}.{{stream}}", "sync_producer": False, "format": fmt}, **extra)
    return c


def subjects_of(registry, broker):
    """This test's subjects (named after its topics)."""
    return {s: ids for s, ids in registry.subjects.items() if s.startswith(broker.prefix)}


def write(tmp_path, config, catalog, lines):
    return run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)


def records_of(lines):
    return [json.loads(l)["record"] for l in lines if json.loads(l)["type"] == "RECORD"]


def avro_name(name):
    """Airbyte's Avro names, as its converter documents them: NFKD, marks dropped, [A-Za-z0-9_], leading `_` if needed."""
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.category(c).startswith("M"))
    text = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in text)
    return text if text[:1].isalpha() or text[:1] == "_" else "_" + text


def expected_avro(record, schema):
    """The documented conversion of a record with a simple schema: fields under their Avro names (missing: None),
    the Airbyte columns, unknown keys as text in _airbyte_additional_properties."""
    data = record["data"]
    properties = schema.get("properties", {})
    out = {avro_name(k): data.get(k) for k in properties}
    extra = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if k not in properties and v is not None}
    out["_airbyte_additional_properties"] = extra or None
    return out


def test_json_is_the_record_data(tmp_path, broker):
    catalog, lines = dataset("exchange_rate")
    assert write(tmp_path, config_for(broker, {"type": "json"}), configured_catalog(catalog), lines).returncode == 0
    records = records_of(lines)
    got = read_back(broker.bootstrap, broker.topic("exchange_rate"), len(records))
    assert [json.loads(m.value()) for m in got] == [r["data"] for r in records]
    # Verbatim: the source's own text, spacing and number forms included.
    assert got[0].value().decode() == lines[0][lines[0].index('"data": ') + 8:-2]


def test_airbyte_v2_json(tmp_path, broker):
    catalog = {"streams": [{"stream": {"name": "users", "json_schema": {}}, "sync_mode": "incremental",
                            "destination_sync_mode": "append", "sync_id": 77, "generation_id": 4}]}
    meta = {"changes": [{"field": "bio", "change": "TRUNCATED", "reason": "SOURCE_FIELD_SIZE_LIMITATION"}]}
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1700000000000, "data": {"id": 1}, "meta": meta}}),
             json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1700000000001, "data": {"id": 2}}})]
    assert write(tmp_path, config_for(broker, {"type": "airbyte_v2_json"}), catalog, lines).returncode == 0
    first, second = [json.loads(m.value()) for m in read_back(broker.bootstrap, broker.topic("users"), 2)]
    assert set(first) == {"_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id", "_airbyte_data"}
    assert first["_airbyte_extracted_at"] == 1700000000000 and first["_airbyte_generation_id"] == 4
    assert first["_airbyte_meta"] == {"sync_id": 77, "changes": meta["changes"]}
    assert second["_airbyte_meta"] == {"sync_id": 77, "changes": []} and second["_airbyte_data"] == {"id": 2}
    assert len(first["_airbyte_raw_id"]) == 36


def avro_readers(registry, bootstrap, topic, expected):
    """What landed in `topic`, decoded twice: confluent-kafka's AvroDeserializer (schema fetched by id from the
    registry) and fastavro with the schema the registry holds for that id."""
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    decoded = []
    for message in read_back(bootstrap, topic, expected):
        value = message.value()
        assert value[0] == 0, "Confluent's magic byte"
        schema_id = int.from_bytes(value[1:5], "big")
        by_confluent = deserializer(value, SerializationContext(topic, MessageField.VALUE))
        text = registry.schema_of(schema_id)[0]
        avro.schema.parse(text)  # raises on an invalid schema
        schema = fastavro.parse_schema(json.loads(text))
        by_fastavro = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)
        assert by_confluent == by_fastavro
        decoded.append((by_confluent, dict(message.headers() or [])))
    return decoded


@pytest.mark.parametrize("name", ["exchange_rate", "edge_case"])
def test_avro_datasets_read_back_field_for_field(tmp_path, broker, registry, name):
    catalog, lines = dataset(name)
    fmt = {"type": "avro", "schema_registry_url": registry.url}
    result = write(tmp_path, config_for(broker, fmt), configured_catalog(catalog), lines)
    assert result.returncode == 0, result.of_type("TRACE")
    schemas = {s["name"]: s["json_schema"] for s in catalog["streams"]}
    for stream, schema in schemas.items():
        records = [r for r in records_of(lines) if r["stream"] == stream]
        topic = broker.topic(avro_name(stream))
        decoded = avro_readers(registry, broker.bootstrap, topic, len(records)) if records else []
        for (value, _), record in zip(decoded, records):
            assert value.pop("_airbyte_emitted_at") == datetime.datetime.fromtimestamp(record["emitted_at"] / 1000, datetime.timezone.utc)
            assert len(str(value.pop("_airbyte_ab_id"))) == 36
            assert value == expected_avro(record, schema), stream
    # One subject per stream, TopicNameStrategy.
    assert sorted(subjects_of(registry, broker)) == sorted(f"{broker.topic(avro_name(s))}-value" for s in schemas)


LOGICAL = {"type": "object", "properties": {
    "id": {"type": "integer"}, "day": {"type": "string", "format": "date"},
    "at": {"type": "string", "format": "date-time"}, "clock": {"type": "string", "format": "time"},
    "price": {"type": ["null", "number"]}, "user": {"type": "object", "properties": {"name": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def test_avro_logical_types_and_values_that_fit_no_type(tmp_path, broker, registry):
    catalog = configured_catalog({"streams": [{"name": "events", "json_schema": LOGICAL}]})
    data = [{"id": 1, "day": "2021-01-01", "at": "2021-01-01T01:01:01.5+01:00", "clock": "12:23:01.541", "price": 1.5,
             "user": {"name": "ana", "extra": 7}, "tags": ["a", "b"], "unknown": {"x": 1}},
            {"id": "abc", "day": "someday", "at": "never", "clock": "12:00:00", "price": "cheap"}]
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "events", "emitted_at": 1, "data": d}}) for d in data]
    lines.append(json.dumps({"type": "STATE", "state": {"data": {}}}))
    result = write(tmp_path, config_for(broker, {"type": "avro", "schema_registry_url": registry.url}), catalog, lines)
    assert result.returncode == 0, result.of_type("TRACE")
    (good, good_headers), (bad, bad_headers) = avro_readers(registry, broker.bootstrap, broker.topic("events"), 2)
    assert good["day"] == datetime.date(2021, 1, 1)
    assert good["at"] == datetime.datetime(2021, 1, 1, 0, 1, 1, 500000, tzinfo=datetime.timezone.utc)
    assert good["clock"] == datetime.time(12, 23, 1, 541000)
    assert (good["id"], good["price"], good["tags"]) == (1, 1.5, ["a", "b"])
    assert good["user"] == {"name": "ana", "_airbyte_additional_properties": {"extra": "7"}}
    assert good["_airbyte_additional_properties"] == {"unknown": '{"x": 1}'.replace(" ", "")}
    assert "airbyte.changes" not in good_headers
    # Dates and times that do not parse keep their text (the string fallback); "abc" for an integer and "cheap" for
    # a number fit no type: nulled, and said.
    assert (bad["day"], bad["at"], bad["id"], bad["price"]) == ("someday", "never", None, None)
    changes = json.loads(bad_headers["airbyte.changes"])
    assert changes == [{"field": f, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"} for f in ("id", "price")]
    logs = " ".join(m["log"]["message"] for m in result.of_type("LOG"))
    assert "2 values nulled" in logs


# Names and unions that collide once sanitised or combined: Avro allows none of them as they are.
COLLIDING = {"type": "object", "properties": {
    "users": {"type": "object", "properties": {"id": {"type": "integer"}}},
    "名前": {"type": "string"}, "住所": {"type": "string"}, "_airbyte_emitted_at": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
    "tags_items": {"type": "object", "properties": {"b": {"type": "string"}}},
    "either": {"oneOf": [
        {"type": "object", "properties": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "object", "properties": {"address": {"type": "object", "properties": {"zip": {"type": "integer"}}}}}]},
    "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
    "lists": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": "integer"}}]},
    "amount": {"type": ["integer", "number"]}}}


def test_avro_names_and_unions_that_collide(tmp_path, broker, registry):
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": COLLIDING}]})
    data = {"users": {"id": 7}, "名前": "ana", "住所": "lisbon", "_airbyte_emitted_at": 5, "tags": [{"a": "x"}],
            "tags_items": {"b": "y"}, "either": {"address": {"city": "porto", "zip": 4000}},
            "when": "2021-01-01T00:00:00Z", "lists": ["a", 1], "amount": 2.5}
    line = json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1000, "data": data}})
    result = write(tmp_path, config_for(broker, {"type": "avro", "schema_registry_url": registry.url}), catalog, [line])
    assert result.returncode == 0, result.of_type("TRACE")
    ((value, headers),) = avro_readers(registry, broker.bootstrap, broker.topic("users"), 1)
    none = {"_airbyte_additional_properties": None}
    assert value["_airbyte_emitted_at"] == datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)
    assert (value["__"], value["___2"], value["_airbyte_emitted_at_2"]) == ("ana", "lisbon", 5)
    assert value["users"] == {"id": 7, **none}
    assert value["tags"] == [{"a": "x", **none}] and value["tags_items"] == {"b": "y", **none}
    assert value["either"] == {"address": {"city": "porto", "zip": 4000, **none}, **none}
    assert (value["when"], value["lists"], value["amount"]) == ("2021-01-01T00:00:00Z", ["a", 1], 2.5)
    assert value["_airbyte_additional_properties"] is None and "airbyte.changes" not in headers


def test_schema_evolution_within_the_registrys_backward_rule(tmp_path, broker, registry):
    fmt = {"type": "avro", "schema_registry_url": registry.url}
    subject = f"{broker.topic('users')}-value"
    v1 = {"type": "object", "properties": {"id": {"type": "integer"}}}
    v2 = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}
    line = lambda d: json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": d}})
    catalog = lambda schema: configured_catalog({"streams": [{"name": "users", "json_schema": schema}]})
    assert write(tmp_path, config_for(broker, fmt), catalog(v1), [line({"id": 1})]).returncode == 0
    # The registry's rule for this subject: BACKWARD (a reader of the new schema reads data of the previous).
    registry.compatibility(subject, "BACKWARD")
    assert write(tmp_path, config_for(broker, fmt), catalog(v2), [line({"id": 2, "email": "b@x"})]).returncode == 0
    versions = subjects_of(registry, broker)[subject]
    assert len(versions) == 2, "version 2 registered"
    old_schema = fastavro.parse_schema(json.loads(registry.schema_of(versions[0])[0]))
    newest = read_back(broker.bootstrap, broker.topic("users"), 2)[1].value()
    writer = fastavro.parse_schema(json.loads(registry.schema_of(int.from_bytes(newest[1:5], "big"))[0]))
    as_old = fastavro.schemaless_reader(io.BytesIO(newest[5:]), writer, old_schema)
    assert as_old["id"] == 2 and "email" not in as_old
    # An incompatible change (a field's type) is refused by the registry: a config error naming the stream and the
    # subject, quoting the registry.
    v3 = {"type": "object", "properties": {"id": {"type": "string"}}}
    result = write(tmp_path, config_for(broker, fmt), catalog(v3), [line({"id": "x"})])
    (trace,) = result.of_type("TRACE")
    error = trace["trace"]["error"]
    assert error["failure_type"] == "config_error", error
    message = error["message"]
    assert "stream `users`" in message and subject in message and "incompatible" in message, message
    assert len(subjects_of(registry, broker)[subject]) == 2, "nothing registered"
    assert not result.of_type("STATE")


def test_subject_name_strategies(tmp_path, broker, registry):
    namespace = broker.prefix
    catalog = configured_catalog({"streams": [{"name": "orders", "namespace": namespace, "json_schema": {"properties": {"n": {"type": "integer"}}}}]})
    line = json.dumps({"type": "RECORD", "record": {"namespace": namespace, "stream": "orders", "emitted_at": 1, "data": {"n": 1}}})
    topic = f"{namespace}_orders"
    for strategy, subject in [("RecordNameStrategy", f"{namespace}.orders"), ("TopicRecordNameStrategy", f"{topic}-{namespace}.orders")]:
        fmt = {"type": "avro", "schema_registry_url": registry.url, "subject_name_strategy": strategy}
        config = config_for(broker, fmt, topic_pattern="{namespace}.{stream}")
        assert write(tmp_path, config, catalog, [line]).returncode == 0
        assert subject in registry.subjects, registry.subjects


def test_json_schema_with_the_registry(tmp_path, broker, registry):
    catalog, lines = dataset("exchange_rate")
    fmt = {"type": "json_schema", "schema_registry_url": registry.url}
    assert write(tmp_path, config_for(broker, fmt), configured_catalog(catalog), lines).returncode == 0
    client = SchemaRegistryClient({"url": registry.url})
    deserializer = JSONDeserializer(None, schema_registry_client=client)
    records = records_of(lines)
    topic = broker.topic("exchange_rate")
    got = read_back(broker.bootstrap, topic, len(records))
    decoded = [deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)) for m in got]
    assert decoded == [r["data"] for r in records]
    (schema_id,) = subjects_of(registry, broker)[f"{topic}-value"]
    assert registry.schema_of(schema_id)[1] == "JSON"
    assert json.loads(registry.schema_of(schema_id)[0])["properties"] == catalog["streams"][0]["json_schema"]["properties"]


def test_registry_credentials_and_reachability(tmp_path, broker):
    # Apicurio's authentication needs an OIDC server: HTTP basic credentials are shown with the double.
    guarded = Registry("api-key", "api-secret")
    try:
        fmt = {"type": "avro", "schema_registry_url": guarded.url}
        (status,) = run(["check"], tmp_path=tmp_path, config=config_for(broker, fmt)).of_type("CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == "FAILED"
        assert "format.schema_registry_username" in status["connectionStatus"]["message"]
        fmt.update(schema_registry_username="api-key", schema_registry_password="api-secret")
        result = run(["check"], tmp_path=tmp_path, config=config_for(broker, fmt))
        (status,) = result.of_type("CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == "SUCCEEDED", status
        assert all("api-secret" not in json.dumps(m) for m in result.messages)
    finally:
        guarded.stop()
    # Nothing listens there any more: a transient error, before any record is read.
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {}}]})
    result = write(tmp_path, config_for(broker, {"type": "avro", "schema_registry_url": guarded.url}), catalog, [])
    (trace,) = result.of_type("TRACE")
    assert trace["trace"]["error"]["failure_type"] == "transient_error"
    assert "cannot be reached" in trace["trace"]["error"]["message"]


@pytest.mark.parametrize("status,failure_type", [(429, "transient_error"), (503, "transient_error"), (400, "config_error")])
def test_registry_failures_are_classified(tmp_path, broker, status, failure_type):
    # A real registry cannot be made to rate-limit or fail on demand: the double answers every request with `status`.
    failing = Registry(failing=status)
    try:
        catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {}}]})
        result = write(tmp_path, config_for(broker, {"type": "avro", "schema_registry_url": failing.url}), catalog, [])
        (trace,) = result.of_type("TRACE")
        assert trace["trace"]["error"]["failure_type"] == failure_type, trace
        assert f"HTTP {status}" in trace["trace"]["error"]["message"], trace
    finally:
        failing.stop()


def test_registry_over_tls_with_its_ca(tmp_path, broker):
    certs = tmp_path / "certs"
    subprocess.run([str(REPO / "scripts" / "test-certs"), str(certs)], check=True)
    secure = Launched("schema-registry", "--tls", str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    try:
        url = secure.info["url"]
        fmt = {"type": "json_schema", "schema_registry_url": url}
        (status,) = run(["check"], tmp_path=tmp_path, config=config_for(broker, fmt)).of_type("CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == "FAILED"
        assert "format.schema_registry_ca_certificates" in status["connectionStatus"]["message"], status
        fmt["schema_registry_ca_certificates"] = (certs / "ca.pem").read_text()
        (status,) = run(["check"], tmp_path=tmp_path, config=config_for(broker, fmt)).of_type("CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == "SUCCEEDED", status
        # A write registers its schema over TLS.
        catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {"type": "object"}}]})
        line = json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"id": 1}}})
        result = write(tmp_path, config_for(broker, fmt), catalog, [line])
        assert result.returncode == 0, result.of_type("TRACE")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        assert f"{broker.topic('users')}-value" in RealRegistry(url, context).subjects
        # An http:// URL that redirects to the registry: the connector builds its TLS settings (the CA given)
        # only when the redirect needs them, and `check` (a GET, which redirects are followed for) succeeds.
        redirect = http.server.ThreadingHTTPServer(("127.0.0.1", 0), redirect_to(url))
        redirect.redirected = False
        threading.Thread(target=redirect.serve_forever, daemon=True).start()
        try:
            fmt["schema_registry_url"] = f"http://127.0.0.1:{redirect.server_port}"
            (status,) = run(["check"], tmp_path=tmp_path, config=config_for(broker, fmt)).of_type("CONNECTION_STATUS")
            assert status["connectionStatus"]["status"] == "SUCCEEDED", status
            assert redirect.redirected, "the check did not go through the redirect"
        finally:
            redirect.shutdown()
    finally:
        secure.stop()


def redirect_to(base):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.redirected = True
            self.send_response(301)
            self.send_header("Location", base + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Redirect


def test_connect_json_read_by_a_kafka_connect_worker(tmp_path, broker):
    """`connect_json`, read by Kafka Connect itself: a standalone worker (scripts/kafka-connect) with JsonConverter
    (`schemas.enable=true`) and the file sink writes each value as Connect understood it. The expected lines are
    written out by hand from Connect's `Struct.toString` (null fields left out, dates as java.util.Date in UTC).
    Compressed with lz4, as docs/formats.md advises for this format (the worker's client decompresses)."""
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": ["null", "string"]},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "extra": {"type": "object"}, "price": {"type": "number"}}}
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": schema}]})
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": data}}) for data in [
        {"id": 1, "name": "Ada", "day": "2024-01-02", "at": "2024-01-01T01:00:01.500+01:00", "tags": ["a", "b"],
         "address": {"city": "Oslo", "zip": "0150"}, "extra": {"k": 1}, "price": 9.5},
        {"id": 2, "name": None}]]
    config = config_for(broker, {"type": "connect_json"}, compression_type="lz4")
    assert write(tmp_path, config, catalog, lines).returncode == 0
    got, log = read_by_kafka_connect(broker, broker.topic("users"), tmp_path / "connect.txt", 2, timeout=60)
    assert got == [
        'Struct{id=1,name=Ada,day=Tue Jan 02 00:00:00 UTC 2024,at=Mon Jan 01 00:00:01 UTC 2024,tags=[a, b],'
        'address=Struct{city=Oslo},extra={"k":1},price=9.5}',
        "Struct{id=2}",
    ], log


def read_by_kafka_connect(broker, topic, out, expected, *args, timeout):
    """What a Kafka Connect worker (scripts/kafka-connect, with `args`) wrote of `topic` to `out`, one line per
    value, once `expected` lines are there (or `timeout` s passed), and the tail of its log when they are not."""
    connect = Launched("kafka-connect", "--bootstrap", broker.bootstrap, "--topic", topic, "--out", str(out), *args)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out.read_text().splitlines() if out.exists() else []) < expected:
            time.sleep(0.2)
        got = out.read_text().splitlines() if out.exists() else []
        log = pathlib.Path(connect.info["log"]).read_text()[-4000:] if len(got) < expected else ""
    finally:
        connect.stop()
    return got, log


def compiled_message(tmp_path, text, name):
    """The message class of a registered .proto schema, compiled by grpcio-tools' protoc (not by the connector)."""
    from grpc_tools import protoc

    proto_dir = tmp_path / "proto"
    proto_dir.mkdir(exist_ok=True)
    (proto_dir / f"{name}.proto").write_text(text)
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={proto_dir}", f"{name}.proto"]) == 0
    spec = importlib.util.spec_from_file_location(f"{name}_pb2", proto_dir / f"{name}_pb2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_protobuf_read_by_confluents_deserializer_and_evolved_under_the_registrys_rule(tmp_path, broker, registry):
    """`protobuf`: the .proto schema Apicurio holds, compiled by protoc, reads every message through confluent-kafka's
    ProtobufDeserializer (the wire format's message-index list included); the registry's BACKWARD rule takes an
    added field and refuses a changed type (a config_error naming the stream and the subject)."""
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    fmt = {"type": "protobuf", "schema_registry_url": registry.url}
    topic = broker.topic("users")
    subject = f"{topic}-value"
    v1 = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": ["null", "string"]}, "score": {"type": "number"},
        "ok": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}}, "any": {}}}
    line = lambda d: json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1700000000000, "data": d}})
    catalog = lambda schema: configured_catalog({"streams": [{"name": "users", "json_schema": schema}]})
    records = [{"id": 1, "name": "Ada", "score": 2.5, "ok": True, "tags": ["a", "b"], "address": {"city": "Oslo"},
                "any": {"k": [1]}, "extra": "x"},
               {"id": -2, "name": None, "ok": False}]
    assert write(tmp_path, config_for(broker, fmt), catalog(v1), [line(r) for r in records]).returncode == 0
    [schema_id] = subjects_of(registry, broker)[subject]
    text, kind = registry.schema_of(schema_id)
    assert kind == "PROTOBUF"
    users = compiled_message(tmp_path, text, "users")
    read = ProtobufDeserializer(users, {"use.deprecated.format": False})
    messages = read_back(broker.bootstrap, topic, 2)
    got = [read(m.value(), SerializationContext(topic, MessageField.VALUE)) for m in messages]
    first, second = got
    assert (first.id, first.name, first.score, first.ok, list(first.tags), first.address.city) == (
        1, "Ada", 2.5, True, ["a", "b"], "Oslo")
    assert json.loads(first.any) == {"k": [1]} and json.loads(first._airbyte_additional_properties) == {"extra": "x"}
    assert first._airbyte_ab_id == messages[0].key().decode() and first._airbyte_emitted_at == 1700000000000
    assert second.id == -2 and not second.HasField("name") and second.HasField("ok") and not second.ok
    assert not second.HasField("address") and not second.HasField("score")
    # Evolution under the registry's own rule.
    registry.compatibility(subject, "BACKWARD")
    v2 = {"type": "object", "properties": {**v1["properties"], "email": {"type": "string"}}}
    assert write(tmp_path, config_for(broker, fmt), catalog(v2), [line({"id": 3, "email": "c@x"})]).returncode == 0
    assert len(subjects_of(registry, broker)[subject]) == 2, "version 2 registered"
    v3 = {"type": "object", "properties": {**v1["properties"], "id": {"type": "string"}}}
    result = write(tmp_path, config_for(broker, fmt), catalog(v3), [line({"id": "x"})])
    (trace,) = result.of_type("TRACE")
    error = trace["trace"]["error"]
    assert error["failure_type"] == "config_error" and subject in error["message"], error
    assert len(subjects_of(registry, broker)[subject]) == 2, "nothing registered"


def test_raw_sends_one_fields_bytes_and_dead_letters_the_rest(tmp_path, broker):
    """`raw`: the value is the field's bytes (UTF-8, or decoded base64); a record without the field goes to the
    dead-letter topic with the reason, never as an empty message."""
    catalog = configured_catalog({"streams": [{"name": "events", "json_schema": {}}]})
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "events", "emitted_at": 1, "data": data}}) for data in [
        {"id": 1, "msg": {"body": "AAEC/w=="}}, {"id": 2, "msg": {}}, {"id": 3, "msg": {"body": "aGk="}}]]
    config = config_for(broker, {"type": "raw", "field": "msg.body", "base64": True},
                        record_errors={"policy": "dead_letter", "topic_pattern": f"{broker.prefix}.{{stream}}.dlq"})
    result = write(tmp_path, config, catalog, lines)
    assert result.returncode == 0, result.messages
    assert [m.value() for m in read_back(broker.bootstrap, broker.topic("events"), 2)] == [b"\x00\x01\x02\xff", b"hi"]
    (letter,) = read_back(broker.bootstrap, broker.topic("events_dlq"), 1)
    headers = dict(letter.headers())
    assert json.loads(letter.value()) == {"id": 2, "msg": {}}
    assert headers["__connect.errors.exception.message"] == b"value field `msg.body` is missing", headers
