"""Small process and socket helpers shared by the Python end-to-end benches
(auth_bench.py, rate_limit_bench.py, resilience_bench.py). Stdlib only."""

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
