"""Writes Speed Mode input for the benchmark: gen.py's N records spread over S sockets (record i on socket i mod S),
each socket's file in JSONL or varint-delimited AirbyteMessageProtobuf (Google's protobuf runtime, classes compiled
from the repository's proto/ by grpcio-tools' protoc), with a GLOBAL state after every K records of a socket: its
own partition, `id`s numbered across the sockets, `sourceStats.recordCount` = K (or what is left).

Usage: gen_frames.py N S JSONL|PROTOBUF K OUT_PREFIX   (writes OUT_PREFIX.0 … OUT_PREFIX.S-1)"""

import json
import pathlib
import sys
import tempfile

from gen import records

REPO = pathlib.Path(__file__).resolve().parent.parent
# The top-level properties of gen.py's records in the order Protobuf carries them (sorted by name).
FIELDS = ["active", "address", "created_at", "email", "id", "name", "score", "tags"]


def compiled():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="bench-pb-")
    proto = REPO / "proto"
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}",
                        *map(str, sorted(proto.glob("*.proto")))]) == 0
    sys.path.insert(0, out)
    import airbyte_message_pb2

    return airbyte_message_pb2


def main():
    n, sockets, framing, every, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    files = [open(f"{prefix}.{i}", "wb") for i in range(sockets)]
    counts = [0] * sockets
    states = [0] * sockets
    if framing == "PROTOBUF":
        pb = compiled()
        from google.protobuf.internal.encoder import _VarintBytes

        def frame(message):
            body = message.SerializeToString()
            return _VarintBytes(len(body)) + body

        def record(stream, emitted_at, data, partition):
            m = pb.AirbyteMessageProtobuf()
            r = m.record
            r.stream_name, r.emitted_at_ms, r.partition_id = stream, emitted_at, partition
            for name in FIELDS:
                v = r.data.add()
                value = data[name]
                if isinstance(value, bool):
                    v.boolean = value
                elif isinstance(value, int):
                    v.integer = value
                elif isinstance(value, float):
                    v.number = value
                elif isinstance(value, str):
                    v.string = value.encode()  # `bytes` in proto/ (the CDK's `string`: the same bytes)
                else:
                    v.json = json.dumps(value, separators=(",", ":")).encode()
            return frame(m)

        def protocol(message):
            m = pb.AirbyteMessageProtobuf()
            m.airbyte_protocol_message = json.dumps(message)
            return frame(m)
    else:
        def record(stream, emitted_at, data, partition):
            message = {"type": "RECORD", "record": {"stream": stream, "emitted_at": emitted_at, "data": data,
                                                    "partition_id": partition}}
            return (json.dumps(message, separators=(",", ":")) + "\n").encode()

        def protocol(message):
            return (json.dumps(message) + "\n").encode()

    def state(i, count):
        states[i] += 1
        number = (states[i] - 1) * sockets + i + 1
        return protocol({"type": "STATE", "state": {
            "type": "GLOBAL", "global": {"shared_state": {"socket": i, "n": states[i]}, "stream_states": []},
            "partition_id": f"s{i}p{states[i]}", "id": number, "sourceStats": {"recordCount": float(count)}}})

    for j, (stream, emitted_at, data) in enumerate(records(n)):
        i = j % sockets
        files[i].write(record(stream, emitted_at, data, f"s{i}p{states[i] + 1}"))
        counts[i] += 1
        if counts[i] == every:
            files[i].write(state(i, counts[i]))
            counts[i] = 0
    # The last partial checkpoints; ids stay contiguous: a socket whose checkpoints ran out closes with an empty one.
    top = max(states[i] + (counts[i] > 0) for i in range(sockets))
    for i in range(sockets):
        while states[i] < top:
            files[i].write(state(i, counts[i]))
            counts[i] = 0
    for f in files:
        f.close()
    print(sum(states))


if __name__ == "__main__":
    main()
