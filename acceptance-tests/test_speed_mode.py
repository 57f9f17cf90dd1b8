"""Speed Mode: the platform connects the source to `write` over Unix sockets (JSONL or Protobuf) instead of stdin.
The test source (speed_source.py) serves the sockets as the platform's source side does and encodes Protobuf with
Google's runtime. What no test here can show: the Airbyte platform itself choosing Speed Mode, and a real
socket-capable source (source-mysql, Java) — the wire formats are taken from Airbyte's published `.proto` field
numbers and the bulk CDK's code (README, Speed Mode)."""

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import yaml

from conftest import BIN, REPO, configured_catalog, consume, java_acceptance_config, run, validate
from speed_source import Mark, Pause, Source, unused_path

SCHEMAS = {
    "orders": {"type": "object", "properties": {
        "id": {"type": "integer"}, "amount": {"type": "number"}, "note": {"type": ["null", "string"]},
        "tags": {"type": "array"}, "paid": {"type": "boolean"}, "Zone": {"type": "string"}}},
    "users": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                                "big": {"type": "integer"}}},
}
CHECKPOINTS = 3
PER_CHECKPOINT = 4


@pytest.fixture
def sockets_dir():
    # Short: a Unix socket path has at most 107 bytes.
    directory = tempfile.mkdtemp(prefix="dk-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def data_of(stream, n):
    if stream == "orders":
        return {"Zone": "eu", "amount": n * 1.5, "id": n, "note": None if n % 3 else f"n\u00e9{n}",
                "paid": n % 2 == 0, "tags": [n, {"k": "v"}]}
    return {"big": 2**70 + n, "id": n, "name": f"user {n}"}


def record(namespace, stream, n, partition):
    return {"type": "RECORD", "record": {"namespace": namespace, "stream": stream, "emitted_at": 1_700_000_000_000 + n,
                                         "data": data_of(stream, n), "partition_id": partition}}


def state(namespace, stream, checkpoint, partition, count):
    return {"type": "STATE", "state": {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": stream, "namespace": namespace}, "stream_state": {"cursor": checkpoint}},
        "partition_id": partition, "id": checkpoint, "sourceStats": {"recordCount": float(count)}}}


def checkpoints(namespace):
    """(stream, checkpoint, partition, records, state) for every checkpoint of the dataset."""
    out = []
    for k in range(1, CHECKPOINTS + 1):
        for stream in SCHEMAS:
            partition = f"{stream[0]}{k:03d}"
            records = [record(namespace, stream, k * 100 + i, partition) for i in range(PER_CHECKPOINT)]
            out.append((stream, k, partition, records, state(namespace, stream, k, partition, PER_CHECKPOINT)))
    return out


def catalog_of(namespace):
    return configured_catalog({"streams": [{"name": s, "namespace": namespace, "json_schema": schema}
                                           for s, schema in SCHEMAS.items()]})


def config_of(broker, channel, **extra):
    config = java_acceptance_config(broker)
    config.update({"topic_pattern": f"{broker.prefix}_{channel}_{{stream}}", "socket_wait_ms": 20000}, **extra)
    return config


def socket_scripts(namespace):
    """Two sockets: socket i carries the records of every other checkpoint, and first of all the states of the
    checkpoints whose records are on the other socket (so states arrive before their records), with probes."""
    scripts = [[{"type": "PROBE"}], [{"type": "PROBE"}]]
    for stream, k, partition, records, st in checkpoints(namespace):
        scripts[(k + 1) % 2].insert(1, st)
        scripts[k % 2].extend(records)
        scripts[k % 2].append({"type": "PROBE"})
    for i, stream in enumerate(SCHEMAS):
        scripts[i].append({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 1.0, "stream_status": {
            "stream_descriptor": {"name": stream, "namespace": namespace}, "status": "COMPLETE"}}})
    return scripts


