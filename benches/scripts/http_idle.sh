#!/usr/bin/env bash
# One HTTP ingest run against a fresh server, with the machine's idle share.
#
#   benches/scripts/http_idle.sh SERVER LOAD [INGEST_PRIORITY] [serve args...]
#
# SERVER: an `auditlog` binary; LOAD: an `auditlog-load` binary (build both
# with `cargo build --release -p auditlog-server -p auditlog-benches`).
# INGEST_PRIORITY (optional): `keep` (default), a nice value for the
# server's ingest threads (`renice`), or `batch` (SCHED_BATCH via `chrt`),
# applied once the server is up.
#
# Prints one line: events/s, query p50 and p99 (ms), the share of both
# cores idle and in iowait over 2.5 s in the middle of the load (from
# /proc/stat), and the server's CPU time per event (user + system, µs).
# Runs the issue's load: 1,000,000 events, 4 clients, batches of 1000,
# queries alongside. Data goes to a fresh /tmp/auditlog-idle-run.
set -euo pipefail
server=$1; load=$2; priority=${3:-keep}; shift $(( $# < 3 ? $# : 3 ))
data=/tmp/auditlog-idle-run
port=7699
rm -rf "$data"
"$server" serve --data "$data" --listen 127.0.0.1:$port --retention-days 0 "$@" > "$data.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
if [ "$priority" != keep ]; then
  for t in /proc/$pid/task/*; do
    case $(cat "$t/comm") in
      auditlog-ingest*)
        if [ "$priority" = batch ]; then chrt -b -p 0 "${t##*/}"; else renice -n "$priority" -p "${t##*/}" > /dev/null; fi ;;
    esac
  done
fi
stat=$(mktemp)
( sleep 1.2; head -1 /proc/stat; sleep 2.5; head -1 /proc/stat ) > "$stat" &
out=$("$load" http --url http://127.0.0.1:$port --events 1000000 --clients 4 --batch 1000 2>/dev/null | tail -1)
wait $! 2>/dev/null || true
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' /proc/$pid/stat)
python3 - "$stat" "$cpu" "$priority" "$out" <<'PY'
import json, sys
stat, cpu, priority, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
a, b = [list(map(int, l.split()[1:])) for l in open(stat)]
d = [y - x for x, y in zip(a, b)]
total = sum(d)
print(f"ingest={priority} events/s {out['events_per_s']:.0f} query p50 {out['query_p50_ms']:.1f} "
      f"p99 {out['query_p99_ms']:.1f} idle {100 * d[3] / total:.1f}% iowait {100 * d[4] / total:.1f}% "
      f"server cpu {cpu * 1e6 / out['events']:.2f} us/event")
PY
rm -f "$stat"
