"""`bench/run --speed-mode`: the same records through stdin and through Speed Mode's sockets (1, 2 and 4, in JSONL
and PROTOBUF). The sockets are served from pre-encoded files by `sendfile` (the kernel copies; the server costs next
to no CPU), so what is measured is the connector: records/s, its user+sys CPU and its peak RSS."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading

from bench import (BIN, OUT, RECORD_SCHEMA, REPO, Kafka, callgrind, catalog, connector_config, generate,
                   print_table, run_connector)

SOCKETS = [1, 2, 4]


def encoded(n, sockets, framing, every, python):
    """The files of each socket, generated once: (paths, states they hold)."""
    prefix = OUT / f"speed-{n}-{sockets}-{framing.lower()}-{every}"
    done = prefix.with_suffix(".states")
    if not done.exists():
        out = subprocess.run([python, REPO / "bench" / "gen_frames.py", str(n), str(sockets), framing, str(every),
                              str(prefix)], check=True, capture_output=True, text=True, cwd=REPO / "bench")
        done.write_text(out.stdout.strip())
    return [f"{prefix}.{i}" for i in range(sockets)], int(done.read_text())


class Served:
    """The files, each on a Unix socket of its own, sent whole to whoever connects."""

    def __init__(self, files):
        self.directory = tempfile.mkdtemp(prefix="bench-s-")
        self.paths = [os.path.join(self.directory, f"airbyte_socket_{i}.sock") for i in range(len(files))]
        self.threads = []
        for path, file in zip(self.paths, files):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            thread = threading.Thread(target=self.serve, args=(listener, file), daemon=True)
            thread.start()
            self.threads.append(thread)

    @staticmethod
    def serve(listener, file):
        conn, _ = listener.accept()
        with conn, open(file, "rb") as f:
            conn.sendfile(f)
        listener.close()

    def env(self, framing):
        return dict(os.environ, DATA_CHANNEL_MEDIUM="SOCKET", DATA_CHANNEL_FORMAT=framing,
                    DATA_CHANNEL_SOCKET_PATHS=",".join(self.paths))

    def close(self):
        for t in self.threads:
            t.join(60)
        shutil.rmtree(self.directory, ignore_errors=True)


def run_case(kafka, n, every, framing, sockets, python):
    prefix = kafka.prefix()
    try:
        if framing is None:
            return run_connector(kafka, prefix, generate(n, every), n, every, RECORD_SCHEMA)
        files, states = encoded(n, sockets, framing, every, python)
        for f in files:
            with open(f, "rb") as warm:
                while warm.read(1 << 24):
                    pass
        served = Served(files)
        try:
            return run_connector(kafka, prefix, None, n, every, RECORD_SCHEMA, env=served.env(framing), states=states)
        finally:
            served.close()
    finally:
        kafka.drop(prefix)


def compare(n, every, repeat, python):
    cases = [("STDIO, JSONL", None, 1)] + [(f"{s} socket{'s' if s > 1 else ''}, {f}", f, s)
                                            for f in ("JSONL", "PROTOBUF") for s in SOCKETS]
    kafka = Kafka()
    rows = {}
    try:
        run_case(kafka, n, every, None, 1, python)  # not counted: the broker's JIT warms up
        for i in range(repeat):
            for name, framing, sockets in (cases if i % 2 == 0 else cases[::-1]):
                rows.setdefault(name, []).append(run_case(kafka, n, every, framing, sockets, python))
    finally:
        kafka.stop()
    rows = {name: rows[name] for name, _, _ in cases}
    print_table(f"Speed Mode: {n:,} records, a STATE every {every:,} records (per socket), Apache Kafka on the same "
                f"cores, median of {repeat}", "input", "STDIO", rows, n)


def instructions(n, every, python):
    """Instructions per record (callgrind, every thread) of `write` on stdin and on one socket, JSONL and PROTOBUF:
    what reading Speed Mode's framings costs, repeatable where seconds are not."""
    kafka = Kafka()
    rows = {}
    try:
        for name, framing in (("STDIO, JSONL", None), ("1 socket, JSONL", "JSONL"), ("1 socket, PROTOBUF", "PROTOBUF")):
            prefix = kafka.prefix()
            argv = [BIN, "write", "--config", connector_config(kafka, prefix), "--catalog", catalog(RECORD_SCHEMA)]
            tag = f"speed-{framing.lower() if framing else 'stdio'}"
            if framing is None:
                rows[name] = callgrind(tag, argv, generate(n, every))
            else:
                served = Served(encoded(n, 1, framing, every, python)[0])
                try:
                    rows[name] = callgrind(tag, argv, env=served.env(framing))
                finally:
                    served.close()
            kafka.drop(prefix)
    finally:
        kafka.stop()
    print(f"\n## Speed Mode instructions (valgrind --tool=callgrind): {n:,} records, a STATE every {every:,}, "
          "every thread")
    print("| input | instructions | per record | ÷ STDIO | profile |")
    print("| --- | ---: | ---: | ---: | --- |")
    base = rows["STDIO, JSONL"][0]
    for name, (total, out) in rows.items():
        print(f"| {name} | {total:,} | {total / n:,.0f} | {total / base:.2f} | {out.relative_to(REPO)} |")
