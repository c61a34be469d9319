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
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "bazel-bin/source/exe/sluice"))
OUT_DIR = os.environ.get("OUT_DIR", os.path.join(REPO, "bench-results"))
SCENARIOS = os.environ.get("SCENARIOS",
                           "none none+token rs256-cached rs256-cold es256-cached es256-cold").split()
PATHS = {"none": "/none", "none+token": "/none", "rs256-cached": "/rs-cached", "rs256-cold": "/rs-cold",
         "es256-cached": "/es-cached", "es256-cold": "/es-cold"}
INSTR_N = int(os.environ.get("INSTR_N", "20000"))


def log(msg):
    sys.stderr.write("[auth-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))


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
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0,
                  "address_path": os.path.join(work, "admin.addr")},
        "concurrency": 1,
        "drain_timeout": "1s",
        "static_resources": {
            "listeners": [{"name": "bench", "address": {"host": "127.0.0.1", "port": port},
                           "route_table": "bench", "backlog": 4096,
                           "http_filters": [{"name": "auth"}, {"name": "router"}],
                           "limits": {"idle_timeout": "300s",
                                      "request_headers_timeout": "300s"}}],
            "route_tables": [{"name": "bench", "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": routes}]}],
            "clusters": [{"name": "upstream", "lb_policy": "ROUND_ROBIN",
                          "endpoints": [{"address": "127.0.0.1", "port": up_port}],
                          "idle_timeout": "300s", "max_idle_connections_per_endpoint": 64}],
            "auth_policies": policies,
        },
    }
    path = os.path.join(work, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


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
    work = tempfile.mkdtemp(prefix="sluice-auth-bench.")
    try:
        tokens, jwks = make_tokens()
        up_port = free_port()
        start_nginx_upstream(work, up_port, LOAD_CPU)
        port = free_port()
        cfg = sluice_config(work, port, up_port, jwks)
        v = subprocess.run([SLUICE_BIN, "-c", cfg, "--validate"], capture_output=True, text=True)
        if v.returncode != 0:
            log("FATAL: sluice --validate: %s" % v.stderr)
            return 1
        proxy = start(["taskset", "-c", PROXY_CPU, SLUICE_BIN, "-c", cfg, "--concurrency", "1"],
                      stdout=open(os.path.join(work, "sluice.out"), "w"),
                      stderr=open(os.path.join(work, "sluice.err"), "w"))
        if not wait_port(port):
            log("FATAL: sluice did not start: %s" % open(os.path.join(work, "sluice.err")).read())
            return 1
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
        try:
            results = cpu_rounds(
                SCENARIOS, lambda s: (base + PATHS[s] + "/", [headers[s]] if headers[s] else []),
                proxy.pid, ROUNDS, WARMUP, DURATION, CONNS, LOAD_CPU, work, log)
        except RuntimeError as e:
            log("FATAL: %s" % e)
            return 1
        instr = {}
        if INSTR_N > 0 and shutil.which("valgrind") and shutil.which("h2load"):
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(10)
            for s in [x for x in SCENARIOS if x.startswith("none") or x.endswith("-cached")]:
                log("callgrind: %s, %d requests" % (s, INSTR_N))
                instr[s] = instructions(work, cfg, port, s, headers[s])
                log("  %-13s %8.0f instructions/request" % (s, instr[s]))
        lines = ["# Sluice auth filter: CPU per request", "",
                 "%s, %s, sluice --concurrency 1 on core %s; wrk -t1 -c%d and nginx upstream on "
                 "core %s; %d rounds x %ds (+%ds warm-up), medians." % (
                     time.strftime("%Y-%m-%d %H:%M"), os.uname().release, PROXY_CPU, CONNS,
                     LOAD_CPU, ROUNDS, DURATION, WARMUP), "",
                 "| scenario | req/s | CPU us/req | vs none | per round (us/req) |",
                 "|---|---:|---:|---:|---|"]
        base_us = statistics.median(u for u, _ in results["none"]) if results.get("none") else None
        for s in SCENARIOS if ROUNDS > 0 else []:
            us = statistics.median(u for u, _ in results[s])
            rps = statistics.median(r for _, r in results[s])
            rel = "%+.1f%%" % ((us / base_us - 1) * 100) if base_us else "-"
            lines.append("| %s | %.0f | %.2f | %s | %s |" % (
                s, rps, us, rel, ", ".join("%.2f" % u for u, _ in results[s])))
        if instr:
            lines += ["", "User-space instructions per request (callgrind, %d requests):" % INSTR_N,
                      "", "| scenario | instructions/req | vs none | vs none+token |",
                      "|---|---:|---:|---:|"]
            for s, n in instr.items():
                rel = "%+.1f%%" % ((n / instr["none"] - 1) * 100) if "none" in instr else "-"
                rel_t = ("%+.1f%%" % ((n / instr["none+token"] - 1) * 100)
                         if "none+token" in instr else "-")
                lines.append("| %s | %.0f | %s | %s |" % (s, n, rel, rel_t))
        lines += ["", "Target: a cached-token request costs at most 10% more CPU than `none`."]
        out = "\n".join(lines) + "\n"
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, "auth-%s.md" % time.strftime("%Y-%m-%d-%H%M%S"))
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
