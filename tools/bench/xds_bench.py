#!/usr/bin/env python3
"""Dynamic-configuration benchmark: sluice-cp -> data planes over ADS.

  /usr/bin/python3 tools/bench/xds_bench.py [--quick] [--routes 10,1000,10000] [--repeats 5]
                                            [--streams 200] [--swap-duration 10] [...]

Three parts (select with --parts apply,swap,cp; default all):

1. Apply -> live. One sluice-cp, two data planes (--concurrency 1 each, unpinned) in one group.
   For each route count N: apply a base config with N prefix routes (/r<i> -> a cluster) plus
   an exact route /probe answering `direct_response {status: 200, body: "v<k>"}`; then
   --repeats times: write the same config with /probe answering "v<k+1>", start the clock, run
   `sluicectl apply`, and poll /probe on both data planes from two threads (tight loop, one fresh
   keep-alive connection each) until both answer the new body. The time includes sluicectl's
   process start, the CP's validation + encode + push and the data planes' decode + validate +
   compile + publish. Reports median / max per N, the config file size, and the target
   "10,000 routes live on both data planes within 500 ms" (met when the max is within it).
   Then --repeats more changes applied through ControlService.Apply from this process (request
   built before the clock starts): the CP + data-plane share, without sluicectl.

2. p99 during swaps vs steady. An nginx upstream (`return 200 "hello\\n"`, 1 worker, on the
   load core), one data plane (--concurrency 1, pinned to the proxy core), wrk -t1 -cCONNS
   --latency (on the load core) on a route of a --swap-routes route table. A warm-up, one steady
   run, then one run during which a loop applies a change every --swap-interval (alternating
   two versions: one route added/removed and the upstream endpoint's weight 1 <-> 2; through
   ControlService.Apply from this process, or `sluicectl apply` with --swap-client sluicectl),
   then a control run with the same loop applying to another group (the harness's own CPU
   cost, no data-plane work). sluice-cp runs on the load core. Reports p50/p99/max, req/s,
   the p99 ratio against the target "p99 during swaps at most 1.5x steady", data-plane CPU per
   request, and wrk socket errors and non-2xx responses (must be 0).

3. Control plane at --streams data-plane streams. A Python grpcio (asyncio) client opens that
   many SotW ADS streams (one channel = one TCP connection each, node ids bench-<i>, group
   bench), sends one wildcard DiscoveryRequest per type (the first carries the node) and ACKs
   every response. Measures sluice-cp VmRSS idle, with every stream connected and synced, and the
   peak during a push (VmHWM reset through /proc/PID/clear_refs, plus 2 ms sampling); per push
   (--repeats pushes of a --push-routes route table): time from `sluicectl apply` until the
   median and the last stream has the new RouteTable response, until `sluicectl status -o json`
   shows every node in_sync, and the CP's CPU time (utime+stime) over the push.

Every process started here (sluice-cp, data planes, nginx, wrk, sluicectl) is stopped on exit,
also on failure or Ctrl-C. Ports are picked free. Output: Markdown on stdout and in
OUT_DIR/xds-<date>.md (default <repo>/bench-results); progress on stderr.

Binaries: SLUICE_BIN, SLUICE_CP_BIN, SLUICECTL_BIN (default: <repo>/bazel-bin/...); build them
with `bazel build //source/exe:sluice //source/control_plane:sluice-cp //source/cli:sluicectl`.
"""

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "test", "integration"))

import cp_harness  # noqa: E402
import harness  # noqa: E402

