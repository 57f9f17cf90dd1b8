"""What a user might write instead: a minimal Airbyte Python CDK destination with confluent-kafka, the same
envelope, and a flush before each STATE (the simplest way to make a state a promise in Python)."""

import json
import sys
import time
import uuid
from typing import Any, Iterable, Mapping

from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Status,
    Type,
)
from confluent_kafka import Producer


class KafkaPeer(Destination):
    def spec(self, logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification={"type": "object"})

    def check(self, logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def write(self, config, configured_catalog: ConfiguredAirbyteCatalog, input_messages: Iterable[AirbyteMessage]):
        producer = Producer(config["producer"])
        topics = {s.stream.name: config["topic_prefix"] + s.stream.name for s in configured_catalog.streams}
        failures = []

        def delivered(err, _msg):
            if err is not None:
                failures.append(err)

        for message in input_messages:
            if message.type == Type.RECORD:
                record = message.record
                key = str(uuid.uuid4())
                value = json.dumps(
                    {"_airbyte_ab_id": key, "_airbyte_stream": record.stream,
                     "_airbyte_emitted_at": record.emitted_at, "_airbyte_data": record.data},
                    separators=(",", ":"),
                )
                while True:
                    try:
                        producer.produce(topics[record.stream], value=value, key=key, on_delivery=delivered)
                        break
                    except BufferError:
                        producer.poll(0.01)
                producer.poll(0)
            elif message.type == Type.STATE:
                producer.flush()
                if failures:
                    raise RuntimeError(f"delivery failed: {failures[0]}")
                yield message
        producer.flush()
        if failures:
            raise RuntimeError(f"delivery failed: {failures[0]}")


if __name__ == "__main__":
    KafkaPeer().run(sys.argv[1:])
