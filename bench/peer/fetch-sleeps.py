#!/usr/bin/env python3
# bench/peer/fetch-sleeps.py LOG: reads the stderr of a run with
# --set consumer.debug=fetch (librdkafka 2.0.2 logs) and prints, each time
# the fetcher stopped on queued.min.messages / queued.max.messages.kbytes,
# how long until it fetched again and how full the queue was by then.
import re, sys
asleep = None; out = []
for line in open(sys.argv[1], errors="replace"):
    if "|FETCH|" not in line: continue
    t = float(line.split("|")[1])
    if "not fetchable: queued" in line:
        if asleep is None: asleep = t
    elif "is fetchable" in line and asleep is not None:
        q = int(re.search(r"\((\d+)/\d+ msgs", line).group(1))
        out.append((t - asleep, q)); asleep = None
for d, q in out: print(f"{d:.3f} s asleep, {q} msgs queued at wake")
print(f"SLEEPS {len(out)}, {sum(d for d, _ in out):.1f} s asleep in total, "
      f"{sum(1 for _, q in out if q == 0)} woke to an empty queue, "
      f"{sum(1 for _, q in out if q < 20000)} to < 20000")
