"""Helpers shared by the Python end-to-end benches (auth_bench.py, cache_bench.py, log_bench.py,
rate_limit_bench.py, resilience_bench.py, transform_bench.py): environment knobs, processes,
sockets, wrk, callgrind, sluice bootstraps and the reports. Stdlib only."""

import json
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
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench_knobs(rounds=3):
    """The environment knobs of the one-worker CPU benches, as the tuple (ROUNDS, DURATION,
    WARMUP, CONNS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR); defaults ROUNDS=`rounds`,
    DURATION=10, WARMUP=2, CONNS=64, PROXY_CPU=0, LOAD_CPU=1,
    SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice, OUT_DIR=<repo>/bench-results."""
    env = os.environ.get
    return (int(env("ROUNDS", str(rounds))), int(env("DURATION", "10")), int(env("WARMUP", "2")),
            int(env("CONNS", "64")), env("PROXY_CPU", "0"), env("LOAD_CPU", "1"),
            env("SLUICE_BIN", os.path.join(REPO, "bazel-bin/source/exe/sluice")),
            env("OUT_DIR", os.path.join(REPO, "bench-results")))


def make_log(tag):
    """A log(msg) that writes `[<tag> HH:MM:SS] msg` to stderr."""
    def log(msg):
        sys.stderr.write("[%s %s] %s\n" % (tag, time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()
    return log


def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=15):
    """True once something accepts connections on 127.0.0.1:port, False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get_raw(port, path="/"):
    """GET `path` from 127.0.0.1:port on a plain socket (Connection: close): (status, head as
    text, body as bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


def fetch(url, headers=None):
    """GET url: (status, {lower-case header: value}, body)."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


def cpu_ticks_split(pid):
    """(utime, stime) of a process from /proc/<pid>/stat (fields 14 and 15), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    return sum(cpu_ticks_split(pid))


def wrk_ms(v):
    """wrk's "1.23ms" / "850.00us" / "2.01s" / "1.5m" in milliseconds; None if not a time."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def parse_wrk(text):
    """wrk's report as a dict: requests, secs, rps, p50_ms / p99_ms (with --latency), non2xx,
    sockerr (the sum) and sockerr_detail."""
    res = {"non2xx": 0, "sockerr": 0, "sockerr_detail": "none"}
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"(50|99)%\s+(\S+)$", line)
        if m:
            res["p%s_ms" % m.group(1)] = wrk_ms(m.group(2))
        m = re.match(r"(\d+) requests in ([\d.]+\w+),", line)
        if m:
            res["requests"] = int(m.group(1))
            res["secs"] = wrk_ms(m.group(2)) / 1e3
        m = re.match(r"Requests/sec:\s+([\d.]+)", line)
        if m:
            res["rps"] = float(m.group(1))
        m = re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line)
        if m:
            res["non2xx"] = int(m.group(1))
        m = re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line)
        if m:
            res["sockerr"] = sum(int(x) for x in m.groups())
            res["sockerr_detail"] = "connect %s, read %s, write %s, timeout %s" % m.groups()
    return res


# ---- Processes ------------------------------------------------------------------------------

PROCS = []  # everything start() launched and stop() has not stopped yet, oldest first


def start(cmd, cpu=None, log_path=None, **kw):
    """Popen `cmd` with stdin closed, remembered for stop_all(). `cpu`: pinned to that core
    (taskset); `log_path`: stdout and stderr appended to that file (unless given in `kw`)."""
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + list(cmd)
    kw.setdefault("stdin", subprocess.DEVNULL)
    f = open(log_path, "ab") if log_path else None
    if f:
        kw.setdefault("stdout", f)
        kw.setdefault("stderr", f)
    p = subprocess.Popen(cmd, **kw)
    if f:
        f.close()
    PROCS.append(p)
    return p


def children(pid):
    """Pids of the direct children of every thread of `pid` ([] once it is gone)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def start_time(pid):
    """Field 22 of /proc/<pid>/stat (start time since boot), None if gone or a zombie: tells a
    process from a later one that got the same pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def descendants(pid):
    """[(pid, start time)] of every descendant of pid."""
    out = []
    for c in children(pid):
        out.append((c, start_time(c)))
        out += descendants(c)
    return out


def stop(p, grace=5.0):
    """SIGTERM, wait `grace` s, SIGKILL; then SIGKILL the descendants it left behind (nginx or
    nghttpx workers); forget it and close its stdin/stdout pipes."""
    if p.poll() is None:
        kids = descendants(p.pid)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for k, started in kids:
            if started is not None and start_time(k) == started:  # still the same process
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
    if p in PROCS:
        PROCS.remove(p)
    for s in (p.stdin, p.stdout):
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


def stop_all(grace=5.0, log=None):
    """stop() everything start() launched, newest first; an error stopping one is logged (with
    `log`) and the others are still stopped."""
    for p in reversed(list(PROCS)):
        try:
            stop(p, grace)
        except Exception as e:  # keep stopping the others
            if log:
                log("cleanup: %s" % e)


# ---- Load and instruction counts -------------------------------------------------------------

def wrk_report(url, seconds, conns, cpu, headers=(), out=None, latency=False):
    """wrk -t1 -c`conns` on core `cpu` for `seconds` (with --latency if `latency`), the
    `headers` ("Name: value") sent with every request; its report goes to the file `out` if
    given. Returns parse_wrk() of the report."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds]
    if latency:
        cmd.append("--latency")
    for h in headers or ():
        cmd += ["-H", h]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if out:
        with open(out, "w") as f:
            f.write(res.stdout + res.stderr)
    return parse_wrk(res.stdout)


def run_wrk(url, seconds, conns, cpu, headers, out):
    """wrk_report() as (requests, non-2xx, req/s)."""
    r = wrk_report(url, seconds, conns, cpu, headers, out)
    return r.get("requests", 0), r["non2xx"], r.get("rps", 0.0)


def callgrind_per_request(binary, cfg_path, port, url, n, headers, out_prefix):
    """User-space instructions per request of `url` on `binary -c cfg_path` (one worker) under
    valgrind's callgrind: h2load --h1 (16 connections) sends 1,000 warm-up requests, the counters
    are dumped, then `n` requests are counted. Deterministic to ~1%; kernel work not included."""
    return callgrind_cmd_per_request([binary, "-c", cfg_path, "--concurrency", "1"], port, url,
                                     n, headers, out_prefix)


def callgrind_cmd_per_request(cmd, port, url, n, headers, out_prefix):
    """callgrind_per_request() for any single-process server command `cmd` listening on `port`
    (e.g. nginx with master_process off, for the cache bench's comparison)."""
    out = out_prefix + ".out"
    vg = start(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + list(cmd),
               stdout=open(out_prefix + ".log", "w"), stderr=subprocess.STDOUT)
    try:
        if not wait_port(port, 120):
            raise RuntimeError("%s under valgrind did not start" % cmd[0])
        h2 = ["h2load", "--h1", "-c", "16"]
        for h in headers or ():
            h2 += ["-H", h]
        subprocess.run(h2 + ["-n", "1000", url], capture_output=True, check=True)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], capture_output=True)
        res = subprocess.run(h2 + ["-n", str(n), url], capture_output=True, text=True, check=True)
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", res.stdout)
        if not m or int(m.group(2)) != n:
            raise RuntimeError("h2load: %s" % res.stdout[-500:])
    finally:
        vg.send_signal(signal.SIGTERM)
        vg.wait(60)
    ann = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+)\s+(?:\(100.0%\)\s+)?PROGRAM TOTALS", ann)
    return int(m.group(1).replace(",", "")) / n


