#!/usr/bin/python3
"""CPU per request of the rate_limit filter: the same route with no limit, a LOCAL limit and a
REDIS limit, measured the way tools/bench/e2e.sh measures proxies.

    /usr/bin/python3 tools/bench/rate_limit_bench.py

Topology (2-core box):
  core PROXY_CPU (0): sluice, ONE worker (--concurrency 1)
  core LOAD_CPU  (1): wrk (1 thread, CONNS keep-alive connections), the upstream nginx
                      (1 worker, `return 200 "hello\\n"`) and redis-server
Configs, each a fresh sluice per round (order rotated every round, like e2e.sh):
  none   - listener without the rate_limit filter (router only)
  local  - rate_limit filter, route policy LOCAL, minute: 1000000000, limit_by IP, sliding window
  redis  - the same policy with policy: REDIS (one EVALSHA round trip per request)
  and, with CONFIGS=..., filter (the filter, but the route names no policy), local-hidden and
  redis-hidden (hide_client_headers: true).
The limit is high enough that nothing is rejected (checked: any non-2xx response fails the
round). Per config and round: req/s, p50/p99 (wrk --latency), sluice CPU us/request
((utime+stime) delta of the process from /proc/<pid>/stat over the measured run / requests),
and for redis the Redis commands and socket reads per request (INFO stats deltas).

Environment knobs (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
  CONFIGS="none local redis"  SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice
  OUT_DIR=<repo>/bench-results
Output: Markdown on stdout and in $OUT_DIR/rate-limit-<date>.md; progress on stderr. Every
process started here is stopped on exit.
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_knobs, cpu_ticks_split as cpu_ticks, free_port,  # noqa: E402
                      http_get_raw, make_log, sluice_bootstrap, sluice_cluster, sluice_listener,
                      sluice_route_table, start, start_nginx_upstream, stop, stop_all, wait_port,
                      write_report, wrk_report)

ROUNDS, DURATION, WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR = bench_knobs()
CONFIGS = os.environ.get("CONFIGS", "none local redis").split()
INSTR_REQUESTS = int(os.environ.get("INSTR_REQUESTS", "20000"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
log = make_log("rate-limit-bench")


def on_signal(*_):
    stop_all(2)
    sys.exit(130)


def redis_info(port):
    """INFO stats and commandstats as {name: int}: total_reads_processed, evalsha_calls, ..."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n")
        with s.makefile("rb") as f:
            n = int(f.readline()[1:-2])  # a bulk string: $<length>
            data = f.read(n)
    out = {}
    for line in data.decode().splitlines():
        k, sep, v = line.partition(":")
        if not sep:
            continue
        if v.strip().isdigit():
            out[k] = int(v)
        m = re.match(r"cmdstat_(\w+)$", k)
        if m:
            calls = re.search(r"calls=(\d+)", v)
            if calls:
                out[m.group(1) + "_calls"] = int(calls.group(1))
    return out


def wrk(port, secs, out_path, latency=False):
    return wrk_report("http://127.0.0.1:%d/" % port, secs, CONNS, LOAD_CPU, out=out_path,
                      latency=latency)


