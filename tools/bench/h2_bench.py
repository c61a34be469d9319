#!/usr/bin/python3
"""HTTP/2 benchmark: sluice vs nghttpx vs haproxy vs nginx terminating cleartext HTTP/2 (h2c,
prior knowledge) in front of the same upstream.

    /usr/bin/python3 tools/bench/h2_bench.py [--help]

Topology (2-core box, as tools/bench/e2e.sh):
  core PROXY_CPU (0): the proxy under test, ONE worker (sluice --concurrency 1 / nghttpx
                      --workers=1 / haproxy nbthread 1 / nginx worker_processes 1), no access logs
  core LOAD_CPU  (1): h2load (-t1) and the upstream nginx (1 worker): `return 200 "hello\\n"` over
                      HTTP/1.1 keep-alive, the same over h2c (`listen ... http2`), and stub_status
                      (its request counter is what the proxies forwarded); this script too
Parts (PARTS):
  h1up  h2load -c CONNS -m STREAMS (h2c) -> proxy -> HTTP/1.1 keep-alive upstream. Rounds as in
        e2e.sh: ROUNDS rounds, each proxy started fresh in every round, order rotated (round r,
        0-based, starts at proxy r mod N). One h2load run of WARMUP + DURATION s
        (`-D DURATION --warm-up-time WARMUP`); the measured window is [WARMUP + 0.5, WARMUP +
        DURATION - 0.5] s after h2load started: req/s and CPU µs/request = (utime+stime) delta of
        the proxy's worker process(es) (/proc/<pid>/stat) / upstream requests in the window.
        Latency: h2load prints only min/max/mean/sd per request, so p50/p99 come from its
        --log-file (one line per request: start, status, µs to the end of the response), over the
        requests that started in the measured part.
  h2up  the same load -> proxy -> h2c upstream (the upstream nginx's http2 port): CPU per request
        with one multiplexed upstream connection per worker; the report lists how many upstream
        connections each proxy had open at the end. nginx cannot proxy to an HTTP/2 upstream
        (grpc_pass only) and shows n/a.
  idle  once per proxy after the rounds (fresh process, WARMUP s of h2load first): IDLE_CONNS
        HTTP/2 connections (this script's client on LOAD_CPU), each completes one request and
        stays open (SETTINGS ACKed, nothing else sent); KiB per idle HTTP/2 connection =
        (VmRSS of the worker(s) 2 s after the last response - before) / connections.
A proxy that fails to start, to answer the sanity request over h2c, or dies, is reported `n/a`
with the reason; the others still run (sluice before its HTTP/2 support: n/a).

Environment knobs (defaults):
  ROUNDS=3  DURATION=10  WARMUP=2  CONNS=64  STREAMS=10  IDLE_CONNS=2000
  PROXIES="sluice nghttpx haproxy nginx"  PARTS="h1up h2up idle"
  PROXY_CPU=0  LOAD_CPU=1  SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice
  OUT_DIR=<repo>/bench-results  KEEP_WORKDIR=0 (1 = keep the temp dir: configs, logs)
Output: Markdown on stdout and in $OUT_DIR/h2-<date>.md; progress on stderr. Every process
started here is stopped on exit, also on failure or Ctrl-C. Needs h2load, nghttpx, haproxy,
nginx (with http_v2), taskset, python3-h2 (/usr/bin/python3).
"""

import json
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HAPROXY_DEFAULTS, children, cleanup, cmdline, core_busy,  # noqa: E402
                      cpu_ticks_all, env_int, exit_on_signals, first_line, free_port, log_fatal,
                      make_log, pin_self, raise_nofile, read_line, rss_kib, run_meta, start, stop,
                      stub_status_requests, temp_paths, wait_port, write_report)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
ALL_PROXIES = ("sluice", "nghttpx", "haproxy", "nginx")
ALL_PARTS = ("h1up", "h2up", "idle")
KNOBS = ("ROUNDS", "DURATION", "WARMUP", "CONNS", "STREAMS", "IDLE_CONNS", "PROXIES", "PARTS",
         "PROXY_CPU", "LOAD_CPU", "SLUICE_BIN")  # repeated in the report's command line


