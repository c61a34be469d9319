#!/usr/bin/python3
"""CPU per request of a cache hit: sluice's `cache` filter against nginx's proxy_cache, the same
objects from the same origin in the same run.

    /usr/bin/python3 tools/bench/cache_bench.py [--help]

Method (as tools/bench/transform_bench.py): the proxy under test (sluice with ONE worker, or
nginx with one process) pinned to core PROXY_CPU (0); wrk (1 thread, CONNS keep-alive
connections) and the origin (nginx, 1 worker, static files) on core LOAD_CPU (1). Both proxies
run during the whole bench, only one is loaded at a time. Scenarios:

    sluice-1k     sluice, listener `cache` ([cache, router]): GET /obj1k  (1 KiB text/plain), a hit
    nginx-1k      nginx, proxy_cache (keys_zone in shared memory, files on tmpfs /dev/shm,
                  proxy_cache_valid 200 10m, proxy_cache_lock on): GET /obj1k, a hit
    sluice-64k    the same with /obj64k (64 KiB)
    nginx-64k     the same with /obj64k
    sluice-proxy  sluice, listener `plain` ([router]): GET /obj1k, every request to the origin
                  (what a hit saves)

Every response is checked first (status, body, X-Cache-Status HIT/Hit on the second request).
Each scenario is measured ROUNDS times (rotated order, WARMUP s of load first, then DURATION s);
CPU us/request = (utime+stime) delta of the proxy process / requests wrk completed; medians.
Then, deterministically (valgrind/callgrind): user-space instructions per request of each hit
scenario over INSTR_N requests after a 1,000-request warm-up (INSTR_N=0 skips). nginx's hit reads
the object from tmpfs with system calls the count does not include (CPU us/req does).

Target: sluice-1k and sluice-64k at or below nginx-1k and nginx-64k in CPU us/request.

Environment knobs (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
INSTR_N=20000 SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice OUT_DIR=<repo>/bench-results
Output: Markdown on stdout and in $OUT_DIR/cache-<date>.md; progress on stderr.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_knobs, bench_main, callgrind_cmd_per_request,  # noqa: E402
                      callgrind_per_request, callgrind_scenarios, cpu_row, cpu_rounds, fetch,
                      free_port, make_log, median_us, nginx_conf, setup_line, sluice_bootstrap,
                      sluice_cluster, sluice_listener, sluice_route_table, start, start_sluice,
                      stop_all, wait_port, write_report)

ROUNDS, DURATION, WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR = bench_knobs()
INSTR_N = int(os.environ.get("INSTR_N", "20000"))
SCENARIOS = ["sluice-1k", "nginx-1k", "sluice-64k", "nginx-64k", "sluice-proxy"]
OBJECTS = {"obj1k": 1024, "obj64k": 65536}
log = make_log("cache-bench")


def object_bytes(size):
    line = b"sluice cache bench object, a line of text for the body of a response.........\n"
    return (line * (size // len(line) + 1))[:size]


def start_origin(work, port):
    """The origin: nginx serving the objects as static files (ETag, Last-Modified)."""
    d = os.path.join(work, "origin")
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    for name, size in OBJECTS.items():
        with open(os.path.join(d, "www", name), "wb") as f:
            f.write(object_bytes(size))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(nginx_conf(d, "  server { listen 127.0.0.1:%d backlog=4096; root %s/www; }"
                           % (port, d), master_process=False))
    start(["taskset", "-c", LOAD_CPU, "nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
           os.path.join(d, "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("origin nginx did not start")


def nginx_cache_conf(work, name, port, origin_port):
    """nginx as a caching reverse proxy, one process (master_process off) like sluice's one
    worker; its cache files on tmpfs."""
    d = os.path.join(work, name)
    cache_dir = tempfile.mkdtemp(prefix="sluice-cache-bench.", dir="/dev/shm")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, """
  proxy_cache_path %(c)s levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m
                   use_temp_path=off;
  upstream origin { server 127.0.0.1:%(o)d; keepalive 64; }
  server {
    listen 127.0.0.1:%(p)d backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 10m;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }""" % {"c": cache_dir, "o": origin_port, "p": port}, master_process=False))
    return d, conf, cache_dir


def sluice_config(work, cache_port, plain_port, origin_port):
    return sluice_bootstrap(
        work, [sluice_listener("cache", cache_port, [{"name": "cache", "config": {}},
                                                     {"name": "router"}], route_table="main"),
               sluice_listener("plain", plain_port, [{"name": "router"}], route_table="main")],
        [sluice_route_table("main", [{"name": "objects", "match": {"prefix": "/"},
                                      "route": {"cluster": "origin"}}])],
        [sluice_cluster("origin", origin_port)])


def check(url, size, cached):
    """Two GETs: the object both times, the second a hit when cached."""
    for i in range(2):
        status, h, body = fetch(url)
        if status != 200 or body != object_bytes(size):
            raise RuntimeError("%s: %s %d bytes" % (url, status, len(body)))
    if cached and h.get("x-cache-status", "").lower() != "hit":
        raise RuntimeError("%s: second request not a hit: %s" % (url, h))
    return h


def run(work):
    cache_dirs = []
    try:
        return measure(work, cache_dirs)
    finally:
        stop_all()
        for c in cache_dirs:
            shutil.rmtree(c, ignore_errors=True)


def measure(work, cache_dirs):
    origin_port = free_port()
    start_origin(work, origin_port)
    cache_port, plain_port, nginx_port = free_port(), free_port(), free_port()
    cfg = sluice_config(work, cache_port, plain_port, origin_port)
    sluice = start_sluice(SLUICE_BIN, cfg, [cache_port, plain_port], PROXY_CPU, work)
    d, nginx_conf_path, cache_dir = nginx_cache_conf(work, "nginx-cache", nginx_port, origin_port)
    cache_dirs.append(cache_dir)
    nginx = start(["taskset", "-c", PROXY_CPU, "nginx", "-e", os.path.join(d, "error.log"),
                   "-p", d, "-c", nginx_conf_path], stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
    if not wait_port(nginx_port):
        log("FATAL: a proxy did not start: nginx, see %s" % os.path.join(d, "error.log"))
        return 1
    urls = {"sluice-1k": "http://127.0.0.1:%d/obj1k" % cache_port,
            "nginx-1k": "http://127.0.0.1:%d/obj1k" % nginx_port,
            "sluice-64k": "http://127.0.0.1:%d/obj64k" % cache_port,
            "nginx-64k": "http://127.0.0.1:%d/obj64k" % nginx_port,
            "sluice-proxy": "http://127.0.0.1:%d/obj1k" % plain_port}
    pids = {"sluice-1k": sluice.pid, "sluice-64k": sluice.pid, "sluice-proxy": sluice.pid,
            "nginx-1k": nginx.pid, "nginx-64k": nginx.pid}
    sizes = {s: 1024 if "1k" in s or s == "sluice-proxy" else 65536 for s in SCENARIOS}
    headers = {}
    for s in SCENARIOS:
        headers[s] = check(urls[s], sizes[s], s != "sluice-proxy")
    log("sluice hit headers: %s" % headers["sluice-1k"])
    log("nginx hit headers: %s" % headers["nginx-1k"])

    results = cpu_rounds(SCENARIOS, lambda s: (urls[s], []), pids, ROUNDS, WARMUP, DURATION,
                         CONNS, LOAD_CPU, work, log)

    def instructions(s):
        prefix = os.path.join(work, "callgrind-%s" % s)
        if s.startswith("sluice"):
            return callgrind_per_request(SLUICE_BIN, cfg, cache_port, urls[s], INSTR_N, [],
                                         prefix)
        vd, vconf, vcache = nginx_cache_conf(work, "nginx-vg-" + s, nginx_port, origin_port)
        cache_dirs.append(vcache)
        return callgrind_cmd_per_request(
            ["nginx", "-e", os.path.join(vd, "error.log"), "-p", vd, "-c", vconf],
            nginx_port, urls[s], INSTR_N, [], prefix)
    instr = callgrind_scenarios(("sluice-1k", "nginx-1k", "sluice-64k", "nginx-64k"), INSTR_N,
                                (sluice, nginx), instructions, log, 11)

    lines = ["# Response cache: CPU per cache hit, sluice vs nginx proxy_cache", "",
             setup_line("the proxy (sluice --concurrency 1, or nginx with one process)",
                        "the origin (nginx, static files)", PROXY_CPU, CONNS, LOAD_CPU, ROUNDS,
                        DURATION, WARMUP), "",
             "| scenario | req/s | CPU us/req | vs nginx | per round (us/req) |",
             "|---|---:|---:|---:|---|"]
    for s in SCENARIOS if ROUNDS > 0 else []:
        ref = {"sluice-1k": "nginx-1k", "sluice-64k": "nginx-64k"}.get(s)
        rel = "-" if ref is None else "%.2fx" % (median_us(results[s]) / median_us(results[ref]))
        lines.append(cpu_row(s, results[s], rel))
    if instr:
        lines += ["", "User-space instructions per request (callgrind, %d requests; nginx's "
                  "file reads are system calls, not counted):" % INSTR_N, "",
                  "| scenario | instructions/req |", "|---|---:|"]
        for s, n in instr.items():
            lines.append("| %s | %.0f |" % (s, n))
    lines += ["", "Target: sluice-1k and sluice-64k at or below nginx-1k and nginx-64k "
              "(CPU us/request)."]
    write_report("\n".join(lines) + "\n", OUT_DIR, "cache", log)
    return 0


if __name__ == "__main__":
    sys.exit(bench_main(__doc__, run, SLUICE_BIN, log, "sluice-cache-bench."))
