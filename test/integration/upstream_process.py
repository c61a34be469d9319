"""An upstream test server in a process of its own, for tests that kill, restart, freeze and
break upstreams the way real ones fail.

    up = UpstreamProcess("a")          # harness.Upstream (echo etc.) in a child process
    up.port, up.endpoint()
    up.fail(True)                      # every request (health checks too) answers 503
    up.freeze(); up.thaw()             # SIGSTOP / SIGCONT: connects queue, nothing answers
    up.kill()                          # SIGKILL: the kernel resets its connections
    up.restart()                       # a new process on the same port
    up.stop()

Run as a script (`upstream_process.py NAME PORT`) it serves until killed and prints its port.
SIGUSR1 turns failing on, SIGUSR2 off; the child acknowledges each on stdout ("failing" /
"serving"), and fail() returns only then, so no request after it sees the old behaviour.
"""

import os
import select
import signal
import subprocess
import sys
import threading
import time

from harness import scaled

HERE = os.path.dirname(os.path.abspath(__file__))


class UpstreamProcess:
    def __init__(self, name, port=0):
        self.name = name
        self.port = port
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), self.name, str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", "")))
        line = self._read_line(10)
        if not line.isdigit():
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("upstream process %s did not start (%r)" % (self.name, line))
        self.port = int(line)

    def _read_line(self, timeout):
        """One line the child printed, read straight from the pipe (unbuffered, so select()
        sees everything); "" if it exited or printed nothing for `timeout` (scaled) seconds."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + scaled(timeout)
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return ""
            chunk = os.read(fd, 1)
            if not chunk:
                return ""
            line += chunk
        return line.decode().strip()

    def endpoint(self):
        return {"address": "127.0.0.1", "port": self.port}

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def fail(self, on=True):
        """Every request (health checks too) answers 503 from now on (on=False: serves again).
        Returns once the child has switched: it acknowledges the signal on stdout."""
        self._signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        want = "failing" if on else "serving"
        got = self._read_line(10)
        if got != want:
            raise AssertionError("upstream process %s did not acknowledge fail(%s): %r"
                                 % (self.name, on, got))

    def freeze(self):
        self._signal(signal.SIGSTOP)

    def thaw(self):
        self._signal(signal.SIGCONT)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def restart(self):
        self.kill()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        self.thaw()
        self.kill()


def _serve(name, port):
    from harness import Upstream

    class FailableUpstream(Upstream):
        failing = False

        def _handle(self, bs, req):
            if self.failing:
                req.headers = [(k, v) for k, v in req.headers if k.lower() != "x-status"]
                req.headers.append(("x-status", "503"))
            return super()._handle(bs, req)

    up = FailableUpstream(name, port=port)

    # Python runs these on the main thread (between bytecodes); the acknowledgement goes out
    # after the switch, which the serving threads see from then on.
    def on_fail(*_):
        FailableUpstream.failing = True
        print("failing", flush=True)

    def on_recover(*_):
        FailableUpstream.failing = False
        print("serving", flush=True)

    signal.signal(signal.SIGUSR1, on_fail)
    signal.signal(signal.SIGUSR2, on_recover)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(up.port, flush=True)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # die with the test
    except (OSError, AttributeError):
        pass
    while True:
        threading.Event().wait(3600)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
