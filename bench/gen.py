"""Writes an Airbyte message file: N RECORDs over 3 streams with ~250-byte data, a STATE every K records (K=0: none)."""

import json
import random
import sys

n, every = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(42)
streams = ["users", "orders", "events"]
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
out = sys.stdout
for i in range(n):
    stream = streams[i % 3]
    data = {
        "id": i,
        "name": f"{rng.choice(words)} {rng.choice(words)}",
        "email": f"user{i}@example.com",
        "score": round(rng.random() * 1000, 3),
        "active": i % 2 == 0,
        "created_at": "2024-05-01T12:34:56.789Z",
        "address": {"street": f"{rng.randint(1, 999)} {rng.choice(words)} street", "city": rng.choice(words), "zip": f"{rng.randint(10000, 99999)}"},
        "tags": [rng.choice(words) for _ in range(3)],
    }
    out.write(json.dumps({"type": "RECORD", "record": {"stream": stream, "emitted_at": 1700000000000 + i, "data": data}}, separators=(",", ":")))
    out.write("\n")
    if every and (i + 1) % every == 0:
        out.write(json.dumps({"type": "STATE", "state": {"type": "GLOBAL", "global": {"shared_state": {"cursor": i}, "stream_states": []}}}))
        out.write("\n")
