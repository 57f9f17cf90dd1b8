"""Orchestrates one benchmark run; see bench/run. Every figure printed is measured in this run.

The broker is Apache Kafka (scripts/kafka-broker, one node, PLAINTEXT, on this machine's cores), started once per
invocation; every run writes to topics of its own, deleted after it."""

import argparse
import glob
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
BIN = TARGET / "release" / "destination-kafka"
READ = TARGET / "release" / "examples" / "read_topics"
STREAMS = ["users", "orders", "events"]

# One set of producer settings for every producer. These are the values the docs recommend for a new connection
# (batches of up to 1 MB, 5 ms linger); the Java UI's 16 KB batches make the broker the bottleneck.
CONFIG = {
    "protocol": {"security_protocol": "PLAINTEXT"},
    "acks": "1",
    "enable_idempotence": False,
    "compression_type": "none",
    "batch_size": 1000000,
    "linger_ms": "5",
    "max_in_flight_requests_per_connection": 5,
    "client_dns_lookup": "use_all_dns_ips",
    "buffer_memory": "33554432",
    "max_request_size": 1048576,
    "retries": 2147483647,
    "socket_connection_setup_timeout_ms": "10000",
    "socket_connection_setup_timeout_max_ms": "30000",
    "max_block_ms": "60000",
    "request_timeout_ms": 30000,
    "delivery_timeout_ms": 120000,
    "send_buffer_bytes": -1,
    "receive_buffer_bytes": -1,
}
# The same settings as librdkafka properties (what the connector's config maps to: src/config/librdkafka.rs), and
# as the Java producer's.
LIBRDKAFKA = {
    "acks": "1",
    "enable.idempotence": "false",
    "compression.type": "none",
    "batch.size": "1000000",
    "linger.ms": "5",
    "max.in.flight.requests.per.connection": "5",
    "queue.buffering.max.kbytes": "32768",
    "queue.buffering.max.messages": "32768",
    "message.max.bytes": "1048576",
    "partitioner": "murmur2_random",
}
JAVA = {
    "acks": "1",
    "enable.idempotence": "false",
    "compression.type": "none",
    "batch.size": "1000000",
    "linger.ms": "5",
    "max.in.flight.requests.per.connection": "5",
    "buffer.memory": "33554432",
    "max.request.size": "1048576",
}


