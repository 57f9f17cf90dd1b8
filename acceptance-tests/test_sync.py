"""Syncs as Airbyte's destination acceptance test runs them, read back from every topic."""

import copy
import json

import pytest

from conftest import configured_catalog, consume, dataset, java_acceptance_config, run

# The Java pattern `{namespace}.{stream}.test.topic`, sanitised (after the test's prefix, which Topics.topic adds).
PATTERN_TOPIC = "{namespace}_{stream}_test_topic"


def records_of(lines):
    return [json.loads(l)["record"] for l in lines if json.loads(l)["type"] == "RECORD"]


def states_of(lines):
    return [json.loads(l) for l in lines if json.loads(l)["type"] == "STATE"]


def write(tmp_path, broker, catalog, lines, config=None):
    config = config or java_acceptance_config(broker)
    return run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config, catalog=catalog)


def assert_last_state_echoed(result, lines):
    out = result.of_type("STATE")
    assert out, "no state emitted"
    last = copy.deepcopy(out[-1])
    last["state"].pop("destinationStats", None)
    assert last == states_of(lines)[-1]


def assert_topics_hold(broker, records, topic_of):
    """Each stream's data, in input order, in its topic; keys are the envelope's ids."""
    by_topic = {}
    for r in records:
        by_topic.setdefault(topic_of(r), []).append(r)
    for topic, expected in by_topic.items():
        got = consume(broker.bootstrap, broker.topic(topic), len(expected))
        assert [v["_airbyte_data"] for _, _, v in got] == [r["data"] for r in expected], topic
        assert [v["_airbyte_stream"] for _, _, v in got] == [r["stream"] for r in expected]
        assert [v["_airbyte_emitted_at"] for _, _, v in got] == [r["emitted_at"] for r in expected]
        assert all(k == v["_airbyte_ab_id"] for _, k, v in got)
        fields = ["_airbyte_ab_id", "_airbyte_stream", "_airbyte_emitted_at", "_airbyte_data"]
        assert all(list(v) == fields for _, _, v in got)


def java_topic(record):
    return PATTERN_TOPIC.format(namespace=record.get("namespace") or "", stream=record["stream"]).replace(
        "stream-with:spécial:character_names", "stream_with_special_character_names"
    )


@pytest.mark.parametrize("name", ["exchange_rate", "edge_case"])
def test_sync(tmp_path, broker, name):
    catalog, lines = dataset(name)
    result = write(tmp_path, broker, configured_catalog(catalog), lines)
    assert result.returncode == 0, result.messages
    assert not result.of_type("TRACE")
    assert_last_state_echoed(result, lines)
    assert_topics_hold(broker, records_of(lines), java_topic)


@pytest.mark.parametrize("name", ["exchange_rate", "edge_case"])
def test_sync_400_times_the_dataset(tmp_path, broker, name):
    catalog, lines = dataset(name)
    records = [l for l in lines if json.loads(l)["type"] == "RECORD"] * 400
    states = [l for l in lines if json.loads(l)["type"] == "STATE"] * 400
    big = records + states
    config = java_acceptance_config(broker)
    config["sync_producer"] = False  # the default mode: just as safe, and what users should run
    result = write(tmp_path, broker, configured_catalog(catalog), big, config)
    assert result.returncode == 0
    assert_last_state_echoed(result, big)
    assert len(result.of_type("STATE")) == len(states)
    # Every record precedes the first state, so the first state confirms them all and the rest confirm none.
    counts = [s["state"]["destinationStats"]["recordCount"] for s in result.of_type("STATE")]
    assert counts == [len(records)] + [0] * (len(states) - 1)
    assert_topics_hold(broker, records_of(big), java_topic)


@pytest.mark.parametrize("threads", ["0", "3"])
def test_encoding_threads_keep_the_input_order(tmp_path, broker, threads):
    """Some 8 MB (chunks of 256 KB) encoded on the main thread, then on three threads (more than CI's CPUs): every
    record in its topic in input order, every state out with the records since the one before."""
    catalog, lines = dataset("exchange_rate")
    originals = records_of(lines)
    big, expected_counts, since = [], [], 0
    for i in range(30_000):
        record = copy.deepcopy(originals[i % len(originals)])
        record["data"]["seq"] = i
        big.append(json.dumps({"type": "RECORD", "record": record}))
        since += 1
        if i % 997 == 996:
            big.append(json.dumps({"type": "STATE", "state": {"type": "LEGACY", "data": {"seq": i}}}))
            expected_counts.append(since)
            since = 0
    config = java_acceptance_config(broker)
    config.update(sync_producer=False, topic_pattern=f"{broker.prefix}.threads{threads}_{{stream}}")
    result = run(["write"], "\n".join(big) + "\n", tmp_path=tmp_path, config=config,
                 catalog=configured_catalog(catalog), env={"DESTINATION_KAFKA_ENCODE_THREADS": threads})
    assert result.returncode == 0, result.of_type("TRACE")
    states = result.of_type("STATE")
    assert [s["state"]["data"]["seq"] for s in states] == [996 + 997 * n for n in range(len(expected_counts))]
    assert [s["state"]["destinationStats"]["recordCount"] for s in states] == expected_counts
    assert_topics_hold(broker, records_of(big), lambda r: f"threads{threads}_{r['stream']}")