# =============================================================================================
# Idle client: `h2_bench.py --client idle PORT N` (run pinned to LOAD_CPU). Raw frames: preface,
# empty SETTINGS, one GET; SETTINGS from the server are ACKed; a connection is done when a frame
# with END_STREAM arrives on stream 1. Prints one JSON line when all are done, then holds the
# connections until stdin says "next", then prints how many are still open.
# =============================================================================================
def client_idle(port, n):
    from hpack import Encoder
    from hyperframe.frame import HeadersFrame, SettingsFrame
    port, n = int(port), int(n)
    hf = HeadersFrame(1)
    hf.data = Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                (":authority", "bench"), (":path", "/")])
    hf.flags.add("END_STREAM")
    hf.flags.add("END_HEADERS")
    hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize() + hf.serialize()
    ack = SettingsFrame(0)
    ack.flags.add("ACK")
    ack = ack.serialize()
    sel = selectors.DefaultSelector()
    done, failed, errs = [], 0, {}
    linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
    opened = 0
    while opened < n:
        k = min(100, n - opened)  # at most 100 in flight: keeps the peak heap near the idle one
        pending = {}
        for _ in range(k):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s] = {"buf": b"", "sent": False}
            sel.register(s, selectors.EVENT_WRITE)
        opened += k
        deadline = time.time() + 20
        while pending and time.time() < deadline:
            for key, _ in sel.select(0.5):
                s = key.fileobj
                st = pending[s]
                try:
                    if not st["sent"]:
                        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if e:
                            raise OSError(e, os.strerror(e))
                        s.send(hello)
                        st["sent"] = True
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    data = s.recv(65536)
                    if not data:
                        raise OSError(0, "closed by peer")
                    st["buf"] += data
                    finished = False
                    while len(st["buf"]) >= 9:
                        ln = int.from_bytes(st["buf"][:3], "big")
                        if len(st["buf"]) < 9 + ln:
                            break
                        ftype, flags = st["buf"][3], st["buf"][4]
                        sid = int.from_bytes(st["buf"][5:9], "big") & 0x7fffffff
                        st["buf"] = st["buf"][9 + ln:]
                        if ftype == 4 and not flags & 1:
                            s.send(ack)
                        if sid == 1 and ftype in (0, 1) and flags & 1:
                            finished = True
                        if ftype == 3 and sid == 1:
                            raise OSError(0, "stream reset")
                        if ftype == 7:
                            raise OSError(0, "GOAWAY")
                    if finished:
                        sel.unregister(s)
                        del pending[s]
                        done.append(s)
                except OSError as e:
                    errs[e.strerror] = errs.get(e.strerror, 0) + 1
                    sel.unregister(s)
                    del pending[s]
                    failed += 1
                    s.close()
        for s in list(pending):
            errs["timeout"] = errs.get("timeout", 0) + 1
            sel.unregister(s)
            s.close()
            failed += 1
    print(json.dumps({"ok": len(done), "failed": failed, "errors": errs}), flush=True)
    sys.stdin.readline()
    alive = 0
    for s in done:
        try:
            d = s.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            alive += 1 if d else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print(json.dumps({"alive": alive}), flush=True)
    for s in done:
        s.close()
    return 0


