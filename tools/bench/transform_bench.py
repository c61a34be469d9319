#!/usr/bin/python3
"""CPU per request of the transformation filters: cors + request_transformer +
response_transformer with header rules only, and a response_transformer JSON rule on a 1 KiB JSON
response, against the same requests through a listener with no filter but the router.

    /usr/bin/python3 tools/bench/transform_bench.py [--help]

Method (as tools/bench/auth_bench.py): sluice with ONE worker pinned to core PROXY_CPU (0); wrk
(1 thread, CONNS keep-alive connections) and an nginx upstream (1 worker) on core LOAD_CPU (1).
Every request carries `Origin: https://app.example` (an allowed origin: cors does its work).
One sluice process serves every scenario:

    none          listener `plain` (router only), GET /r/      -> nginx "hello\\n"
    headers       listener `filters`, GET /r/: cors (one origin, credentials, exposed headers),
                  request_transformer (remove 1, add 2, append 1 header), response_transformer
                  (remove 1, add 2 headers). Target: at most +5% CPU over `none`.
    json-none     listener `plain`, GET /json/   -> nginx's 1 KiB JSON object
    json          listener `filters`, GET /json/: the same, its route's response_transformer
                  adding, replacing and removing JSON members (dotted paths) on the 1 KiB body,
                  buffered and re-serialised with a new content-length

Each scenario is measured ROUNDS times (rotated order, WARMUP s of load first, then DURATION s);
CPU us/request = (utime+stime) delta of the sluice process / requests wrk completed; medians.
Then, deterministically (valgrind/callgrind): user-space instructions per request of each
scenario over INSTR_N requests after a 1,000-request warm-up (INSTR_N=0 skips).

Environment knobs (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
INSTR_N=20000 SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice OUT_DIR=<repo>/bench-results
Output: Markdown on stdout and in $OUT_DIR/transform-<date>.md; progress on stderr.
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
SCENARIOS = ["none", "headers", "json-none", "json"]
ORIGIN = "https://app.example"
HEADERS = ["Origin: " + ORIGIN]


def log(msg):
    sys.stderr.write("[transform-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))


def json_document():
    """A 1 KiB JSON object like an API's: nested meta, a list of items."""
    doc = {"meta": {"api_version": "v0", "internal": {"shard": 7, "node": "db-3"},
                    "request": "r-0001"},
           "items": [{"id": i, "name": "item-%03d" % i, "price": 10.5 + i, "tags": ["a", "b"]}
                     for i in range(12)],
           "next": "/json/?page=2"}
    text = json.dumps(doc, separators=(",", ":"))
    pad = 1024 - len(text) - len(',"pad":""')
    doc["pad"] = "x" * max(pad, 0)
    return json.dumps(doc, separators=(",", ":"))


