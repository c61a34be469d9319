#!/usr/bin/python3
"""CPU per request of the http_log filter (Kong's http-log), against the same requests through a
listener with no filter but the router. The collector is nginx answering 204 to every batch.

    /usr/bin/python3 tools/bench/log_bench.py [--help]

Method (as tools/bench/transform_bench.py): sluice with ONE worker, the whole process (worker,
main thread and the log sink's sender thread) pinned to core PROXY_CPU (0); wrk (1 thread,
CONNS keep-alive connections) and nginx (upstream and collector, 1 worker) on core LOAD_CPU (1).
Every request carries a few ordinary headers (User-Agent, Accept, Authorization, a cookie) that
the entry lists (two of them redacted). One sluice process serves every scenario:

    none     listener `plain` (router only), GET /r/?page=2 -> nginx "hello\\n"
    log      listener `logged`: http_log (queue_size 100, flush_timeout 1s) + router.
             Target: at most +5% CPU over `none`.
    log-q1   listener `logged-q1`: http_log with Kong's defaults (queue_size 1: one POST per
             entry, sent one at a time; beyond what it can send the oldest are dropped, see the
             `sent/dropped` column)

Each scenario is measured ROUNDS times (rotated order, WARMUP s of load first, then DURATION s);
CPU us/request = (utime+stime) delta of the sluice process / requests wrk completed; medians.
Then, deterministically (valgrind/callgrind, every thread of the process): user-space
instructions per request of `none` and `log` over INSTR_N requests after a 1,000-request warm-up,
the shutdown drain of the last batch included (INSTR_N=0 skips).

Environment knobs (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
INSTR_N=20000 SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice OUT_DIR=<repo>/bench-results
Output: Markdown on stdout and in $OUT_DIR/log-<date>.md; progress on stderr.
"""

import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_knobs, bench_main, callgrind_per_request,  # noqa: E402
                      callgrind_scenarios, cpu_row, cpu_rounds, free_port, make_log, median_us,
                      pct, setup_line, sluice_bootstrap, sluice_cluster, sluice_listener,
                      sluice_route_table, start_nginx_upstream, start_sluice, write_report)