# =============================================================================================
# Bench driver
# =============================================================================================
def load_knobs():
    global ROUNDS, DURATION, WARMUP, CONNS, STREAMS, IDLE_CONNS, PROXIES, PARTS, PROXY_CPU
    global LOAD_CPU, SLUICE_BIN, OUT_DIR, KEEP_WORKDIR
    ROUNDS = env_int("ROUNDS", 3)
    DURATION = env_int("DURATION", 10)
    WARMUP = env_int("WARMUP", 2)
    CONNS = env_int("CONNS", 64)
    STREAMS = env_int("STREAMS", 10)
    IDLE_CONNS = env_int("IDLE_CONNS", 2000)
    PROXIES = os.environ.get("PROXIES", " ".join(ALL_PROXIES)).split()
    PARTS = os.environ.get("PARTS", " ".join(ALL_PARTS)).split()
    PROXY_CPU = os.environ.get("PROXY_CPU", "0")
    LOAD_CPU = os.environ.get("LOAD_CPU", "1")
    SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "bazel-bin/source/exe/sluice"))
    OUT_DIR = os.environ.get("OUT_DIR", os.path.join(REPO, "bench-results"))
    KEEP_WORKDIR = os.environ.get("KEEP_WORKDIR", "0") == "1"
    for p in PROXIES:
        if p not in ALL_PROXIES:
            sys.exit("h2_bench: unknown proxy %r (known: %s)" % (p, " ".join(ALL_PROXIES)))
    if len(set(PROXIES)) != len(PROXIES):
        sys.exit("h2_bench: a proxy is listed twice in PROXIES")
    for p in PARTS:
        if p not in ALL_PARTS:
            sys.exit("h2_bench: unknown part %r (known: %s)" % (p, " ".join(ALL_PARTS)))
    if DURATION < 3:
        sys.exit("h2_bench: DURATION must be at least 3")


log = make_log("h2-bench")


def established_to(port):
    """TCP connections in ESTABLISHED state whose remote end is 127.0.0.1:port."""
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                rem, st = fields[2], fields[3]
                if st == "01" and rem == "0100007F:%04X" % port:
                    n += 1
    except OSError:
        pass
    return n


# -- upstream --------------------------------------------------------------------------------

def start_upstream():
    global UP_H1, UP_H2, UP_STATUS
    UP_H1, UP_H2, UP_STATUS = free_port(), free_port(), free_port()
    d = os.path.join(WORK, "upstream")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; master_process on; user root;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn; worker_rlimit_nofile %(nofile)d;
events { worker_connections 8192; }
http { access_log off; %(tmp)s
  keepalive_requests 1000000000; keepalive_timeout 300s; default_type text/plain;
  http2_max_concurrent_streams 1000;
  server { listen 127.0.0.1:%(h1)d backlog=4096; location / { return 200 "hello\\n"; } }
  server { listen 127.0.0.1:%(h2)d http2 backlog=4096; location / { return 200 "hello\\n"; } }
  server { listen 127.0.0.1:%(st)d; location / { stub_status; } } }
