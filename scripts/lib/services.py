"""What the project's service launchers (scripts/kafka-broker, scripts/schema-registry, ...) share: jars resolved
from Maven Central into a cache, free loopback ports claimed without a race, children that die with their launcher,
waits on what a child writes in its log, and a control loop on stdin that stops everything when stdin closes (the
test that started the launcher is gone)."""

import fcntl
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

# Below the kernel's ephemeral range (32768-60999 by default), so no other process gets one of these ports by
# chance; among the project's launchers, a port is claimed by holding a lock on its file.
PORT_RANGE = range(20000, 32000)
LOCKS = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "destination-kafka-ports"

_claimed = []  # open lock files: a port stays ours while its file is locked (until this process exits)

CACHE = pathlib.Path(os.environ.get("DESTINATION_KAFKA_CACHE", pathlib.Path.home() / ".cache" / "destination-kafka"))


def maven_jars(pom, name, *options):
    """The jars of a pom's dependencies, resolved from Maven Central into the cache once per pom (and options)."""
    key = hashlib.sha256(pom.read_bytes() + "".join(options).encode()).hexdigest()[:12]
    out = CACHE / f"{name}-{key}"
    if not (out / ".complete").exists():
        print(f"resolving {name} from Maven Central into {out} (once)", file=sys.stderr)
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={out}",
                        *options], check=True, stdout=sys.stderr)
        (out / ".complete").touch()
    return out


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def claim_ports(n):
    """`n` ports on 127.0.0.1 that nothing listens on and no other launcher of this project holds."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    ports = []
    candidates = list(PORT_RANGE)
    random.shuffle(candidates)
    for port in candidates:
        lock = open(LOCKS / f"{port}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if not _free(port):
            lock.close()
            continue
        _claimed.append(lock)
        ports.append(port)
        if len(ports) == n:
            return ports
    sys.exit(f"no {n} free ports in {PORT_RANGE}")


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when this launcher dies, even by SIGKILL.
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def spawn(args, log, env=None):
    """A child process writing to `log`, killed if this launcher dies."""
    out = open(log, "ab")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=_die_with_parent)


def wait_for(log, text, process, timeout, what, after=0):
    """Waits until `text` appears in `log` (past byte `after`); fails (with the log's tail) if `process` exits or
    time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pathlib.Path(log).exists():
            with open(log, "rb") as f:
                f.seek(after)
                if text.encode() in f.read():
                    return
        if process.poll() is not None:
            fail(f"{what} exited with {process.returncode}", log)
        time.sleep(0.1)
    fail(f"{what} did not start within {timeout} s", log)


def fail(message, log=None):
    tail = ""
    if log and pathlib.Path(log).exists():
        tail = "\n".join(pathlib.Path(log).read_text(errors="replace").splitlines()[-40:])
    print(f"{message}\n{tail}", file=sys.stderr)
    sys.exit(1)


def stop(processes):
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _announce(description, cleanup):
    """`cleanup` and exit on SIGTERM or SIGINT; then `description` printed (one JSON line)."""

    def finish(*_):
        cleanup()
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print(json.dumps(description), flush=True)


def serve_until_signal(description, cleanup):
    """Prints `description`, then waits for SIGTERM or SIGINT; then `cleanup`."""
    _announce(description, cleanup)
    while True:
        signal.pause()


def serve(description, on_command, cleanup):
    """Prints `description`, then answers commands read on stdin (one per line; `on_command` returns a JSON-able
    answer) until stdin closes or a signal comes; then `cleanup`."""
    _announce(description, cleanup)
    try:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(on_command(line.split())), flush=True)
    finally:
        cleanup()