def run_sockets(tmp_path, sockets_dir, framing, scripts, config, catalog, env=None):
    source = Source(sockets_dir, scripts, framing, SCHEMAS)
    result = run(["write"], "", tmp_path=tmp_path, config=config, catalog=catalog, env={**source.env(framing), **(env or {})})
    source.join()
    return result


def kafka_values(broker, topic, n):
    """The values of a topic, without the envelope's generated id, in a stable order."""
    values = [v for _, _, v in consume(broker.bootstrap, topic, n)]
    for v in values:
        v.pop("_airbyte_ab_id")
    return sorted(values, key=lambda v: v["_airbyte_data"]["id"])


def test_the_same_messages_and_states_through_stdin_and_both_socket_framings(tmp_path, broker, sockets_dir):
    namespace = broker.prefix
    catalog = catalog_of(namespace)
    stdin_lines = []
    for _, _, _, records, st in checkpoints(namespace):
        stdin_lines += [json.dumps(r) for r in records] + [json.dumps(st)]
    stdio = run(["write"], "\n".join(stdin_lines) + "\n", tmp_path=tmp_path, config=config_of(broker, "stdio"),
                catalog=catalog)
    assert stdio.returncode == 0, stdio.messages
    results = {"stdio": stdio}
    for framing in ("JSONL", "PROTOBUF"):
        channel = framing.lower()
        result = run_sockets(tmp_path, sockets_dir, framing, socket_scripts(namespace), config_of(broker, channel),
                             catalog)
        assert result.returncode == 0, result.messages
        results[channel] = result
        shutil.rmtree(sockets_dir)
        os.mkdir(sockets_dir)
    n = CHECKPOINTS * PER_CHECKPOINT
    for stream in SCHEMAS:
        expected = kafka_values(broker, f"{broker.prefix}_stdio_{stream}", n)
        assert len(expected) == n and expected[0]["_airbyte_stream"] == stream
        for channel in ("jsonl", "protobuf"):
            assert kafka_values(broker, f"{broker.prefix}_{channel}_{stream}", n) == expected, (channel, stream)
    # The same states, per stream in id order, each with its full count; sockets add the committed counts.
    for channel, result in results.items():
        for stream in SCHEMAS:
            out = [m["state"] for m in result.of_type("STATE") if m["state"]["stream"]["stream_descriptor"]["name"] == stream]
            assert [s["id"] for s in out] == [1, 2, 3], (channel, stream)
            assert [s["stream"]["stream_state"] for s in out] == [{"cursor": k} for k in (1, 2, 3)]
            assert all(s["destinationStats"] == {"recordCount": float(PER_CHECKPOINT)} for s in out), out
            assert all(s["partition_id"] == f"{stream[0]}{k:03d}" for k, s in zip((1, 2, 3), out))
            if channel != "stdio":
                assert [s["committedRecordsCount"] for s in out] == [4, 8, 12], (channel, out)
                assert all(s["committedBytesCount"] > 0 for s in out)
        if channel != "stdio":
            logs = [m["log"]["message"] for m in result.of_type("LOG")]
            assert any("the source reported every stream complete (2)" in m for m in logs), logs


