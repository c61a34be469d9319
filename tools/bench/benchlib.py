"""Small process and socket helpers shared by the Python end-to-end benches
(auth_bench.py, rate_limit_bench.py, resilience_bench.py). Stdlib only."""

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
