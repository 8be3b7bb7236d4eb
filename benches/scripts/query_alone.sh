#!/usr/bin/env bash
# First-page query latency with no load alongside.
#
#   benches/scripts/query_alone.sh SERVER LOAD [EVENTS]
#
# Starts SERVER on a fresh data directory, ingests EVENTS (default 300,000)
# with the load tool, then times 300 round trips of each of the load tool's
# indexed filters (limit 100) and prints the median per filter, in ms.
set -euo pipefail
server=$1; load=$2; events=${3:-300000}
data=/tmp/auditlog-query-alone
port=7698
rm -rf "$data"
"$server" serve --data "$data" --listen 127.0.0.1:$port --retention-days 0 > "$data.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
"$load" http --url http://127.0.0.1:$port --events "$events" --clients 4 --batch 1000 > /dev/null 2>&1
python3 - "$port" <<'PY'
import statistics, sys, time, urllib.parse, urllib.request
# The same filters as INDEXED_FILTERS in benches/src/bin/load.rs.
filters = [
    "action_name = 'items.update'",
    "actor.type = 'user' AND action_name = 'items.create'",
    "actor.id = 'rare-7'",
    "environment.id = 'main' AND actor.type = 'api_key'",
]
times = {f: [] for f in filters}
for _ in range(300):
    for f in filters:
        url = f"http://127.0.0.1:{sys.argv[1]}/v1/events?" + urllib.parse.urlencode({"filter": f, "limit": "100"})
        t = time.perf_counter()
        urllib.request.urlopen(url).read()
        times[f].append((time.perf_counter() - t) * 1e3)
for f in filters:
    print(f"{statistics.median(times[f]):.3f} ms  {f}")
PY
