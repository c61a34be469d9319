#!/usr/bin/python3
"""CPU per proxied request with health checks, outlier detection, circuit breakers and a retry
policy configured, against the same route without them.

    tools/bench/resilience_bench.py [--no-callgrind]
    ROUNDS=4 DURATION=10 WARMUP=2 CONNS=64 N=40000 SLUICE_BIN=... tools/bench/resilience_bench.py

Method (tools/bench/e2e.sh's): upstream nginx (1 worker, `return 200 "hello\\n"`) and wrk
(1 thread, CONNS keep-alive connections) pinned to core LOAD_CPU, sluice (1 worker) pinned to
core PROXY_CPU. For each config and round a fresh sluice is started, warmed up for WARMUP s and
measured for DURATION s; CPU µs/request = (utime+stime) delta of the sluice process over the
measured run / requests completed. The two configs alternate (A B, B A, ...) so neither always
runs first; the result is the median over rounds and the median of the per-round ratios.

Then, unless --no-callgrind: user-space instructions per request under callgrind for each config
(N keep-alive requests over 16 connections after a 1,000-request warm-up; deterministic to ~1%,
see tools/bench/instructions.sh).

Both configs: one route to one cluster with one endpoint. "resilient" adds
  health_check: {http_path: /health, interval: 1s}   (runs on the main thread, counted too)
  outlier_detection: {}                              (Envoy's defaults)
  circuit_breakers: {max_connections: 1024, max_pending_requests: 1024, max_requests: 1024,
                     max_retries: 3}
  retry_policy: {retry_on: [5xx, connect-failure, reset], num_retries: 2, per_try_timeout: 1s}
Output: Markdown on stdout and in OUT_DIR/resilience-<date>.md.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_knobs, callgrind_per_request, cpu_ticks, free_port,  # noqa: E402
                      make_log, start, start_nginx_upstream, stop, stop_all, wait_port,
                      write_report, wrk_report)

ROUNDS, DURATION, WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR = bench_knobs(rounds=4)
N = int(os.environ.get("N", "40000"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
log = make_log("resilience-bench")


RESILIENT_CLUSTER = """
    health_check: {http_path: /health, interval: 1s}
    outlier_detection: {}
    circuit_breakers: {max_connections: 1024, max_pending_requests: 1024, max_requests: 1024,
                       max_retries: 3}"""
RESILIENT_ROUTE = (", retry_policy: {retry_on: [5xx, connect-failure, reset], num_retries: 2, "
                   "per_try_timeout: 1s}")


def bootstrap(work, name, port, up_port):
    resilient = name == "resilient"
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("""admin: {address: 127.0.0.1, port: 0}
concurrency: 1
drain_timeout: 1s
static_resources:
  listeners:
  - name: bench
    address: {host: 127.0.0.1, port: %d}
    route_table: bench
    backlog: 4096
    limits: {idle_timeout: 300s, request_headers_timeout: 300s}
  route_tables:
  - name: bench
    virtual_hosts:
    - name: all
      domains: ["*"]
      routes:
      - {name: all, match: {prefix: /}, route: {cluster: upstream%s}}
  clusters:
  - name: upstream
    endpoints: [{address: 127.0.0.1, port: %d}]
    idle_timeout: 300s
    max_idle_connections_per_endpoint: 64%s
