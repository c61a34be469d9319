"""A real redis-server for the rate-limit integration tests (stdlib only).

  * RedisServer(port=None) - runs `redis-server --port P --save '' --appendonly no` on
    127.0.0.1 (a free port unless given); start() / stop() (SIGKILL, like a crash) /
    restart on the same port; command(*args) speaks RESP over a plain socket.
  * shared_redis() - the Redis that `.ci/run` starts for the whole test run
    (SLUICE_TEST_REDIS_PORT), or None when unset or not answering. Tests that only need *a*
    Redis use it when present; tests that kill Redis always start their own.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import harness


free_port = harness.free_port


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RedisError(Exception):
    pass


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RedisError("bad reply line %r" % line)


def command(port, *args, timeout=2.0):
    """Runs one command on a fresh connection; returns the decoded reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_encode(args))
        with s.makefile("rb") as f:
            return _read_reply(f)


def available():
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self._log = None
        self.log_path = os.path.join(harness.make_tempdir("sluice-redis-"), "redis.log")

    def start(self, timeout=10.0):
        self.stop()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=harness._pdeathsig)
        deadline = time.monotonic() + harness.scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s: %s"
                                     % (self.proc.returncode, open(self.log_path).read()))
            try:
                if command(self.port, "PING", timeout=0.5) == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.01)
        raise AssertionError("redis-server on port %d did not answer" % self.port)

    def stop(self):
        """SIGKILL: clients see their connections reset, as when Redis crashes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args):
        return command(self.port, *args)


def shared_redis():
    """Port of the run-wide Redis (SLUICE_TEST_REDIS_PORT) if it answers, else None."""
    port = os.environ.get("SLUICE_TEST_REDIS_PORT", "").strip()
    if not port:
        return None
    try:
        if command(int(port), "PING", timeout=1.0) == "PONG":
            return int(port)
    except (OSError, ValueError, RedisError):
        pass
    return None
