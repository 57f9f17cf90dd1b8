"""Keys, headers, timestamps, append_dedup and exactly-once, black box: the release binary writes to Apache Kafka, a
Python Kafka client (confluent-kafka) reads back."""

import json

from conftest import configured_catalog, dataset, java_acceptance_config, read_back, run


def record(stream, data, emitted_at=1700000000000, namespace=None):
    r = {"stream": stream, "emitted_at": emitted_at, "data": data}
    if namespace:
        r["namespace"] = namespace
    return json.dumps({"type": "RECORD", "record": r})


def state(n):
    return json.dumps({"type": "STATE", "state": {"type": "LEGACY", "data": {"n": n}}})


def config_for(broker, **extra):
    config = java_acceptance_config(broker)
    config.update({"topic_pattern": f"{broker.prefix}.{{stream}}", "sync_producer": False}, **extra)
    return config


def test_field_keys_headers_and_field_timestamps(tmp_path, broker):
    catalog = {"streams": [{"stream": {"name": "orders", "namespace": "shop", "json_schema": {}},
                            "sync_mode": "incremental", "destination_sync_mode": "append", "generation_id": 5}]}
    config = config_for(broker, key={"mode": "fields", "fields": ["id"]}, headers=True,
                        timestamp={"source": "field", "field": "at"})
    lines = [record("orders", {"id": 1, "at": "2024-01-01T00:00:00Z"}, namespace="shop"),
             record("orders", {"id": "x", "at": 1704067200123}, namespace="shop"), state(1)]
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)
    assert result.returncode == 0, result.messages
    got = read_back(broker.bootstrap, broker.topic("orders"), 2)
    assert [m.key() for m in got] == [b"1", b"x"]
    assert [m.timestamp()[1] for m in got] == [1704067200000, 1704067200123]
    headers = dict(got[0].headers())
    assert headers["airbyte.stream"] == b"orders" and headers["airbyte.namespace"] == b"shop"
    assert headers["airbyte.emitted_at"] == b"1700000000000" and headers["airbyte.generation_id"] == b"5"
    assert headers["airbyte.ab_id"].decode() == json.loads(got[0].value())["_airbyte_ab_id"]
    assert "airbyte.sync_id" not in headers


def test_the_users_headers_filled_in_per_stream(tmp_path, broker):
    """`headers` as a map: the user's headers, `{namespace}` and `{stream}` filled in per stream (for consumers that
    route on headers), with the CloudEvents headers beside them."""
    catalog = configured_catalog({"streams": [{"name": "users", "namespace": "shop", "json_schema": {}},
                                              {"name": "events", "json_schema": {}}]})
    config = config_for(broker, headers={"route": "{namespace}/{stream}", "team": "crm"}, cloudevents="true")
    lines = [record("users", {"id": 1}, namespace="shop"), record("events", {"id": 2}), state(1)]
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)
    assert result.returncode == 0, result.messages
    for stream, route in [("users", b"shop/users"), ("events", b"/events")]:
        (message,) = read_back(broker.bootstrap, broker.topic(stream), 1)
        headers = message.headers()
        assert headers[:2] == [("route", route), ("team", b"crm")], headers
        assert [k for k, _ in headers[2:]] == ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"]


def test_no_key_and_emitted_at_timestamps(tmp_path, broker):
    catalog = configured_catalog({"streams": [{"name": "events", "json_schema": {}}]})
    config = config_for(broker, key={"mode": "none"}, timestamp={"source": "emitted_at"})
    lines = [record("events", {"n": 1}, emitted_at=1600000000000), state(1)]
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)
    assert result.returncode == 0, result.messages
    (message,) = read_back(broker.bootstrap, broker.topic("events"), 1)
    assert message.key() is None and message.timestamp()[1] == 1600000000000 and message.headers() is None


