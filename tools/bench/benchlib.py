"""Small process and socket helpers shared by the Python end-to-end benches
(auth_bench.py, cache_bench.py, rate_limit_bench.py, resilience_bench.py, transform_bench.py).
Stdlib only."""

import re
import socket
import time


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


# ---- Processes, load and instruction counts (auth_bench.py, transform_bench.py) -------------

PROCS = []  # everything start() launched, stopped by stop_all()


def start(cmd, **kw):
    """Popen with stdin closed, remembered for stop_all()."""
    import subprocess
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def stop_all():
    """SIGTERM (then SIGKILL after 5 s) to everything start() launched, newest first."""
    import signal
    import subprocess
    for p in reversed(PROCS):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_wrk(url, seconds, conns, cpu, headers, out):
    """wrk -t1 on core `cpu` for `seconds`; its report goes to `out`. Returns (requests,
    non-2xx, req/s)."""
    import subprocess
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds]
    for h in headers or ():
        cmd += ["-H", h]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True)
    with open(out, "w") as f:
        f.write(res.stdout + res.stderr)
    r = parse_wrk(res.stdout)
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
    import signal
    import subprocess
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


def start_nginx_upstream(work, port, cpu, locations='location / { return 200 "hello\\n"; }'):
    """An nginx upstream (one worker, on core `cpu`) on 127.0.0.1:port serving `locations`
    (nginx config inside `server {}`), its files under work/up. Returns once it accepts."""
    import os
    import subprocess
    d = os.path.join(work, "up")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""worker_processes 1; daemon off; master_process on; user root;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p;
  fastcgi_temp_path %(d)s/f; uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  keepalive_requests 1000000000; keepalive_timeout 300s; default_type text/plain;
  server { listen 127.0.0.1:%(p)d backlog=4096; %(l)s } }
""" % {"d": d, "p": port, "l": locations})
    start(["taskset", "-c", str(cpu), "nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
           os.path.join(d, "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("upstream nginx did not start")


def cpu_rounds(scenarios, target, pid, rounds, warmup, duration, conns, cpu, work, log):
    """CPU per request of each scenario, measured `rounds` times in rotated order: wrk warms up
    for `warmup` s, then runs `duration` s while the utime+stime of process `pid` is read before
    and after. `target(s)` gives (url, [headers]) of scenario s. Returns {s: [(us, rps)]}, or
    raises RuntimeError when a run got no answers or a non-2xx one."""
    import os
    clk_tck = os.sysconf("SC_CLK_TCK")
    results = {s: [] for s in scenarios}
    for r in range(rounds):
        order = scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]
        log("round %d/%d: %s" % (r + 1, rounds, " ".join(order)))
        for s in order:
            url, headers = target(s)
            run_wrk(url, warmup, conns, cpu, headers, os.path.join(work, "warm-%s-%d.txt" % (s, r)))
            time.sleep(0.3)
            t0 = cpu_ticks(pid)
            n, bad, rps = run_wrk(url, duration, conns, cpu, headers,
                                  os.path.join(work, "wrk-%s-%d.txt" % (s, r)))
            t1 = cpu_ticks(pid)
            if n == 0 or bad:
                raise RuntimeError("%s: %d requests, %d non-2xx" % (s, n, bad))
            us = (t1 - t0) * 1e6 / clk_tck / n
            results[s].append((us, rps))
            log("  %-13s %8.0f req/s  %6.2f us CPU/req" % (s, rps, us))
    return results