def test_global_states_count_the_partitions_of_their_stream_states(tmp_path, broker, sockets_dir):
    """GLOBAL states (one id sequence across both sockets): each covers its stream states' partitions and its own;
    each stream state inside gets its stream's committed records so far, the state the total."""
    namespace = broker.prefix
    scripts, n = [[], []], 0
    for k in range(1, 4):
        inner = []
        for stream in SCHEMAS:
            partition = f"{stream[0]}{k}"
            inner.append({"stream_descriptor": {"name": stream, "namespace": namespace}, "stream_state": {"k": k},
                          "partition_id": partition})
            scripts[k % 2] += [record(namespace, stream, (n := n + 1), partition) for _ in range(k)]
        scripts[k % 2].append(record(namespace, "users", (n := n + 1), f"g{k}"))
        scripts[(k + 1) % 2].insert(0, {"type": "STATE", "state": {
            "type": "GLOBAL", "global": {"shared_state": {"k": k}, "stream_states": inner}, "partition_id": f"g{k}",
            "id": k, "sourceStats": {"recordCount": float(2 * k + 1)}}})
    result = run_sockets(tmp_path, sockets_dir, "PROTOBUF", scripts, config_of(broker, "global"), catalog_of(namespace))
    assert result.returncode == 0, result.messages
    out = [m["state"] for m in result.of_type("STATE")]
    assert [s["id"] for s in out] == [1, 2, 3]
    # Checkpoint k holds k records of each stream, and one more of users (its own partition).
    assert [s["destinationStats"]["recordCount"] for s in out] == [3.0, 5.0, 7.0]
    assert [s["committedRecordsCount"] for s in out] == [3, 8, 15]
    orders = [s["global"]["stream_states"][0]["committedRecordsCount"] for s in out]
    users = [s["global"]["stream_states"][1]["committedRecordsCount"] for s in out]
    assert (orders, users) == ([1, 3, 6], [2, 5, 9])