def cpu_rounds(scenarios, target, pid, rounds, warmup, duration, conns, cpu, work, log):
    """CPU per request of each scenario, measured `rounds` times in rotated order: wrk warms up
    for `warmup` s, then runs `duration` s while the utime+stime of process `pid` (or of
    `pid[s]`, a dict by scenario) is read before and after. `target(s)` gives (url, [headers])
    of scenario s. Returns {s: [(us, rps)]}, or raises RuntimeError when a run got no answers or
    a non-2xx one."""
    clk_tck = os.sysconf("SC_CLK_TCK")
    results = {s: [] for s in scenarios}
    for r in range(rounds):
        order = scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]
        log("round %d/%d: %s" % (r + 1, rounds, " ".join(order)))
        for s in order:
            url, headers = target(s)
            run_wrk(url, warmup, conns, cpu, headers, os.path.join(work, "warm-%s-%d.txt" % (s, r)))
            time.sleep(0.3)
            p = pid[s] if isinstance(pid, dict) else pid
            t0 = cpu_ticks(p)
            n, bad, rps = run_wrk(url, duration, conns, cpu, headers,
                                  os.path.join(work, "wrk-%s-%d.txt" % (s, r)))
            t1 = cpu_ticks(p)
            if n == 0 or bad:
                raise RuntimeError("%s: %d requests, %d non-2xx" % (s, n, bad))
            us = (t1 - t0) * 1e6 / clk_tck / n
            results[s].append((us, rps))
            log("  %-13s %8.0f req/s  %6.2f us CPU/req" % (s, rps, us))
    return results