def test_cloudevents_read_back_by_the_cloudevents_sdk(tmp_path, broker):
    """`cloudevents: true`: each message is a CloudEvent in the Kafka binding's binary mode, read back by the
    CloudEvents Python SDK (its Kafka binding validates the required attributes and parses the time), for the
    envelope with the default source and `json` with a configured one."""
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

    catalog = configured_catalog({"streams": [{"name": "users", "namespace": "shop", "json_schema": {}},
                                              {"name": "events", "json_schema": {}}]})
    lines = [record("users", {"id": 1, "name": "Ada"}, namespace="shop", emitted_at=1700000000123),
             record("events", {"n": 2}, emitted_at=1600000000000), state(1)]
    cases = [({}, "env", "/airbyte/shop/users", "/airbyte/events"),
             ({"format": {"type": "json"}, "cloudevents_source": "urn:crm:{namespace}:{stream}"}, "json",
              "urn:crm:shop:users", "urn:crm::events")]
    for extra, prefix, users_source, events_source in cases:
        config = config_for(broker, cloudevents=True, topic_pattern=f"{broker.prefix}_{prefix}.{{stream}}", **extra)
        result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)
        assert result.returncode == 0, result.messages
        for stream, source, kind, time, data in [
            ("users", users_source, "io.airbyte.record.shop.users", "2023-11-14T22:13:20.123000+00:00", {"id": 1, "name": "Ada"}),
            ("events", events_source, "io.airbyte.record.events", "2020-09-13T12:26:40+00:00", {"n": 2}),
        ]:
            (message,) = read_back(broker.bootstrap, f"{broker.prefix}_{prefix}_{stream}", 1)
            event = from_binary_event(KafkaMessage(headers=dict(message.headers()), key=message.key(),
                                                   value=message.value()))
            assert (event.get_specversion(), event.get_source(), event.get_type()) == ("1.0", source, kind)
            assert event.get_time().isoformat() == time
            assert event.get_datacontenttype() == "application/json"
            assert event.get_id() == message.key().decode(), "ce_id is the record's id, the UUID key"
            payload = event.get_data()
            assert (payload["_airbyte_data"] if prefix == "env" else payload) == data
            if prefix == "env":
                assert payload["_airbyte_ab_id"] == event.get_id()


def test_append_dedup_primary_key_and_tombstones(tmp_path, broker):
    catalog = {"streams": [{"stream": {"name": "customers", "json_schema": {}, "source_defined_primary_key": [["id"]]},
                            "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]}
    lines = [record("customers", {"id": 9, "name": "a"}),
             record("customers", {"id": 9, "_ab_cdc_deleted_at": "2024-01-01T00:00:00Z"}), state(1)]
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config_for(broker), catalog=catalog)
    assert result.returncode == 0, result.messages
    got = read_back(broker.bootstrap, broker.topic("customers"), 2)
    assert [m.key() for m in got] == [b"9", b"9"]
    assert json.loads(got[0].value())["_airbyte_data"]["name"] == "a"
    assert got[1].value() is None


def test_exactly_once_dataset_and_a_second_sync_with_the_same_transactional_id(tmp_path, broker):
    catalog, lines = dataset("exchange_rate")
    config = config_for(broker, delivery_guarantee="exactly_once", transactional_id=f"{broker.prefix}-txn",
                        transaction_commit_interval_ms=0)
    records = [l for l in lines if json.loads(l)["type"] == "RECORD"]
    for attempt in (1, 2):
        result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config,
                     catalog=configured_catalog(catalog))
        assert result.returncode == 0, result.messages
        assert len(result.of_type("STATE")) == sum(1 for l in lines if json.loads(l)["type"] == "STATE")
        got = read_back(broker.bootstrap, broker.topic("exchange_rate"), len(records) * attempt,
                        consumer_config={"isolation.level": "read_committed"})
        assert [json.loads(m.value())["_airbyte_data"] for m in got] == [json.loads(r)["record"]["data"] for r in records] * attempt


def test_check_proves_transactions_with_the_test_message(tmp_path, broker):
    config = config_for(broker, delivery_guarantee="exactly_once", test_topic=f"{broker.prefix}.check-topic")
    result = run(["check"], tmp_path=tmp_path, config=config)
    (status,) = result.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status
    (message,) = read_back(broker.bootstrap, broker.topic("check_topic"), 1,
                           consumer_config={"isolation.level": "read_committed"})
    assert json.loads(message.value())["_airbyte_data"] == {"test-key": "test-value"}
