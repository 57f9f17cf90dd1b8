"""Black-box harness: the built binary as a separate process, Apache Kafka and Apicurio Registry started by the
project's launchers (scripts/kafka-broker, scripts/schema-registry), and Airbyte's protocol schema.

One broker serves the session; each test writes to topics of its own (`broker.prefix` before every topic name, as
the topic pattern of `java_acceptance_config` puts it there)."""

import hashlib
import http.client
import json
import os
import pathlib
import subprocess
import time
import urllib.parse
import urllib.request

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


class Launched:
    """A service started by one of the project's launchers: it prints one JSON line describing itself, and stops
    (with everything it started) when its stdin closes."""

    def __init__(self, script, *args):
        self.process = subprocess.Popen([str(REPO / "scripts" / script), *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert line, f"scripts/{script} did not start (its stderr says why)"
        self.info = json.loads(line)

    def stop(self):
        self.process.stdin.close()
        self.process.wait(60)


class Topics:
    """The session's broker, seen by one test: its topics start with `prefix`."""

    def __init__(self, kafka, prefix):
        self.kafka = kafka
        self.info = kafka.info
        self.bootstrap = kafka.info["bootstrap"]
        self.prefix = prefix

    def topic(self, name):
        return f"{self.prefix}_{name}"

    def listener(self, name):
        return self.info["listeners"][name]


@pytest.fixture(scope="session")
def kafka():
    launched = Launched("kafka-broker")
    yield launched
    launched.stop()


@pytest.fixture
def broker(kafka, request):
    return Topics(kafka, "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10])


@pytest.fixture(scope="session")
def apicurio():
    """Apicurio Registry (in memory): a real registry's Confluent-compatible API."""
    launched = Launched("schema-registry")
    yield RealRegistry(launched.info["url"])
    launched.stop()


class RealRegistry:
    """What a test asks a registry through its Confluent-compatible REST API (not through the connector)."""

    def __init__(self, url, context=None):
        self.url = url
        self.context = context

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        # A read (GET) whose connection drops before an answer is asked again: Apicurio on a loaded 2-core CI
        # machine once closed a fresh connection without answering. A write is never repeated here.
        for attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                    return json.loads(response.read() or b"null")
            except (http.client.RemoteDisconnected, ConnectionResetError):
                if method != "GET" or attempt == 2:
                    raise
                time.sleep(0.5)

    @property
    def subjects(self):
        """subject -> [schema id of each version]"""
        out = {}
        for subject in self.call("GET", "/subjects"):
            quoted = urllib.parse.quote(subject, safe="")
            versions = self.call("GET", f"/subjects/{quoted}/versions")
            out[subject] = [self.call("GET", f"/subjects/{quoted}/versions/{v}")["id"] for v in versions]
        return out

    def schema_of(self, schema_id):
        """(schema text, type) of an id."""
        answer = self.call("GET", f"/schemas/ids/{schema_id}")
        return answer["schema"], answer.get("schemaType", "AVRO")

    def compatibility(self, subject, level):
        self.call("PUT", f"/config/{urllib.parse.quote(subject, safe='')}", {"compatibility": level})


def java_acceptance_config(broker, bootstrap=None):
    """The config of the Java connector's own acceptance test, unchanged (numbers as strings, sync producer), but
    for the broker (or `bootstrap`) and this test's topic prefix."""
    config = json.loads((DATA / "java-acceptance-config.json").read_text())
    config["bootstrap_servers"] = bootstrap or broker.bootstrap
    config["topic_pattern"] = f"{broker.prefix}.{config['topic_pattern']}"
    config["test_topic"] = f"{broker.prefix}.{config['test_topic']}"
    return config


class Result:
    def __init__(self, returncode, messages):
        self.returncode = returncode
        self.messages = messages

    def of_type(self, kind):
        return [m for m in self.messages if m["type"] == kind]


def run(args, stdin="", tmp_path=None, config=None, catalog=None, env=None):
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
    proc = subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=300,
                          env={**os.environ, **(env or {})})
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
