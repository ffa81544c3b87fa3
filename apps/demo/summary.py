#!/usr/bin/env python3
"""What `make demo` shows of event-analytics: reads the topic's records as
kcat -J lines (read with isolation.level=read_committed) and prints event
counts per type for the last few windows, the top revenue windows and
session statistics. Only the standard library."""
import argparse
import collections
import datetime
import json
import sys


def hhmm(ms):
    return datetime.datetime.fromtimestamp(
        ms / 1000, datetime.timezone.utc).strftime("%H:%M")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("file", help="kcat -J lines of event-analytics")
    p.add_argument("--windows", type=int, default=3,
                   help="event-count windows to show (the last ones)")
    p.add_argument("--top", type=int, default=5, help="revenue windows to show")
    p.add_argument("--totals", metavar="FILE",
                   help="write 'rows and sums' per job there, one line, to "
                        "compare with the tables")
    a = p.parse_args()

    jobs = collections.defaultdict(list)
    with open(a.file) as f:
        for line in f:
            rec = json.loads(line)
            v = json.loads(rec["payload"])
            jobs[v["job"]].append(v)
    counts, revenue, sessions = (jobs["event-count"], jobs["revenue"],
                                 jobs["sessions"])
    print(f"  records: {len(counts)} event-count, {len(revenue)} revenue, "
          f"{len(sessions)} sessions")

    by_window = collections.defaultdict(dict)
    for v in counts:
        by_window[v["window_start"]][v["event_type"]] = v["count"]
    types = sorted({v["event_type"] for v in counts},
                   key=lambda t: -sum(v["count"] for v in counts
                                      if v["event_type"] == t))
    last = sorted(by_window)[-a.windows:]
    print(f"\n  Events per type, last {len(last)} one-minute windows (UTC):")
    print("    %-18s" % "event_type" + "".join("%9s" % hhmm(w) for w in last))
    for t in types:
        print("    %-18s" % t +
              "".join("%9d" % by_window[w].get(t, 0) for w in last))
    print("    %-18s" % "total" +
          "".join("%9d" % sum(by_window[w].values()) for w in last))

    print(f"\n  Top {a.top} revenue windows:")
    print("    %-7s %-8s %12s %10s %10s" %
          ("window", "currency", "revenue", "purchases", "avg order"))
    for v in sorted(revenue, key=lambda v: (-v["revenue_cents"],
                                             v["window_start"]))[:a.top]:
        print("    %-7s %-8s %12.2f %10d %10.2f" %
              (hhmm(v["window_start"]), v["currency"],
               v["revenue_cents"] / 100, v["purchases"],
               v["avg_order_value_cents"] / 100))

    if sessions:
        n = len(sessions)
        dur = sorted(v["duration_ms"] for v in sessions)
        buyers = sum(1 for v in sessions if v["purchases"])
        print("\n  Sessions: %d (%d users), %.1f events and %.1f min on "
              "average (median %.1f min, longest %.1f min); %.1f%% with a "
              "purchase" %
              (n, len({v["user_id"] for v in sessions}),
               sum(v["events"] for v in sessions) / n,
               sum(dur) / n / 60000, dur[n // 2] / 60000, dur[-1] / 60000,
               100 * buyers / n))
    if a.totals:
        with open(a.totals, "w") as f:
            f.write("%d %d %d %d %d %d\n" % (
                len(counts), sum(v["count"] for v in counts),
                len(revenue), sum(v["revenue_cents"] for v in revenue),
                len(sessions), sum(v["events"] for v in sessions)))
    return 0 if counts and revenue and sessions else 1


if __name__ == "__main__":
    sys.exit(main())
