"""Orchestrates one benchmark run; see bench/run. Every figure printed is measured in this run."""

import argparse
import glob
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
BIN = REPO / "target" / "release" / "destination-kafka"
READ = REPO / "target" / "release" / "examples" / "read_topics"
STREAMS = ["users", "orders", "events"]

# One set of producer settings for all three producers. These are the values the README recommends for a new
# connection (batches of up to 1 MB, 5 ms linger); the Java UI's 16 KB batches make the broker the bottleneck.
CONFIG = {
    "topic_pattern": "bench.{stream}",
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


class Broker:
    def __init__(self, *options):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([REPO / "scripts" / "tansu-broker", str(self.port), *options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(3600):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tansu did not start")

    def create_topic(self, name, partitions):
        subprocess.run(["tansu", "topic", "create", name, "--partitions", str(partitions),
                        "--broker", f"tcp://{self.bootstrap}"], check=True, capture_output=True)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def warm(path):
    """Reads a file once so each producer starts from the page cache, not the disk."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def timed(argv, stdin_path=None, env=None, stdout=subprocess.DEVNULL):
    """Runs argv under GNU time: (wall s, user+sys s, peak RSS MB)."""
    fmt = "%e %U %S %M"
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(["/usr/bin/time", "-f", fmt, "--"] + [str(a) for a in argv], stdin=stdin,
                              stdout=stdout, stderr=subprocess.PIPE, env=env)
    last = proc.stderr.decode().strip().splitlines()[-1]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    wall, user, sys_, rss = last.split()
    return float(wall), float(user) + float(sys_), int(rss) / 1024


def generate(n, every):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"input-{n}-{every}.jsonl"
    if not path.exists():
        with open(f"{path}.part", "w") as f:
            subprocess.run([sys.executable, REPO / "bench" / "gen.py", str(n), str(every)], stdout=f, check=True)
        os.replace(f"{path}.part", path)
    return path


def kcat_env(venv):
    libdir = OUT / "librdkafka"
    libdir.mkdir(parents=True, exist_ok=True)
    (wheel_lib,) = glob.glob(f"{venv}/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1")
    link = libdir / "librdkafka.so.1"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(wheel_lib)
    return dict(os.environ, LD_LIBRARY_PATH=str(libdir))


def median_runs(runs):
    """Per producer, the run with the median wall time."""
    merged = {}
    for name in runs[0][2]:
        ordered = sorted((r[2][name] for r in runs if name in r[2]), key=lambda row: row[0])
        merged[name] = ordered[len(ordered) // 2]
    return runs[0][0], runs[0][1], merged


def run_connector(broker, path, n, every, json_schema=None, **extra):
    for s in STREAMS:
        broker.create_topic(f"bench_{s}", 1)
    cfg = OUT / "config.json"
    cfg.write_text(json.dumps(dict(CONFIG, bootstrap_servers=broker.bootstrap, **extra)))
    out = OUT / "connector-out.jsonl"
    warm(path)
    with open(out, "wb") as stdout:
        row = timed([BIN, "write", "--config", cfg, "--catalog", catalog(json_schema)], path, stdout=stdout)
    types = [json.loads(l)["type"] for l in out.read_text().splitlines()]
    assert types.count("STATE") == (n // every if every else 0), f"{types.count('STATE')} states emitted"
    assert "TRACE" not in types, "the connector failed"
    return row


def catalog(json_schema=None):
    path = OUT / "catalog.json"
    path.write_text(json.dumps({"streams": [
        {"stream": {"name": s, "json_schema": json_schema or {}, "supported_sync_modes": ["full_refresh"]},
         "sync_mode": "full_refresh",
         "destination_sync_mode": "append"} for s in STREAMS]}))
    return path


def dump_connector_bytes(broker, n):
    """The connector's own key/value bytes, once per size, for kcat to replay."""
    dump = OUT / f"messages-{n}.tsv"
    if not dump.exists():
        subprocess.run([READ, "--bootstrap", broker.bootstrap, "--show", "0", "--dump", f"{dump}.part"]
                       + [f"bench_{s}" for s in STREAMS], check=True, stdout=subprocess.DEVNULL)
        os.replace(f"{dump}.part", dump)
    return dump


def run_kcat(broker, dump, venv):
    broker.create_topic("bench_kcat", len(STREAMS))
    settings = sum((["-X", f"{k}={v}"] for k, v in LIBRDKAFKA.items()), [])
    warm(dump)
    return timed(["kcat", "-P", "-b", broker.bootstrap, "-t", "bench_kcat", "-K", "\t", "-l", dump] + settings,
                 env=kcat_env(venv))


def run_python_peer(broker, path, venv):
    for s in STREAMS:
        broker.create_topic(f"bench_py_{s}", 1)
    peer_cfg = OUT / "peer-config.json"
    peer_cfg.write_text(json.dumps({"producer": dict(LIBRDKAFKA, **{"bootstrap.servers": broker.bootstrap}),
                                    "topic_prefix": "bench_py_"}))
    return timed([f"{venv}/bin/python", REPO / "bench" / "python_peer.py", "write", "--config", peer_cfg,
                  "--catalog", catalog()], path)


def scenario(n, every, venv, kcat_first, python_peer):
    """One run on a fresh broker: the connector and kcat (in the given order), and optionally the Python peer."""
    path = generate(n, every)
    broker = Broker()
    rows = {}
    try:
        dump = OUT / f"messages-{n}.tsv"
        if kcat_first and dump.exists():
            rows["kcat"] = run_kcat(broker, dump, venv)
        rows["destination-kafka"] = run_connector(broker, path, n, every)
        if "kcat" not in rows:
            rows["kcat"] = run_kcat(broker, dump_connector_bytes(broker, n), venv)
        if python_peer:
            rows["python CDK peer"] = run_python_peer(broker, path, venv)
    finally:
        broker.stop()
    payload = dump.stat().st_size - 2 * n  # minus the tab and newline per message
    return path.stat().st_size, payload, {k: rows[k] for k in ("destination-kafka", "kcat", "python CDK peer") if k in rows}


def report(title, n, size, payload, rows):
    print(f"\n## {title}: {n:,} records, input {size / 1e6:.0f} MB, Kafka key+value bytes {payload / 1e6:.0f} MB")
    print(f"| producer | records/s | MB/s (key+value) | wall s | user+sys CPU s | peak RSS MB |")
    print(f"| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu, rss) in rows.items():
        print(f"| {name} | {n / wall:,.0f} | {payload / 1e6 / wall:.0f} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |")
    ours = rows["destination-kafka"][0]
    print(f"\nconnector ÷ kcat records/s: {rows['kcat'][0] / ours:.2f}")
    if "python CDK peer" in rows:
        print(f"connector ÷ Python peer records/s: {rows['python CDK peer'][0] / ours:.1f}")


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
    broker = Broker()
    try:
        for s in STREAMS:
            broker.create_topic(f"bench_{s}", 1)
        cfg = OUT / "config.json"
        cfg.write_text(json.dumps(dict(CONFIG, bootstrap_servers=broker.bootstrap)))
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
                    os.kill(broker.proc.pid, 19)  # SIGSTOP: the broker hangs, connections stay open
                    time.sleep(freeze_seconds)
                    os.kill(broker.proc.pid, 18)  # SIGCONT
                    next_freeze = time.monotonic() + 10
                time.sleep(0.5)
        wall = time.monotonic() - started
        lines = out_path.read_text().splitlines()
        types = [json.loads(l)["type"] for l in lines]
        states, traces = types.count("STATE"), types.count("TRACE")
        counted = subprocess.run([READ, "--bootstrap", broker.bootstrap, "--show", "0"] + [f"bench_{s}" for s in STREAMS],
                                 check=True, capture_output=True, text=True).stdout
        landed = sum(int(l.split(": ")[1].split()[0]) for l in counted.splitlines() if l.endswith("messages"))
    finally:
        broker.stop()
    steady = [rss for t, rss in samples if t > 3]
    print(f"\n## soak: {n:,} records, a STATE every {every:,}, broker frozen {freezes}× {freeze_seconds} s "
          f"(at {', '.join(f'{t} s' for t in frozen_at)})")
    print(f"exit code {proc.returncode}; {wall:.1f} s wall; {states:,} of {n // every:,} states emitted; "
          f"{traces} TRACE; {landed:,} of {n:,} records read back from the topics")
    print(f"RSS after the first 3 s: min {min(steady):.0f} MB, max {max(steady):.0f} MB ({len(steady)} samples)")
    ok = proc.returncode == 0 and states == n // every and not traces and landed == n
    print("soak: every record landed, every state came out" if ok else "soak: FAILED")
    return ok


def exactly_once(n, repeat):
    """at_least_once vs exactly_once on the same broker build (the tansu with transactions), median of `repeat`."""
    cases = [("at_least_once, a STATE every 10,000", 10_000, {}),
             ("exactly_once, a STATE every 10,000", 10_000, {"delivery_guarantee": "exactly_once"}),
             ("exactly_once, a STATE every 1,000", 1_000, {"delivery_guarantee": "exactly_once"})]
    rows = {}
    for i in range(repeat):
        for name, every, extra in (cases if i % 2 == 0 else cases[::-1]):
            path = generate(n, every)
            broker = Broker("--transactions")
            try:
                # exactly_once is acks=all: the at-least-once row uses acks=all too, so only transactions differ.
                rows.setdefault(name, []).append(run_connector(broker, path, n, every, acks="all", **extra))
            finally:
                broker.stop()
    print(f"\n## exactly-once: {n:,} records, tansu with transactions, acks=all, median of {repeat}")
    print("| run | records/s | wall s | user+sys CPU s | peak RSS MB | ÷ at_least_once |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for name, _, _ in cases:
        wall, cpu, rss = sorted(rows[name])[len(rows[name]) // 2]
        base = base or wall
        print(f"| {name} | {n / wall:,.0f} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {base / wall:.2f} |")


# The schema of gen.py's records, as a source would declare it: what the Avro row encodes against.
RECORD_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}, "score": {"type": "number"},
    "active": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                                                 "zip": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def formats(n, every, repeat):
    """The value formats on the same input and broker settings, median of `repeat`; Avro registers its schemas
    with the acceptance suite's registry double (once per stream, before the first record)."""
    sys.path.insert(0, str(REPO / "acceptance-tests"))
    from registry_double import Registry

    registry = Registry()
    cases = [("airbyte_json (the Java envelope)", {}), ("json", {"format": {"type": "json"}}),
             ("airbyte_v2_json", {"format": {"type": "airbyte_v2_json"}}),
             ("avro", {"format": {"type": "avro", "schema_registry_url": registry.url}})]
    path = generate(n, every)
    rows = {}
    try:
        for i in range(repeat):
            for name, extra in (cases if i % 2 == 0 else cases[::-1]):
                broker = Broker()
                try:
                    rows.setdefault(name, []).append(run_connector(broker, path, n, every, RECORD_SCHEMA, **extra))
                finally:
                    broker.stop()
    finally:
        registry.stop()
    print(f"\n## formats: {n:,} records, a STATE every {every:,}, tansu in memory, acks=1, median of {repeat}")
    print("| format | records/s | wall s | user+sys CPU s | peak RSS MB | ÷ envelope records/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for name, _ in cases:
        wall, cpu, rss = sorted(rows[name])[len(rows[name]) // 2]
        base = base or wall
        print(f"| {name} | {n / wall:,.0f} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {base / wall:.2f} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--venv", required=True)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--big", action="store_true", help="10M records")
    p.add_argument("--state-every", type=int, default=1000)
    p.add_argument("--no-python", action="store_true")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (fresh broker each); the median is shown")
    p.add_argument("--soak", action="store_true", help="10M records with the broker frozen twice for 20 s")
    p.add_argument("--exactly-once", action="store_true", help="at_least_once vs exactly_once (1,000 and 10,000)")
    p.add_argument("--formats", action="store_true", help="the value formats: envelope, json, airbyte_v2_json, avro")
    args = p.parse_args()
    if args.formats:
        formats(10_000_000 if args.big else args.records, args.state_every, args.repeat)
        return
    if args.exactly_once:
        exactly_once(10_000_000 if args.big else args.records, args.repeat)
        return
    if args.soak:
        sys.exit(0 if soak(args.records if args.records != 1_000_000 else 10_000_000, args.state_every, 2, 20) else 1)
    n = 10_000_000 if args.big else args.records
    print(f"machine: {os.cpu_count()} cores; tansu in-memory broker on 127.0.0.1, fresh for every run; "
          f"median of {args.repeat} runs (the Python peer runs once)")
    # Interleaved: states / no states, and kcat before or after the connector, so drift on a shared 2-core
    # machine does not land on one side.
    for stale in OUT.glob("messages-*.tsv"):
        stale.unlink()  # kcat replays bytes this run's connector produced, never an older build's
    runs = {args.state_every: [], 0: []}
    for i in range(args.repeat):
        for every in runs:
            python_peer = every != 0 and not args.no_python and i == 0
            runs[every].append(scenario(n, every, args.venv, kcat_first=i % 2 == 1, python_peer=python_peer))
    walls = {}
    for every, results in runs.items():
        size, payload, rows = median_runs(results)
        report(f"a STATE every {every:,} records" if every else "no states", n, size, payload, rows)
        walls[every] = rows["destination-kafka"][0]
    cost = walls[args.state_every] / walls[0] - 1
    print(f"\ncost of a STATE every {args.state_every:,} records: {cost * 100:+.1f} % wall time vs no states")


if __name__ == "__main__":
    main()