def sluice_config(work, plain_port, filters_port, up_port):
    def listener(name, port, filters):
        return {"name": name, "address": {"host": "127.0.0.1", "port": port},
                "route_table": name, "backlog": 4096, "http_filters": filters,
                "limits": {"idle_timeout": "300s", "request_headers_timeout": "300s"}}
    header_rules = {
        "request_transformer": {"remove": {"headers": ["x-debug"]},
                                "add": {"headers": ["x-gateway:sluice", "x-tenant:bench"]},
                                "append": {"headers": ["x-via:sluice"]}},
        "response_transformer": {"remove": {"headers": ["x-powered-by"]},
                                 "add": {"headers": ["x-served-by:sluice",
                                                     "cache-control:no-store"]}},
    }
    json_rules = {"remove": {"json": ["meta.internal"]},
                  "replace": {"json": ["meta.api_version:v1"]},
                  "add": {"json": ["meta.gateway:sluice", "count:12"], "json_types": ["string",
                                                                                  "number"]}}
    filters = [
        {"name": "cors", "config": {"origins": [ORIGIN], "credentials": True,
                                    "exposed_headers": ["x-request-id"], "max_age": 600}},
        {"name": "request_transformer", "config": header_rules["request_transformer"]},
        {"name": "response_transformer", "config": header_rules["response_transformer"]},
        {"name": "router"},
    ]
    def routes(json_config):
        json_route = {"name": "json", "match": {"prefix": "/json"},
                      "route": {"cluster": "upstream"}}
        if json_config:
            json_route["filter_config"] = json_config
        return [json_route,
                {"name": "rest", "match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0,
                  "address_path": os.path.join(work, "admin.addr")},
        "concurrency": 1,
        "drain_timeout": "1s",
        "static_resources": {
            "listeners": [listener("plain", plain_port, [{"name": "router"}]),
                          listener("filters", filters_port, filters)],
            "route_tables": [
                {"name": "plain", "virtual_hosts": [
                    {"name": "all", "domains": ["*"], "routes": routes(None)}]},
                {"name": "filters", "virtual_hosts": [
                    {"name": "all", "domains": ["*"],
                     "routes": routes({"response_transformer": json_rules})}]}],
            "clusters": [{"name": "upstream", "lb_policy": "ROUND_ROBIN",
                          "endpoints": [{"address": "127.0.0.1", "port": up_port}],
                          "idle_timeout": "300s", "max_idle_connections_per_endpoint": 64}],
        },
    }
    path = os.path.join(work, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def get(url):
    req = urllib.request.Request(url, headers={"Origin": ORIGIN})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


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
    work = tempfile.mkdtemp(prefix="sluice-transform-bench.")
    try:
        doc = json_document()
        up_port = free_port()
        start_nginx_upstream(work, up_port, LOAD_CPU, (
            'location /json { default_type application/json; return 200 \'%s\'; } '
            'location / { add_header X-Powered-By nginx; return 200 "hello\\n"; }') % doc)
        plain, filters = free_port(), free_port()
        cfg = sluice_config(work, plain, filters, up_port)
        v = subprocess.run([SLUICE_BIN, "-c", cfg, "--validate"], capture_output=True, text=True)
        if v.returncode != 0:
            log("FATAL: sluice --validate: %s" % v.stderr)
            return 1
        proxy = start(["taskset", "-c", PROXY_CPU, SLUICE_BIN, "-c", cfg, "--concurrency", "1"],
                      stdout=open(os.path.join(work, "sluice.out"), "w"),
                      stderr=open(os.path.join(work, "sluice.err"), "w"))
        if not wait_port(plain) or not wait_port(filters):
            log("FATAL: sluice did not start: %s" % open(os.path.join(work, "sluice.err")).read())
            return 1
        urls = {"none": "http://127.0.0.1:%d/r/" % plain,
                "headers": "http://127.0.0.1:%d/r/" % filters,
                "json-none": "http://127.0.0.1:%d/json/" % plain,
                "json": "http://127.0.0.1:%d/json/" % filters}
        # Sanity: each scenario does what it says.
        status, h, body = get(urls["headers"])
        if status != 200 or h.get("access-control-allow-origin") != ORIGIN or \
                h.get("x-served-by") != "sluice" or "x-powered-by" in h:
            log("FATAL: headers scenario: %s %s" % (status, h))
            return 1
        status, h, body = get(urls["json"])
        out = json.loads(body)
        if status != 200 or out["meta"].get("gateway") != "sluice" or "internal" in out["meta"] \
                or out.get("count") != 12 or int(h["content-length"]) != len(body):
            log("FATAL: json scenario: %s %s %r" % (status, h, body[:200]))
            return 1
        json_out_len = len(body)
        status, h, body = get(urls["json-none"])
        if status != 200 or body.decode() != doc:
            log("FATAL: json-none scenario: %s %r" % (status, body[:200]))
            return 1

        try:
            results = cpu_rounds(SCENARIOS, lambda s: (urls[s], HEADERS), proxy.pid, ROUNDS,
                                 WARMUP, DURATION, CONNS, LOAD_CPU, work, log)
        except RuntimeError as e:
            log("FATAL: %s" % e)
            return 1
        instr = {}
        if INSTR_N > 0 and shutil.which("valgrind") and shutil.which("h2load"):
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(10)
            for s in SCENARIOS:
                log("callgrind: %s, %d requests" % (s, INSTR_N))
                port = plain if s in ("none", "json-none") else filters
                instr[s] = callgrind_per_request(SLUICE_BIN, cfg, port, urls[s], INSTR_N, HEADERS,
                                                 os.path.join(work, "callgrind-%s" % s))
                log("  %-10s %8.0f instructions/request" % (s, instr[s]))
        base = {"none": "none", "headers": "none", "json-none": "json-none", "json": "json-none"}
        lines = ["# Sluice transformation filters: CPU per request", "",
                 "%s, %s, sluice --concurrency 1 on core %s; wrk -t1 -c%d and nginx upstream on "
                 "core %s; %d rounds x %ds (+%ds warm-up), medians. JSON: a %d-byte object in, "
                 "%d bytes out." % (
                     time.strftime("%Y-%m-%d %H:%M"), os.uname().release, PROXY_CPU, CONNS,
                     LOAD_CPU, ROUNDS, DURATION, WARMUP, len(doc), json_out_len), "",
                 "| scenario | req/s | CPU us/req | vs baseline | per round (us/req) |",
                 "|---|---:|---:|---:|---|"]
        for s in SCENARIOS if ROUNDS > 0 else []:
            us = statistics.median(u for u, _ in results[s])
            rps = statistics.median(r for _, r in results[s])
            b = statistics.median(u for u, _ in results[base[s]])
            rel = "-" if base[s] == s else "%+.1f%% vs %s" % ((us / b - 1) * 100, base[s])
            lines.append("| %s | %.0f | %.2f | %s | %s |" % (
                s, rps, us, rel, ", ".join("%.2f" % u for u, _ in results[s])))
        if instr:
            lines += ["", "User-space instructions per request (callgrind, %d requests):" % INSTR_N,
                      "", "| scenario | instructions/req | vs baseline |", "|---|---:|---:|"]
            for s, n in instr.items():
                rel = "-" if base[s] == s else "%+.1f%% vs %s" % (
                    (n / instr[base[s]] - 1) * 100, base[s])
                lines.append("| %s | %.0f | %s |" % (s, n, rel))
        lines += ["", "Target: `headers` (cors + request_transformer + response_transformer, "
                  "header rules) at most +5% CPU over `none`."]
        out = "\n".join(lines) + "\n"
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, "transform-%s.md" % time.strftime("%Y-%m-%d-%H%M%S"))
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