""" % (port, RESILIENT_ROUTE if resilient else "", up_port, RESILIENT_CLUSTER if resilient else ""))
    return path


def run_wrk(url, secs, latency=False):
    r = wrk_report(url, secs, CONNS, LOAD_CPU, latency=latency)
    return {"requests": r.get("requests", 0), "rps": r.get("rps", 0), "p99_ms": r.get("p99_ms"),
            "non2xx": r["non2xx"]}


def measure(work, name, up_port, rnd):
    port = free_port()
    cfg = bootstrap(work, name, port, up_port)
    log_path = os.path.join(work, "%s-%d.log" % (name, rnd))
    p = start([SLUICE_BIN, "-c", cfg, "--concurrency", "1"], PROXY_CPU, log_path)
    if not wait_port(port):
        raise SystemExit("sluice (%s) did not start; see %s" % (name, log_path))
    url = "http://127.0.0.1:%d/" % port
    body = urllib.request.urlopen(url, timeout=5).read()
    assert body == b"hello\n", body
    run_wrk(url, WARMUP)
    time.sleep(0.5)
    t0 = cpu_ticks(p.pid)
    r = run_wrk(url, DURATION, latency=True)
    t1 = cpu_ticks(p.pid)
    stop(p)
    r["cpu_us_per_req"] = (t1 - t0) * 1e6 / CLK_TCK / max(1, r["requests"])
    log("%-9s round %d: %.0f req/s, %.2f CPU us/req, p99 %s ms, non-2xx %d"
        % (name, rnd, r["rps"], r["cpu_us_per_req"], r["p99_ms"], r["non2xx"]))
    return r


def callgrind(work, name, up_port):
    port = free_port()
    cfg = bootstrap(work, name, port, up_port)
    per_req = callgrind_per_request(SLUICE_BIN, cfg, port, "http://127.0.0.1:%d/" % port, N, [],
                                    os.path.join(work, "callgrind-%s" % name))
    log("%-9s callgrind: %d instructions / request (%d requests)" % (name, per_req, N))
    return per_req


def main():
    do_callgrind = "--no-callgrind" not in sys.argv[1:]
    for tool in ["nginx", "wrk", "taskset"] + (["valgrind", "h2load"] if do_callgrind else []):
        if shutil.which(tool) is None:
            raise SystemExit("%s not installed (tools/setup.sh)" % tool)
    if not os.access(SLUICE_BIN, os.X_OK):
        raise SystemExit("sluice not built: %s" % SLUICE_BIN)
    work = tempfile.mkdtemp(prefix="sluice-resilience-")
    try:
        up_port = free_port()
        try:
            start_nginx_upstream(work, up_port, LOAD_CPU)
        except RuntimeError as e:
            raise SystemExit(str(e))
        results = {"plain": [], "resilient": []}
        for rnd in range(1, ROUNDS + 1):
            order = ["plain", "resilient"] if rnd % 2 else ["resilient", "plain"]
            for name in order:
                results[name].append(measure(work, name, up_port, rnd))
        instr = {}
        if do_callgrind:
            for name in ("plain", "resilient"):
                instr[name] = callgrind(work, name, up_port)
        write_report(render(results, instr) + "\n", OUT_DIR, "resilience", log)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


def render(results, instr):
    out = []
    w = out.append
    med = {k: statistics.median(r["cpu_us_per_req"] for r in v) for k, v in results.items()}
    ratios = [b["cpu_us_per_req"] / a["cpu_us_per_req"]
              for a, b in zip(results["plain"], results["resilient"])]
    w("# Resilience features: CPU per request (%s)" % time.strftime("%Y-%m-%d %H:%M"))
    w("")
    w("sluice 1 worker on core %s; wrk -t1 -c%d and nginx on core %s; %d rounds of %d s "
      "(alternating order), medians." % (PROXY_CPU, CONNS, LOAD_CPU, ROUNDS, DURATION))
    w("")
    w("| config | req/s | p99 (ms) | CPU µs/req | per round | non-2xx |")
    w("|---|---:|---:|---:|---:|---:|")
    for name in ("plain", "resilient"):
        rs = results[name]
        w("| %s | %s | %.2f | %.2f | %s | %d |" % (
            name, "{:,.0f}".format(statistics.median(r["rps"] for r in rs)),
            statistics.median(r["p99_ms"] or 0 for r in rs), med[name],
            " / ".join("%.2f" % r["cpu_us_per_req"] for r in rs), sum(r["non2xx"] for r in rs)))
    w("")
    w("resilient / plain CPU: %+.1f %% (ratio of medians); per round: %s (median %+.1f %%)" % (
        (med["resilient"] / med["plain"] - 1) * 100,
        ", ".join("%+.1f %%" % ((x - 1) * 100) for x in ratios),
        (statistics.median(ratios) - 1) * 100))
    if instr:
        w("")
        w("| config | user-space instructions / request (callgrind, %d requests) |" % N)
        w("|---|---:|")
        for name in ("plain", "resilient"):
            w("| %s | %s |" % (name, "{:,.0f}".format(instr[name])))
        w("")
        w("resilient / plain instructions: %+.1f %%" % (
            (instr["resilient"] / instr["plain"] - 1) * 100))
    w("")
    return "\n".join(out)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        raise
