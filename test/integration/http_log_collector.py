#!/usr/bin/python3
"""A collector of http_log batches, run as its own process so that tests can kill and restart it.

    python3 http_log_collector.py --record FILE [--port N] [--status-file F]
                                  [--tls-cert C --tls-key K] [--delay-ms N]

Listens on 127.0.0.1:N (0: a free port), prints "PORT n" once listening, answers every POST /
PUT / PATCH over HTTP/1.1 keep-alive. Each request is appended to FILE as one JSON line
{"t": unix time, "method", "path", "headers": {lower name: value}, "body": text, "status"},
flushed before the answer, so a kill loses nothing it answered. The status it answers (and
records) is the integer in the status file when that file exists, else 200. Stdlib only.

As a module: `Collector(tempdir)` starts, kills and restarts it and reads what it recorded.
"""

import argparse
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        status = 200
        status_file = self.server.options.status_file
        if status_file and os.path.exists(status_file):
            try:
                with open(status_file) as f:
                    status = int(f.read().strip() or 200)
            except (OSError, ValueError):
                status = 200
        if self.server.options.record:
            line = json.dumps({
                "t": time.time(), "method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"), "status": status})
            with self.server.record_lock:
                self.server.record_file.write(line + "\n")
                self.server.record_file.flush()
        if self.server.options.delay_ms:
            time.sleep(self.server.options.delay_ms / 1000.0)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def serve(options):
    server = _Server(("127.0.0.1", options.port), _Handler)
    server.options = options
    server.record_lock = threading.Lock()
    server.record_file = open(options.record, "a") if options.record else None
    if options.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(options.tls_cert, options.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.05)


class Collector:
    """The collector as a child process, with what it recorded (for tests)."""

    def __init__(self, directory, name="collector", tls=None, status=None):
        self.record = os.path.join(directory, name + ".jsonl")
        self.status_file = os.path.join(directory, name + ".status")
        self.tls = tls  # (cert_path, key_path)
        self.port = 0
        self.proc = None
        if status is not None:
            self.set_status(status)
        self.start()

    def start(self):
        """Starts (again, on the same port once it has one)."""
        cmd = [sys.executable, os.path.abspath(__file__), "--record", self.record,
               "--port", str(self.port), "--status-file", self.status_file]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            line = self.proc.stdout.readline().decode()
            self.proc.stdout.close()
            if line.startswith("PORT "):
                self.port = int(line.split()[1])
                return
            self.proc.wait()
            # The port may still be held for a moment after a kill: try again.
            if time.monotonic() > deadline:
                raise AssertionError("collector did not start")
            time.sleep(0.05)

    def kill(self):
        """SIGKILL: connections are reset, the port refuses until start()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def close(self):
        self.kill()

    def set_status(self, status):
        tmp = self.status_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(status))
        os.replace(tmp, self.status_file)

    @property
    def url(self):
        return "%s://127.0.0.1:%d/logs" % ("https" if self.tls else "http", self.port)

    def requests(self):
        """Every request received so far (dicts, see the module doc), in order."""
        out = []
        try:
            with open(self.record) as f:
                for line in f:
                    if line.endswith("\n"):
                        out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out

    def entries(self, accepted_only=True):
        """Every log entry received (a batch's array flattened), from requests answered < 400
        unless `accepted_only` is False."""
        out = []
        for r in self.requests():
            if accepted_only and r["status"] >= 400:
                continue
            body = json.loads(r["body"])
            out.extend(body if isinstance(body, list) else [body])
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--record", default="")
    p.add_argument("--status-file", default="")
    p.add_argument("--tls-cert", default="")
    p.add_argument("--tls-key", default="")
    p.add_argument("--delay-ms", type=int, default=0)
    serve(p.parse_args())


if __name__ == "__main__":
    main()
