#!/usr/bin/env python3
"""Writes input.jsonl and computes expected.jsonl for the user-activity
golden test independently of kstreams: its own murmur2 (Kafka's
Utils.murmur2), its own ISO-8601 parsing, its own filtering.

Topology under test (tests/driver/test_replay.c):
  user-events (JSON values, timestamps from the "timestamp" field)
    -> filter: user_id and event_type are strings
    -> select_key(user_id) -> repartition "by-user" (4 partitions)
    -> map_values: "<event_type> <page or ->"
    -> to user-activity (3 partitions)
Undecodable values are skipped by the deserialization handler."""
import json, random
from datetime import datetime

def murmur2(data: bytes) -> int:
    length, seed, m, r = len(data), 0x9747b28c, 0x5bd1e995, 24
    h = (seed ^ length) & 0xffffffff
    for i in range(length // 4):
        k = int.from_bytes(data[i*4:i*4+4], "little")
        k = (k * m) & 0xffffffff; k ^= k >> r; k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff; h ^= k
    rest = length % 4; tail = data[length - rest:]
    if rest == 3: h ^= tail[2] << 16
    if rest >= 2: h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]; h = (h * m) & 0xffffffff
    h ^= h >> 13; h = (h * m) & 0xffffffff; h ^= h >> 15
    return h

def partition(key: str, n: int) -> int:
    return (murmur2(key.encode()) & 0x7fffffff) % n

def iso_ms(s: str) -> int:
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)

rng = random.Random(7)
types = ["page_view", "button_click", "purchase", "search"]
lines = []
base = iso_ms("2025-12-12T10:00:00.000Z")
for i in range(60):
    ts = base + i * 1500 + rng.randint(0, 900)
    iso = datetime.utcfromtimestamp(ts / 1000).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ts % 1000)
    ev = {"event_id": "e%03d" % i, "user_id": "user_%d" % rng.randint(1, 9),
          "event_type": rng.choice(types), "timestamp": iso}
    if rng.random() < 0.6:
        ev["page"] = "/p/%d" % rng.randint(1, 20)
    kind = rng.random()
    if kind < 0.08:
        payload = '{"event_id": "broken'          # undecodable
    elif kind < 0.15:
        del ev["user_id"]; payload = json.dumps(ev)  # filtered out
    else:
        payload = json.dumps(ev)
    env = {"topic": "user-events", "partition": i % 2, "offset": i // 2,
           "tstype": "create", "ts": ts, "broker": 1,
           "key": None if i % 5 == 0 else "k%d" % i, "payload": payload}
    if i % 7 == 0:
        env["headers"] = ["trace", "t%d" % i]
    lines.append(env)

with open("input.jsonl", "w") as f:
    for env in lines:
        f.write(json.dumps(env, separators=(",", ":")) + "\n")

offsets = [0, 0, 0]
with open("expected.jsonl", "w") as f:
    for env in lines:
        try:
            ev = json.loads(env["payload"])
        except ValueError:
            continue
        if not isinstance(ev.get("user_id"), str) or not isinstance(ev.get("event_type"), str):
            continue
        p = partition(ev["user_id"], 3)
        out = {"topic": "user-activity", "partition": p, "offset": offsets[p],
               "tstype": "create", "ts": iso_ms(ev["timestamp"]), "broker": -1}
        if "headers" in env:
            out["headers"] = env["headers"]
        out["key"] = ev["user_id"]
        out["payload"] = "%s %s" % (ev["event_type"], ev.get("page", "-"))
        offsets[p] += 1
        f.write(json.dumps(out, separators=(",", ":")) + "\n")
