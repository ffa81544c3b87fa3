#!/usr/bin/env python3
# bench/peer/fetch-sleeps.py LOG: reads the stderr of a run with
# --set consumer.debug=fetch (librdkafka 2.0.2 logs) and prints, each time
# the fetcher stopped on queued.min.messages / queued.max.messages.kbytes,
# how long until it fetched again and how full the queue was by then.
