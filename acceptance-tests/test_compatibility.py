"""A second Kafka-compatible broker: tansu (scripts/tansu-broker), a young reimplementation of the protocol in Rust.
A smoke test of compatibility, not a proof of guarantees (those run on Apache Kafka): a dataset synced and read back
byte for byte, and an exactly-once sync whose transactions tansu commits."""

import json

import pytest

from conftest import Launched, configured_catalog, consume, dataset, java_acceptance_config, run


class Tansu:
    def __init__(self, launched):
        self.launched = launched
        self.bootstrap = launched.info["bootstrap"]
        self.prefix = "tansu"

    def topic(self, name):
        return f"{self.prefix}_{name}"


@pytest.fixture(scope="module")
def tansu():
    launched = Launched("tansu-broker")
    yield Tansu(launched)
    launched.stop()


def test_a_dataset_byte_for_byte_and_an_exactly_once_sync(tmp_path, tansu):
    catalog, lines = dataset("exchange_rate")
    records = [json.loads(l)["record"] for l in lines if json.loads(l)["type"] == "RECORD"]
    for guarantee, topic_pattern in [("at_least_once", "alo.{stream}"), ("exactly_once", "eos.{stream}")]:
        config = java_acceptance_config(tansu)
        config.update(topic_pattern=topic_pattern, delivery_guarantee=guarantee, sync_producer=False)
        result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=config,
                     catalog=configured_catalog(catalog))
        assert result.returncode == 0, result.of_type("TRACE")
        assert len(result.of_type("STATE")) == sum(1 for l in lines if json.loads(l)["type"] == "STATE")
        got = consume(tansu.bootstrap, topic_pattern.replace(".{stream}", "_exchange_rate"), len(records))
        assert [v["_airbyte_data"] for _, _, v in got] == [r["data"] for r in records]
        assert all(k == v["_airbyte_ab_id"] for _, k, v in got)
