"""The connector driven by a real Airbyte client: PyAirbyte with source-faker, offline."""

import os
import pathlib
import shutil

import pytest

from conftest import BIN, consume, java_acceptance_config, read_back

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import airbyte as ab  # noqa: E402  (reads the offline flags at import)

SOURCE_FAKER = os.environ.get("SOURCE_FAKER") or shutil.which("source-faker")


def test_pyairbyte_source_faker_to_kafka(broker, tmp_path):
    assert SOURCE_FAKER, "source-faker not found: set SOURCE_FAKER (scripts/test does)"
    source = ab.get_source(
        "source-faker",
        config={"count": 3000, "seed": 7, "parallelism": 1},
        local_executable=SOURCE_FAKER,
    )
    source.select_all_streams()
    config = java_acceptance_config(broker)
    config.update({"topic_pattern": f"{broker.prefix}.{{stream}}", "sync_producer": False})
    destination = ab.get_destination("destination-kafka", config=config, local_executable=BIN)

    result = destination.write(source, cache=False, state_cache=False)

    tracker = result._progress_tracker  # PyAirbyte keeps its tallies here
    read = dict(tracker.stream_read_counts)
    assert read.get("users") == 3000, read
    assert set(read) == {"users", "products", "purchases"}
    for stream, count in read.items():
        assert len(consume(broker.bootstrap, broker.topic(stream), count)) == count, stream
    # PyAirbyte stored the states we echoed, and their destinationStats add up to every record it sent.
    assert result._state_writer._state_message_artifacts, "no state reached PyAirbyte"
    assert dict(tracker.destination_stream_records_confirmed) == read


def frozen_faker(tmp_path):
    """source-faker with its clock frozen. Its records (and states) carry `datetime.now()`, so only a frozen clock
    makes a re-run resend the same records: the precondition of replay detection (a deterministic replay), which
    the real faker meets only this way. Its modules get a `datetime` whose `datetime.now()` is fixed; everything
    else is the real source."""
    script = tmp_path / "source-faker-frozen"
    script.write_text(f"""#!{pathlib.Path(SOURCE_FAKER).parent / "python3"}
import datetime
import sys
import types


class Frozen(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2024, 1, 1, 12, 0, 0, tzinfo=tz)


clock = types.ModuleType("datetime")
clock.__dict__.update({{k: v for k, v in vars(datetime).items() if not k.startswith("__")}})
clock.datetime = Frozen
import source_faker.purchase_generator, source_faker.streams, source_faker.user_generator  # noqa: E401,E402
for module in (source_faker.purchase_generator, source_faker.streams, source_faker.user_generator):
    module.datetime = clock
from source_faker.run import run  # noqa: E402

sys.exit(run())
""")
    script.chmod(0o755)
    return str(script)


def test_pyairbyte_rerun_after_a_crash_between_commit_and_state_writes_no_duplicate(broker, tmp_path, monkeypatch):
    """Exactly-once with replay detection, driven by PyAirbyte: the first run dies right after its third commit,
    before that commit's STATE is out; PyAirbyte runs the same sync again from the start (it kept no state). Every
    record is then in its topic exactly once for a `read_committed` consumer, and the rerun says how many it
    recognised."""
    assert SOURCE_FAKER, "source-faker not found: set SOURCE_FAKER (scripts/test does)"
    source = ab.get_source("source-faker", config={"count": 1000, "seed": 7, "parallelism": 1, "records_per_slice": 100},
                           local_executable=frozen_faker(tmp_path))
    source.select_all_streams()
    config = java_acceptance_config(broker)
    config.update({"topic_pattern": f"{broker.prefix}.{{stream}}", "sync_producer": False,
                   "delivery_guarantee": "exactly_once", "transaction_commit_interval_ms": 0,
                   "replay_detection": True, "progress_topic": f"{broker.prefix}_progress"})
    destination = ab.get_destination("destination-kafka", config=config, local_executable=BIN)
    monkeypatch.setenv("DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS", "3")
    with pytest.raises(Exception):
        destination.write(source, cache=False, state_cache=False)
    committed = {"isolation.level": "read_committed"}
    # It died after three commits (each wrote one progress record with its records), not before.
    assert len(read_back(broker.bootstrap, f"{broker.prefix}_progress", 3, consumer_config=committed)) == 3
    monkeypatch.delenv("DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS")
    result = destination.write(source, cache=False, state_cache=False)
    read = dict(result._progress_tracker.stream_read_counts)
    assert read.get("users") == 1000, read
    for stream, count in read.items():
        # read_back fails on a message more than expected: a duplicate would.
        assert len(read_back(broker.bootstrap, broker.topic(stream), count, consumer_config=committed)) == count
