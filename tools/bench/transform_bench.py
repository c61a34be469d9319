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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_knobs, bench_main, callgrind_per_request,  # noqa: E402
                      callgrind_scenarios, cpu_row, cpu_rounds, fetch, free_port, make_log,
                      median_us, pct, setup_line, sluice_bootstrap, sluice_cluster,
                      sluice_listener, sluice_route_table, start_nginx_upstream, start_sluice,
                      write_report)

ROUNDS, DURATION, WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR = bench_knobs()
INSTR_N = int(os.environ.get("INSTR_N", "20000"))
SCENARIOS = ["none", "headers", "json-none", "json"]
ORIGIN = "https://app.example"
HEADERS = ["Origin: " + ORIGIN]
log = make_log("transform-bench")


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
    return sluice_bootstrap(
        work, [sluice_listener("plain", plain_port, [{"name": "router"}]),
               sluice_listener("filters", filters_port, filters)],
        [sluice_route_table("plain", routes(None)),
         sluice_route_table("filters", routes({"response_transformer": json_rules}))],
        [sluice_cluster("upstream", up_port)])


def get(url):
    return fetch(url, {"Origin": ORIGIN})


def run(work):
    doc = json_document()
    up_port = free_port()
    start_nginx_upstream(work, up_port, LOAD_CPU, (
        'location /json { default_type application/json; return 200 \'%s\'; } '
        'location / { add_header X-Powered-By nginx; return 200 "hello\\n"; }') % doc)
    plain, filters = free_port(), free_port()
    cfg = sluice_config(work, plain, filters, up_port)
    proxy = start_sluice(SLUICE_BIN, cfg, [plain, filters], PROXY_CPU, work)
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

    results = cpu_rounds(SCENARIOS, lambda s: (urls[s], HEADERS), proxy.pid, ROUNDS,
                         WARMUP, DURATION, CONNS, LOAD_CPU, work, log)
    instr = callgrind_scenarios(
        SCENARIOS, INSTR_N, [proxy], lambda s: callgrind_per_request(
            SLUICE_BIN, cfg, plain if s in ("none", "json-none") else filters, urls[s], INSTR_N,
            HEADERS, os.path.join(work, "callgrind-%s" % s)), log, 10)
    base = {"none": "none", "headers": "none", "json-none": "json-none", "json": "json-none"}
    lines = ["# Sluice transformation filters: CPU per request", "",
             setup_line("sluice --concurrency 1", "nginx upstream", PROXY_CPU, CONNS, LOAD_CPU,
                        ROUNDS, DURATION, WARMUP) +
             " JSON: a %d-byte object in, %d bytes out." % (len(doc), json_out_len), "",
             "| scenario | req/s | CPU us/req | vs baseline | per round (us/req) |",
             "|---|---:|---:|---:|---|"]
    for s in SCENARIOS if ROUNDS > 0 else []:
        rel = "-" if base[s] == s else "%s vs %s" % (
            pct(median_us(results[s]), median_us(results[base[s]])), base[s])
        lines.append(cpu_row(s, results[s], rel))
    if instr:
        lines += ["", "User-space instructions per request (callgrind, %d requests):" % INSTR_N,
                  "", "| scenario | instructions/req | vs baseline |", "|---|---:|---:|"]
        for s, n in instr.items():
            rel = "-" if base[s] == s else "%s vs %s" % (pct(n, instr[base[s]]), base[s])
            lines.append("| %s | %.0f | %s |" % (s, n, rel))
    lines += ["", "Target: `headers` (cors + request_transformer + response_transformer, "
              "header rules) at most +5% CPU over `none`."]
    write_report("\n".join(lines) + "\n", OUT_DIR, "transform", log)
    return 0


if __name__ == "__main__":
    sys.exit(bench_main(__doc__, run, SLUICE_BIN, log, "sluice-transform-bench."))