class Kafka:
    """Apache Kafka from the project's launcher; it stops when its stdin closes."""

    def __init__(self):
        # The JVM options Kafka's own start scripts give a broker: with the tests' 512 MB heap it took up to about
        # twice the CPU per record on the same records (measured 2026-12-06), which weighed most on the formats of
        # the most bytes.
        self.proc = subprocess.Popen([REPO / "scripts" / "kafka-broker", "--start-script-jvm", "--delete-at-once"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.bootstrap = self.info["bootstrap"]
        self.pid = self.info["nodes"][0]["pid"]
        self.log_dir = pathlib.Path(self.info["nodes"][0]["log_dir"])
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})
        self.runs = 0

    def prefix(self):
        """A fresh topic prefix for one run."""
        self.runs += 1
        return f"run{self.runs}"

    def create_topic(self, name, partitions):
        for future in self.admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result()

    def drop(self, prefix):
        """Deletes a run's topics and waits until their files are gone and the disk has what the run wrote: a run
        must not pay for an earlier one's (a broker deletes files 60 s after the topic unless --delete-at-once, and
        the kernel writes dirty pages back some 30 s later; measured 2026-12-06: the broker's system time per run
        grew from 0.7 to 3.4 s over a formats bench, connect_json's records/s halved)."""
        topics = [t for t in self.admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if topics:
            for future in self.admin.delete_topics(topics).values():
                future.result()
        deadline = time.monotonic() + 120
        while any(d.name.startswith(f"{t}-") for d in self.log_dir.iterdir() for t in topics):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker still holds files of {topics} two minutes after their deletion")
            time.sleep(0.05)
        os.sync()

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait()


def warm(path):
    """Reads a file once so each producer starts from the page cache, not the disk."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def machine_busy():
    """The whole machine's busy CPU seconds so far, from /proc/stat: every process, the broker included."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


# The machine's columns: how many of its cores were busy during the run (the broker, the producer and anything else),
# and its CPU per record; cores ÷ that is the most records/s the machine could give at that cost, every core busy.
MACHINE_COLUMNS = "machine: cores busy | machine: CPU s per 1M records"


def machine_cells(wall, busy, n):
    return f"{busy / wall:.2f} of {os.cpu_count()} | {busy / n * 1e6:.2f}"


def timed(argv, stdin_path=None, env=None, stdout=subprocess.DEVNULL):
    """Runs argv under GNU time: (wall s, user+sys s, peak RSS MB, the machine's busy CPU s over the run: what the
    broker and the producer took together, which says how close to full the cores were)."""
    fmt = "%e %U %S %M"
    busy_before = machine_busy()
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(["/usr/bin/time", "-f", fmt, "--"] + [str(a) for a in argv], stdin=stdin,
                              stdout=stdout, stderr=subprocess.PIPE, env=env)
    busy = machine_busy() - busy_before
    last = proc.stderr.decode().strip().splitlines()[-1]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    wall, user, sys_, rss = last.split()
    return float(wall), float(user) + float(sys_), int(rss) / 1024, busy


def generate(n, every):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"input-{n}-{every}.jsonl"
    if not path.exists():
        with open(f"{path}.part", "w") as f:
            subprocess.run([sys.executable, REPO / "bench" / "gen.py", str(n), str(every)], stdout=f, check=True)
        os.replace(f"{path}.part", path)
    return path


def kcat_env(venv):
    """Debian's kcat on the confluent-kafka wheel's librdkafka (2.16, the same generation as the connector's)."""
    libdir = OUT / "librdkafka"
    libdir.mkdir(parents=True, exist_ok=True)
    (wheel_lib,) = glob.glob(f"{venv}/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1")
    link = libdir / "librdkafka.so.1"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(wheel_lib)
    return dict(os.environ, LD_LIBRARY_PATH=str(libdir))


def rdkafka_performance():
    """librdkafka's own C producer, built with `make` in the configured librdkafka tree the release build left."""
    trees = sorted(glob.glob(str(TARGET / "release" / "build" / "rdkafka-sys-*" / "out" / "examples")))
    for tree in trees:
        if (pathlib.Path(tree).parent / "src" / "librdkafka.a").exists():
            tool = pathlib.Path(tree) / "rdkafka_performance"
            if not tool.exists():
                subprocess.run(["make", "-C", tree, "rdkafka_performance"], check=True, stdout=subprocess.DEVNULL)
            return tool
    raise RuntimeError("no configured librdkafka tree under target/release/build (run cargo build --release)")


def catalog(json_schema=None):
    path = OUT / "catalog.json"
    path.write_text(json.dumps({"streams": [
        {"stream": {"name": s, "json_schema": json_schema or {}, "supported_sync_modes": ["full_refresh"]},
         "sync_mode": "full_refresh", "primary_key": [["id"]],
         "destination_sync_mode": "append"} for s in STREAMS]}))
    return path


def connector_config(kafka, prefix, **extra):
    """The connector's config file: the shared producer settings, this broker, topics under `prefix`, and `extra`."""
    cfg = OUT / "config.json"
    cfg.write_text(json.dumps(dict(CONFIG, bootstrap_servers=kafka.bootstrap, topic_pattern=f"{prefix}.{{stream}}",
                                   **extra)))
    return cfg


def run_connector(kafka, prefix, path, n, every, json_schema=None, env=None, states=None, **extra):
    """`path`: stdin (None: Speed Mode's sockets, which `env` names); `states`: how many must come out (default: one
    per `every` records)."""
    cfg = connector_config(kafka, prefix, **extra)
    out = OUT / "connector-out.jsonl"
    if path:
        warm(path)
    with open(out, "wb") as stdout:
        row = timed([BIN, "write", "--config", cfg, "--catalog", catalog(json_schema)], path, stdout=stdout,
                    env=env)
    types = [json.loads(l)["type"] for l in out.read_text().splitlines()]
    expected = states if states is not None else (n // every if every else 0)
    assert types.count("STATE") == expected, f"{types.count('STATE')} states emitted, {expected} expected"
    assert "TRACE" not in types, "the connector failed"
    return row


def dump_connector_bytes(kafka, prefix, n):
    """The connector's own key/value bytes, for kcat to replay; (file, mean key+value bytes per message)."""
    dump = OUT / f"messages-{n}.tsv"
    if not dump.exists():
        subprocess.run([READ, "--bootstrap", kafka.bootstrap, "--show", "0", "--dump", f"{dump}.part"]
                       + [f"{prefix}_{s}" for s in STREAMS], check=True, stdout=subprocess.DEVNULL)
        os.replace(f"{dump}.part", dump)
    return dump, (dump.stat().st_size - 2 * n) / n


def run_kcat(kafka, prefix, dump, venv):
    kafka.create_topic(f"{prefix}_kcat", len(STREAMS))
    settings = sum((["-X", f"{k}={v}"] for k, v in LIBRDKAFKA.items()), [])
    warm(dump)
    return timed(["kcat", "-P", "-b", kafka.bootstrap, "-t", f"{prefix}_kcat", "-K", "\t", "-l", dump] + settings,
                 env=kcat_env(venv))


def run_rdkafka_performance(kafka, prefix, n, size):
    """`size` bytes per message (the connector's mean key+value), a 36-byte key, the data copied as the connector's
    is (-D)."""
    kafka.create_topic(f"{prefix}_c", len(STREAMS))
    settings = sum((["-X", f"{k}={v}"] for k, v in LIBRDKAFKA.items() if k != "acks"), [])
    value = max(1, round(size) - 36)
    return timed([rdkafka_performance(), "-P", "-t", f"{prefix}_c", "-b", kafka.bootstrap, "-s", value, "-c", n,
                  "-k", "k" * 36, "-D", "-a", "1", "-q"] + settings)


def run_java_producer(kafka, prefix, n, size):
    """Kafka's own Java producer (ProducerPerformance, what `kafka-producer-perf-test` runs; the producer the Java
    connector used): records of the connector's mean key+value size (it sends no key), the same settings."""
    kafka.create_topic(f"{prefix}_java", len(STREAMS))
    props = [f"bootstrap.servers={kafka.bootstrap}"] + [f"{k}={v}" for k, v in JAVA.items()]
    quiet = REPO / "scripts" / "kafka" / "log4j2-quiet.properties"
    return timed(["java", f"-Dlog4j2.configurationFile={quiet}", "-cp", f"{kafka.info['libs']}/*",
                  "org.apache.kafka.tools.ProducerPerformance", "--topic", f"{prefix}_java", "--num-records", n,
                  "--record-size", round(size), "--throughput", "-1", "--producer-props", *props])


def run_python_peer(kafka, prefix, path, venv):
    peer_cfg = OUT / "peer-config.json"
    peer_cfg.write_text(json.dumps({"producer": dict(LIBRDKAFKA, **{"bootstrap.servers": kafka.bootstrap}),
                                    "topic_prefix": f"{prefix}_py_"}))
    for s in STREAMS:
        kafka.create_topic(f"{prefix}_py_{s}", 1)
    return timed([f"{venv}/bin/python", REPO / "bench" / "python_peer.py", "write", "--config", peer_cfg,
                  "--catalog", catalog()], path)


PRODUCERS = ["destination-kafka", "kcat", "rdkafka_performance", "Kafka's Java producer", "python CDK peer"]


def scenario(kafka, n, every, venv, order, python_peer):
    """One run: the connector first (its bytes are what kcat replays), then the other producers in `order`."""
    path = generate(n, every)
    rows = {}
    prefix = kafka.prefix()
    try:
        rows["destination-kafka"] = run_connector(kafka, prefix, path, n, every)
        dump, size = dump_connector_bytes(kafka, prefix, n)
        others = {
            "kcat": lambda: run_kcat(kafka, prefix, dump, venv),
            "rdkafka_performance": lambda: run_rdkafka_performance(kafka, prefix, n, size),
            "Kafka's Java producer": lambda: run_java_producer(kafka, prefix, n, size),
        }
        for name in order:
            rows[name] = others[name]()
        if python_peer:
            rows["python CDK peer"] = run_python_peer(kafka, prefix, path, venv)
    finally:
        kafka.drop(prefix)
    payload = dump.stat().st_size - 2 * n  # minus the tab and newline per message
    return path.stat().st_size, payload, {k: rows[k] for k in PRODUCERS if k in rows}


def median_runs(runs):
    """Per producer, the run with the median wall time."""
    merged = {}
    for name in runs[0][2]:
        ordered = sorted((r[2][name] for r in runs if name in r[2]), key=lambda row: row[0])
        merged[name] = ordered[len(ordered) // 2]
    return runs[0][0], runs[0][1], merged


def report(title, n, size, payload, rows):
    print(f"\n## {title}: {n:,} records, input {size / 1e6:.0f} MB, Kafka key+value bytes {payload / 1e6:.0f} MB "
          f"({payload / n:.0f} per message)")
    print(f"| producer | records/s | MB/s (key+value) | wall s | user+sys CPU s | CPU s per 1M records | peak RSS MB | "
          f"{MACHINE_COLUMNS} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu, rss, busy) in rows.items():
        print(f"| {name} | {n / wall:,.0f} | {payload / 1e6 / wall:.0f} | {wall:.2f} | {cpu:.2f} | "
              f"{cpu / n * 1e6:.2f} | {rss:.0f} | {machine_cells(wall, busy, n)} |")
    wall, cpu, _, _ = rows["destination-kafka"]
    for name, (w, c, _, _) in rows.items():
        if name != "destination-kafka":
            print(f"connector ÷ {name}: records/s {w / wall:.2f}, CPU per record {cpu / c:.2f}")


def callgrind(name, argv, stdin_path=None, env=None):
    """Instructions of every thread of `argv`, counted by callgrind; the profile is kept for callgrind_annotate."""
    out = OUT / f"callgrind-{name}.out"
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + [str(a) for a in argv],
                              stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} under callgrind failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return int(re.search(r"Collected : (\d+)", proc.stderr).group(1)), out


def instructions(n, venv):
    """Instructions per record, counted by callgrind on a fixed input: repeatable on a noisy machine where seconds
    are not. `write` (a STATE every 1,000), then kcat on the identical key/value bytes and rdkafka_performance at
    their mean size, with the same producer settings: every thread, the client library's included."""
    path = generate(n, 1000)
    for stale in OUT.glob(f"messages-{n}.tsv"):
        stale.unlink()
    kafka = Kafka()
    rows = {}
    try:
        prefix = kafka.prefix()
        cfg = connector_config(kafka, prefix)
        rows["destination-kafka"] = callgrind("connector", [BIN, "write", "--config", cfg, "--catalog", catalog()], path)
        dump, size = dump_connector_bytes(kafka, prefix, n)
        kafka.create_topic(f"{prefix}_kcat", len(STREAMS))
        settings = sum((["-X", f"{k}={v}"] for k, v in LIBRDKAFKA.items()), [])
        rows["kcat"] = callgrind("kcat", ["kcat", "-P", "-b", kafka.bootstrap, "-t", f"{prefix}_kcat", "-K", "\t",
                                          "-l", dump] + settings, env=kcat_env(venv))
        kafka.create_topic(f"{prefix}_c", len(STREAMS))
        settings = sum((["-X", f"{k}={v}"] for k, v in LIBRDKAFKA.items() if k != "acks"), [])
        rows["rdkafka_performance"] = callgrind("rdkafka_performance", [
            rdkafka_performance(), "-P", "-t", f"{prefix}_c", "-b", kafka.bootstrap, "-s", max(1, round(size) - 36),
            "-c", n, "-k", "k" * 36, "-D", "-a", "1", "-q"] + settings)
    finally:
        kafka.stop()
    print(f"\n## instructions (valgrind --tool=callgrind): {n:,} records of {size:.0f} key+value bytes, every thread")
    print("| producer | instructions | per record | ÷ connector | profile |")
    print("| --- | ---: | ---: | ---: | --- |")
    ours = rows["destination-kafka"][0]
    for name, (total, out) in rows.items():
        print(f"| {name} | {total:,} | {total / n:,.0f} | {total / ours:.2f} | {out.relative_to(REPO)} |")


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def soak(n, every, freezes, freeze_seconds):
    """n records while the broker is frozen (SIGSTOP) `freezes` times for `freeze_seconds`: every record must land,
    every state come out, memory stay flat."""
    path = generate(n, every)
    kafka = Kafka()
    try:
        prefix = kafka.prefix()
        cfg = connector_config(kafka, prefix)
        out_path = OUT / "soak-out.jsonl"
        started = time.monotonic()
        with open(path, "rb") as stdin, open(out_path, "wb") as stdout:
            proc = subprocess.Popen([BIN, "write", "--config", cfg, "--catalog", catalog()], stdin=stdin, stdout=stdout)
            samples, frozen_at = [], []
            next_freeze = started + 5
            while proc.poll() is None:
                now = time.monotonic()
                rss = rss_mb(proc.pid)
                if rss is not None:
                    samples.append((now - started, rss))
                if len(frozen_at) < freezes and now >= next_freeze:
                    frozen_at.append(round(now - started, 1))
                    os.kill(kafka.pid, signal.SIGSTOP)  # the broker hangs, connections stay open
                    time.sleep(freeze_seconds)
                    os.kill(kafka.pid, signal.SIGCONT)
                    next_freeze = time.monotonic() + 10
                time.sleep(0.5)
        wall = time.monotonic() - started
        types = [json.loads(l)["type"] for l in out_path.read_text().splitlines()]
        states, traces = types.count("STATE"), types.count("TRACE")
        counted = subprocess.run([READ, "--bootstrap", kafka.bootstrap, "--show", "0"] + [f"{prefix}_{s}" for s in STREAMS],
                                 check=True, capture_output=True, text=True).stdout
        landed = sum(int(l.split(": ")[1].split()[0]) for l in counted.splitlines() if l.endswith("messages"))
    finally:
        kafka.stop()
    steady = [rss for t, rss in samples if t > 3]
    print(f"\n## soak: {n:,} records, a STATE every {every:,}, Apache Kafka frozen {freezes}× {freeze_seconds} s "
          f"(at {', '.join(f'{t} s' for t in frozen_at)})")
    print(f"exit code {proc.returncode}; {wall:.1f} s wall; {states:,} of {n // every:,} states emitted; "
          f"{traces} TRACE; {landed:,} of {n:,} records read back from the topics")
    print(f"RSS after the first 3 s: min {min(steady):.0f} MB, max {max(steady):.0f} MB ({len(steady)} samples)")
    ok = proc.returncode == 0 and states == n // every and not traces and landed == n
    print("soak: every record landed, every state came out" if ok else "soak: FAILED")
    return ok


def warm_up(kafka, n, every, json_schema=None, **extra):
    """One run not counted: a fresh broker's JVM compiles its hot paths during the first, which would slow
    whichever producer came first."""
    prefix = kafka.prefix()
    try:
        run_connector(kafka, prefix, generate(n, every), n, every, json_schema, **extra)
    finally:
        kafka.drop(prefix)


def compare(title, n, every, repeat, cases, json_schema=None):
    """The connector under several configs on the same input, median of `repeat`, order alternating."""
    kafka = Kafka()
    rows = {}
    try:
        name, case_every, extra = cases[0]
        warm_up(kafka, n, case_every or every, json_schema, **extra)
        for i in range(repeat):
            for name, case_every, extra in (cases if i % 2 == 0 else cases[::-1]):
                prefix = kafka.prefix()
                try:
                    row = run_connector(kafka, prefix, generate(n, case_every or every), n, case_every or every,
                                        json_schema, **extra)
                    rows.setdefault(name, []).append(row)
                finally:
                    kafka.drop(prefix)
    finally:
        kafka.stop()
    rows = {name: rows[name] for name, _, _ in cases}
    print_table(f"{title}: {n:,} records, Apache Kafka, median of {repeat}", "run", "first row", rows, n)


def print_table(heading, first, base_name, rows, n):
    """One row per case (in `rows`' order) from its median run by wall time, with its ratio to the first row."""
    print(f"\n## {heading}, compression {CONFIG['compression_type']}")
    print(f"| {first} | records/s | wall s | user+sys CPU s | CPU s per 1M records | peak RSS MB | {MACHINE_COLUMNS} | "
          f"÷ {base_name} records/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for name, runs in rows.items():
        wall, cpu, rss, busy = sorted(runs)[len(runs) // 2]
        base = base or wall
        print(f"| {name} | {n / wall:,.0f} | {wall:.2f} | {cpu:.2f} | {cpu / n * 1e6:.2f} | {rss:.0f} | "
              f"{machine_cells(wall, busy, n)} | {base / wall:.2f} |")


def exactly_once(n, repeat):
    # exactly_once is acks=all: the at-least-once row uses acks=all too, so only transactions differ. Replay
    # detection's rows add the progress record per commit and the digest of every record (a sync that is not a
    # retry: the progress topic holds nothing for its transactional id).
    eos = {"acks": "all", "delivery_guarantee": "exactly_once"}
    replays = dict(eos, replay_detection=True, progress_topic="bench-progress")
    compare("exactly-once (acks=all)", n, 10_000, repeat, [
        ("at_least_once, a STATE every 10,000", 10_000, {"acks": "all"}),
        ("exactly_once, a STATE every 10,000", 10_000, eos),
        ("exactly_once, a STATE every 1,000", 1_000, eos),
        ("exactly_once + replay_detection, a STATE every 10,000", 10_000, replays),
        ("exactly_once + replay_detection, a STATE every 1,000", 1_000, replays)])


# The schema of gen.py's records, as a source would declare it: what the Avro and JSON Schema rows encode against.
RECORD_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}, "score": {"type": "number"},
    "active": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                                                 "zip": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def format_cases(url, every, only):
    """(name, state interval, config) of the envelope and the value formats (`only`: the envelope and the formats
    whose names start with these), the registry formats registering at `url`."""
    cases = [
        ("airbyte_json (the Java envelope)", every, {}),
        ("json", every, {"format": {"type": "json"}}),
        ("airbyte_v2_json", every, {"format": {"type": "airbyte_v2_json"}}),
        ("connect_json", every, {"format": {"type": "connect_json"}}),
        ("raw (the `name` field)", every, {"format": {"type": "raw", "field": "name"}}),
        ("debezium_json", every, {"format": {"type": "debezium_json"}}),
        ("avro", every, {"format": {"type": "avro", "schema_registry_url": url}}),
        ("json_schema", every, {"format": {"type": "json_schema", "schema_registry_url": url}}),
        ("protobuf", every, {"format": {"type": "protobuf", "schema_registry_url": url}})]
    unknown = set(only or []) - {name.split()[0] for name, _, _ in cases}
    if unknown:
        sys.exit(f"--only: no format named {', '.join(sorted(unknown))}")
    return [cases[0]] + [c for c in cases[1:] if not only or c[0].split()[0] in only]


def formats(n, every, repeat, only=None, count_instructions=False):
    """The value formats on the same input, Avro and JSON Schema registering with Apicurio Registry (once per
    stream, before the first record): records/s over `repeat` runs, or (`count_instructions`) callgrind's
    instructions per record of one run each."""
    registry = subprocess.Popen([REPO / "scripts" / "schema-registry"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    url = json.loads(registry.stdout.readline())["url"]
    try:
        cases = format_cases(url, every, only)
        if count_instructions:
            format_instructions(n, every, cases)
        else:
            compare(f"formats, a STATE every {every:,}, acks=1", n, every, repeat, cases, RECORD_SCHEMA)
    finally:
        registry.stdin.close()
        registry.wait()


def format_instructions(n, every, cases):
    """`write` under callgrind once per format on the same input: instructions per record, every thread."""
    path = generate(n, every)
    kafka = Kafka()
    rows = {}
    try:
        for name, _, extra in cases:
            prefix = kafka.prefix()
            cfg = connector_config(kafka, prefix, **extra)
            tag = name.split()[0]
            rows[name] = callgrind(f"format-{tag}", [BIN, "write", "--config", cfg, "--catalog",
                                                     catalog(RECORD_SCHEMA)], path)
            kafka.drop(prefix)
    finally:
        kafka.stop()
    print(f"\n## instructions per format (valgrind --tool=callgrind): {n:,} records, a STATE every {every:,}, "
          "every thread")
    print("| format | instructions | per record | ÷ envelope | profile |")
    print("| --- | ---: | ---: | ---: | --- |")
    base = next(iter(rows.values()))[0]
    for name, (total, out) in rows.items():
        print(f"| {name} | {total:,} | {total / n:,.0f} | {total / base:.2f} | {out.relative_to(REPO)} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--venv", required=True)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--big", action="store_true", help="10M records")
    p.add_argument("--state-every", type=int, default=1000)
    p.add_argument("--no-python", action="store_true")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; the median is shown")
    p.add_argument("--soak", action="store_true", help="10M records with the broker frozen twice for 20 s")
    p.add_argument("--exactly-once", action="store_true", help="at_least_once vs exactly_once (1,000 and 10,000), with and without replay detection")
    p.add_argument("--formats", action="store_true", help="the value formats side by side")
    p.add_argument("--only", help="with --formats: the envelope and these formats (comma-separated)")
    p.add_argument("--instructions", action="store_true", help="callgrind's instructions per record, with peers")
    p.add_argument("--speed-mode", metavar="PYTHON", help="STDIO vs Speed Mode's sockets (PYTHON has grpcio-tools)")
    p.add_argument("--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none",
                   help="every producer's compression (default none, the Java connector's)")
    args = p.parse_args()
    CONFIG["compression_type"] = LIBRDKAFKA["compression.type"] = JAVA["compression.type"] = args.compression
    n = 10_000_000 if args.big else args.records
    if args.speed_mode:
        import speed_mode

        if args.instructions:
            return speed_mode.instructions(args.records if args.records != 1_000_000 else 100_000, args.state_every,
                                           args.speed_mode)
        return speed_mode.compare(n, args.state_every, args.repeat, args.speed_mode)
    if args.formats:
        records = args.records if args.records != 1_000_000 or not args.instructions else 100_000
        return formats(records, args.state_every, args.repeat, args.only.split(",") if args.only else None,
                       args.instructions)
    if args.exactly_once:
        return exactly_once(n, args.repeat)
    if args.instructions:
        return instructions(args.records if args.records != 1_000_000 else 100_000, args.venv)
    if args.soak:
        sys.exit(0 if soak(args.records if args.records != 1_000_000 else 10_000_000, args.state_every, 2, 20) else 1)
    for stale in OUT.glob("messages-*.tsv"):
        stale.unlink()  # kcat replays bytes this run's connector produced, never an older build's
    kafka = Kafka()
    print(f"machine: {os.cpu_count()} cores; Apache Kafka {kafka.info['kafka_version']} (one node) on 127.0.0.1, on "
          f"the same cores; compression {args.compression}; median of {args.repeat} runs (the Python peer runs once)")
    runs = {args.state_every: [], 0: []}
    peers = ["kcat", "rdkafka_performance", "Kafka's Java producer"]
    try:
        warm_up(kafka, n, args.state_every)
        for i in range(args.repeat):
            for every in runs:
                # Interleaved: states / no states, and the peers' order turned each run, so drift on a shared
                # 2-core machine does not land on one side.
                order = peers[i % 3:] + peers[:i % 3]
                python_peer = every != 0 and not args.no_python and i == 0
                runs[every].append(scenario(kafka, n, every, args.venv, order, python_peer))
    finally:
        kafka.stop()
    walls = {}
    for every, results in runs.items():
        size, payload, rows = median_runs(results)
        report(f"a STATE every {every:,} records" if every else "no states", n, size, payload, rows)
        walls[every] = rows["destination-kafka"][0]
    cost = walls[args.state_every] / walls[0] - 1
    print(f"\ncost of a STATE every {args.state_every:,} records: {cost * 100:+.1f} % wall time vs no states")


if __name__ == "__main__":
    main()
