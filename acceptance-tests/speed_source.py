"""A Speed Mode source, as the platform's source side serves one: it binds Unix sockets, accepts the destination on
each, and writes each socket's script of messages, as JSON lines or as varint-delimited `AirbyteMessageProtobuf`.

Protobuf is encoded by an independent implementation: Google's protobuf runtime, with classes generated from the
repository's `proto/` by grpcio-tools' protoc (not by the connector's Rust code). A value's case follows its JSON
schema type, as the bulk CDK's sources choose it."""

import functools
import json
import os
import pathlib
import socket
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent


@functools.cache
def pb():
    """The generated module of `AirbyteMessageProtobuf` (compiled once per session)."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="speed-mode-pb-")
    proto = REPO / "proto"
    files = [str(p) for p in sorted(proto.glob("*.proto"))]
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}", *files]) == 0
    sys.path.insert(0, out)
    import airbyte_message_pb2

    return airbyte_message_pb2


def fields_of(schema):
    """The stream's top-level properties in the order Protobuf records carry them (by UTF-16 code unit)."""
    return sorted(schema.get("properties", {}), key=lambda name: name.encode("utf-16-be"))


def value_of(value, schema):
    """One `AirbyteValueProtobuf`, the case chosen by the property's declared type."""
    out = record_module().AirbyteValueProtobuf()
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if value is None:
        out.is_null = True
    elif isinstance(value, bool) and "boolean" in kinds:
        out.boolean = value
    elif isinstance(value, int) and "integer" in kinds:
        if -(2**63) <= value < 2**63:
            out.integer = value
        else:
            out.big_integer = str(value)
    elif isinstance(value, (int, float)) and "number" in kinds:
        out.number = float(value)
    elif isinstance(value, str) and "string" in kinds:
        out.string = value.encode()  # `bytes` in proto/ (the CDK's `string`: the same bytes)
    else:
        out.json = json.dumps(value, separators=(",", ":")).encode()
    return out


@functools.cache
def record_module():
    pb()
    import airbyte_record_message_pb2

    return airbyte_record_message_pb2


def protobuf_frame(message, schemas):
    """A JSON Airbyte message as one varint-delimited `AirbyteMessageProtobuf`: records by value, anything else
    as the JSON text itself (`airbyte_protocol_message`)."""
    from google.protobuf.internal.encoder import _VarintBytes

    out = pb().AirbyteMessageProtobuf()
    if message["type"] == "RECORD":
        record = message["record"]
        schema = schemas[record["stream"]]
        r = out.record
        if record.get("namespace") is not None:
            r.stream_namespace = record["namespace"]
        r.stream_name = record["stream"]
        r.emitted_at_ms = record["emitted_at"]
        r.partition_id = record["partition_id"]
        for name in fields_of(schema):
            r.data.append(value_of(record["data"].get(name), schema["properties"][name]))
    elif message["type"] == "PROBE":
        out.probe.SetInParent()
    else:
        out.airbyte_protocol_message = json.dumps(message)
    body = out.SerializeToString()
    return _VarintBytes(len(body)) + body


def jsonl_frame(message, _schemas):
    return b"\n" if message["type"] == "PROBE" else (json.dumps(message, separators=(",", ":")) + "\n").encode()


class Pause:
    """A step of a script: the socket waits this many seconds before going on (a source producing slowly)."""

    def __init__(self, seconds):
        self.seconds = seconds


class Mark:
    """A step of a script: the socket sets `reached` when it gets there (everything before it written)."""

    def __init__(self):
        self.reached = threading.Event()


class Source:
    """Serves `scripts[i]` on socket i: a list of messages (dicts), bytes written as they are, `Pause`s, `Mark`s
    and `threading.Event`s to wait for before going on. A socket whose reader went away (a killed connector) stops."""

    def __init__(self, directory, scripts, framing, schemas):
        self.paths = [str(pathlib.Path(directory) / f"airbyte_socket_{i}.sock") for i in range(len(scripts))]
        encode = protobuf_frame if framing == "PROTOBUF" else jsonl_frame
        self.errors = []
        self.threads = []
        for path, script in zip(self.paths, scripts):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            thread = threading.Thread(target=self.serve, args=(listener, script, encode, schemas), daemon=True)
            thread.start()
            self.threads.append(thread)

    def serve(self, listener, script, encode, schemas):
        try:
            listener.settimeout(120)
            conn, _ = listener.accept()
            with conn:
                for step in script:
                    if isinstance(step, threading.Event):
                        assert step.wait(60), "the test never let this socket go on"
                    elif isinstance(step, Pause):
                        time.sleep(step.seconds)
                    elif isinstance(step, Mark):
                        step.reached.set()
                    elif isinstance(step, bytes):
                        conn.sendall(step)
                    else:
                        conn.sendall(encode(step, schemas))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.errors.append(e)
        finally:
            listener.close()

    def env(self, framing):
        return {"DATA_CHANNEL_MEDIUM": "SOCKET", "DATA_CHANNEL_FORMAT": framing,
                "DATA_CHANNEL_SOCKET_PATHS": ",".join(self.paths)}

    def join(self):
        for t in self.threads:
            t.join(120)
        assert not self.errors, self.errors


def unused_path(directory, name="never.sock"):
    path = os.path.join(directory, name)
    assert not os.path.exists(path)
    return path