class Running:
    """The connector as a process whose stdout is read as it comes."""

    def __init__(self, tmp_path, config, catalog, env):
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        args = [BIN, "write", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env={**os.environ, **env})
        self.lines = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()
        self.messages = []

    def read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def states_within(self, seconds, enough=None):
        """The STATEs emitted within `seconds` (or as soon as there are `enough` of them)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (enough is None or self.count("STATE") < enough):
            try:
                message = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if message is None:
                break
            validate(message)
            self.messages.append(message)
        return [m for m in self.messages if m["type"] == "STATE"]

    def count(self, kind):
        return sum(1 for m in self.messages if m["type"] == kind)


def test_a_state_sent_before_its_records_waits_for_them(tmp_path, broker, sockets_dir):
    """The state arrives on socket 0 before any of its records; two of them come on socket 1, then the test holds
    the third back: no state may come out, though every record read so far is acknowledged. Once the third is
    sent, the state comes out with its full count, and its records are all in Kafka."""
    namespace = broker.prefix
    go = threading.Event()
    records = [record(namespace, "orders", i, "p001") for i in range(3)]
    scripts = [[state(namespace, "orders", 1, "p001", 3)], [records[0], records[1], go, records[2]]]
    source = Source(sockets_dir, scripts, "PROTOBUF", SCHEMAS)
    connector = Running(tmp_path, config_of(broker, "wait"), catalog_of(namespace), source.env("PROTOBUF"))
    try:
        assert connector.states_within(3) == [], "a state went out before its records were read"
        go.set()
        source.join()
        assert connector.process.wait(60) == 0, connector.messages
        states = connector.states_within(30)  # the rest of its output, up to its end
    finally:
        go.set()
        connector.process.kill()
    assert [s["state"]["destinationStats"]["recordCount"] for s in states] == [3.0]
    assert len(kafka_values(broker, f"{broker.prefix}_wait_orders", 3)) == 3


def test_one_socket_ending_early_and_interleaved_states(tmp_path, broker, sockets_dir):
    """Socket 0 ends after one checkpoint while socket 1 goes on; states of both streams are interleaved."""
    namespace = broker.prefix
    done = checkpoints(namespace)
    scripts = [[], []]
    for i, (stream, k, partition, records, st) in enumerate(done):
        target = 0 if i == 0 else 1
        scripts[target] += records + [st]
    result = run_sockets(tmp_path, sockets_dir, "JSONL", scripts, config_of(broker, "early"), catalog_of(namespace))
    assert result.returncode == 0, result.messages
    assert len(result.of_type("STATE")) == len(done)


def error_of(result):
    traces = [m["trace"]["error"] for m in result.of_type("TRACE") if m["trace"]["type"] == "ERROR"]
    assert result.returncode != 0 and traces, result.messages
    return traces[0]


def test_a_count_never_reached_fails_without_a_state(tmp_path, broker, sockets_dir):
    namespace = broker.prefix
    scripts = [[state(namespace, "orders", 1, "p001", 5)] + [record(namespace, "orders", i, "p001") for i in range(4)]]
    result = run_sockets(tmp_path, sockets_dir, "PROTOBUF", scripts, config_of(broker, "short"), catalog_of(namespace))
    error = error_of(result)
    assert "unflushed states" in error["message"] and "4 of its 5 records" in error["message"], error
    assert result.of_type("STATE") == []


def test_a_socket_closing_mid_frame_fails_the_sync(tmp_path, broker, sockets_dir):
    namespace = broker.prefix
    good = [record(namespace, "orders", 1, "p001"), state(namespace, "orders", 1, "p001", 1)]
    scripts = [good + [b"\x20\x0a\x03"]]
    result = run_sockets(tmp_path, sockets_dir, "PROTOBUF", scripts, config_of(broker, "cut"), catalog_of(namespace))
    error = error_of(result)
    assert "ended in the middle of a Protobuf message" in error["message"] and "airbyte_socket_0.sock" in error["message"]
    assert error["failure_type"] == "system_error"


def test_a_socket_never_served_is_a_clear_error(tmp_path, broker, sockets_dir):
    never = unused_path(sockets_dir)
    env = {"DATA_CHANNEL_MEDIUM": "SOCKET", "DATA_CHANNEL_FORMAT": "JSONL", "DATA_CHANNEL_SOCKET_PATHS": never}
    started = time.monotonic()
    result = run(["write"], "", tmp_path=tmp_path, config=config_of(broker, "never", socket_wait_ms=1000),
                 catalog=catalog_of(broker.prefix), env=env)
    assert f"Socket file {never} not created after 1000 ms" in error_of(result)["message"]
    assert time.monotonic() - started < 60


def test_an_unknown_medium_is_a_config_error_not_stdin(tmp_path, broker):
    line = json.dumps(record(broker.prefix, "orders", 1, "p"))
    result = run(["write"], line + "\n", tmp_path=tmp_path, config=config_of(broker, "pigeon"),
                 catalog=catalog_of(broker.prefix), env={"DATA_CHANNEL_MEDIUM": "PIGEON"})
    error = error_of(result)
    assert error["failure_type"] == "config_error" and "DATA_CHANNEL_MEDIUM is `PIGEON`" in error["message"]


def test_namespace_mapping_and_stream_prefix_are_applied_before_the_topic_pattern(tmp_path, broker, sockets_dir):
    """The platform hands over the source's names; the mapping file says where they go."""
    mapping = tmp_path / "namespace-mapping.json"
    mapping.write_text(json.dumps({"namespaceDefinitionType": "customformat",
                                   "namespaceFormat": f"{broker.prefix}_${{SOURCE_NAMESPACE}}", "streamPrefix": "pre_"}))
    scripts = [[record("shop", "orders", 1, "p001"), state("shop", "orders", 1, "p001", 1)]]
    config = config_of(broker, "mapped", topic_pattern="{namespace}.{stream}")
    result = run_sockets(tmp_path, sockets_dir, "JSONL", scripts, config, catalog_of("shop"),
                         env={"NAMESPACE_MAPPING_CONFIG_PATH": str(mapping)})
    assert result.returncode == 0, result.messages
    [(_, _, value)] = consume(broker.bootstrap, f"{broker.prefix}_shop_pre_orders", 1)
    assert value["_airbyte_stream"] == "pre_orders"
    [out] = result.of_type("STATE")
    assert out["state"]["stream"]["stream_descriptor"] == {"name": "orders", "namespace": "shop"}, "echoed as read"


