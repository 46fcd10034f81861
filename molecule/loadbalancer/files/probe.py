#!/usr/bin/env python3
"""Hit URL every INTERVAL s for DURATION s (a new TLS connection each time, timeout 0.5 s) and
print JSON: requests, failures, and the outage: the longest time between two successes
minus one interval (molecule/loadbalancer's failover figure).

    probe.py URL CAFILE DURATION [INTERVAL]
"""

import json
import ssl
import sys
import time
import urllib.request


def main():
    url, cafile, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    context = ssl.create_default_context(cafile=cafile)
    end = time.monotonic() + duration
    requests = failures = 0
    last_ok = None
    outage = 0.0
    first_failure = None
    while time.monotonic() < end:
        start = time.monotonic()
        requests += 1
        try:
            with urllib.request.urlopen(url, timeout=0.5, context=context) as response:
                response.read()
            if last_ok is not None:
                outage = max(outage, start - last_ok - interval)
            last_ok = start
        except Exception:  # noqa: BLE001 - any failure counts
            failures += 1
            first_failure = first_failure or time.time()
        time.sleep(max(0.0, interval - (time.monotonic() - start)))
    print(
        json.dumps(
            {
                "requests": requests,
                "failures": failures,
                "outage_seconds": round(max(outage, 0.0), 2),
                "first_failure": first_failure,
            }
        )
    )


if __name__ == "__main__":
    main()