ROUNDS, DURATION, WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR = bench_knobs()
INSTR_N = int(os.environ.get("INSTR_N", "20000"))
SCENARIOS = ["none", "log", "log-q1"]
LISTENERS = {"none": "plain", "log": "logged", "log-q1": "logged-q1"}
HEADERS = ["User-Agent: log-bench/1.0", "Accept: application/json",
           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.bench.signature", "Cookie: session=abc123"]
PATH = "/r/?page=2"
log = make_log("log-bench")


def sluice_config(work, ports, up_port):
    collector = "http://127.0.0.1:%d/logs" % up_port

    def listener(name, filters):
        return sluice_listener(name, ports[name], filters, route_table="main")
    return sluice_bootstrap(work, [
        listener("plain", [{"name": "router"}]),
        listener("logged", [{"name": "http_log", "config": {
            "http_endpoint": collector, "queue_size": 100, "flush_timeout": "1s"}},
            {"name": "router"}]),
        # A path of its own: another sink than `logged`'s, with Kong's defaults.
        listener("logged-q1", [{"name": "http_log", "config": {
            "http_endpoint": collector + "-q1"}}, {"name": "router"}])],
        [sluice_route_table("main", [{"name": "rest", "match": {"prefix": "/"},
                                      "route": {"cluster": "upstream"}}])],
        [sluice_cluster("upstream", up_port)])


def admin_stats(work):
    with open(os.path.join(work, "admin.addr")) as f:
        addr = f.read().strip()
    with urllib.request.urlopen("http://%s/stats?format=json" % addr, timeout=5) as r:
        return {s["name"]: s["value"] for s in json.load(r).get("stats", [])}


def sink_counts(stats, path):
    """(entries_sent, entries_dropped) of the sink whose stat names end in `path`."""
    sent = dropped = 0
    for name, v in stats.items():
        if name.startswith("http_log.") and name.endswith(path + ".entries_sent"):
            sent = v
        if name.startswith("http_log.") and name.endswith(path + ".entries_dropped"):
            dropped = v
    return sent, dropped


def run(work):
    up_port = free_port()
    # The upstream, and the collector: every batch accepted and discarded.
    start_nginx_upstream(work, up_port, LOAD_CPU,
                         'location /logs { return 204; } location / { return 200 "hello\\n"; }')
    ports = {name: free_port() for name in LISTENERS.values()}
    cfg = sluice_config(work, ports, up_port)
    proxy = start_sluice(SLUICE_BIN, cfg, ports.values(), PROXY_CPU, work)
    urls = {s: "http://127.0.0.1:%d%s" % (ports[LISTENERS[s]], PATH) for s in SCENARIOS}
    # Sanity: an entry of each logged listener reaches the collector.
    for s in ("log", "log-q1"):
        with urllib.request.urlopen(urls[s], timeout=5) as r:
            if r.status != 200:
                log("FATAL: %s: status %d" % (s, r.status))
                return 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = admin_stats(work)
        if sink_counts(st, "/logs")[0] >= 1 and sink_counts(st, "/logs-q1")[0] >= 1:
            break
        time.sleep(0.1)
    else:
        log("FATAL: entries do not reach the collector: %s" % sink_counts(st, "/logs"))
        return 1

    counts = {}
    before = {}

    def target(s):
        # Called right before each measured run of `s` (and its warm-up): note the sink's
        # counters to report what it sent and dropped over the runs.
        if s not in before:
            before[s] = sink_counts(admin_stats(work), "/logs-q1" if s == "log-q1" else "/logs")
        return urls[s], HEADERS
    results = cpu_rounds(SCENARIOS, target, proxy.pid, ROUNDS, WARMUP, DURATION, CONNS,
                         LOAD_CPU, work, log)
    if ROUNDS > 0:
        time.sleep(2)  # the last partial batches (flush_timeout 1 s)
    st = admin_stats(work)
    for s in ("log", "log-q1"):
        if s in before:
            sent, dropped = sink_counts(st, "/logs-q1" if s == "log-q1" else "/logs")
            counts[s] = (sent - before[s][0], dropped - before[s][1])
    instr = callgrind_scenarios(
        ("none", "log"), INSTR_N, [proxy], lambda s: callgrind_per_request(
            SLUICE_BIN, cfg, ports[LISTENERS[s]], urls[s], INSTR_N, HEADERS,
            os.path.join(work, "callgrind-%s" % s)), log, 8)
    lines = ["# Sluice http_log: CPU per request", "",
             setup_line("sluice --concurrency 1 (all its threads)",
                        "nginx (upstream and collector)", PROXY_CPU, CONNS, LOAD_CPU, ROUNDS,
                        DURATION, WARMUP), "",
             "| scenario | req/s | CPU us/req | vs none | per round (us/req) | "
             "entries sent / dropped |",
             "|---|---:|---:|---:|---|---:|"]
    for s in SCENARIOS if ROUNDS > 0 else []:
        rel = "-" if s == "none" else pct(median_us(results[s]), median_us(results["none"]))
        lines.append(cpu_row(s, results[s], rel, "-" if s not in counts else "%d / %d" % counts[s]))
    if instr:
        lines += ["", "User-space instructions per request (callgrind, all threads, %d "
                  "requests):" % INSTR_N, "", "| scenario | instructions/req | vs none |",
                  "|---|---:|---:|"]
        for s, n in instr.items():
            rel = "-" if s == "none" else pct(n, instr["none"])
            lines.append("| %s | %.0f | %s |" % (s, n, rel))
    lines += ["", "Target: `log` at most +5% CPU over `none`. `entries sent / dropped` "
              "counts warm-ups too (every request of the runs)."]
    write_report("\n".join(lines) + "\n", OUT_DIR, "log", log)
    return 0


if __name__ == "__main__":
    sys.exit(bench_main(__doc__, run, SLUICE_BIN, log, "sluice-log-bench."))
