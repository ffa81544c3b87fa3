#!/usr/bin/env python3
"""Checks the results of kstreams-app after crashes against expected.py's,
by what at-least-once promises (tests/system/test_apps_crash.sh says why).

  check_crash.py [--exact] WANT ROWS TOPIC.jsonl WANT_DLQ DLQ.jsonl JOBS

--exact (exactly_once_v2): every row and every record of the topic equals
its expected value, each result is in the topic exactly once, and each
invalid event is dead-lettered exactly JOBS times.

WANT: expected.py's results (JSON values, one a line) of the three jobs;
ROWS: the tables' rows as the same JSON values; TOPIC.jsonl, DLQ.jsonl:
kcat -J dumps of the output and dead-letter topics; WANT_DLQ: expected.py
--dlq's payloads; JOBS: the number of applications (each dead-letters).

- sessions (no repartition): each row, and each record of the topic,
  equals its expected value.
- event-count, revenue (repartitioned): the same windows, none missing or
  extra; no event lost (each count and sum at least the expected one; the
  other fields equal). Over-counted windows are counted and printed.
- every window or session has one row; topic keys are the groups.
- the dead letters: each expected payload at least JOBS times, no other.
Exit 0 with a summary line, 1 with the first problems.
"""
import collections
import json
import sys

GROUP = {"event-count": "event_type", "revenue": "currency",
         "sessions": "user_id"}
START = {"event-count": "window_start", "revenue": "window_start",
         "sessions": "session_start"}
SUMS = {"event-count": ("count",), "revenue": ("revenue_cents", "purchases")}
# Follows from the sums: not compared on its own.
DERIVED = ("avg_order_value_cents",)


def norm(v):
    return json.dumps(v, sort_keys=True)


def ident(v):
    return (v["job"], v[GROUP[v["job"]]], v[START[v["job"]]])


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check(what, want, got, problems):
    """got: ident -> every value seen for it. Returns the over-counted."""
    over = 0
    for k in sorted(set(want) - set(got)):
        problems.append(f"{what}: missing {norm(want[k])}")
    for k in sorted(set(got) - set(want)):
        problems.append(f"{what}: unexpected {norm(got[k][0])}")
    for k in sorted(set(want) & set(got)):
        w = want[k]
        for g in got[k]:
            if k[0] not in SUMS:
                if g != w:
                    problems.append(f"{what}: {norm(g)}, expected {norm(w)}")
                continue
            sums = SUMS[k[0]]
            if any(g[f] < w[f] for f in sums) or any(
                    g.get(f) != w[f] for f in w
                    if f not in sums and f not in DERIVED):
                problems.append(
                    f"{what}: events lost: {norm(g)}, expected {norm(w)}")
            elif g != w:
                over += 1
    return over


def main():
    args = sys.argv[1:]
    exact = bool(args) and args[0] == "--exact"
    if exact:
        args = args[1:]
    want_f, rows_f, out_f, want_dlq_f, dlq_f, jobs = args[:6]
    jobs = int(jobs)
    problems = []
    want = {}
    for v in load(want_f):
        if ident(v) in want:
            problems.append(f"expected.py: two results for {ident(v)}")
        want[ident(v)] = v

    rows = collections.defaultdict(list)
    for v in load(rows_f):
        rows[ident(v)].append(v)
    for k, vs in rows.items():
        if len(vs) > 1:
            problems.append(f"tables: {len(vs)} rows for {k}")
    rows_over = check("tables", want, rows, problems)

    topic = collections.defaultdict(list)
    for r in load(out_f):
        v = json.loads(r["payload"])
        if r["key"] != v.get(GROUP.get(v.get("job"), ""), object()):
            problems.append(f"a record whose key is not its group: {r}")
            continue
        topic[ident(v)].append(v)
    topic_over = check("event-analytics", want, topic, problems)
    records = sum(len(vs) for vs in topic.values())
    if exact:
        for k, vs in sorted(topic.items()):
            if len(vs) != 1:
                problems.append(f"event-analytics: {len(vs)} records for {k}")
        if rows_over or topic_over:
            problems.append(f"over-counted: {rows_over} rows, {topic_over} "
                            "records (exactly-once)")

    with open(want_dlq_f, encoding="utf-8") as f:
        dlq_want = collections.Counter(l.rstrip("\n") for l in f if l.strip())
    dlq_got = collections.Counter(r["payload"] for r in load(dlq_f))
    for k in set(dlq_want) | set(dlq_got):
        if not dlq_want[k] or dlq_got[k] < jobs * dlq_want[k] or (
                exact and dlq_got[k] != jobs * dlq_want[k]):
            problems.append(f"dead letters: {dlq_got[k]} copies, expected "
                            f"{dlq_want[k]} x {jobs}: {k[:80]}")

    per_job = collections.Counter(k[0] for k in want)
    if min(per_job[j] for j in GROUP) < 10:
        problems.append(f"too few expected rows to test much: {dict(per_job)}")
    if problems:
        print(f"{len(problems)} problems:")
        print("\n".join("  " + p for p in problems[:8]))
        return 1
    print(("exactly once: " if exact else "") +
          ", ".join(f"{per_job[j]} {j}" for j in GROUP) +
          f"; sessions exact; tables: {rows_over} repartitioned windows"
          f" over-counted; topic: {records} records for {len(want)} results,"
          f" {topic_over} over-counted; {sum(dlq_got.values())} dead letters"
          f" for {sum(dlq_want.values())} invalid events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