def test_line_breaks_round_trip(tmp_path, broker):
    catalog = {"streams": [{"name": "exchange_rate", "json_schema": {}}]}
    lines = [
        json.dumps(
            {
                "type": "RECORD",
                "record": {
                    "stream": "exchange_rate",
                    "emitted_at": 1602637589000,
                    "data": {"currency": "USD\u2028", "date": "2020-03-\n31T00:00:00Z\r", "HKD": 10.5},
                },
            }
        ),
        json.dumps({"type": "STATE", "state": {"data": {"start_date": "2020-09-02"}}}),
    ]
    result = write(tmp_path, broker, configured_catalog(catalog), lines)
    assert result.returncode == 0
    assert_last_state_echoed(result, lines)
    assert_topics_hold(broker, records_of(lines), java_topic)


def test_two_incremental_syncs_append(tmp_path, broker):
    catalog, lines = dataset("exchange_rate")
    incremental = configured_catalog(catalog, sync_mode="incremental")
    first = write(tmp_path, broker, incremental, lines)
    second_lines = [l.replace("2020-0", "2021-0") for l in lines]
    second = write(tmp_path, broker, incremental, second_lines)
    assert first.returncode == 0 and second.returncode == 0
    assert_last_state_echoed(second, second_lines)
    assert_topics_hold(broker, records_of(lines) + records_of(second_lines), java_topic)


def namespace_lines(namespace, stream="data_stream", value=True):
    _, lines = dataset("namespace")
    out = []
    for line in lines:
        message = json.loads(line)
        if message["type"] == "RECORD":
            message["record"]["namespace"] = namespace
            message["record"]["stream"] = stream
            message["record"]["data"] = {"field1": value}
        out.append(json.dumps(message))
    return out


NAMESPACE_TOPICS = {
    # The enabled cases of namespace_test_cases.json, with the topic the Java naming rule gives.
    "dest_1001_namespace": "dest_1001_namespace_data_stream_test_topic",
    "namespace_with_spécial_character": "namespace_with_special_character_data_stream_test_topic",
    "99namespace": "99namespace_data_stream_test_topic",
}


@pytest.mark.parametrize("namespace", sorted(NAMESPACE_TOPICS))
def test_namespace_lands_in_its_own_topic(tmp_path, broker, namespace):
    catalog = {"streams": [{"name": "data_stream", "namespace": namespace, "json_schema": {}}]}
    lines = namespace_lines(namespace)
    result = write(tmp_path, broker, configured_catalog(catalog), lines)
    assert result.returncode == 0
    assert_last_state_echoed(result, lines)
    assert_topics_hold(broker, records_of(lines), lambda r: NAMESPACE_TOPICS[namespace])


def test_same_stream_in_two_namespaces_lands_in_two_topics(tmp_path, broker):
    catalog = {
        "streams": [
            {"name": "users", "namespace": "ns_a", "json_schema": {}},
            {"name": "users", "namespace": "ns_b", "json_schema": {}},
        ]
    }
    lines = namespace_lines("ns_a", "users", True)[:1] + namespace_lines("ns_b", "users", False)
    result = write(tmp_path, broker, configured_catalog(catalog), lines)
    assert result.returncode == 0
    assert_topics_hold(broker, records_of(lines), java_topic)
    assert {java_topic(r) for r in records_of(lines)} == {"ns_a_users_test_topic", "ns_b_users_test_topic"}


def test_a_destination_object_name_is_the_topic_as_is(tmp_path, broker):
    """Data activation: the topic picked for a stream in the UI (one of `discover`'s operations) arrives as the
    configured stream's `destination_object_name` and is written to as is, dots and dashes kept; a name Kafka would
    refuse is a config_error naming the stream."""
    picked = f"{broker.prefix}.picked-Topic_1"
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {}}]})
    catalog["streams"][0]["destination_object_name"] = picked
    line = json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"id": 1}}})
    result = write(tmp_path, broker, catalog, [line])
    assert result.returncode == 0, result.messages
    [(_, _, value)] = consume(broker.bootstrap, picked, 1)
    assert value["_airbyte_data"] == {"id": 1}
    catalog["streams"][0]["destination_object_name"] = f"{broker.prefix}/users"
    result = write(tmp_path, broker, catalog, [line])
    [trace] = [m["trace"]["error"] for m in result.of_type("TRACE")]
    assert result.returncode != 0 and trace["failure_type"] == "config_error"
    assert trace["message"].startswith("stream `users`: `destination_object_name`") and "has `/`" in trace["message"]