def callgrind_scenarios(scenarios, n, procs, measure, log, width):
    """Instructions per request of each scenario: {s: measure(s)} (measure runs callgrind, e.g.
    with callgrind_per_request()), logged as `callgrind: s, n requests` and `  s  N
    instructions/request` (s padded to `width`). The running `procs` are stopped first (they hold
    the ports). {} when n is 0 or valgrind or h2load is missing."""
    instr = {}
    if n <= 0 or not shutil.which("valgrind") or not shutil.which("h2load"):
        return instr
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    for s in scenarios:
        log("callgrind: %s, %d requests" % (s, n))
        instr[s] = measure(s)
        log("  %-*s %8.0f instructions/request" % (width, s, instr[s]))
    return instr


# ---- nginx ----------------------------------------------------------------------------------

def nginx_conf(d, servers, master_process=True):
    """nginx.conf text for one worker in the foreground, pid, error log and temp files under d,
    no access log, keep-alive connections kept (1e9 requests, 300 s); `servers` (server blocks)
    go into http {}. master_process off: one process, e.g. to run under valgrind."""
    return """worker_processes 1; daemon off; master_process %(m)s;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p;
  fastcgi_temp_path %(d)s/f; uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  keepalive_requests 1000000000; keepalive_timeout 300s; default_type text/plain;
%(s)s }
""" % {"d": d, "m": "on; user root" if master_process else "off", "s": servers}


