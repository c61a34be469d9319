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
from benchlib import (callgrind_cmd_per_request, callgrind_per_request, cpu_ticks,  # noqa: E402
                      free_port, run_wrk, start, stop_all, wait_port)

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
SCENARIOS = ["sluice-1k", "nginx-1k", "sluice-64k", "nginx-64k", "sluice-proxy"]
OBJECTS = {"obj1k": 1024, "obj64k": 65536}


def log(msg):
    sys.stderr.write("[cache-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))


def object_bytes(size):
    line = b"sluice cache bench object, a line of text for the body of a response.........\n"
    return (line * (size // len(line) + 1))[:size]


NGINX_COMMON = """
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p;
  fastcgi_temp_path %(d)s/f; uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  keepalive_requests 1000000000; keepalive_timeout 300s; default_type text/plain;
"""


def start_origin(work, port):
    """The origin: nginx serving the objects as static files (ETag, Last-Modified)."""
    d = os.path.join(work, "origin")
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    for name, size in OBJECTS.items():
        with open(os.path.join(d, "www", name), "wb") as f:
            f.write(object_bytes(size))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; master_process off;" + NGINX_COMMON % {"d": d} +
                "  server { listen 127.0.0.1:%d backlog=4096; root %s/www; } }\n" % (port, d))
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
        f.write("worker_processes 1; daemon off; master_process off;" + NGINX_COMMON % {"d": d} + """
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
  }
}
""" % {"c": cache_dir, "o": origin_port, "p": port})
    return d, conf, cache_dir


def sluice_config(work, cache_port, plain_port, origin_port):
    def listener(name, port, filters):
        return {"name": name, "address": {"host": "127.0.0.1", "port": port},
                "route_table": "main", "backlog": 4096, "http_filters": filters,
                "limits": {"idle_timeout": "300s", "request_headers_timeout": "300s"}}
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0,
                  "address_path": os.path.join(work, "admin.addr")},
        "concurrency": 1,
        "drain_timeout": "1s",
        "static_resources": {
            "listeners": [
                listener("cache", cache_port, [{"name": "cache", "config": {}},
                                               {"name": "router"}]),
                listener("plain", plain_port, [{"name": "router"}])],
            "route_tables": [{"name": "main", "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": [
                    {"name": "objects", "match": {"prefix": "/"},
                     "route": {"cluster": "origin"}}]}]}],
            "clusters": [{"name": "origin", "lb_policy": "ROUND_ROBIN",
                          "endpoints": [{"address": "127.0.0.1", "port": origin_port}],
                          "idle_timeout": "300s", "max_idle_connections_per_endpoint": 64}],
        },
    }
    path = os.path.join(work, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


def check(url, size, cached):
    """Two GETs: the object both times, the second a hit when cached."""
    for i in range(2):
        status, h, body = get(url)
        if status != 200 or body != object_bytes(size):
            raise RuntimeError("%s: %s %d bytes" % (url, status, len(body)))
    if cached and h.get("x-cache-status", "").lower() != "hit":
        raise RuntimeError("%s: second request not a hit: %s" % (url, h))
    return h


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
    work = tempfile.mkdtemp(prefix="sluice-cache-bench.")
    cache_dirs = []
    try:
        origin_port = free_port()
        start_origin(work, origin_port)
        cache_port, plain_port, nginx_port = free_port(), free_port(), free_port()
        cfg = sluice_config(work, cache_port, plain_port, origin_port)
        v = subprocess.run([SLUICE_BIN, "-c", cfg, "--validate"], capture_output=True, text=True)
        if v.returncode != 0:
            log("FATAL: sluice --validate: %s" % v.stderr)
            return 1
        sluice = start(["taskset", "-c", PROXY_CPU, SLUICE_BIN, "-c", cfg, "--concurrency", "1"],
                       stdout=open(os.path.join(work, "sluice.out"), "w"),
                       stderr=open(os.path.join(work, "sluice.err"), "w"))
        d, nginx_conf, cache_dir = nginx_cache_conf(work, "nginx-cache", nginx_port, origin_port)
        cache_dirs.append(cache_dir)
        nginx = start(["taskset", "-c", PROXY_CPU, "nginx", "-e", os.path.join(d, "error.log"),
                       "-p", d, "-c", nginx_conf], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        for port in (cache_port, plain_port, nginx_port):
            if not wait_port(port):
                log("FATAL: a proxy did not start: %s" % open(os.path.join(work, "sluice.err"))
                    .read())
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

        clk_tck = os.sysconf("SC_CLK_TCK")
        results = {s: [] for s in SCENARIOS}
        for r in range(ROUNDS):
            order = SCENARIOS[r % len(SCENARIOS):] + SCENARIOS[:r % len(SCENARIOS)]
            log("round %d/%d: %s" % (r + 1, ROUNDS, " ".join(order)))
            for s in order:
                run_wrk(urls[s], WARMUP, CONNS, LOAD_CPU, [],
                        os.path.join(work, "warm-%s-%d.txt" % (s, r)))
                time.sleep(0.3)
                t0 = cpu_ticks(pids[s])
                n, bad, rps = run_wrk(urls[s], DURATION, CONNS, LOAD_CPU, [],
                                      os.path.join(work, "wrk-%s-%d.txt" % (s, r)))
                t1 = cpu_ticks(pids[s])
                if n == 0 or bad:
                    log("FATAL: %s: %d requests, %d non-2xx" % (s, n, bad))
                    return 1
                us = (t1 - t0) * 1e6 / clk_tck / n
                results[s].append((us, rps))
                log("  %-13s %8.0f req/s  %6.2f us CPU/req" % (s, rps, us))

        instr = {}
        if INSTR_N > 0 and shutil.which("valgrind") and shutil.which("h2load"):
            for p in (sluice, nginx):
                p.send_signal(signal.SIGTERM)
                p.wait(10)
            for s in ("sluice-1k", "nginx-1k", "sluice-64k", "nginx-64k"):
                log("callgrind: %s, %d requests" % (s, INSTR_N))
                prefix = os.path.join(work, "callgrind-%s" % s)
                if s.startswith("sluice"):
                    instr[s] = callgrind_per_request(SLUICE_BIN, cfg, cache_port, urls[s],
                                                     INSTR_N, [], prefix)
                else:
                    vd, vconf, vcache = nginx_cache_conf(work, "nginx-vg-" + s, nginx_port,
                                                         origin_port)
                    cache_dirs.append(vcache)
                    instr[s] = callgrind_cmd_per_request(
                        ["nginx", "-e", os.path.join(vd, "error.log"), "-p", vd, "-c", vconf],
                        nginx_port, urls[s], INSTR_N, [], prefix)
                log("  %-11s %8.0f instructions/request" % (s, instr[s]))

        def med(s):
            return statistics.median(u for u, _ in results[s])
        lines = ["# Response cache: CPU per cache hit, sluice vs nginx proxy_cache", "",
                 "%s, %s, the proxy (sluice --concurrency 1, or nginx with one process) on core "
                 "%s; wrk -t1 -c%d and the origin (nginx, static files) on core %s; %d rounds x "
                 "%ds (+%ds warm-up), medians." % (
                     time.strftime("%Y-%m-%d %H:%M"), os.uname().release, PROXY_CPU, CONNS,
                     LOAD_CPU, ROUNDS, DURATION, WARMUP), "",
                 "| scenario | req/s | CPU us/req | vs nginx | per round (us/req) |",
                 "|---|---:|---:|---:|---|"]
        for s in SCENARIOS if ROUNDS > 0 else []:
            rps = statistics.median(r for _, r in results[s])
            ref = {"sluice-1k": "nginx-1k", "sluice-64k": "nginx-64k"}.get(s)
            rel = "-" if ref is None else "%.2fx" % (med(s) / med(ref))
            lines.append("| %s | %.0f | %.2f | %s | %s |" % (
                s, rps, med(s), rel, ", ".join("%.2f" % u for u, _ in results[s])))
        if instr:
            lines += ["", "User-space instructions per request (callgrind, %d requests; nginx's "
                      "file reads are system calls, not counted):" % INSTR_N, "",
                      "| scenario | instructions/req |", "|---|---:|"]
            for s, n in instr.items():
                lines.append("| %s | %.0f |" % (s, n))
        lines += ["", "Target: sluice-1k and sluice-64k at or below nginx-1k and nginx-64k "
                  "(CPU us/request)."]
        out = "\n".join(lines) + "\n"
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, "cache-%s.md" % time.strftime("%Y-%m-%d-%H%M%S"))
        with open(path, "w") as f:
            f.write(out)
        sys.stdout.write(out)
        log("report written to %s" % path)
        return 0
    finally:
        stop_all()
        for c in cache_dirs:
            shutil.rmtree(c, ignore_errors=True)
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
