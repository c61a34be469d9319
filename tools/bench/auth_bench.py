#!/usr/bin/python3
"""CPU per request of the `auth` filter: JWT (RS256, ES256) cold and cached vs no auth.

    /usr/bin/python3 tools/bench/auth_bench.py [--help]

Method (as tools/bench/e2e.sh): sluice with ONE worker pinned to core PROXY_CPU (0); wrk (1 thread,
CONNS keep-alive connections) and an nginx upstream (1 worker, `return 200 "hello\\n"`) on
core LOAD_CPU (1). One sluice process serves every scenario on its own route:

    none        /none        no auth policy, no token (the baseline)
    none+token  /none        no auth policy, the RS256 token sent anyway (and forwarded): the
                             cost of carrying a ~700-byte header, without the filter's work
    rs256-cached /rs-cached   RS256 token, token cache on (the default): verified once per worker
    rs256-cold  /rs-cold     RS256 token, token_cache_entries: 0: every request verifies
    es256-cached /es-cached   ES256, cache on
    es256-cold  /es-cold     ES256, cache off

Each scenario is measured ROUNDS times (rotated order, WARMUP s of load first, then DURATION s);
CPU us/request = (utime+stime) delta of the sluice process / requests wrk completed. The table
shows the median per scenario and its overhead against `none`. Tokens are made with PyJWT and
python3-cryptography (an independent implementation), the JWKS is inline in the policy.

Then, deterministically (valgrind/callgrind, as tools/bench/instructions.sh): user-space
instructions per request for `none` and the cached scenarios, over INSTR_N keep-alive requests
(h2load --h1, 16 connections) after a 1,000-request warm-up that fills the token cache. Unlike
timings on a shared VM, these counts repeat to ~1%; kernel work is not in them. INSTR_N=0 skips.

Environment knobs (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
INSTR_N=20000
SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice OUT_DIR=<repo>/bench-results
SCENARIOS="none rs256-cached rs256-cold es256-cached es256-cold"
Output: Markdown on stdout and in $OUT_DIR/auth-<date>.md; progress on stderr.
"""

import base64
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
SCENARIOS = os.environ.get("SCENARIOS",
                           "none none+token rs256-cached rs256-cold es256-cached es256-cold").split()
PATHS = {"none": "/none", "none+token": "/none", "rs256-cached": "/rs-cached", "rs256-cold": "/rs-cold",
         "es256-cached": "/es-cached", "es256-cold": "/es-cold"}
INSTR_N = int(os.environ.get("INSTR_N", "20000"))
log = make_log("auth-bench")


def instructions(work, cfg_path, port, scenario, header):
    """User-space instructions per request of `scenario` (sluice under callgrind)."""
    return callgrind_per_request(SLUICE_BIN, cfg_path, port,
                                 "http://127.0.0.1:%d%s/" % (port, PATHS[scenario]), INSTR_N,
                                 [header] if header else [],
                                 os.path.join(work, "callgrind-%s" % scenario))


def make_tokens():
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk["kid"] = "rsa"
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    # Full-length coordinates (RFC 7518 6.2.1.2); Debian's PyJWT drops leading zero bytes.
    numbers = ec_key.public_key().public_numbers()
    for name, value in (("x", numbers.x), ("y", numbers.y)):
        ec_jwk[name] = base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()
    ec_jwk["kid"] = "ec"
    payload = {"iss": "https://issuer.example", "aud": "api", "sub": "bench-user",
               "scope": "orders read", "exp": int(time.time()) + 86400}
    tokens = {
        "rs": jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "rsa"}),
        "es": jwt.encode(payload, ec_key, algorithm="ES256", headers={"kid": "ec"}),
    }
    return tokens, json.dumps({"keys": [rsa_jwk, ec_jwk]})


def sluice_config(work, port, up_port, jwks):
    provider = {"issuer": "https://issuer.example", "audiences": ["api"],
                "local_jwks": {"inline": jwks},
                "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}
    routes = [{"name": "none", "match": {"prefix": "/none"}, "route": {"cluster": "upstream"}}]
    policies = []
    for name, cache in (("cached", 4096), ("cold", 0)):
        policies.append({"name": name, "jwt": {"providers": [provider]},
                         "token_cache_entries": cache})
        for alg in ("rs", "es"):
            routes.append({"name": "%s-%s" % (alg, name), "match": {"prefix": "/%s-%s" % (alg, name)},
                           "route": {"cluster": "upstream"}, "auth": name})
    return sluice_bootstrap(
        work, [sluice_listener("bench", port, [{"name": "auth"}, {"name": "router"}])],
        [sluice_route_table("bench", routes)], [sluice_cluster("upstream", up_port)],
        auth_policies=policies)


def run(work):
    tokens, jwks = make_tokens()
    up_port = free_port()
    start_nginx_upstream(work, up_port, LOAD_CPU)
    port = free_port()
    cfg = sluice_config(work, port, up_port, jwks)
    proxy = start_sluice(SLUICE_BIN, cfg, [port], PROXY_CPU, work)
    base = "http://127.0.0.1:%d" % port
    headers = {}
    for s in SCENARIOS:
        tok = tokens["es" if s.startswith("es") else "rs"] if s != "none" else None
        headers[s] = "Authorization: Bearer " + tok if tok else None
        req = urllib.request.Request(base + PATHS[s] + "/check")
        if tok:
            req.add_header("Authorization", "Bearer " + tok)
        body = urllib.request.urlopen(req, timeout=5).read()
        if body != b"hello\n":
            log("FATAL: sanity request for %s got %r" % (s, body[:200]))
            return 1
    results = cpu_rounds(
        SCENARIOS, lambda s: (base + PATHS[s] + "/", [headers[s]] if headers[s] else []),
        proxy.pid, ROUNDS, WARMUP, DURATION, CONNS, LOAD_CPU, work, log)
    instr = callgrind_scenarios(
        [x for x in SCENARIOS if x.startswith("none") or x.endswith("-cached")], INSTR_N, [proxy],
        lambda s: instructions(work, cfg, port, s, headers[s]), log, 13)
    lines = ["# Sluice auth filter: CPU per request", "",
             setup_line("sluice --concurrency 1", "nginx upstream", PROXY_CPU, CONNS, LOAD_CPU,
                        ROUNDS, DURATION, WARMUP), "",
             "| scenario | req/s | CPU us/req | vs none | per round (us/req) |",
             "|---|---:|---:|---:|---|"]
    base_us = median_us(results["none"]) if results.get("none") else None
    for s in SCENARIOS if ROUNDS > 0 else []:
        lines.append(cpu_row(s, results[s],
                             pct(median_us(results[s]), base_us) if base_us else "-"))
    if instr:
        lines += ["", "User-space instructions per request (callgrind, %d requests):" % INSTR_N,
                  "", "| scenario | instructions/req | vs none | vs none+token |",
                  "|---|---:|---:|---:|"]
        for s, n in instr.items():
            rel = pct(n, instr["none"]) if "none" in instr else "-"
            rel_t = pct(n, instr["none+token"]) if "none+token" in instr else "-"
            lines.append("| %s | %.0f | %s | %s |" % (s, n, rel, rel_t))
    lines += ["", "Target: a cached-token request costs at most 10% more CPU than `none`."]
    write_report("\n".join(lines) + "\n", OUT_DIR, "auth", log)
    return 0


if __name__ == "__main__":
    sys.exit(bench_main(__doc__, run, SLUICE_BIN, log, "sluice-auth-bench."))