def start_nginx_upstream(work, port, cpu, locations='location / { return 200 "hello\\n"; }'):
    """An nginx upstream (one worker, on core `cpu`) on 127.0.0.1:port serving `locations`
    (nginx config inside `server {}`), its files under work/up. Returns once it accepts."""
    d = os.path.join(work, "up")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(nginx_conf(d, "  server { listen 127.0.0.1:%d backlog=4096; %s }" % (port,
                                                                                   locations)))
    start(["taskset", "-c", str(cpu), "nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
           os.path.join(d, "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("upstream nginx did not start")


# ---- sluice ----------------------------------------------------------------------------------

def sluice_listener(name, port, filters=None, route_table=None):
    """A bench listener on 127.0.0.1:port: backlog 4096, 300 s idle and request-header timeouts
    (wrk's keep-alive connections stay), routes from `route_table` (default: a table named like
    the listener), `filters` as its http_filters (None: the default chain)."""
    listener = {"name": name, "address": {"host": "127.0.0.1", "port": port},
                "route_table": route_table or name, "backlog": 4096}
    if filters is not None:
        listener["http_filters"] = filters
    listener["limits"] = {"idle_timeout": "300s", "request_headers_timeout": "300s"}
    return listener


def sluice_route_table(name, routes):
    """A route table `name` with one virtual host for every domain, holding `routes`."""
    return {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}


def sluice_cluster(name, port, max_idle=64):
    """A cluster `name` with the one endpoint 127.0.0.1:port, keeping up to `max_idle` idle
    upstream connections for 300 s."""
    return {"name": name, "lb_policy": "ROUND_ROBIN",
            "endpoints": [{"address": "127.0.0.1", "port": port}],
            "idle_timeout": "300s", "max_idle_connections_per_endpoint": max_idle}


def sluice_bootstrap(d, listeners, route_tables, clusters, admin="admin.addr", **resources):
    """Writes d/bootstrap.json and returns its path: one worker, 1 s drain, the admin listener
    on an ephemeral port written to d/`admin`, the static resources `listeners`, `route_tables`,
    `clusters` and any other ones given as keywords (auth_policies=[...])."""
    cfg = {
        "admin": {"address": "127.0.0.1", "port": 0, "address_path": os.path.join(d, admin)},
        "concurrency": 1,
        "drain_timeout": "1s",
        "static_resources": dict(listeners=listeners, route_tables=route_tables,
                                 clusters=clusters, **resources),
    }
    path = os.path.join(d, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def start_sluice(binary, cfg_path, ports, cpu, work):
    """`binary -c cfg_path --concurrency 1` pinned to core `cpu`, after `--validate` passed;
    stdout and stderr in work/sluice.out and work/sluice.err. Returns the process once every
    port in `ports` accepts; raises RuntimeError otherwise."""
    v = subprocess.run([binary, "-c", cfg_path, "--validate"], capture_output=True, text=True)
    if v.returncode != 0:
        raise RuntimeError("sluice --validate: %s" % v.stderr)
    err = os.path.join(work, "sluice.err")
    p = start(["taskset", "-c", str(cpu), binary, "-c", cfg_path, "--concurrency", "1"],
              stdout=open(os.path.join(work, "sluice.out"), "w"), stderr=open(err, "w"))
    if not all(wait_port(port) for port in ports):
        raise RuntimeError("sluice did not start: %s" % open(err).read())
    return p


# ---- The frame of a CPU bench and its report -------------------------------------------------

def bench_main(doc, run, sluice_bin, log, prefix):
    """main() of a one-worker CPU bench; returns its exit status. `--help` prints `doc`;
    nginx, wrk, taskset and `sluice_bin` must exist. `run(work)` gets a fresh temp dir (named
    `prefix`...) and returns the status; a RuntimeError it raises is logged as FATAL (status 1).
    At the end every process start() launched is stopped and work removed (KEEP_WORKDIR=1 keeps
    it); Ctrl-C: 130."""
    if "-h" in sys.argv or "--help" in sys.argv:
        print(doc)
        return 0
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            log("FATAL: %s not installed" % tool)
            return 1
    if not os.path.exists(sluice_bin):
        log("FATAL: %s not built" % sluice_bin)
        return 1
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        return run(work)
    except RuntimeError as e:
        log("FATAL: %s" % e)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stop_all()
        if os.environ.get("KEEP_WORKDIR") == "1":
            log("work dir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def setup_line(proxy, load, proxy_cpu, conns, load_cpu, rounds, duration, warmup):
    """The report's sentence on how it was measured: `<date>, <kernel>, <proxy> on core
    <proxy_cpu>; wrk -t1 -c<conns> and <load> on core <load_cpu>; <rounds> rounds x <duration>s
    (+<warmup>s warm-up), medians.`"""
    return ("%s, %s, %s on core %s; wrk -t1 -c%d and %s on core %s; %d rounds x %ds (+%ds "
            "warm-up), medians." % (time.strftime("%Y-%m-%d %H:%M"), os.uname().release, proxy,
                                    proxy_cpu, conns, load, load_cpu, rounds, duration, warmup))


def median_us(runs):
    """Median CPU us/request of cpu_rounds()'s [(us, rps)] of a scenario."""
    return statistics.median(u for u, _ in runs)


def pct(v, base):
    """v against base as "+1.2%"."""
    return "%+.1f%%" % ((v / base - 1) * 100)


def cpu_row(s, runs, vs, *more):
    """The Markdown row `| s | req/s | CPU us/req | vs | us/req of every round |` (medians)
    of scenario s's cpu_rounds() runs [(us, rps)], then `more` columns."""
    cells = [s, "%.0f" % statistics.median(r for _, r in runs), "%.2f" % median_us(runs), vs,
             ", ".join("%.2f" % u for u, _ in runs)] + list(more)
    return "| %s |" % " | ".join(cells)


def write_report(text, out_dir, name, log):
    """The report `text` to stdout and to out_dir/<name>-<date>.md (logged)."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "%s-%s.md" % (name, time.strftime("%Y-%m-%d-%H%M%S")))
    with open(path, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    log("report written to %s" % path)
    return path

