"""Helpers shared by the Python end-to-end benches (auth_bench.py, cache_bench.py, h2_bench.py,
log_bench.py, rate_limit_bench.py, resilience_bench.py, tls_bench.py, transform_bench.py):
environment knobs, processes, sockets, wrk, callgrind, sluice bootstraps and the reports.
Stdlib only."""

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


# ---- The comparison benches (h2_bench.py, tls_bench.py): knobs, signals, /proc -----------------

def env_int(name, default):
    """The positive integer environment knob `name` (default `default`); exits with a message
    naming the script otherwise."""
    v = os.environ.get(name, str(default))
    if not re.fullmatch(r"[1-9][0-9]*", v):
        sys.exit("%s: %s must be a positive integer (got %r)" % (
            os.path.splitext(os.path.basename(sys.argv[0]))[0], name, v))
    return int(v)


def exit_on_signals(log):
    """SIGTERM, SIGHUP and SIGINT raise SystemExit(128 + signal), so that `finally:` cleans up."""
    def on_signal(signum, _frame):
        log("signal %d: stopping" % signum)
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)


def log_fatal(e, log):
    """Logs the exception `e` that ends a bench as FATAL, with its traceback unless it is a
    RuntimeError (an expected failure) or Ctrl-C."""
    log("FATAL: %s: %s" % (type(e).__name__, e))
    if not isinstance(e, (KeyboardInterrupt, RuntimeError)):
        import traceback
        traceback.print_exc()


def cleanup(log, work, keep, what):
    """stop_all() with 3 s grace, SIGINT/SIGTERM/SIGHUP ignored meanwhile (a second Ctrl-C must
    not cut the cleanup short); then the temp dir `work` is removed, or kept (and logged, with
    `what` it holds) if `keep`."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    stop_all(3, log)
    if keep:
        log("work dir kept (%s): %s" % (what, work))
    else:
        shutil.rmtree(work, ignore_errors=True)


def read_line(p, timeout):
    """A line from p.stdout within timeout s (binary pipe), or what came of it ("" at EOF or
    timeout)."""
    import select
    end = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        c = os.read(fd, 1)
        if not c:
            break
        if c == b"\n":
            return buf.decode(errors="replace")
        buf += c
    return buf.decode(errors="replace")


def raise_nofile():
    """Raises this process's open-file limit to its hard limit; returns the limit in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_self(cpu, log):
    """Pins this script to core `cpu` (off the proxy's core); a warning if it cannot."""
    try:
        os.sched_setaffinity(0, {int(cpu)})
    except (OSError, ValueError) as e:
        log("warning: cannot pin the bench to core %s: %s" % (cpu, e))


def cpu_ticks_all(pids):
    """(utime, stime) summed over pids, gone ones left out (a process's threads are included in
    its stat)."""
    u = s = 0
    for p in pids:
        try:
            a, b = cpu_ticks_split(p)
        except OSError:
            continue
        u, s = u + a, s + b
    return u, s


def rss_kib(pids):
    """VmRSS summed over pids, in KiB (gone ones left out)."""
    tot = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        tot += int(line.split()[1])
        except OSError:
            pass
    return tot


def core_busy(cpus, secs):
    """Busy % of each cpu over secs, from /proc/stat: {cpu: %}."""
    def snap():
        d = {}
        with open("/proc/stat") as f:
            for line in f:
                m = re.match(r"cpu(\d+) (.*)", line)
                if m:
                    v = [int(x) for x in m.group(2).split()]
                    d[m.group(1)] = (sum(v[:8]), v[3] + v[4])
        return d
    a = snap()
    time.sleep(secs)
    b = snap()
    out = {}
    for c in cpus:
        tot, idle = b[c][0] - a[c][0], b[c][1] - a[c][1]
        out[c] = 100.0 * (tot - idle) / max(tot, 1)
    return out


def cpu_model():
    """The CPU's model name from /proc/cpuinfo ("?" if none)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def first_line(cmd):
    """The first line `cmd` prints (stdout, then stderr), "?" if it cannot run: a version."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def cmdline(knobs, script):
    """The command that repeats this run: the `knobs` set in the environment, then
    `/usr/bin/python3 tools/bench/<script>`."""
    env = " ".join("%s='%s'" % (k, os.environ[k]) for k in knobs if k in os.environ)
    return ((env + " ") if env else "") + "/usr/bin/python3 tools/bench/" + script


def temp_paths(d):
    """nginx's *_temp_path directives, all under d/tmp (created)."""
    t = os.path.join(d, "tmp")
    os.makedirs(t, exist_ok=True)
    return ("client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fcgi; "
            "uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;" % (t, t, t, t, t))


def stub_status_requests(port):
    """Requests nginx has answered so far, from its stub_status on port (this query counts 1)."""
    body = http_get_raw(port)[2].decode("latin-1")
    m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", body, re.M)
    if not m:
        raise RuntimeError("unexpected stub_status output: %r" % body[:200])
    return int(m.group(3))


def run_meta(t_start, versions, orders, cmdline):
    """What a comparison report says about its run: date, cpu, ncpu, kernel, the `versions`
    and round `orders`, the `cmdline` that repeats it and the time elapsed since t_start
    (time.monotonic())."""
    el = int(time.monotonic() - t_start)
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": cpu_model(),
            "ncpu": os.cpu_count(), "kernel": os.uname().release, "versions": versions,
            "orders": orders, "cmdline": cmdline, "elapsed": "%dm%02ds" % (el // 60, el % 60)}


# haproxy's `defaults` section for the comparisons: HTTP keep-alive on both sides, upstream
# connections reused, 300 s timeouts (nothing times out during a run).
HAPROXY_DEFAULTS = """defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 300s
  timeout http-keep-alive 300s
"""