def test_kill_9_mid_sync_then_a_rerun(tmp_path, broker, sockets_dir):
    """Killed while records stream in: every state that came out has all its records in Kafka; a rerun from the
    last state finishes the rest."""
    namespace = broker.prefix
    parts = checkpoints(namespace)
    hold = threading.Event()
    scripts = [[], []]
    for i, (stream, k, partition, records, st) in enumerate(parts):
        scripts[i % 2] += [st] + records
    scripts[1].insert(len(scripts[1]) // 2, hold)
    source = Source(sockets_dir, scripts, "PROTOBUF", SCHEMAS)
    connector = Running(tmp_path, config_of(broker, "kill"), catalog_of(namespace), source.env("PROTOBUF"))
    try:
        states = connector.states_within(60, enough=1)
        connector.process.send_signal(signal.SIGKILL)
        connector.process.wait(30)
    finally:
        hold.set()
    assert states, "no state came out before the kill"
    # Every record of every emitted state is in its topic (at least once).
    for stream in SCHEMAS:
        emitted = [o["state"]["id"] for o in states if o["state"]["stream"]["stream_descriptor"]["name"] == stream]
        want = {r["record"]["data"]["id"] for s, k, _, recs, _ in parts if s == stream and k in emitted for r in recs}
        got = present_ids(broker, f"{broker.prefix}_kill_{stream}")
        assert want <= got, (stream, want - got)
    # The rerun: the checkpoints no state covered, again, from a fresh source.
    shutil.rmtree(sockets_dir)
    os.mkdir(sockets_dir)
    emitted = {(o["state"]["stream"]["stream_descriptor"]["name"], o["state"]["id"]) for o in states}
    rest = [p for p in parts if (p[0], p[1]) not in emitted]
    renumbered = {}
    scripts = [[]]
    for stream, k, partition, records, st in rest:
        renumbered[stream] = renumbered.get(stream, 0) + 1
        st["state"]["id"] = renumbered[stream]
        scripts[0] += records + [st]
    result = run_sockets(tmp_path, sockets_dir, "PROTOBUF", scripts, config_of(broker, "kill"), catalog_of(namespace))
    assert result.returncode == 0, result.messages
    assert len(result.of_type("STATE")) == len(rest)
    for stream in SCHEMAS:
        want = {r["record"]["data"]["id"] for s, _, _, recs, _ in parts if s == stream for r in recs}
        assert present_ids(broker, f"{broker.prefix}_kill_{stream}") == want


def test_exactly_once_commits_only_whole_partitions(tmp_path, broker, sockets_dir):
    """exactly_once over two sockets, each sending partitions one after another (records, then their state), out of
    step, so that one is mostly in the middle of a partition when the other ends one. First 20 partitions each, then
    the sockets wait (both between partitions: the connector must commit there); then 30 more and 6 records of the
    next, where they stop until after the kill. Killed with -9 then, a `read_committed` reader sees every partition
    whole or not at all, so a rerun from the last states writes nothing twice.

    The stop in the middle of a partition is for good: no boundary can come after it, and `transaction_max_ms`, whose
    bound commits part-read partitions too (rather than have the broker abort the transaction), is set past the
    test's length. The wait between partitions is what makes commits certain before the stop on a slow machine,
    where a slow commit lets the sockets write everything up to it before the connector reads on. Socket 1 pauses
    before its last two partitions there, so that socket 0 has sent all it has, its last state waiting for a
    partition of socket 1's held back: the connector must see that waiting on cannot help and begin that partition
    (it used to wait until the bound)."""
    namespace = broker.prefix
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "p": {"type": "string"}}}
    catalog = configured_catalog({"streams": [{"name": "parts", "namespace": namespace, "json_schema": schema}]})
    size, first, last = 40, 20, 50
    gate, hold, marks = threading.Event(), threading.Event(), [Mark(), Mark()]
    scripts = [[], []]
    for i in (0, 1):
        for k in range(last + 1):
            if k == first:
                scripts[i].append(gate)
            if (i, k) == (1, first - 2):
                # Socket 0 gets to the wait first, its last state waiting for one of socket 1's partitions.
                scripts[i].append(Pause(0.3))
            partition = f"s{i}k{k}"
            for j in range(size if k < last else 6):
                scripts[i].append({"type": "RECORD", "record": {"namespace": namespace, "stream": "parts", "emitted_at": 1,
                                   "data": {"id": j, "p": partition}, "partition_id": partition}})
                # The two sockets out of step: they pause at different points of their partitions.
                if (j + 5 * i) % 10 == 0:
                    scripts[i].append(Pause(0.01))
            if k < last:
                scripts[i].append({"type": "STATE", "state": {"type": "STREAM", "stream": {
                    "stream_descriptor": {"name": "parts", "namespace": namespace}, "stream_state": {"k": k}},
                    "partition_id": partition, "id": 2 * k + i + 1, "sourceStats": {"recordCount": float(size)}}})
        scripts[i] += [marks[i], hold]
    config = config_of(broker, "eos", delivery_guarantee="exactly_once", transaction_commit_interval_ms=20,
                       transaction_max_ms=300_000)
    source = Source(sockets_dir, scripts, "PROTOBUF", {"parts": schema})
    connector = Running(tmp_path, config, catalog, source.env("PROTOBUF"))
    try:
        before = connector.states_within(60, enough=2 * first)
        assert len(before) == 2 * first, ("the first partitions were not all committed", connector.messages[-20:])
        gate.set()
        # At least one commit while the sockets are out of step, then the stop in the middle of partitions.
        states = connector.states_within(60, enough=2 * first + 1)
        assert len(states) > 2 * first, ("nothing committed after the wait", connector.messages[-20:])
        assert all(mark.reached.wait(60) for mark in marks), "the sockets did not get to the stop"
        states = connector.states_within(1)
        assert connector.process.poll() is None, ("the sync ended before the kill", connector.messages[-20:])
        connector.process.send_signal(signal.SIGKILL)
        connector.process.wait(30)
    finally:
        gate.set()
        hold.set()
        connector.process.kill()
    counts = committed_partitions(broker, f"{broker.prefix}_eos_parts")
    assert all(n == size for n in counts.values()), {p: n for p, n in counts.items() if n != size}
    emitted = {s["state"]["partition_id"] for s in states}
    assert emitted <= set(counts), "every emitted state's records are committed"
    assert {"s0k50", "s1k50"}.isdisjoint(counts), "the partitions stopped in the middle are not committed"