""" % {"d": d, "h1": UP_H1, "h2": UP_H2, "st": UP_STATUS, "tmp": temp_paths(d),
       "nofile": NOFILE})
    start(["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf], LOAD_CPU,
          os.path.join(d, "stdout.log"))
    for p in (UP_H1, UP_H2, UP_STATUS):
        if not wait_port(p, 10):
            raise RuntimeError("upstream nginx did not start")


def upstream_requests():
    return stub_status_requests(UP_STATUS)


# -- proxies -----------------------------------------------------------------------------------

class Proxy:
    def __init__(self, name, d, port, proc, workers_fn):
        self.name, self.dir, self.port, self.proc = name, d, port, proc
        self.workers_fn = workers_fn
        self.workers = []

    def logs(self):
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    out.append("%s: %s" % (fn, f.read()[-600:]))
        return "\n".join(out)


def start_sluice(d, port, h2up):
    cluster = {"name": "upstream", "lb_policy": "ROUND_ROBIN",
               "endpoints": [{"address": "127.0.0.1", "port": UP_H2 if h2up else UP_H1}],
               # 64 connections x 10 streams = 640 requests in flight: keep as many idle
               # upstream connections (nginx: keepalive 1024; haproxy keeps them all).
               "idle_timeout": "300s", "max_idle_connections_per_endpoint": 1024}
    if h2up:
        cluster["protocol"] = "HTTP2"
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0, "address_path": os.path.join(d, "admin")},
        "concurrency": 1, "drain_timeout": "1s",
        "static_resources": {
            "listeners": [{
                "name": "bench", "address": {"host": "127.0.0.1", "port": port},
                "route_table": "bench", "backlog": 4096,
                "limits": {"idle_timeout": "300s", "request_headers_timeout": "300s"},
                "http2": {"enabled": True, "max_concurrent_streams": 100}}],
            "route_tables": [{"name": "bench", "virtual_hosts": [{
                "name": "all", "domains": ["*"],
                "routes": [{"name": "all", "match": {"prefix": "/"},
                            "route": {"cluster": "upstream"}}]}]}],
            "clusters": [cluster]}}
    path = os.path.join(d, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    chk = subprocess.run([SLUICE_BIN, "-c", path, "--validate"], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("sluice --validate: " + (chk.stdout + chk.stderr)[-300:])
    p = start([SLUICE_BIN, "-c", path, "--concurrency", "1"], PROXY_CPU,
              os.path.join(d, "sluice.log"))
    return Proxy("sluice", d, port, p, lambda px: [px.proc.pid])


def start_nghttpx(d, port, h2up):
    backend = "127.0.0.1,%d" % (UP_H2 if h2up else UP_H1)
    if h2up:
        backend += ";;proto=h2"
    cmd = ["nghttpx", "--conf=/dev/null", "--workers=1", "--no-ocsp", "--no-via",
           "--accesslog-file=/dev/null", "--errorlog-file=%s" % os.path.join(d, "error.log"),
           "--frontend=127.0.0.1,%d;no-tls" % port, "--backend=" + backend,
           "--backend-keep-alive-timeout=300s", "--frontend-read-timeout=300s",
           "--frontend-keep-alive-timeout=300s", "--backlog=4096",
           "--frontend-http2-max-concurrent-streams=100"]
    p = start(cmd, PROXY_CPU, os.path.join(d, "nghttpx.log"))
    return Proxy("nghttpx", d, port, p, lambda px: children(px.proc.pid))


def start_haproxy(d, port, h2up):
    maxconn = max(1000, min((NOFILE - 200) // 2, 20000))  # haproxy wants ~2 fds per conn
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
  nbthread 1
  maxconn %(maxconn)d

%(defaults)s
frontend fe
  bind 127.0.0.1:%(p)d backlog 4096
  maxconn %(maxconn)d
  default_backend be

backend be
  server up 127.0.0.1:%(up)d%(proto)s
""" % {"p": port, "up": UP_H2 if h2up else UP_H1, "proto": " proto h2" if h2up else "",
       "maxconn": maxconn, "defaults": HAPROXY_DEFAULTS})
    chk = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("haproxy -c: " + (chk.stdout + chk.stderr)[-300:])
    p = start(["haproxy", "-db", "-f", cfg], PROXY_CPU, os.path.join(d, "haproxy.log"))
    return Proxy("haproxy", d, port, p, lambda px: [px.proc.pid])


def start_nginx(d, port, h2up):
    if h2up:
        raise RuntimeError("nginx cannot proxy to an HTTP/2 upstream (grpc_pass only)")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; master_process on; user root;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn; worker_rlimit_nofile %(nofile)d;