def bootstrap(name, d, port, up_port, redis_port, redis_timeout=None):
    """Writes the bootstrap of config `name` to d/bootstrap.json (admin address in d/admin)."""
    route = {"name": "all", "match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
    policies = []
    filters = None
    if name != "none":
        filters = [{"name": "rate_limit"}, {"name": "router"}]
    if name not in ("none", "filter"):
        route["rate_limit"] = "bench"
        policy = {"name": "bench", "minute": 1000000000, "limit_by": "IP"}
        if name.endswith("-hidden"):
            policy["hide_client_headers"] = True
        if name.startswith("redis"):
            policy["policy"] = "REDIS"
            policy["redis"] = {"host": "127.0.0.1", "port": redis_port}
            if redis_timeout:
                policy["redis"]["timeout"] = redis_timeout
        policies.append(policy)
    return sluice_bootstrap(d, [sluice_listener("bench", port, filters)],
                            [sluice_route_table("bench", [route])],
                            [sluice_cluster("upstream", up_port)], admin="admin",
                            rate_limit_policies=policies)


def measure(name, rnd, work, up_port, redis_port):
    d = os.path.join(work, "%s-round%d" % (name, rnd))
    os.makedirs(d)
    port = free_port()
    cfg_path = bootstrap(name, d, port, up_port, redis_port)
    p = start([SLUICE_BIN, "-c", cfg_path, "--concurrency", "1"], PROXY_CPU,
              os.path.join(d, "sluice.log"))
    try:
        if not wait_port(port):
            return {"status": "did not start: " + open(os.path.join(d, "sluice.log")).read()[-500:]}
        status, head, body = http_get_raw(port)
        if status != 200 or body != b"hello\n":
            return {"status": "sanity check failed: %d %r" % (status, body[:100])}
        if name in ("local", "redis") and "ratelimit-remaining" not in head.lower():
            return {"status": "no rate-limit headers on the sanity response"}
        wrk(port, WARMUP, os.path.join(d, "wrk-warmup.out"))
        time.sleep(0.5)
        info0 = redis_info(redis_port)
        t0 = cpu_ticks(p.pid)
        res = wrk(port, DURATION, os.path.join(d, "wrk.out"), latency=True)
        t1 = cpu_ticks(p.pid)
        info1 = redis_info(redis_port)
        if p.poll() is not None:
            return {"status": "sluice died during the run"}
        if not res.get("requests"):
            return {"status": "wrk failed: " + open(os.path.join(d, "wrk.out")).read()[-300:]}
        per_req = 1e6 / CLK_TCK / res["requests"]
        res["usr_us_per_req"] = (t1[0] - t0[0]) * per_req
        res["sys_us_per_req"] = (t1[1] - t0[1]) * per_req
        res["cpu_us_per_req"] = res["usr_us_per_req"] + res["sys_us_per_req"]
        for k in ("evalsha_calls", "total_reads_processed"):
            res[k + "_per_req"] = (info1.get(k, 0) - info0.get(k, 0)) / res["requests"]
        res["status"] = "ok" if res["non2xx"] == 0 and res["sockerr"] == 0 else (
            "%d non-2xx, %d socket errors" % (res["non2xx"], res["sockerr"]))
        log("[%s] round %d: %.0f req/s, %.2f us/req CPU%s" % (
            name, rnd, res.get("rps", 0), res["cpu_us_per_req"],
            ", %.3f EVALSHA/req" % res["evalsha_calls_per_req"]
            if name == "redis" else ""))
        return res
    finally:
        stop(p, 3)


def admin_stat(addr_path, name):
    with open(addr_path) as f:
        port = int(f.read().strip().rsplit(":", 1)[1])
    _, _, body = http_get_raw(port, "/stats")
    m = re.search(r"^%s: (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def instructions(name, work, up_port, redis_port):
    """User-space instructions per request under callgrind (deterministic; tools/bench/
    instructions.sh's method): startup and 1,000 warm-up requests are dumped separately and
    left out."""
    d = os.path.join(work, "%s-instr" % name)
    os.makedirs(d)
    port = free_port()
    addr = os.path.join(d, "admin")
    # Valgrind slows sluice ~50x: a generous Redis timeout, so every request really waits.
    cfg_path = bootstrap(name, d, port, up_port, redis_port, redis_timeout="5s")
    out = os.path.join(d, "callgrind.out")
    p = start(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, SLUICE_BIN, "-c",
               cfg_path, "--concurrency", "1"], PROXY_CPU, os.path.join(d, "sluice.log"))
    url = "http://127.0.0.1:%d/" % port
    h2 = ["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-c", "16"]
    try:
        if not wait_port(port, 120):
            return None, "did not start"
        subprocess.run(h2 + ["-n", "1000", url], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        txt = subprocess.run(h2 + ["-n", str(INSTR_REQUESTS), url], capture_output=True,
                             text=True, check=False).stdout
        m = re.search(r"status codes: (\d+) 2xx", txt)
        if not m or int(m.group(1)) != INSTR_REQUESTS:
            return None, "not all 2xx: " + " ".join(l for l in txt.splitlines()
                                                    if "status codes" in l or "requests:" in l)
        if name != "none" and admin_stat(addr, "rate_limit.bench.allowed") is None:
            return None, "no rate_limit stats"
        errors = admin_stat(addr, "rate_limit.bench.redis_error") if name == "redis" else 0
        if errors:
            return None, "%d Redis errors" % errors
    finally:
        stop(p, 30)
    ann = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True,
                         check=False).stdout
    m = re.search(r"^\s*([\d,]+)\s+.*PROGRAM TOTALS", ann, re.M)
    if not m:
        return None, "no callgrind totals"
    return int(m.group(1).replace(",", "")) / INSTR_REQUESTS, "ok"


def main():
    for tool in ("wrk", "nginx", "redis-server", "taskset"):
        if shutil.which(tool) is None:
            sys.exit("rate_limit_bench: %s not installed" % tool)
    if not os.access(SLUICE_BIN, os.X_OK):
        sys.exit("rate_limit_bench: %s not built" % SLUICE_BIN)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = tempfile.mkdtemp(prefix="sluice-rl-bench-")
    try:
        up_port = free_port()
        try:
            start_nginx_upstream(work, up_port, LOAD_CPU)
        except RuntimeError as e:
            sys.exit("rate_limit_bench: %s" % e)
        redis_port = free_port()
        start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning"], LOAD_CPU,
              os.path.join(work, "redis.log"))
        if not wait_port(redis_port):
            sys.exit("rate_limit_bench: redis-server did not start")
        log("upstream nginx :%d and redis-server :%d on core %s; sluice on core %s"
            % (up_port, redis_port, LOAD_CPU, PROXY_CPU))
        results = {c: {} for c in CONFIGS}
        orders = []
        for r in range(ROUNDS):
            order = [CONFIGS[(r + i) % len(CONFIGS)] for i in range(len(CONFIGS))]
            orders.append(order)
            log("=== round %d/%d: %s" % (r + 1, ROUNDS, " ".join(order)))
            for c in order:
                results[c][r + 1] = measure(c, r + 1, work, up_port, redis_port)
        instr = {}
        if INSTR_REQUESTS > 0 and all(shutil.which(t) for t in
                                      ("valgrind", "callgrind_annotate", "callgrind_control",
                                       "h2load")):
            for c in CONFIGS:
                log("[%s] callgrind: %d requests" % (c, INSTR_REQUESTS))
                instr[c] = instructions(c, work, up_port, redis_port)
                log("[%s] %s" % (c, instr[c]))
        write_report(render(results, orders, instr) + "\n", OUT_DIR, "rate-limit", log)
    finally:
        stop_all(2)
        shutil.rmtree(work, ignore_errors=True)


