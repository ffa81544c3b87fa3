#!/usr/bin/env python3
"""The analytics jobs' expected results, computed independently of the C
code: from a kcat -J dump of user-events, written by kstreams-producer
--out, and the rules of issue 11 (validation, dedup by event_id, windows on
the event's own timestamp, grace, suppression until windows close).

It models what the C runtime and the test driver do with one input record
at a time, in file order:
- each record's task is its partition, which deduplicates on its own
  (largest event time of that partition); event-count and revenue repartition
  by their group key with Kafka's murmur2 partitioner over as many
  partitions as the input topic has; each task keeps its own stream time
  (the largest event timestamp its aggregation has seen);
- a record is late, and dropped, when its window closes before it: window
  end <= stream time - grace (sessions: session end < stream time - grace
  - gap), stream time including the record itself;
- with --close every window is emitted at the end (--replay-close-windows);
  without it only those whose end + grace (+ gap for sessions) <= the
  largest timestamp of the updates the suppression saw in its task.

Prints the results (JSON values, one per line, sorted) or, with --dlq, the
dead-lettered payloads (sorted).
"""
import argparse
import json
import math
import re
import sys

KNOWN_TYPES = {
    "page_view", "button_click", "form_submit", "purchase", "add_to_cart",
    "remove_from_cart", "search", "login", "logout", "signup",
}
CANONICAL_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")
INT64_MAX = 2**63 - 1


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def llround(x: float) -> int:
    """C's llround for x >= 0: halves away from zero."""
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_ts(v):
    """Epoch ms of an event timestamp, or None. Only the forms the
    generator writes: "YYYY-MM-DDTHH:MM:SS.mmmZ" and integers."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= INT64_MAX else None
    if not isinstance(v, str):
        return None
    mt = CANONICAL_TS.match(v)
    if not mt:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in mt.groups())
    mdays = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= mo <= 12 and 1 <= d <= mdays[mo - 1] and h <= 23
            and mi <= 59 and s <= 60):
        return None
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    if mo == 2 and d == 29 and not leap:
        return None
    t = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000
         + ms)
    return t if t >= 0 else None


def first_wins(pairs):
    out = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def reject_constant(name):
    raise ValueError("not JSON: " + name)


def parse_event(payload):
    """The event as a dict with 'ts' added, or None if it is invalid."""
    try:
        ev = json.loads(payload, object_pairs_hook=first_wins,
                        parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(ev, dict):
        return None
    for f in ("event_id", "user_id", "event_type"):
        if not isinstance(ev.get(f), str) or not ev[f].encode():
            return None
    data = ev.get("data")
    if not isinstance(data, dict):
        data = {}
    for f, holder in (("version", ev), ("session_id", data), ("page", data),
                      ("currency", data), ("device", data),
                      ("browser", data)):
        if f in holder and holder[f] is not None and not isinstance(
                holder[f], str):
            return None
    if "timestamp" not in ev:
        return None
    ts = parse_ts(ev["timestamp"])
    if ts is None:
        return None
    amount = data.get("amount")
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return None
        amount = float(amount)
        if not amount >= 0:
            return None
    if ev["event_type"] not in KNOWN_TYPES:
        return None
    if ev["event_type"] == "purchase":
        cur = data.get("currency")
        if amount is None or not isinstance(cur, str) or not re.fullmatch(
                r"[A-Za-z]{3}", cur):
            return None
    return {"id": ev["event_id"], "user": ev["user_id"],
            "type": ev["event_type"], "ts": ts, "amount": amount,
            "currency": data.get("currency")}


class Dedup:
    """A duplicate: an id registered at t0 >= (largest ts so far) - window,
    one per task (input partition), since copies share their key."""

    def __init__(self, window_ms):
        self.window = window_ms
        self.max_ts = None
        self.seen = {}

    def is_new(self, ev):
        if self.window <= 0:
            return True
        ts = ev["ts"]
        self.max_ts = ts if self.max_ts is None else max(self.max_ts, ts)
        t0 = self.seen.get(ev["id"])
        if t0 is not None and t0 >= self.max_ts - self.window:
            return False
        self.seen[ev["id"]] = ts
        return True


class Task:
    """Stream time of one aggregation task and of its suppression."""

    def __init__(self):
        self.observed = None
        self.suppress_observed = None

    def see(self, ts):
        self.observed = ts if self.observed is None else max(
            self.observed, ts)

    def update(self, ts):
        self.suppress_observed = ts if self.suppress_observed is None else max(
            self.suppress_observed, ts)


def tumbling(events, key_of, partitions, size, grace):
    """{(key, start): [records]} of the non-late records, and per key the
    task that holds it."""
    tasks = {}
    windows = {}
    late = 0
    for ev in events:
        key = key_of(ev)
        task = tasks.setdefault(partition_of(key, partitions), Task())
        ts = ev["ts"]
        task.see(ts)
        start = ts - ts % size
        if start + size <= task.observed - grace:
            late += 1
            continue
        task.update(ts)
        windows.setdefault((key, start), []).append(ev)
    return windows, tasks, late


def closed(task, end, wait, close_all):
    return close_all or (task.suppress_observed is not None
                         and end + wait <= task.suppress_observed)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def event_count(events, a):
    wins, tasks, _ = tumbling(events, lambda e: e["type"], a.partitions,
                              a.window, a.grace)
    out = []
    for (key, start), evs in wins.items():
        end = start + a.window
        if closed(tasks[partition_of(key, a.partitions)], end, a.grace,
                  a.close):
            out.append(dumps({"job": "event-count", "event_type": key,
                              "window_start": start, "window_end": end,
                              "count": len(evs)}))
    return out


def revenue(events, a):
    purchases = [e for e in events if e["type"] == "purchase"]
    wins, tasks, _ = tumbling(purchases, lambda e: e["currency"],
                              a.partitions, a.window, a.grace)
    out = []
    for (key, start), evs in wins.items():
        end = start + a.window
        if not closed(tasks[partition_of(key, a.partitions)], end, a.grace,
                      a.close):
            continue
        cents = sum(llround(e["amount"] * 100) for e in evs)
        out.append(dumps({"job": "revenue", "currency": key,
                          "window_start": start, "window_end": end,
                          "revenue_cents": cents, "purchases": len(evs),
                          "avg_order_value_cents": llround(cents / len(evs))}))
    return out


def sessions(events_by_partition, a):
    gap, grace = a.session_gap, a.grace
    out = []
    for evs in events_by_partition.values():
        task = Task()
        per_user = {}  # user -> list of [start, end, events, purchases, cents]
        for ev in evs:
            ts = ev["ts"]
            before = task.observed
            task.see(ts)
            close_time = task.observed - grace - gap
            mine = per_user.setdefault(ev["user"], [])
            # Mergeable: within the gap of ts, and not yet expired from the
            # store, which keeps sessions ending after (newest end before
            # this record) - (gap + grace).
            cands = [s for s in mine
                     if s[1] >= ts - gap and s[0] <= ts + gap
                     and (before is None or s[1] > before - gap - grace)]
            start = min([ts] + [s[0] for s in cands])
            end = max([ts] + [s[1] for s in cands])
            if end < close_time:
                continue  # late
            merged = [start, end, 1, 0, 0]
            if ev["type"] == "purchase":
                merged[3] = 1
                merged[4] = llround(ev["amount"] * 100)
            for s in cands:
                mine.remove(s)
                merged[2] += s[2]
                merged[3] += s[3]
                merged[4] += s[4]
            mine.append(merged)
            task.update(end)
        for user, mine in per_user.items():
            for s in mine:
                if closed(task, s[1], gap + grace, a.close):
                    out.append(dumps({
                        "job": "sessions", "user_id": user,
                        "session_start": s[0], "session_end": s[1],
                        "duration_ms": s[1] - s[0], "events": s[2],
                        "purchases": s[3], "revenue_cents": s[4]}))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--job", required=True,
                   choices=["event-count", "revenue", "sessions"])
    p.add_argument("--input", required=True)
    p.add_argument("--topic", default="user-events")
    p.add_argument("--window", type=int, default=60000)
    p.add_argument("--grace", type=int, default=10000)
    p.add_argument("--session-gap", type=int, default=1800000)
    p.add_argument("--dedup-window", type=int, default=600000)
    p.add_argument("--close", action="store_true",
                   help="every window closes at the end of input")
    p.add_argument("--dlq", action="store_true",
                   help="print the dead-lettered payloads instead")
    a = p.parse_args()

    records = []
    with open(a.input, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("topic", a.topic) == a.topic:
                    records.append(r)
    a.partitions = max([r.get("partition", 0) for r in records] + [0]) + 1

    dedups = {}
    valid, dlq, by_partition = [], [], {}
    for r in records:
        ev = parse_event(r["payload"])
        if ev is None:
            dlq.append(r["payload"])
            continue
        if ev["user"] != r["key"]:
            sys.exit("expected.py: key %r is not the user_id %r"
                     % (r["key"], ev["user"]))
        dedup = dedups.setdefault(r.get("partition", 0),
                                  Dedup(a.dedup_window))
        if not dedup.is_new(ev):
            continue
        valid.append(ev)
        by_partition.setdefault(r.get("partition", 0), []).append(ev)

    if a.dlq:
        lines = dlq
    elif a.job == "event-count":
        lines = event_count(valid, a)
    elif a.job == "revenue":
        lines = revenue(valid, a)
    else:
        lines = sessions(by_partition, a)
    for line in sorted(lines):
        print(line)


if __name__ == "__main__":
    main()