events { worker_connections %(conns)d; }
http { access_log off; %(tmp)s
  keepalive_requests 1000000000; keepalive_timeout 300s;
  http2_max_concurrent_streams 100;
  upstream backend { server 127.0.0.1:%(up)d; keepalive 1024; keepalive_requests 1000000000;
                     keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:%(p)d http2 backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }
  }
}
""" % {"d": d, "p": port, "up": UP_H1, "tmp": temp_paths(d), "nofile": NOFILE,
       "conns": min(NOFILE, 20000)})
    chk = subprocess.run(["nginx", "-t", "-q", "-e", os.path.join(d, "error.log"), "-p", d,
                          "-c", conf], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("nginx -t: " + chk.stderr[-300:])
    p = start(["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf], PROXY_CPU,
              os.path.join(d, "stdout.log"))
    return Proxy("nginx", d, port, p, lambda px: children(px.proc.pid))


STARTERS = {"sluice": start_sluice, "nghttpx": start_nghttpx, "haproxy": start_haproxy,
            "nginx": start_nginx}


def launch(name, d, h2up):
    """Start `name` fresh; wait until it answers over h2c prior knowledge. Returns a Proxy or
    raises RuntimeError (reported as n/a)."""
    os.makedirs(d, exist_ok=True)
    port = free_port()
    px = STARTERS[name](d, port, h2up)
    if not wait_port(port, 15) or px.proc.poll() is not None:
        logs = px.logs()
        stop(px.proc)
        raise RuntimeError("did not start listening: %s" % logs[-300:])
    time.sleep(0.3)
    px.workers = px.workers_fn(px)
    if not px.workers:
        stop(px.proc)
        raise RuntimeError("no worker process")
    r = subprocess.run(["curl", "-sS", "-m", "5", "--http2-prior-knowledge", "-o", "-", "-w",
                        " %{http_version}", "http://127.0.0.1:%d/" % port],
                       capture_output=True, text=True)
    if r.stdout != "hello\n 2":
        stop(px.proc)
        raise RuntimeError("h2c sanity request failed: %r %s" % (r.stdout[:100],
                                                                  r.stderr[-200:]))
    return px


# -- measurements ------------------------------------------------------------------------------

def parse_h2load(text):
    res = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        (res["total"], res["started"], res["done"], res["succeeded"], res["failed"],
         res["errored"], res["timeout"]) = map(int, m.groups())
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        res["s2xx"], _, res["s4xx"], res["s5xx"] = map(int, m.groups())
    m = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", text)
    if m:
        res["h2load_rps"] = float(m.group(3))
    m = re.search(r"Application protocol: (\S+)", text)
    res["alpn"] = m.group(1) if m else None
    return res


def latency_percentiles(log_path, since_us):
    """p50 / p99 (ms) of requests that started at or after since_us (h2load --log-file)."""
    vals = []
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and int(parts[0]) >= since_us:
                    vals.append(int(parts[2]))
    except (OSError, ValueError):
        return None, None, 0
    if not vals:
        return None, None, 0
    vals.sort()

    def pct(p):
        return vals[min(len(vals) - 1, int(len(vals) * p / 100.0))] / 1000.0
    return pct(50), pct(99), len(vals)


def run_h2load(px, d, tag):
    """One h2load run of WARMUP + DURATION s with a measured window inside it."""
    out = os.path.join(d, "h2load-%s.out" % tag)
    lg = os.path.join(d, "h2load-%s.log" % tag)
    cmd = ["h2load", "-t1", "-c%d" % CONNS, "-m%d" % STREAMS, "-D", str(DURATION),
           "--warm-up-time=%d" % WARMUP, "--log-file=" + lg, "http://127.0.0.1:%d/" % px.port]
    t0_us = int(time.time() * 1e6)
    t0 = time.monotonic()
    p = start(cmd, LOAD_CPU, out)
    samples = []
    try:
        for at in (WARMUP + 0.5, WARMUP + DURATION - 0.5):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            if p.poll() is not None:
                break
            samples.append((time.monotonic(), cpu_ticks_all(px.workers), upstream_requests()))
        p.wait(WARMUP + DURATION + 60)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(p, 2)
    with open(out, errors="replace") as f:
        text = f.read()
    res = parse_h2load(text)
    if px.proc.poll() is not None:
        return {"status": "died during the run"}
    if len(samples) != 2 or not res.get("succeeded"):
        return {"status": "h2load failed: " + text[-200:].replace("\n", " ")}
    (w0, (u0, s0), r0), (w1, (u1, s1), r1) = samples
    n = r1 - r0 - 1  # the second stub_status query
    if n <= 0:
        return {"status": "no request in the window"}
    res["window_requests"] = n
    res["rps"] = n / (w1 - w0)
    res["cpu_us"] = (u1 - u0 + s1 - s0) * 1e6 / CLK_TCK / n
    res["usr_us"] = (u1 - u0) * 1e6 / CLK_TCK / n
    res["sys_us"] = (s1 - s0) * 1e6 / CLK_TCK / n
    res["util_pct"] = 100.0 * (u1 - u0 + s1 - s0) / CLK_TCK / (w1 - w0)
    res["p50_ms"], res["p99_ms"], res["lat_n"] = latency_percentiles(
        lg, t0_us + int(WARMUP * 1e6))
    res["up_conns"] = established_to(UP_H2 if tag == "h2up" else UP_H1)
    errs = []
    bad = res.get("failed", 0) + res.get("errored", 0) + res.get("timeout", 0)
    if bad:
        errs.append("%d failed/errored/timeout" % bad)
    if res.get("s4xx", 0) + res.get("s5xx", 0):
        errs.append("%d 4xx/5xx responses" % (res["s4xx"] + res["s5xx"]))
    if res.get("alpn") != "h2c":
        errs.append("protocol %s" % res.get("alpn"))
    res["status"] = "ok" if not errs else ", ".join(errs)
    try:
        os.unlink(lg)  # can be tens of MB
    except OSError:
        pass
    return res


def read_json_line(p, timeout):
    """read_line() parsed as JSON; None if it is not (EOF, timeout)."""
    try:
        return json.loads(read_line(p, timeout))
    except ValueError:
        return None


def measure_idle(px, d):
    subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-t1", "-c%d" % CONNS,
                    "-m%d" % STREAMS, "-D", str(WARMUP), "http://127.0.0.1:%d/" % px.port],
                   capture_output=True, timeout=WARMUP + 60)
    time.sleep(1.0)
    r0 = rss_kib(px.workers)
    p = start([PY, os.path.abspath(__file__), "--client", "idle", str(px.port),
               str(IDLE_CONNS)], LOAD_CPU, os.path.join(d, "idle-client.log"),
              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        res = read_json_line(p, 300)
        if res is None:
            return {"status": "idle client failed"}
        time.sleep(2.0)
        r1 = rss_kib(px.workers)
        p.stdin.write(b"next\n")
        p.stdin.flush()
        alive = read_json_line(p, 60) or {}
    finally:
        stop(p, 10)
    if px.proc.poll() is not None:
        return {"status": "died during the run"}
    res.update(rss_before=r0, rss_after=r1, alive=alive.get("alive"))
    if res["ok"]:
        res["kib_per_conn"] = (r1 - r0) / res["ok"]
    errs = []
    if res["failed"]:
        errs.append("%d failed %s" % (res["failed"], res["errors"]))
    if res["alive"] != res["ok"]:
        errs.append("%s of %d alive at the end" % (res["alive"], res["ok"]))
    res["status"] = "ok" if res["ok"] and not errs else ("; ".join(errs) or "no connection")
    return res


# -- report ------------------------------------------------------------------------------------

def render(R, meta):
    out = []
    w = out.append

    def f(x, spec):
        return spec.format(x) if x is not None else "n/a"

    w("# Sluice HTTP/2 (h2c) proxy benchmark (%s)" % meta["date"])
    w("")
    w("- Host: %s, %d CPUs, kernel %s; cores busy before: %s" % (
        meta["cpu"], meta["ncpu"], meta["kernel"], meta["busy"]))
    w("- Pinning: proxy (1 worker) on core %s; h2load + upstream nginx (1 worker) on core %s"
      % (PROXY_CPU, LOAD_CPU))
    w("- Load: `h2load -t1 -c%d -m%d -D %d --warm-up-time=%d` (h2c prior knowledge); measured "
      "window [%.1f, %.1f] s; upstream `return 200 \"hello\\n\"`" % (
          CONNS, STREAMS, DURATION, WARMUP, WARMUP + 0.5, WARMUP + DURATION - 0.5))
    w("- Rounds: %d, order rotated: %s. Values are medians over the rounds." % (
        ROUNDS, "; ".join("%d: %s" % (i + 1, " → ".join(o)) for i, o in
                          enumerate(meta["orders"]))))
    w("- Versions: %s" % meta["versions"])
    w("- Command: `%s`; runtime %s" % (meta["cmdline"], meta["elapsed"]))
    for part, title in (("h1up", "h2c clients -> proxy -> HTTP/1.1 upstream"),
                        ("h2up", "h2c clients -> proxy -> h2c upstream (multiplexed)")):
        if part not in PARTS:
            continue
        w("")
        w("## %s" % title)
        w("")
        w("| proxy | req/s | p50 (ms) | p99 (ms) | CPU µs/req | per round | usr / sys µs/req "
          "| CPU vs haproxy | proxy busy | upstream conns | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        rows = R.get(part, {})

        def med(p, k):
            vals = [r[k] for r in rows.get(p, {}).values()
                    if r.get("status") == "ok" and r.get(k) is not None]
            return statistics.median(vals) if vals else None
        base = med("haproxy", "cpu_us")
        for p in PROXIES:
            rs = rows.get(p, {})
            oks = [r for r in rs.values() if r.get("status") == "ok"]
            if not oks:
                why = next((r["status"] for r in rs.values()), "not run")
                w("| %s | n/a (%s) | | | | | | | | | |" % (p, why))
                continue
            per = " / ".join(f(rs[r].get("cpu_us"), "{:.1f}") if rs[r].get("status") == "ok"
                             else "–" for r in sorted(rs))
            cpu = med(p, "cpu_us")
            errs = ["round %s: %s" % (r, rs[r]["status"]) for r in sorted(rs)
                    if rs[r].get("status") != "ok"]
            w("| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s |" % (
                p, f(med(p, "rps"), "{:,.0f}"), f(med(p, "p50_ms"), "{:.2f}"),
                f(med(p, "p99_ms"), "{:.2f}"), f(cpu, "{:.2f}"), per,
                f(med(p, "usr_us"), "{:.1f}"), f(med(p, "sys_us"), "{:.1f}"),
                "%.2fx" % (cpu / base) if cpu and base else "n/a",
                f(med(p, "util_pct"), "{:.0f}%"), f(med(p, "up_conns"), "{:.0f}"),
                ", ".join(errs) or "0"))
    if "idle" in PARTS:
        w("")
        w("## Memory per idle HTTP/2 connection (%d connections, one request each)" % IDLE_CONNS)
        w("")
        w("| proxy | KiB / idle conn | RSS before -> after (KiB) | opened / alive | status |")
        w("|---|---:|---:|---:|---|")
        for p in PROXIES:
            r = R.get("idle", {}).get(p)
            if r is None:
                w("| %s | n/a | | | not run |" % p)
            elif "kib_per_conn" not in r:
                w("| %s | n/a | | | %s |" % (p, r["status"]))
            else:
                w("| %s | %.2f | %d -> %d | %d / %s | %s |" % (
                    p, r["kib_per_conn"], r["rss_before"], r["rss_after"], r["ok"],
                    r.get("alive"), r["status"]))
    w("")
    w("- CPU µs/req = (utime+stime) delta of the proxy's worker process(es) over the window / "
      "requests the upstream answered in it (stub_status); clock tick %d Hz. \"proxy busy\" = "
      "that CPU / wall time: below ~95%% the load core was the limit, compare µs rather than "
      "req/s." % CLK_TCK)
    w("- p50/p99 from h2load's per-request log (h2load itself reports only min/max/mean/sd), "
      "requests started after the warm-up; a request's time includes waiting for a stream slot "
      "on its connection (%d streams per connection)." % STREAMS)
    w("- upstream conns = established TCP connections to the upstream port at the end of the "
      "run (h2up: how many multiplexed connections the proxy used).")
    return "\n".join(out)


def versions():
    v = [first_line(["nghttpx", "--version"]),
         re.sub(r" - https.*", "", first_line(["haproxy", "-v"])),
         first_line(["nginx", "-v"]).replace("nginx version: ", ""),
         first_line(["h2load", "--version"])]
    if os.access(SLUICE_BIN, os.X_OK):
        real = os.path.realpath(SLUICE_BIN)
        v.append("sluice %s (%s)" % (real, time.strftime(
            "%Y-%m-%d %H:%M", time.localtime(os.stat(real).st_mtime))))
    return "; ".join(v)


def main():
    global WORK, CLK_TCK, NOFILE
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_idle(*sys.argv[3:]) if sys.argv[2] == "idle" else 2
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(sys.argv) > 1:
        sys.exit("h2_bench: unknown argument %r (see --help)" % sys.argv[1])
    load_knobs()
    need = ["h2load", "nginx", "taskset", "curl"] + [p for p in PROXIES if p != "sluice"]
    for tool in need:
        if shutil.which(tool) is None and not os.access("/usr/sbin/" + tool, os.X_OK):
            sys.exit("h2_bench: %s not installed (tools/setup.sh)" % tool)
    CLK_TCK = os.sysconf("SC_CLK_TCK")
    NOFILE = raise_nofile()
    if "idle" in PARTS and IDLE_CONNS + 200 > NOFILE:
        sys.exit("h2_bench: IDLE_CONNS=%d does not fit the fd limit (%d)" % (IDLE_CONNS, NOFILE))
    pin_self(LOAD_CPU, log)
    exit_on_signals(log)
    t_start = time.monotonic()
    WORK = tempfile.mkdtemp(prefix="sluice-h2-bench-")
    failed = False
    try:
        busy = ", ".join("core %s %.0f%%" % (c, v)
                         for c, v in core_busy([PROXY_CPU, LOAD_CPU], 1.0).items())
        log("cores busy before start: %s" % busy)
        start_upstream()
        log("upstream nginx: HTTP/1.1 :%d, h2c :%d, stub_status :%d (core %s)"
            % (UP_H1, UP_H2, UP_STATUS, LOAD_CPU))
        run = list(PROXIES)
        if "sluice" in run and not os.access(SLUICE_BIN, os.X_OK):
            log("[sluice] %s not found: n/a" % SLUICE_BIN)
        R, orders = {}, []
        for r in range(1, ROUNDS + 1):
            parts = [x for x in ("h1up", "h2up") if x in PARTS]
            if not parts:
                break
            order = [run[(r - 1 + i) % len(run)] for i in range(len(run))]
            orders.append(order)
            log("=== round %d/%d: %s" % (r, ROUNDS, " ".join(order)))
            for p in order:
                for part in parts:
                    d = os.path.join(WORK, p, "%s-round%d" % (part, r))
                    try:
                        if p == "sluice" and not os.access(SLUICE_BIN, os.X_OK):
                            raise RuntimeError("not built")
                        px = launch(p, d, part == "h2up")
                    except (RuntimeError, OSError) as e:
                        log("[%s] %s: %s" % (p, part, e))
                        R.setdefault(part, {}).setdefault(p, {})[r] = {
                            "status": str(e).splitlines()[0][:120]}
                        failed = failed or p != "nginx" or part != "h2up"
                        continue
                    try:
                        res = run_h2load(px, d, part)
                    finally:
                        stop(px.proc)
                    R.setdefault(part, {}).setdefault(p, {})[r] = res
                    if res["status"] == "ok":
                        log("[%s] %s round %d: %.0f req/s, %.2f us/req, p99 %s ms, proxy %.0f%% "
                            "busy, %d upstream conns" % (p, part, r, res["rps"], res["cpu_us"],
                                                         res["p99_ms"], res["util_pct"],
                                                         res["up_conns"]))
                    else:
                        log("[%s] %s round %d: %s" % (p, part, r, res["status"]))
                        failed = True
                    time.sleep(0.3)
        if "idle" in PARTS:
            log("=== idle memory: %s" % " ".join(run))
            for p in run:
                d = os.path.join(WORK, p, "idle")
                try:
                    if p == "sluice" and not os.access(SLUICE_BIN, os.X_OK):
                        raise RuntimeError("not built")
                    px = launch(p, d, False)
                except (RuntimeError, OSError) as e:
                    R.setdefault("idle", {})[p] = {"status": str(e).splitlines()[0][:120]}
                    failed = True
                    continue
                try:
                    res = measure_idle(px, d)
                finally:
                    stop(px.proc)
                R.setdefault("idle", {})[p] = res
                log("[%s] idle: %s KiB/conn (%s -> %s KiB, %s ok, %s alive): %s" % (
                    p, "%.2f" % res["kib_per_conn"] if "kib_per_conn" in res else "n/a",
                    res.get("rss_before"), res.get("rss_after"), res.get("ok"),
                    res.get("alive"), res["status"]))
        meta = run_meta(t_start, versions(), orders, cmdline(KNOBS, "h2_bench.py"))
        meta["busy"] = busy
        write_report(render(R, meta) + "\n", OUT_DIR, "h2", log)
        return 0
    except BaseException as e:
        failed = True
        if isinstance(e, SystemExit):
            raise
        log_fatal(e, log)
        return 1
    finally:
        cleanup(log, WORK, failed or KEEP_WORKDIR, "configs, logs")


if __name__ == "__main__":
    sys.exit(main())
