"""Writes an Airbyte message file: N RECORDs over 3 streams with ~250-byte data, a STATE every K records (K=0: none).
`records` is also what bench/gen_frames.py writes for Speed Mode's sockets."""

import json
import random
import sys

STREAMS = ["users", "orders", "events"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def records(n):
    """(stream, emitted_at, data) of the N records, always the same."""
    rng = random.Random(42)
    for i in range(n):
        data = {
            "id": i,
            "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
            "email": f"user{i}@example.com",
            "score": round(rng.random() * 1000, 3),
            "active": i % 2 == 0,
            "created_at": "2024-05-01T12:34:56.789Z",
            "address": {"street": f"{rng.randint(1, 999)} {rng.choice(WORDS)} street", "city": rng.choice(WORDS),
                        "zip": f"{rng.randint(10000, 99999)}"},
            "tags": [rng.choice(WORDS) for _ in range(3)],
        }
        yield STREAMS[i % 3], 1700000000000 + i, data


def main():
    n, every = int(sys.argv[1]), int(sys.argv[2])
    out = sys.stdout
    for i, (stream, emitted_at, data) in enumerate(records(n)):
        out.write(json.dumps({"type": "RECORD", "record": {"stream": stream, "emitted_at": emitted_at, "data": data}},
                             separators=(",", ":")))
        out.write("\n")
        if every and (i + 1) % every == 0:
            out.write(json.dumps({"type": "STATE", "state": {"type": "GLOBAL", "global": {"shared_state": {"cursor": i}, "stream_states": []}}}))
            out.write("\n")


if __name__ == "__main__":
    main()
