"""The connector driven by a real Airbyte client: PyAirbyte with source-faker, offline."""

import os
import shutil

from conftest import BIN, consume, java_acceptance_config

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
