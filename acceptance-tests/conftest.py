"""Black-box harness: the built binary as a separate process, a real tansu broker, and Airbyte's protocol schema."""

import json
import os
import pathlib
import socket
import subprocess
import time

import jsonschema
import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

REPO = pathlib.Path(__file__).resolve().parent.parent
# Airbyte's destination-acceptance-test datasets, shared with the Rust tests.
DATA = REPO / "tests" / "fixtures"
BIN = os.environ.get("DESTINATION_KAFKA_BIN", str(REPO / "target" / "release" / "destination-kafka"))

# The Airbyte protocol schema, release 0.18.0, kept beside the suite.
_protocol = yaml.safe_load((REPO / "acceptance-tests" / "data" / "airbyte_protocol_v0_18.yaml").read_text())
MESSAGE_SCHEMA = {"$ref": "#/definitions/AirbyteMessage", "definitions": _protocol["definitions"]}
_validator = jsonschema.Draft7Validator(MESSAGE_SCHEMA)


def validate(message):
    """Fails unless `message` is a valid AirbyteMessage."""
    errors = list(_validator.iter_errors(message))
    assert not errors, f"not a valid AirbyteMessage: {json.dumps(message)[:300]}: {errors[0].message}"


def java_acceptance_config(bootstrap):
    """The config of the Java connector's own acceptance test, unchanged: numbers as strings, sync producer."""
    return {
        "bootstrap_servers": bootstrap,
        "topic_pattern": "{namespace}.{stream}.test.topic",
        "test_topic": "check-topic",
        "sync_producer": True,
        "protocol": {"security_protocol": "PLAINTEXT"},
        "client_id": "test-client",
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "none",
        "batch_size": "16384",
        "linger_ms": "0",
        "max_in_flight_requests_per_connection": "5",
        "client_dns_lookup": "use_all_dns_ips",
        "buffer_memory": "33554432",
        "max_request_size": "16384",
        "retries": "2147483647",
        "socket_connection_setup_timeout_ms": "10000",
        "socket_connection_setup_timeout_max_ms": "30000",
        "max_block_ms": "60000",
        "request_timeout_ms": "30000",
        "delivery_timeout_ms": "120000",
        "send_buffer_bytes": "-1",
        "receive_buffer_bytes": "-1",
    }


class Broker:
    """One tansu broker on a free loopback port, started by the project's script."""

    def __init__(self, *options):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [str(REPO / "scripts" / "tansu-broker"), str(self.port), *options]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + (20 if not options else 180)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "tansu did not start (scripts/install-deps installs it)"
                time.sleep(0.02)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()


@pytest.fixture
def sasl_broker():
    b = Broker("--sasl")
    yield b
    b.stop()


@pytest.fixture
def transactional_broker():
    """The tansu build that commits, aborts and fences transactions (scripts/tansu-broker --transactions)."""
    b = Broker("--transactions")
    yield b
    b.stop()


class Result:
    def __init__(self, returncode, messages):
        self.returncode = returncode
        self.messages = messages

    def of_type(self, kind):
        return [m for m in self.messages if m["type"] == kind]


def run(args, stdin="", tmp_path=None, config=None, catalog=None):
    """Runs the connector; every stdout line must be a valid Airbyte message."""
    argv = [BIN] + list(args)
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        argv += ["--config", str(path)]
    if catalog is not None:
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(catalog))
        argv += ["--catalog", str(path)]
    proc = subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=300)
    messages = []
    for line in proc.stdout.decode().splitlines():
        message = json.loads(line)
        validate(message)
        messages.append(message)
    return Result(proc.returncode, messages)


def configured_catalog(catalog, sync_mode="full_refresh"):
    return {
        "streams": [
            {"stream": s, "sync_mode": sync_mode, "destination_sync_mode": "append"} for s in catalog["streams"]
        ]
    }


def dataset(name):
    catalog = json.loads((DATA / f"{name}_catalog.json").read_text())
    lines = [l for l in (DATA / f"{name}_messages.txt").read_text().splitlines() if l.strip()]
    return catalog, lines


def consume(bootstrap, topic, expected, timeout=60):
    """Every message of `topic` from the earliest offset, as (partition, key text, parsed value), in offset order
    per partition."""
    return [(m.partition(), m.key().decode(), json.loads(m.value())) for m in read_back(bootstrap, topic, expected, timeout)]


def read_back(bootstrap, topic, expected, timeout=60, consumer_config=None):
    """Every message of `topic` from the earliest offset, as confluent_kafka Messages (key, value, headers,
    timestamp), in offset order per partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "acceptance",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
            **(consumer_config or {}),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected:
            assert time.monotonic() < deadline, f"read {len(out)} of {expected} messages from {topic}"
            for msg in consumer.consume(num_messages=10000, timeout=0.2):
                assert msg.error() is None, msg.error()
                out.append(msg)
        # Nothing beyond what was expected.
        extra = consumer.consume(num_messages=1, timeout=0.5)
        assert not extra, f"unexpected extra message in {topic}"
        return out
    finally:
        consumer.close()