def render(results, orders, instr):
    def ok_rounds(c):
        return [v for _, v in sorted(results[c].items()) if v.get("status") == "ok"]

    def med(c, k):
        vals = [v[k] for v in ok_rounds(c) if k in v]
        return statistics.median(vals) if vals else None

    base = med("none", "cpu_us_per_req") if "none" in results else None
    lines = [
        "# Sluice rate_limit benchmark (%s)" % time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "",
        "- sluice (1 worker) on core %s; wrk -t1 -c%d, upstream nginx and redis-server on core %s"
        % (PROXY_CPU, CONNS, LOAD_CPU),
        "- %d rounds of %d s after a %d s warm-up, fresh sluice each time, order rotated (%s); "
        "medians" % (ROUNDS, DURATION, WARMUP, "; ".join(" -> ".join(o) for o in orders)),
        "- policy: minute 1000000000 by IP, sliding window (nothing rejected), headers BOTH",
        "",
        "| config | req/s | p50 (ms) | p99 (ms) | CPU us/req | usr / sys us/req | per round "
        "| vs none | EVALSHA/req | Redis reads/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in results:
        cpu = med(c, "cpu_us_per_req")
        rounds = " / ".join("%.2f" % v["cpu_us_per_req"] if v.get("status") == "ok" else "-"
                            for _, v in sorted(results[c].items()))
        errs = ["round %d: %s" % (r, v["status"]) for r, v in sorted(results[c].items())
                if v.get("status") != "ok"]

        def f(k, spec):
            v = med(c, k)
            return spec % v if v is not None else "n/a"

        vs = "%+.1f%%" % (100.0 * (cpu / base - 1)) if cpu is not None and base else "n/a"
        redis_cols = (f("evalsha_calls_per_req", "%.3f"),
                      f("total_reads_processed_per_req", "%.3f")) if c == "redis" else ("", "")
        lines.append("| %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s |" % (
            c, f("rps", "%.0f"), f("p50_ms", "%.2f"), f("p99_ms", "%.2f"),
            f("cpu_us_per_req", "%.2f"), f("usr_us_per_req", "%.2f"), f("sys_us_per_req", "%.2f"),
            rounds, vs if c != "none" else "", redis_cols[0],
            redis_cols[1], "; ".join(errs)))
    if instr:
        lines += ["", "User-space instructions per request (callgrind, %d keep-alive requests over 16 "
                  "connections with h2load; deterministic to ~1%%):" % INSTR_REQUESTS, "",
                  "| config | instructions/req | vs none |", "|---|---:|---:|"]
        base_i = instr.get("none", (None, ""))[0]
        for c, (v, st) in instr.items():
            if v is None:
                lines.append("| %s | %s | |" % (c, st))
                continue
            vs = "%+.1f%%" % (100.0 * (v / base_i - 1)) if base_i and c != "none" else ""
            lines.append("| %s | %.0f | %s |" % (c, v, vs))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
