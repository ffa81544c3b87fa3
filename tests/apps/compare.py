#!/usr/bin/env python3
"""Compares a kstreams-app replay output (kcat -J lines) with expected.py's.

  compare.py OUT.jsonl EXPECTED_RESULTS EXPECTED_DLQ [--output-topic T]
             [--dlq-topic T]

The results (payloads of the output topic) and the dead-lettered payloads
must equal the expected lines exactly, as sorted multisets; every
dead-lettered record must carry a non-empty __streams.errors.message header.
Exit 0 when equal; 1 with the first differences otherwise.
"""
import argparse
import json
import sys


def diff(what, want, got):
    if want == got:
        return True
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    print("%s differ: %d expected, %d got" % (what, len(want), len(got)),
          file=sys.stderr)
    for line in missing[:5]:
        print("  missing: " + line, file=sys.stderr)
    for line in extra[:5]:
        print("  unexpected: " + line, file=sys.stderr)
    if not missing and not extra:
        print("  (the same lines, other multiplicities)", file=sys.stderr)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("expected")
    p.add_argument("expected_dlq")
    p.add_argument("--output-topic", default="event-analytics")
    p.add_argument("--dlq-topic", default="user-events-dlq")
    a = p.parse_args()
    results, dlq, bad_headers = [], [], 0
    with open(a.out, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["topic"] == a.output_topic:
                results.append(r["payload"])
            elif r["topic"] == a.dlq_topic:
                dlq.append(r["payload"])
                h = r.get("headers", [])
                names = h[0::2]
                if ("__streams.errors.message" not in names
                        or not h[names.index("__streams.errors.message") * 2
                                 + 1]):
                    bad_headers += 1
    with open(a.expected, encoding="utf-8") as f:
        want = [line.rstrip("\n") for line in f if line.strip()]
    with open(a.expected_dlq, encoding="utf-8") as f:
        want_dlq = [line.rstrip("\n") for line in f if line.strip()]
    ok = diff("results", sorted(want), sorted(results))
    ok = diff("dead-lettered payloads", sorted(want_dlq), sorted(dlq)) and ok
    if bad_headers:
        print("%d dead-lettered records without a reason header"
              % bad_headers, file=sys.stderr)
        ok = False
    if ok:
        print("equal: %d results, %d dead-lettered" % (len(results), len(dlq)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