def committed_partitions(broker, topic):
    """Records per source partition (`data.p`) that a `read_committed` reader sees."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "eos", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        counts, idle = {}, 0
        while idle < 10:
            batch = consumer.consume(num_messages=10000, timeout=0.3)
            idle = idle + 1 if not batch else 0
            for m in batch:
                if m.error() is None:
                    p = json.loads(m.value())["_airbyte_data"]["p"]
                    counts[p] = counts.get(p, 0) + 1
        return counts
    finally:
        consumer.close()


def present_ids(broker, topic):
    """The record ids a topic holds (whatever their number: a killed sync may have written some twice)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "speed", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            return set()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.topics[topic].partitions])
        ids, idle = set(), 0
        while idle < 5:
            batch = consumer.consume(num_messages=10000, timeout=0.3)
            idle = idle + 1 if not batch else 0
            ids |= {json.loads(m.value())["_airbyte_data"]["id"] for m in batch if m.error() is None}
        return ids
    finally:
        consumer.close()


def test_metadata_declares_the_data_channel_as_airbyte_destinations_do():
    """Written out from destination-snowflake's metadata.yaml (the platform falls back to STDIO unless both sides
    declare the same version)."""
    data = yaml.safe_load((REPO / "metadata.yaml").read_text())["data"]
    assert data["connectorIPCOptions"] == {"dataChannel": {
        "version": "0.0.2", "supportedSerialization": ["JSONL", "PROTOBUF"], "supportedTransport": ["SOCKET", "STDIO"]}}