TYPE_PREFIX = "type.googleapis.com/sluice.config.v1."
TYPES = ("Cluster", "ClusterEndpoints", "AuthPolicy", "RateLimitPolicy", "RouteTable", "Listener")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write("[xds-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything started is stopped by Cleanup.run() (finally / atexit / signal)
# ---------------------------------------------------------------------------------------------

class Cleanup:
    def __init__(self):
        self.actions = []
        self.lock = threading.Lock()

    def add(self, fn, what):
        with self.lock:
            self.actions.append((fn, what))

    def run(self):
        while True:
            with self.lock:
                if not self.actions:
                    return
                fn, what = self.actions.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                log("cleanup of %s failed: %r" % (what, e))


CLEANUP = Cleanup()


def stop_popen(proc, sig=signal.SIGTERM, grace=5.0):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def popen(cmd, **kw):
    """Popen whose child dies with this process (PR_SET_PDEATHSIG; call from the main thread
    for long-lived children: the signal fires when the forking thread exits)."""
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=harness._pdeathsig, **kw)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def proc_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def descendants(pid):
    """Pids of every live descendant of pid."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


class CpuAccount:
    """Machine CPU over a window, split into this benchmark's processes (itself, its reaped
    children, its live descendants) and everything else (other users of the machine).
    Softirq/irq time is left out of both (loopback networking is accounted there)."""

    def __init__(self):
        self.t0, self.busy0, self.own0, self.desc0 = self._snap()

    @staticmethod
    def _snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = v[0] + v[1] + v[2] + (v[7] if len(v) > 7 else 0)  # user nice system steal
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        desc = {}
        for p in descendants(os.getpid()):
            try:
                desc[p] = proc_cpu_ticks(p)
            except OSError:
                pass
        return time.monotonic(), busy, own, desc

    def result(self):
        """{"wall", "busy", "ours", "others"}, CPU in cores (1.0 = one core busy)."""
        t1, busy1, own1, desc1 = self._snap()
        wall = max(1e-6, t1 - self.t0)
        desc = sum(v - self.desc0.get(p, 0) for p, v in desc1.items()) / CLK_TCK
        busy = (busy1 - self.busy0) / CLK_TCK / wall
        ours = (own1 - self.own0 + desc) / wall
        return {"wall": wall, "busy": busy, "ours": ours, "others": max(0.0, busy - ours)}


def fmt_cpu(acc):
    return "%.2f of %d cores busy, %.2f of them outside this benchmark" % (
        acc["busy"], os.cpu_count() or 1, acc["others"])


def reset_hwm(pid):
    """Resets VmHWM (peak RSS) to the current RSS; False if the kernel refused."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def pin(pid, cpu):
    """Pins every thread of pid (threads created later inherit the mask from their creator)."""
    if cpu is None:
        return
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def pin_prefix(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def ms(seconds):
    return seconds * 1e3


def fmt_ms(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def fmt_int(v):
    return "-" if v is None else "{:,}".format(int(round(v)))


def fmt_mib(kb):
    return "-" if kb is None else "%.1f" % (kb / 1024.0)


def median(xs):
    return statistics.median(xs) if xs else None


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    return os.path.getsize(path)


def git_describe():
    try:
        rev = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True).stdout
        return rev + (" (+ uncommitted changes in the tree)" if dirty.strip() else "")
    except OSError:
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------
# sluice-cp, sluicectl and data planes
# ---------------------------------------------------------------------------------------------

def start_cp():
    cp = cp_harness.ControlPlane()
    CLEANUP.add(cp.cleanup, "sluice-cp")
    return cp


def ctl_cmd(cp, *args, cpu=None):
    return pin_prefix(cpu) + [cp_harness.ctl_binary(), "--server", cp.address] \
        + [str(a) for a in args]


APPLIED_RE = re.compile(r'applied group "([^"]*)": version (\S+)')


def apply_file(cp, path, group, cpu=None, timeout=60):
    """Runs sluicectl apply; returns (seconds, version or None when unchanged)."""
    t0 = time.monotonic()
    r = subprocess.run(ctl_cmd(cp, "apply", "-f", path, "--group", group, cpu=cpu),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise BenchError("sluicectl apply -f %s --group %s -> exit %d\n%s%s"
                         % (path, group, r.returncode, r.stdout, r.stderr))
    m = APPLIED_RE.search(r.stdout)
    return dt, (m.group(2) if m else None)


def ctl_status(cp, timeout=30):
    r = subprocess.run(ctl_cmd(cp, "status", "-o", "json"), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError("sluicectl status -> exit %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


def start_dp(cp, node_id, group, cpu=None):
    dp = harness.Sluice(cp_harness.dp_bootstrap(cp, node_id, group=group), concurrency=1,
                        ready_timeout=60)
    CLEANUP.add(dp.stop, "data plane " + node_id)
    pin(dp.pid, cpu)
    return dp


def cluster(name, port, weight=None):
    ep = {"address": "127.0.0.1", "port": port}
    if weight is not None:
        ep["weight"] = weight
    return {"name": name, "connect_timeout": "1s", "endpoints": [ep]}


def route_config(n_routes, cluster_name, tail_routes, clusters, head_routes=()):
    """A declared config: listener `public` (port 0) -> route table `main` -> vhost `*` with
    head_routes, N prefix routes /r<i> -> cluster_name, then tail_routes."""
    routes = list(head_routes)
    routes += [{"name": "r%d" % i, "match": {"prefix": "/r%d" % i},
                "route": {"cluster": cluster_name}} for i in range(n_routes)]
    routes += list(tail_routes)
    return {
        "listeners": [{"name": "public", "address": {"host": "127.0.0.1", "port": 0},
                       "route_table": "main"}],
        "route_tables": [{"name": "main", "virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": routes}]}],
        "clusters": list(clusters),
    }


# ---------------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client for tight polling (raw socket: little Python per request)
# ---------------------------------------------------------------------------------------------

class ProbeConn:
    def __init__(self, port, path="/probe"):
        self.port = port
        self.req = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode()
        self.sock = None
        self.requests = 0
        self.connect()

    def connect(self):
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self):
        """(status, body); reconnects when the server closed the connection."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(self.req)
        buf = b""
        while True:
            i = buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                self.close()
                raise ConnectionError("connection closed by the data plane")
            buf += chunk
        head, rest = buf[:i].decode("latin-1"), buf[i + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and "close" in v.lower():
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.close()
                raise ConnectionError("connection closed inside a body")
            rest += chunk
        self.requests += 1
        if close:
            self.close()
        return status, rest[:length]


# ---------------------------------------------------------------------------------------------
# Part 1: apply -> live on two data planes
# ---------------------------------------------------------------------------------------------

def part_apply(args, work):
    sizes = args.routes
    log("part 1: apply -> live, route counts %s, %d repeats, 2 data planes"
        % (",".join(map(str, sizes)), args.repeats))
    cp = start_cp()
    group = "apply-bench"
    dead_port = cp_harness.free_port()  # the /r<i> routes are never requested
    clusters = [cluster("backend", dead_port)]
    counter = [0]

    def config(n, as_proto=False):
        counter[0] += 1
        body = "v%d" % counter[0]
        probe = {"name": "probe", "match": {"path": "/probe"},
                 "direct_response": {"status": 200, "body": body}}
        cfg = route_config(n, "backend", [probe], clusters)
        if as_proto:
            return applier.prepare(cfg), body.encode()
        path = os.path.join(work, "apply-%d-%d.json" % (n, counter[0]))
        size = write_json(path, cfg)
        return path, body.encode(), size

    applier = None
    if not args.no_grpc_breakdown:
        try:
            applier = GrpcApplier(cp)
        except Exception as e:  # noqa: BLE001 - the breakdown is optional
            log("  no gRPC breakdown: %s" % e)

    dps = []
    ports = []
    results = []
    floor = []  # a sluicectl call that does nothing: process start + connect + one RPC
    for _ in range(5):
        t0 = time.monotonic()
        ctl_status(cp)
        floor.append(time.monotonic() - t0)
    acct = CpuAccount()
    for n in sizes:
        path, body, size = config(n)
        t0 = time.monotonic()
        base_apply, _ = apply_file(cp, path, group)
        if not dps:
            for i in range(2):
                dps.append(start_dp(cp, "apply-%d" % i, group))
            ports = [dp.listener_port("public") for dp in dps]
        for port in ports:
            harness.wait_until(lambda: ProbeConn(port).get() == (200, body), timeout=120,
                               interval=0.01, message="base config with %d routes live" % n)
        base_live = time.monotonic() - t0
        os.unlink(path)
        times, ctl_times, first_dp, failures = [], [], [], []
        for rep in range(args.repeats):
            path, body, _ = config(n)
            t, t_ctl, t_first, err = measure_apply_live(sluicectl_apply(cp, path, group),
                                                        ports, body, args)
            os.unlink(path)
            if err:
                failures.append(err)
                log("  N=%d repeat %d: %s" % (n, rep + 1, err))
                continue
            times.append(t)
            ctl_times.append(t_ctl)
            first_dp.append(t_first)
            log("  N=%d repeat %d: live on both in %.1f ms (sluicectl exited at %.1f ms, "
                "first data plane %.1f ms)" % (n, rep + 1, ms(t), ms(t_ctl), ms(t_first)))
        grpc_times, grpc_rpc = [], []
        for rep in range(args.repeats if applier else 0):
            resources, body = config(n, as_proto=True)
            t, t_rpc, _, err = measure_apply_live(grpc_apply(applier, resources, group), ports,
                                                  body, args)
            if err:
                failures.append("gRPC Apply: " + err)
                log("  N=%d gRPC repeat %d: %s" % (n, rep + 1, err))
                continue
            grpc_times.append(t)
            grpc_rpc.append(t_rpc)
            log("  N=%d gRPC repeat %d: live on both in %.1f ms (Apply returned at %.1f ms)"
                % (n, rep + 1, ms(t), ms(t_rpc)))
        rss = [dp.rss_kb() for dp in dps]
        results.append({"n": n, "size": size, "times": times, "ctl": ctl_times,
                        "first": first_dp, "failures": failures, "base_apply": base_apply,
                        "base_live": base_live, "dp_rss_kb": rss, "grpc_times": grpc_times,
                        "grpc_rpc": grpc_rpc})
    accepted = [dp.stat("control_plane.RouteTable.update_accepted") for dp in dps]
    rejected = [sum(dp.stat("control_plane.%s.update_rejected" % t) for t in TYPES)
                for dp in dps]
    return {"results": results, "accepted": accepted, "rejected": rejected,
            "ctl_floor": median(floor), "cpu": acct.result()}


def sluicectl_apply(cp, path, group):
    """An apply function for measure_apply_live: runs `sluicectl apply`; error text or None."""
    def run():
        r = subprocess.run(ctl_cmd(cp, "apply", "-f", path, "--group", group),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return "sluicectl apply exit %d: %s" % (r.returncode, r.stderr.strip())
        if not APPLIED_RE.search(r.stdout):
            return "sluicectl apply did not apply: %r" % r.stdout
        return None
    return run


def grpc_apply(applier, resources, group):
    """An apply function for measure_apply_live: ControlService.Apply of pre-built resources."""
    def run():
        try:
            _, version = applier.apply_resources(resources, group)
        except Exception as e:  # noqa: BLE001
            return "Apply failed: %s" % e
        return None if version else "Apply changed nothing"
    return run


def measure_apply_live(apply_fn, ports, want, args):
    """One measurement: (seconds until both data planes answer `want`, seconds until
    apply_fn returned, seconds until the first data plane answered it, error or None)."""
    conns = [ProbeConn(p) for p in ports]
    try:
        for c in conns:  # the connections are open and warm before the clock starts
            c.get()
        go = threading.Event()
        done = [None] * len(conns)
        errors = []
        deadline_s = args.live_timeout

        def poll(i):
            go.wait()
            c = conns[i]
            end = time.monotonic() + deadline_s
            try:
                while time.monotonic() < end:
                    status, body = c.get()
                    if status == 200 and body == want:
                        done[i] = time.monotonic()
                        return
                    if args.poll_sleep:
                        time.sleep(args.poll_sleep)
                errors.append("data plane %d: still not live after %.0fs" % (i, deadline_s))
            except Exception as e:  # noqa: BLE001
                errors.append("data plane %d: %r" % (i, e))

        threads = [threading.Thread(target=poll, args=(i,), daemon=True)
                   for i in range(len(conns))]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        go.set()
        apply_error = apply_fn()
        t_ctl = time.monotonic() - t0
        for t in threads:
            t.join(deadline_s + 10)
        if apply_error:
            return None, None, None, apply_error
        if errors or None in done:
            return None, None, None, "; ".join(errors) or "not live"
        return max(done) - t0, t_ctl, min(done) - t0, None
    finally:
        for c in conns:
            c.close()


# ---------------------------------------------------------------------------------------------
# Part 2: proxied latency while configs are swapped
# ---------------------------------------------------------------------------------------------

NGINX_CONF = """worker_processes 1;
daemon off;
master_process on;
%(user)s
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(dir)s/tmp/body; proxy_temp_path %(dir)s/tmp/proxy;
  fastcgi_temp_path %(dir)s/tmp/fastcgi; uwsgi_temp_path %(dir)s/tmp/uwsgi;
  scgi_temp_path %(dir)s/tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server {
    listen 127.0.0.1:%(port)d backlog=4096;
    location / { return 200 "hello\\n"; }
  }
}
"""


def start_nginx(work, cpu):
    d = os.path.join(work, "nginx")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    port = cp_harness.free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % {"dir": d, "port": port,
                              "user": "user root;" if os.geteuid() == 0 else ""})
    out = open(os.path.join(d, "stdout.log"), "wb")
    proc = popen(pin_prefix(cpu) + ["nginx", "-e", os.path.join(d, "error.log"), "-p", d,
                                    "-c", os.path.join(d, "nginx.conf")],
                 stdout=out, stderr=out)
    # SIGQUIT = graceful stop of master and worker; stop_popen falls back to SIGKILL.
    CLEANUP.add(lambda: (stop_popen(proc, signal.SIGQUIT), out.close()), "nginx")

    def answers():
        if proc.poll() is not None:
            raise BenchError("nginx exited: %s" % open(os.path.join(d, "error.log")).read())
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            c.request("GET", "/")
            return c.getresponse().read() == b"hello\n"
        finally:
            c.close()
    harness.wait_until(answers, timeout=10, message="nginx upstream on port %d" % port)
    return proc, port


WRK_LAT_RE = re.compile(r"^\s*(50|75|90|99)%\s+(\S+)\s*$")


def _to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def parse_wrk(text):
    out = {"non2xx": 0, "sockerr": 0, "sockerr_detail": "none"}
    for line in text.splitlines():
        m = WRK_LAT_RE.match(line)
        if m:
            out["p" + m.group(1)] = _to_ms(m.group(2))
            continue
        s = line.split()
        if len(s) >= 4 and s[0] == "Latency" and "avg" not in s:
            out["avg"], out["max"] = _to_ms(s[1]), _to_ms(s[3])
        m = re.match(r"\s*(\d+) requests in ([\d.]+\w+)", line)
        if m:
            out["requests"] = int(m.group(1))
            out["secs"] = _to_ms(m.group(2)) / 1e3
        m = re.match(r"\s*Requests/sec:\s+([\d.]+)", line)
        if m:
            out["rps"] = float(m.group(1))
        m = re.match(r"\s*Non-2xx or 3xx responses:\s+(\d+)", line)
        if m:
            out["non2xx"] = int(m.group(1))
        m = re.match(r"\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     line)
        if m:
            out["sockerr"] = sum(int(x) for x in m.groups())
            out["sockerr_detail"] = "connect %s, read %s, write %s, timeout %s" % m.groups()
    return out


def run_wrk(args, port, secs, latency=True):
    cmd = pin_prefix(args.load_cpu) + ["wrk", "-t1", "-c%d" % args.conns, "-d%ds" % secs]
    if latency:
        cmd.append("--latency")
    cmd.append("http://127.0.0.1:%d/" % port)
    proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    CLEANUP.add(lambda: stop_popen(proc, signal.SIGKILL, 1), "wrk")
    out, _ = proc.communicate(timeout=secs + 60)
    if proc.returncode != 0 or "requests in" not in out:
        raise BenchError("wrk failed (exit %s):\n%s" % (proc.returncode, out))
    return parse_wrk(out), " ".join(cmd[:-1] + ["http://127.0.0.1:<port>/"])


class GrpcApplier:
    """Applies declared configs through ControlService.Apply from this process (no sluicectl
    process per change: less harness CPU on the load core). Requests are built once."""

    def __init__(self, cp, configs=(), source="xds_bench"):
        import grpc
        self.stubs = load_stubs()
        self.channel = grpc.insecure_channel(
            cp.address, options=[("grpc.max_send_message_length", 256 * 1024 * 1024),
                                 ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        CLEANUP.add(self.channel.close, "gRPC channel to sluice-cp")
        self.stub = self.stubs.control_pb2_grpc.ControlServiceStub(self.channel)
        self.resources = [self.prepare(cfg) for cfg in configs]
        self.source = source

    def prepare(self, cfg):
        from google.protobuf import json_format
        r = self.stubs.bootstrap_pb2.StaticResources()
        json_format.Parse(json.dumps(cfg), r)
        return r

    def apply(self, index, group):
        """(seconds, version or None when unchanged)."""
        return self.apply_resources(self.resources[index], group)

    def apply_resources(self, resources, group):
        req = self.stubs.control_pb2.ApplyRequest(group=group, resources=resources,
                                                  source=self.source)
        t0 = time.monotonic()
        resp = self.stub.Apply(req, timeout=60)
        dt = time.monotonic() - t0
        if not resp.accepted:
            raise BenchError("Apply to %s refused: %s" % (group, list(resp.errors)[:3]))
        return dt, (resp.version if resp.changed else None)


class ApplyLoop:
    """Applies version 0, 1, 0, ... to `group` every `interval` seconds (the next starts right
    away when an apply took longer) until stopped; through `sluicectl apply -f files[i]` (pinned
    to `cpu`) or, with `grpc_applier`, through ControlService.Apply from this process."""

    def __init__(self, cp, files, group, interval, cpu, grpc_applier=None):
        self.cp, self.files, self.group, self.interval, self.cpu = \
            cp, files, group, interval, cpu
        self.grpc_applier = grpc_applier
        self.stop_flag = threading.Event()
        self.durations = []
        self.applied = 0
        self.unchanged = 0
        self.errors = []
        self.i = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(120)

    def _run(self):
        nxt = time.monotonic()
        while not self.stop_flag.is_set():
            index = self.i % 2
            self.i += 1
            try:
                if self.grpc_applier:
                    dt, version = self.grpc_applier.apply(index, self.group)
                else:
                    dt, version = apply_file(self.cp, self.files[index], self.group,
                                             cpu=self.cpu)
                self.durations.append(dt)
                if version:
                    self.applied += 1
                else:
                    self.unchanged += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
            nxt += self.interval
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop_flag.wait(delay)
            else:
                nxt = time.monotonic()


def part_swap(args, work):
    log("part 2: p99 during swaps: %d routes, wrk -c%d %ds runs, a change every %.0f ms"
        % (args.swap_routes, args.conns, args.swap_duration, ms(args.swap_interval)))
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        raise BenchError("part 2 needs wrk and nginx (tools/setup.sh installs them)")
    _, up_port = start_nginx(work, args.load_cpu)
    cp = start_cp()
    pin(cp.proc.pid, args.cp_cpu)
    group, other_group = "swap-bench", "swap-other"
    n = args.swap_routes - 1  # plus the catch-all "/" route = swap_routes routes

    def version(v):
        extra = [{"name": "extra", "match": {"prefix": "/extra"},
                  "route": {"cluster": "up"}}] if v == 1 else []
        catch_all = {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": "up"}}
        return route_config(n, "up", [catch_all], [cluster("up", up_port, weight=1 + v)],
                            head_routes=extra)

    files = [os.path.join(work, "swap-%d.json" % v) for v in (0, 1)]
    sizes = [write_json(f, version(v)) for v, f in enumerate(files)]
    applier = GrpcApplier(cp, [version(0), version(1)]) if args.swap_client == "grpc" else None
    apply_file(cp, files[0], group)
    apply_file(cp, files[0], other_group)
    dp = start_dp(cp, "swap-0", group, cpu=args.proxy_cpu)
    port = dp.listener_port("public")
    c = ProbeConn(port, "/")
    st, body = c.get()
    c.close()
    if (st, body) != (200, b"hello\n"):
        raise BenchError("proxied route answers %d %r, not 200 hello" % (st, body))

    log("  warm-up %ds" % args.warmup)
    run_wrk(args, port, args.warmup, latency=False)
    runs = []
    for name, loop_group in (("steady", None), ("during swaps", group),
                             ("control: swaps to another group", other_group)):
        if loop_group == other_group and args.no_control_run:
            continue
        accepted0 = {t: dp.stat("control_plane.%s.update_accepted" % t) for t in TYPES}
        rejected0 = sum(dp.stat("control_plane.%s.update_rejected" % t) for t in TYPES)
        cpu0 = proc_cpu_ticks(dp.pid)
        acct = CpuAccount()
        loop = None
        if loop_group:
            loop = ApplyLoop(cp, files, loop_group, args.swap_interval, args.cp_cpu, applier)
            loop.i = 1  # the group is at version 0: start with the other one
            loop.start()
        try:
            w, wrk_cmd = run_wrk(args, port, args.swap_duration)
        finally:
            if loop:
                loop.stop()
        cpu1 = proc_cpu_ticks(dp.pid)
        machine = acct.result()
        accepted = {t: dp.stat("control_plane.%s.update_accepted" % t) - accepted0[t]
                    for t in TYPES}
        rejected = sum(dp.stat("control_plane.%s.update_rejected" % t) for t in TYPES) - rejected0
        run = {"name": name, "wrk": w, "wrk_cmd": wrk_cmd,
               "dp_cpu_us_per_req": (cpu1 - cpu0) * 1e6 / CLK_TCK / max(1, w["requests"]),
               "dp_cpu_pct": (cpu1 - cpu0) * 100.0 / CLK_TCK / w["secs"],
               "accepted": accepted, "rejected": rejected, "machine": machine}
        if loop:
            run.update(applies=loop.applied, unchanged=loop.unchanged, apply_errors=loop.errors,
                       apply_median=median(loop.durations),
                       apply_max=max(loop.durations) if loop.durations else None)
            if loop.errors:
                log("  apply errors: %s" % loop.errors[:3])
        log("  %s: %.0f req/s, p50 %s ms, p99 %s ms, max %s ms, socket errors %d, non-2xx %d%s"
            % (name, w.get("rps", 0), fmt_ms(w.get("p50"), 2), fmt_ms(w.get("p99"), 2),
               fmt_ms(w.get("max"), 2), w["sockerr"], w["non2xx"],
               ", %d applies" % loop.applied if loop else ""))
        runs.append(run)
    return {"runs": runs, "sizes": sizes, "routes": args.swap_routes}


# ---------------------------------------------------------------------------------------------
# Part 3: sluice-cp with many ADS streams
# ---------------------------------------------------------------------------------------------

class AdsLoad:
    """`count` SotW ADS streams on one asyncio loop (own thread), one channel each."""

    def __init__(self, stubs, address, count, group):
        import grpc  # noqa: F401 - fail early with a clear error if missing
        self.stubs = stubs
        self.address = address
        self.count = count
        self.group = group
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._thread, daemon=True)
        self.channels = []
        self.tasks = []
        # Per stream: type -> number of responses, and time of the last RouteTable response.
        self.responses = [dict() for _ in range(count)]
        self.errors = []
        self.synced = 0
        self.synced_event = threading.Event()
        # Push tracking (set from the main thread before an apply).
        self.watch_after = None
        self.watch_times = [None] * count
        self.watch_count = 0
        self.watch_event = threading.Event()
        self.acks = 0

    def _thread(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._open_all(), self.loop)
        fut.result(120)

    async def _open_all(self):
        for i in range(self.count):
            self.tasks.append(self.loop.create_task(self._stream(i)))

    def watch(self, t0):
        """Starts tracking the next RouteTable response of every stream (after t0)."""
        def arm():
            self.watch_times = [None] * self.count
            self.watch_count = 0
            self.watch_event.clear()
            self.watch_after = t0
        self.loop.call_soon_threadsafe(arm)
        # Make sure the loop has armed it before the caller applies.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(10)

    async def _stream(self, i):
        import grpc
        pb = self.stubs.ads_pb2
        options = [("grpc.use_local_subchannel_pool", 1),  # one TCP connection per stream
                   ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                   ("xds_bench.stream", i)]
        ch = grpc.aio.insecure_channel(self.address, options=options)
        self.channels.append(ch)
        stub = self.stubs.ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch)
        call = stub.StreamAggregatedResources()
        got = self.responses[i]
        try:
            for j, t in enumerate(TYPES):
                req = pb.DiscoveryRequest(type_url=TYPE_PREFIX + t)
                if j == 0:
                    req.node.id = "bench-%d" % i
                    req.node.cluster = self.group
                await call.write(req)
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    raise BenchError("stream %d: server ended the stream" % i)
                now = time.monotonic()
                t = resp.type_url[len(TYPE_PREFIX):]
                got[t] = got.get(t, 0) + 1
                if (t == "RouteTable" and self.watch_after is not None
                        and now >= self.watch_after and self.watch_times[i] is None):
                    self.watch_times[i] = now
                    self.watch_count += 1
                    if self.watch_count == self.count:
                        self.watch_event.set()
                await call.write(pb.DiscoveryRequest(type_url=resp.type_url,
                                                     version_info=resp.version_info,
                                                     response_nonce=resp.nonce))
                self.acks += 1
                if len(got) == len(TYPES) and not got.get("_synced"):
                    got["_synced"] = 1
                    self.synced += 1
                    if self.synced == self.count:
                        self.synced_event.set()
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as e:  # noqa: BLE001
            self.errors.append("stream %d: %r" % (i, e))

    def close(self):
        async def shutdown():
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await asyncio.gather(*(ch.close() for ch in self.channels),
                                 return_exceptions=True)
        if self.thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)


def load_stubs():
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise BenchError("part 3 needs grpcio: run with /usr/bin/python3 (python3-grpcio)")
    import grpc_stubs
    return grpc_stubs.load()


def nodes_in_sync(status, group, version):
    g = [x for x in status.get("groups", []) if x.get("name") == group]
    if not g or g[0].get("version") != version:
        return 0
    return sum(1 for n in status.get("nodes", [])
               if n.get("group") == group and n.get("connected") and n.get("in_sync"))


class RssSampler:
    def __init__(self, pid, interval=0.002):
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, proc_status_kb(self.pid, "VmRSS") or 0)
            except OSError:
                return
            self.stop_flag.wait(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(5)
        return self.peak


def part_cp(args, work):
    log("part 3: sluice-cp with %d ADS streams, pushes of %d routes"
        % (args.streams, args.push_routes))
    stubs = load_stubs()
    cp = start_cp()
    pid = cp.proc.pid
    group = "bench"
    time.sleep(0.5)
    rss_start = proc_status_kb(pid, "VmRSS")
    dead_port = cp_harness.free_port()
    counter = [0]

    def config():
        counter[0] += 1
        probe = {"name": "probe", "match": {"path": "/probe"},
                 "direct_response": {"status": 200, "body": "v%d" % counter[0]}}
        path = os.path.join(work, "cp-%d.json" % counter[0])
        size = write_json(path, route_config(args.push_routes - 1, "backend", [probe],
                                             [cluster("backend", dead_port)]))
        return path, size

    path, size = config()
    _, version = apply_file(cp, path, group)
    time.sleep(1.0)
    rss_idle = proc_status_kb(pid, "VmRSS")
    threads_idle = proc_status_kb(pid, "Threads")

    load = AdsLoad(stubs, cp.address, args.streams, group)
    CLEANUP.add(load.close, "ADS load client")
    t0 = time.monotonic()
    cpu0 = proc_cpu_ticks(pid)
    load.start()
    if not load.synced_event.wait(args.live_timeout * 4):
        raise BenchError("only %d of %d streams got every type; errors: %s"
                         % (load.synced, args.streams, load.errors[:5]))
    t_sync_streams = time.monotonic() - t0
    harness.wait_until(lambda: nodes_in_sync(ctl_status(cp), group, version) == args.streams,
                       timeout=args.live_timeout * 4, interval=0.05,
                       message="%d nodes in sync" % args.streams)
    t_sync_status = time.monotonic() - t0
    cpu_connect = (proc_cpu_ticks(pid) - cpu0) * 1e3 / CLK_TCK
    log("  %d streams synced in %.2f s (status: all in sync at %.2f s)"
        % (args.streams, t_sync_streams, t_sync_status))
    time.sleep(1.0)
    rss_streams = proc_status_kb(pid, "VmRSS")
    threads_streams = proc_status_kb(pid, "Threads")

    # CPU of one `sluicectl status -o json` with every node listed (for the in-sync polls).
    c0 = proc_cpu_ticks(pid)
    s0 = time.monotonic()
    for _ in range(10):
        ctl_status(cp)
    status_call_ms = (time.monotonic() - s0) * 100.0
    status_cpu_ms = (proc_cpu_ticks(pid) - c0) * 1e3 / CLK_TCK / 10

    pushes = []
    hwm_ok = True
    acct = CpuAccount()
    for rep in range(args.repeats):
        path, _ = config()
        time.sleep(0.5)
        hwm_ok = reset_hwm(pid) and hwm_ok
        sampler = RssSampler(pid)
        rss_before = proc_status_kb(pid, "VmRSS")
        cpu0 = proc_cpu_ticks(pid)
        t0 = time.monotonic()
        load.watch(t0)
        t0 = time.monotonic()
        _, new_version = apply_file(cp, path, group)
        t_ctl = time.monotonic() - t0
        if not new_version:
            raise BenchError("push %d: apply changed nothing" % rep)
        if not load.watch_event.wait(args.live_timeout * 4):
            raise BenchError("push %d: only %d of %d streams got the new RouteTable; errors: %s"
                             % (rep, load.watch_count, args.streams, load.errors[:5]))
        cpu_recv = proc_cpu_ticks(pid)
        times = sorted(t - t0 for t in load.watch_times)
        polls = 0
        while True:
            polls += 1
            if nodes_in_sync(ctl_status(cp), group, new_version) == args.streams:
                break
            if time.monotonic() - t0 > args.live_timeout * 4:
                raise BenchError("push %d: nodes not in sync" % rep)
        t_sync = time.monotonic() - t0
        cpu_sync = proc_cpu_ticks(pid)
        peak_sampled = sampler.stop()
        hwm = proc_status_kb(pid, "VmHWM") if hwm_ok else None
        push = {"ctl": t_ctl, "median": median(times), "last": times[-1], "first": times[0],
                "sync": t_sync, "polls": polls,
                "cpu_recv_ms": (cpu_recv - cpu0) * 1e3 / CLK_TCK,
                "cpu_sync_ms": (cpu_sync - cpu0) * 1e3 / CLK_TCK,
                "rss_before": rss_before, "peak": max(peak_sampled, hwm or 0)}
        log("  push %d: sluicectl %.0f ms, streams median %.0f ms / last %.0f ms, all in sync "
            "%.0f ms (%d status calls); CP CPU %.0f ms; peak RSS %s MiB"
            % (rep + 1, ms(t_ctl), ms(push["median"]), ms(push["last"]), ms(t_sync), polls,
               push["cpu_sync_ms"], fmt_mib(push["peak"])))
        pushes.append(push)
    machine = acct.result()
    rss_after = proc_status_kb(pid, "VmRSS")
    load_errors = list(load.errors)
    load.close()
    return {"streams": args.streams, "routes": args.push_routes, "size": size,
            "rss_start": rss_start, "rss_idle": rss_idle, "rss_streams": rss_streams,
            "rss_after": rss_after, "threads_idle": threads_idle,
            "threads_streams": threads_streams, "t_sync_streams": t_sync_streams,
            "t_sync_status": t_sync_status, "cpu_connect_ms": cpu_connect,
            "status_call_ms": status_call_ms, "status_cpu_ms": status_cpu_ms,
            "pushes": pushes, "hwm_ok": hwm_ok, "errors": load_errors, "cpu": machine}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def report(args, meta, p1, p2, p3, failures):
    out = []
    w = out.append
    w("# Sluice dynamic configuration (xDS) benchmark")
    w("")
    w("- Date: %s; commit %s" % (meta["date"], meta["commit"]))
    w("- Machine: %s, %d CPU(s), kernel %s; load average at start %s"
      % (meta["cpu"], meta["ncpu"], meta["kernel"], meta["loadavg"]))
    w("- Command: `%s`" % meta["cmdline"])
    w("- Elapsed: %.0f s. Numbers on a shared 2-core machine are noisy: compare within a run."
      % meta["elapsed"])
    w("")
    if p1:
        target = 500.0
        w("## 1. Apply -> live on two data planes")
        w("")
        w("One sluice-cp, two data planes (`--concurrency 1`, unpinned) in one group. Time from "
          "starting `sluicectl apply` until `/probe` answers the new body on both data planes "
          "(polled in a tight loop from two threads); %d repeats per size. Includes sluicectl's "
          "process start and file parse, the CP's validate + encode + push, and the data "
          "planes' decode + validate + compile + publish." % args.repeats)
        w("")
        def med(xs):
            return fmt_ms(ms(median(xs)) if xs else None)

        def mx(xs):
            return fmt_ms(ms(max(xs)) if xs else None)
        w("| routes | config file | live on both: median (ms) | max (ms) | first data plane: "
          "median (ms) | sluicectl exited: median (ms) | without sluicectl: live on both, "
          "median / max (ms) | Apply RPC returned: median (ms) | failed | data plane RSS "
          "(MiB) |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in p1["results"]:
            w("| %s | %s KiB | %s | %s | %s | %s | %s / %s | %s | %d | %s |" % (
                fmt_int(r["n"]), fmt_int(r["size"] / 1024.0), med(r["times"]), mx(r["times"]),
                med(r["first"]), med(r["ctl"]), med(r["grpc_times"]), mx(r["grpc_times"]),
                med(r["grpc_rpc"]), len(r["failures"]),
                " / ".join(fmt_mib(x) for x in r["dp_rss_kb"])))
        w("")
        w("\"Without sluicectl\": the same measurement (%d more repeats) with the change "
          "applied through ControlService.Apply from the benchmark process, the request built "
          "before the clock starts: the CP and data-plane part of the time, without "
          "sluicectl's process start and file parse." % args.repeats)
        w("")
        w("For scale: `sluicectl status` (process start, connect, one small RPC) takes %.0f ms "
          "(median of 5) on this machine." % ms(p1["ctl_floor"]))
        w("")
        w("Every repeat (ms): " + "; ".join(
            "%s routes: %s" % (fmt_int(r["n"]), ", ".join("%.0f" % ms(t) for t in r["times"]))
            for r in p1["results"]))
        w("")
        big = [r for r in p1["results"] if r["n"] >= 10000]
        if big:
            r = big[-1]
            met = r["times"] and not r["failures"] and ms(max(r["times"])) <= target
            w("**Target: %s routes live on both data planes within %.0f ms: %s** (max %s ms, "
              "median %s ms over %d repeats)." % (
                  fmt_int(r["n"]), target, "met" if met else "NOT met",
                  fmt_ms(ms(max(r["times"])) if r["times"] else None),
                  fmt_ms(ms(median(r["times"])) if r["times"] else None), len(r["times"])))
        else:
            w("Target (10,000 routes within 500 ms): not measured in this run (no size >= "
              "10,000).")
        w("")
        w("Data-plane RouteTable updates accepted: %s; updates rejected (all types): %s. "
          "Machine during this part: %s."
          % (" / ".join(map(str, p1["accepted"])), " / ".join(map(str, p1["rejected"])),
             fmt_cpu(p1["cpu"])))
        for r in p1["results"]:
            for f in r["failures"]:
                w("- failed (%s routes): %s" % (fmt_int(r["n"]), f))
        w("")
    if p2:
        w("## 2. Proxied latency: steady vs during config swaps")
        w("")
        w("nginx upstream (1 worker, `return 200 \"hello\\n\"`) and wrk on core %s, one data "
          "plane (`--concurrency 1`) on core %s, sluice-cp on core %s. Route "
          "table of %s routes (config files %s KiB); during swaps a loop applies the other "
          "version every %.0f ms (one route added/removed and the upstream endpoint's weight "
          "1 <-> 2, so the RouteTable and the Cluster change each time), %s. The control run "
          "applies the same loop to another group: the harness's own CPU cost, without "
          "data-plane work. Load: `%s` (after a %d s warm-up)."
          % (args.load_cpu, args.proxy_cpu, args.cp_cpu, fmt_int(p2["routes"]),
             " / ".join(fmt_int(s / 1024.0) for s in p2["sizes"]), ms(args.swap_interval),
             "through ControlService.Apply from the (unpinned) benchmark process"
             if args.swap_client == "grpc" else
             "by running `sluicectl apply` (pinned like sluice-cp)",
             p2["runs"][0]["wrk_cmd"], args.warmup))
        w("")
        w("| run | req/s | p50 (ms) | p99 (ms) | max (ms) | socket errors | non-2xx | "
          "applies (median / max ms) | data-plane updates accepted | data plane CPU µs/req | "
          "other processes' CPU (cores) |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in p2["runs"]:
            wr = r["wrk"]
            applies = "-"
            if "applies" in r:
                applies = "%d (%s / %s)" % (r["applies"], fmt_ms(ms(r["apply_median"] or 0), 0),
                                            fmt_ms(ms(r["apply_max"] or 0), 0))
            upd = ", ".join("%s %d" % (t, v) for t, v in r["accepted"].items() if v) or "0"
            if r["rejected"]:
                upd += "; %d rejected" % r["rejected"]
            w("| %s | %s | %s | %s | %s | %d | %d | %s | %s | %.1f | %.2f |" % (
                r["name"], fmt_int(wr.get("rps")), fmt_ms(wr.get("p50"), 2),
                fmt_ms(wr.get("p99"), 2), fmt_ms(wr.get("max"), 2), wr["sockerr"],
                wr["non2xx"], applies, upd, r["dp_cpu_us_per_req"], r["machine"]["others"]))
        w("")
        w("Other processes' CPU: machine busy time (user+system+steal from /proc/stat) minus "
          "that of this benchmark's processes, averaged over the run, in cores: other users "
          "of the machine competing with the pinned processes.")
        w("")
        steady, swaps = p2["runs"][0], p2["runs"][1]
        ratio = None
        if steady["wrk"].get("p99") and swaps["wrk"].get("p99"):
            ratio = swaps["wrk"]["p99"] / steady["wrk"]["p99"]
        errors = sum(r["wrk"]["sockerr"] + r["wrk"]["non2xx"] for r in p2["runs"])
        w("**Target: p99 during swaps at most 1.5x steady: %s** (ratio %s). Socket errors and "
          "non-2xx over all runs: %d (%s)." % (
              "met" if ratio is not None and ratio <= 1.5 else "NOT met",
              "-" if ratio is None else "%.2fx" % ratio, errors,
              "ok" if errors == 0 else "MUST be 0"))
        if len(p2["runs"]) > 2 and p2["runs"][2]["wrk"].get("p99") and steady["wrk"].get("p99"):
            w("")
            w("Control run p99 / steady p99: %.2fx (the part of the swap-run increase that "
              "sluice-cp and the apply client cause by themselves)."
              % (p2["runs"][2]["wrk"]["p99"] / steady["wrk"]["p99"]))
        for r in p2["runs"]:
            if r["wrk"]["sockerr"]:
                w("- %s: socket errors: %s" % (r["name"], r["wrk"]["sockerr_detail"]))
            for e in r.get("apply_errors", [])[:5]:
                w("- %s: apply error: %s" % (r["name"], e))
        w("")
    if p3:
        w("## 3. sluice-cp with %d ADS streams" % p3["streams"])
        w("")
        w("Load client: Python grpcio (asyncio, one channel and TCP connection per stream) "
          "opening %d SotW ADS streams (nodes bench-0..%d, group `bench`), one wildcard "
          "request per type, every response ACKed. It runs on the same 2 cores as sluice-cp "
          "(unpinned). Each push applies a new version of a %s-route table (config file "
          "%s KiB) with `sluicectl apply`; every stream then receives the whole RouteTable "
          "(state of the world)." % (p3["streams"], p3["streams"] - 1, fmt_int(p3["routes"]),
                                     fmt_int(p3["size"] / 1024.0)))
        w("")
        w("| sluice-cp memory | VmRSS (MiB) | threads |")
        w("|---|---:|---:|")
        w("| started, no config | %s | |" % fmt_mib(p3["rss_start"]))
        w("| idle: %s-route config applied, no streams | %s | %s |"
          % (fmt_int(p3["routes"]), fmt_mib(p3["rss_idle"]), p3["threads_idle"]))
        w("| %d streams connected, after the initial sync | %s | %s |"
          % (p3["streams"], fmt_mib(p3["rss_streams"]), p3["threads_streams"]))
        peaks = [p["peak"] for p in p3["pushes"]]
        w("| peak during a push (max over %d pushes) | %s | |"
          % (len(peaks), fmt_mib(max(peaks) if peaks else None)))
        w("| after the pushes | %s | |" % fmt_mib(p3["rss_after"]))
        w("")
        if p3["rss_streams"] and p3["rss_idle"]:
            w("Per stream: %.1f KiB ((with streams - idle) / %d)."
              % ((p3["rss_streams"] - p3["rss_idle"]) / p3["streams"], p3["streams"]))
            w("")
        w("Initial connect: all %d streams had every type after %.2f s, `sluicectl status` "
          "showed all in sync at %.2f s; CP CPU for it %.0f ms."
          % (p3["streams"], p3["t_sync_streams"], p3["t_sync_status"], p3["cpu_connect_ms"]))
        w("")
        w("| push | sluicectl exited (ms) | first stream (ms) | median stream (ms) | last stream "
          "(ms) | all in sync per status (ms) | CP CPU to last stream (ms) | CP CPU to in sync "
          "(ms) | peak RSS (MiB) |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, p in enumerate(p3["pushes"]):
            w("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s |" % (
                i + 1, ms(p["ctl"]), ms(p["first"]), ms(p["median"]), ms(p["last"]),
                ms(p["sync"]), p["cpu_recv_ms"], p["cpu_sync_ms"], fmt_mib(p["peak"])))
        ps = p3["pushes"]
        if ps:
            w("| **median** | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s |" % (
                ms(median([p["ctl"] for p in ps])), ms(median([p["first"] for p in ps])),
                ms(median([p["median"] for p in ps])), ms(median([p["last"] for p in ps])),
                ms(median([p["sync"] for p in ps])), median([p["cpu_recv_ms"] for p in ps]),
                median([p["cpu_sync_ms"] for p in ps]),
                fmt_mib(median([p["peak"] for p in ps]))))
        w("")
        w("CPU is utime+stime from /proc (%d ms resolution), from just before the apply. The "
          "in-sync time includes the last `sluicectl status -o json` call (one call: %.0f ms "
          "wall, %.1f ms of CP CPU with %d nodes listed; %s calls per push). Peak RSS: VmHWM "
          "reset before each push%s, and VmRSS sampled every 2 ms."
          % (1000 // CLK_TCK, p3["status_call_ms"], p3["status_cpu_ms"], p3["streams"],
             "/".join(str(p["polls"]) for p in ps),
             "" if p3["hwm_ok"] else " (reset refused: sampling only)"))
        w("Machine during the pushes: %s." % fmt_cpu(p3["cpu"]))
        if p3["errors"]:
            w("")
            w("Stream errors: %s" % "; ".join(p3["errors"][:10]))
        w("")
    if failures:
        w("## Not measured")
        w("")
        for name, err in failures:
            w("- %s: %s" % (name, err))
        w("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="xds_bench.py", description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="/usr/bin/python3 tools/bench/xds_bench.py [options]")
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    p.add_argument("--quick", action="store_true",
                   help="smoke run: routes 10,100, 2 repeats, 10 streams, 3 s wrk runs, "
                        "100-route tables (explicit flags still win)")
    p.add_argument("--parts", default="apply,swap,cp",
                   help="which parts to run: apply,swap,cp (default all)")
    p.add_argument("--routes", type=ints, help="part 1 route counts (default 10,1000,10000)")
    p.add_argument("--repeats", type=int, help="part 1 applies per size and part 3 pushes "
                                               "(default 5)")
    p.add_argument("--streams", type=int, help="part 3 ADS streams (default 200)")
    p.add_argument("--swap-duration", type=int, help="part 2 wrk seconds per run (default 10)")
    p.add_argument("--swap-routes", type=int, help="part 2 route table size (default 1000)")
    p.add_argument("--swap-interval", type=float, default=0.2,
                   help="part 2 seconds between applies (default 0.2)")
    p.add_argument("--push-routes", type=int, help="part 3 route table size (default 1000)")
    p.add_argument("--no-grpc-breakdown", action="store_true",
                   help="part 1: skip the extra repeats applied through ControlService.Apply")
    p.add_argument("--swap-client", choices=("grpc", "sluicectl"), default="grpc",
                   help="part 2: apply through ControlService.Apply from this process (grpc, "
                        "default: no process start per change) or by running sluicectl")
    p.add_argument("--conns", type=int, default=32, help="part 2 wrk connections (default 32)")
    p.add_argument("--warmup", type=int, help="part 2 wrk warm-up seconds (default 2)")
    p.add_argument("--no-control-run", action="store_true",
                   help="part 2: skip the control run (swap loop on another group)")
    p.add_argument("--proxy-cpu", default="0", help="core of the part 2 data plane; 'none' = "
                                                    "unpinned (default 0)")
    p.add_argument("--load-cpu", default="1", help="core of wrk and nginx (default 1)")
    p.add_argument("--cp-cpu", default=None, help="core of sluice-cp and sluicectl in part 2 "
                                                  "(default: the load core)")
    p.add_argument("--poll-sleep", type=float, default=0.0,
                   help="part 1: seconds between /probe polls (default 0: tight loop)")
    p.add_argument("--live-timeout", type=float, default=30.0,
                   help="seconds to wait for a config to go live before failing (default 30)")
    p.add_argument("--out-dir", default=os.environ.get("OUT_DIR",
                                                       os.path.join(REPO_ROOT, "bench-results")),
                   help="where the report goes (default <repo>/bench-results, env OUT_DIR)")
    a = p.parse_args(argv)
    q = a.quick
    defaults = {"routes": [10, 100] if q else [10, 1000, 10000], "repeats": 2 if q else 5,
                "streams": 10 if q else 200, "swap_duration": 3 if q else 10,
                "swap_routes": 100 if q else 1000, "push_routes": 100 if q else 1000,
                "warmup": 1 if q else 2}
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    for x in a.parts:
        if x not in ("apply", "swap", "cp"):
            p.error("unknown part %r (apply, swap, cp)" % x)
    for k in ("repeats", "streams", "swap_duration", "swap_routes", "push_routes", "conns",
              "warmup"):
        if getattr(a, k) < 1:
            p.error("--%s must be at least 1" % k.replace("_", "-"))
    if not a.routes or min(a.routes) < 0:
        p.error("--routes must be a comma-separated list of counts")

    ncpu = os.cpu_count() or 1
    can_pin = shutil.which("taskset") is not None and ncpu >= 2

    def cpu_arg(v):
        if v is None or str(v).lower() == "none" or not can_pin:
            return None
        return int(v)
    a.proxy_cpu = cpu_arg(a.proxy_cpu)
    a.load_cpu = cpu_arg(a.load_cpu)
    a.cp_cpu = cpu_arg(a.cp_cpu) if a.cp_cpu is not None else a.load_cpu
    a.can_pin = can_pin
    return a


def main(argv):
    args = parse_args(argv)
    start = time.monotonic()
    for b in (harness.sluice_binary(), cp_harness.cp_binary(), cp_harness.ctl_binary()):
        if not os.access(b, os.X_OK):
            sys.exit("xds_bench: %s not found; build with `bazel build //source/exe:sluice "
                     "//source/control_plane:sluice-cp //source/cli:sluicectl`" % b)
    if not args.can_pin:
        log("warning: taskset missing or fewer than 2 CPUs: nothing is pinned")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGHUP, on_signal)

    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_describe(),
            "cpu": cpu_model(), "ncpu": os.cpu_count() or 1, "kernel": platform.release(),
            "loadavg": loadavg(),
            "cmdline": "/usr/bin/python3 tools/bench/xds_bench.py" + (
                " " + " ".join(argv) if argv else "")}
    work = tempfile.mkdtemp(prefix="xds-bench-")
    CLEANUP.add(lambda: shutil.rmtree(work, ignore_errors=True), "work dir")
    p1 = p2 = p3 = None
    failures = []
    try:
        for part in ("apply", "swap", "cp"):
            if part not in args.parts:
                continue
            try:
                if part == "apply":
                    p1 = part_apply(args, work)
                elif part == "swap":
                    p2 = part_swap(args, work)
                else:
                    p3 = part_cp(args, work)
            except (BenchError, AssertionError, subprocess.SubprocessError, OSError) as e:
                log("part %s failed: %s" % (part, e))
                failures.append((part, str(e).splitlines()[0] if str(e) else repr(e)))
            finally:
                CLEANUP.run()  # every process of the part is stopped before the next part
                CLEANUP.add(lambda: shutil.rmtree(work, ignore_errors=True), "work dir")
                os.makedirs(work, exist_ok=True)
    finally:
        CLEANUP.run()
    meta["elapsed"] = time.monotonic() - start
    text = report(args, meta, p1, p2, p3, failures)
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "xds-%s.md" % datetime.datetime.now().strftime(
        "%Y-%m-%d-%H%M%S"))
    with open(out, "w") as f:
        f.write(text + "\n")
    print(text)
    log("report written to %s" % out)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        CLEANUP.run()
        log("interrupted")
        sys.exit(130)
