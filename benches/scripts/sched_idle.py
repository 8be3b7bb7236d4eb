#!/usr/bin/env python3
"""What the server's ingest threads are doing while a core sits idle.

Record scheduler events during an HTTP load, then read them back:

    perf sched record -g -o /tmp/sched.data -- sleep 1.5   # during the load
    perf script -i /tmp/sched.data -F comm,tid,cpu,time,event,trace,sym > /tmp/sched.txt
    benches/scripts/sched_idle.py /tmp/sched.txt

For every stretch a CPU spends idle, the states of the `auditlog-ingest-*`
threads at its end are tallied: RUNNING (on the other core), RUNNABLE
(preempted, waiting on a run queue), D (in the kernel for I/O: the commit's
fdatasync) or S (asleep: waiting for a batch, the CPU gate or a commit).
Idle time with a RUNNABLE ingest thread is time the scheduler left a core
idle while work waited (docs/PERFORMANCE.md, "Session 7").
"""
import collections
import re
import sys

SWITCH = re.compile(
    r"prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)"
)
HEADER = re.compile(r"\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)")


def main(path):
    names, state, idle_since = {}, {}, {}
    by_states = collections.Counter()
    lengths = collections.Counter()
    total = 0.0
    for line in open(path):
        m = HEADER.match(line)
        if not m or m.group(5) != "sched:sched_switch":
            continue
        cpu, t = int(m.group(3)), float(m.group(4))
        s = SWITCH.search(m.group(6))
        if not s:
            continue
        prev_comm, prev, prev_state, next_comm, nxt = (
            s.group(1), int(s.group(2)), s.group(3), s.group(4), int(s.group(5)))
        names[prev], names[nxt] = prev_comm, next_comm
        if prev == 0 and cpu in idle_since:
            stretch = t - idle_since.pop(cpu)
            total += stretch
            lengths[bucket(stretch)] += stretch
            ingest = sorted(v for k, v in state.items() if names.get(k, "").startswith("auditlog-ingest"))
            by_states[" ".join(ingest)] += stretch
        if nxt == 0:
            idle_since[cpu] = t
        state[prev] = "RUNNABLE" if prev_state.startswith("R") else prev_state[:1]
        state[nxt] = "RUNNING"
    print(f"idle: {total * 1e3:.1f} ms in all")
    print("by length of the idle stretch:")
    for k in sorted(lengths):
        print(f"  {k:>10}: {lengths[k] * 1e3:7.1f} ms")
    print("by the states of the ingest threads:")
    runnable = sum(v for k, v in by_states.items() if "RUNNABLE" in k)
    for k, v in by_states.most_common(10):
        print(f"  {v * 1e3:7.1f} ms  {k}")
    if total:
        print(f"with an ingest thread RUNNABLE: {100 * runnable / total:.0f}% of the idle time")


def bucket(seconds):
    ms = seconds * 1e3
    for edge in (0.2, 0.5, 1, 2):
        if ms < edge:
            return f"< {edge} ms"
    return ">= 2 ms"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sched.txt")
