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
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (callgrind_per_request, cpu_rounds, free_port, start,  # noqa: E402
                      start_nginx_upstream, stop_all, wait_port)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
CONNS = int(os.environ.get("CONNS", "64"))
PROXY_CPU = os.environ.get("PROXY_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
INSTR_N = int(os.environ.get("INSTR_N", "20000"))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "bazel-bin/source/exe/sluice"))
OUT_DIR = os.environ.get("OUT_DIR", os.path.join(REPO, "bench-results"))
SCENARIOS = ["none", "log", "log-q1"]
LISTENERS = {"none": "plain", "log": "logged", "log-q1": "logged-q1"}
HEADERS = ["User-Agent: log-bench/1.0", "Accept: application/json",
           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.bench.signature", "Cookie: session=abc123"]
PATH = "/r/?page=2"


def log(msg):
    sys.stderr.write("[log-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))


def sluice_config(work, ports, up_port):
    collector = "http://127.0.0.1:%d/logs" % up_port

    def listener(name, filters):
        return {"name": name, "address": {"host": "127.0.0.1", "port": ports[name]},
                "route_table": "main", "backlog": 4096, "http_filters": filters,
                "limits": {"idle_timeout": "300s", "request_headers_timeout": "300s"}}
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0,
                  "address_path": os.path.join(work, "admin.addr")},
        "concurrency": 1,
        "drain_timeout": "1s",
        "static_resources": {
            "listeners": [
                listener("plain", [{"name": "router"}]),
                listener("logged", [{"name": "http_log", "config": {
                    "http_endpoint": collector, "queue_size": 100, "flush_timeout": "1s"}},
                    {"name": "router"}]),
                # A path of its own: another sink than `logged`'s, with Kong's defaults.
                listener("logged-q1", [{"name": "http_log", "config": {
                    "http_endpoint": collector + "-q1"}}, {"name": "router"}])],
            "route_tables": [{"name": "main", "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": [
                    {"name": "rest", "match": {"prefix": "/"},
                     "route": {"cluster": "upstream"}}]}]}],
            "clusters": [{"name": "upstream", "lb_policy": "ROUND_ROBIN",
                          "endpoints": [{"address": "127.0.0.1", "port": up_port}],
                          "idle_timeout": "300s", "max_idle_connections_per_endpoint": 64}],
        },
    }
    path = os.path.join(work, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


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


def main():
    if "-h" in sys.argv or "--help" in sys.argv:
        print(__doc__)
        return 0
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            log("FATAL: %s not installed" % tool)
            return 1
    if not os.path.exists(SLUICE_BIN):
        log("FATAL: %s not built" % SLUICE_BIN)
        return 1
    work = tempfile.mkdtemp(prefix="sluice-log-bench.")
    try:
        up_port = free_port()
        # The upstream, and the collector: every batch accepted and discarded.
        start_nginx_upstream(work, up_port, LOAD_CPU,
                             'location /logs { return 204; } location / { return 200 "hello\\n"; }')
        ports = {name: free_port() for name in LISTENERS.values()}
        cfg = sluice_config(work, ports, up_port)
        v = subprocess.run([SLUICE_BIN, "-c", cfg, "--validate"], capture_output=True, text=True)
        if v.returncode != 0:
            log("FATAL: sluice --validate: %s" % v.stderr)
            return 1
        proxy = start(["taskset", "-c", PROXY_CPU, SLUICE_BIN, "-c", cfg, "--concurrency", "1"],
                      stdout=open(os.path.join(work, "sluice.out"), "w"),
                      stderr=open(os.path.join(work, "sluice.err"), "w"))
        if not all(wait_port(p) for p in ports.values()):
            log("FATAL: sluice did not start: %s" % open(os.path.join(work, "sluice.err")).read())
            return 1
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
                before[s] = sink_counts(admin_stats(work),
                                        "/logs-q1" if s == "log-q1" else "/logs")
            return urls[s], HEADERS
        try:
            results = cpu_rounds(SCENARIOS, target, proxy.pid, ROUNDS, WARMUP, DURATION, CONNS,
                                 LOAD_CPU, work, log)
        except RuntimeError as e:
            log("FATAL: %s" % e)
            return 1
        if ROUNDS > 0:
            time.sleep(2)  # the last partial batches (flush_timeout 1 s)
        st = admin_stats(work)
        for s in ("log", "log-q1"):
            if s in before:
                sent, dropped = sink_counts(st, "/logs-q1" if s == "log-q1" else "/logs")
                counts[s] = (sent - before[s][0], dropped - before[s][1])
        instr = {}
        if INSTR_N > 0 and shutil.which("valgrind") and shutil.which("h2load"):
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(10)
            for s in ("none", "log"):
                log("callgrind: %s, %d requests" % (s, INSTR_N))
                instr[s] = callgrind_per_request(SLUICE_BIN, cfg, ports[LISTENERS[s]], urls[s],
                                                 INSTR_N, HEADERS,
                                                 os.path.join(work, "callgrind-%s" % s))
                log("  %-8s %8.0f instructions/request" % (s, instr[s]))
        lines = ["# Sluice http_log: CPU per request", "",
                 "%s, %s, sluice --concurrency 1 (all its threads) on core %s; wrk -t1 -c%d and "
                 "nginx (upstream and collector) on core %s; %d rounds x %ds (+%ds warm-up), "
                 "medians." % (time.strftime("%Y-%m-%d %H:%M"), os.uname().release, PROXY_CPU,
                               CONNS, LOAD_CPU, ROUNDS, DURATION, WARMUP), "",
                 "| scenario | req/s | CPU us/req | vs none | per round (us/req) | "
                 "entries sent / dropped |",
                 "|---|---:|---:|---:|---|---:|"]
        for s in SCENARIOS if ROUNDS > 0 else []:
            b = statistics.median(u for u, _ in results["none"])
            us = statistics.median(u for u, _ in results[s])
            rps = statistics.median(r for _, r in results[s])
            rel = "-" if s == "none" else "%+.1f%%" % ((us / b - 1) * 100)
            sd = "-" if s not in counts else "%d / %d" % counts[s]
            lines.append("| %s | %.0f | %.2f | %s | %s | %s |" % (
                s, rps, us, rel, ", ".join("%.2f" % u for u, _ in results[s]), sd))
        if instr:
            lines += ["", "User-space instructions per request (callgrind, all threads, %d "
                      "requests):" % INSTR_N, "", "| scenario | instructions/req | vs none |",
                      "|---|---:|---:|"]
            for s, n in instr.items():
                rel = "-" if s == "none" else "%+.1f%%" % ((n / instr["none"] - 1) * 100)
                lines.append("| %s | %.0f | %s |" % (s, n, rel))
        lines += ["", "Target: `log` at most +5% CPU over `none`. `entries sent / dropped` "
                  "counts warm-ups too (every request of the runs)."]
        out = "\n".join(lines) + "\n"
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, "log-%s.md" % time.strftime("%Y-%m-%d-%H%M%S"))
        with open(path, "w") as f:
            f.write(out)
        sys.stdout.write(out)
        log("report written to %s" % path)
        return 0
    finally:
        stop_all()
        if os.environ.get("KEEP_WORKDIR") == "1":
            log("work dir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
