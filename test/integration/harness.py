"""Stdlib-only helpers for the Sluice integration tests.

Pieces:
  * Sluice       - runs the proxy binary on a generated bootstrap and talks to its admin API.
  * Upstream     - a threaded raw-socket HTTP/1.1 test server whose behaviour is chosen per
                   request by `x-action` and friends (see Upstream's docstring).
  * Conn         - a raw-socket HTTP/1.1 client: send exact bytes, read whole responses.
  * config builders (proxy_config, cluster, listener, ...) producing bootstrap dicts.
  * SluiceTestCase - unittest base class that owns cleanups and prints the proxy's stderr
                   when a test fails.

Everything polls with deadlines; nothing sleeps a fixed time to wait for state.
Every Sluice started through SluiceTestCase is checked after it stops: a sanitizer report
(ASan, LSan, UBSan: `make test-asan`) on its stderr fails the test.
Environment:
  SLUICE_BIN            path of the binary (default: <repo>/bazel-bin/source/exe/sluice)
  SLUICE_TIMEOUT_SCALE  multiply every wait deadline (e.g. 5 under sanitizers); default 1
  SLUICE_KEEP_TMP=1     keep the per-instance temp dirs (config, stderr, access logs)
"""

import base64
import copy
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_HOST = "example.com"

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HARNESS_DIR))
TIMEOUT_SCALE = float(os.environ.get("SLUICE_TIMEOUT_SCALE", "1") or "1")

UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)

HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
              "upgrade", "trailer")


def scaled(seconds):
    """A wait deadline, scaled by SLUICE_TIMEOUT_SCALE (never use it for lower bounds)."""
    return seconds * TIMEOUT_SCALE


def sluice_binary():
    b = os.environ.get("SLUICE_BIN")
    if b:
        return b
    return os.path.join(REPO_ROOT, "bazel-bin", "source", "exe", "sluice")


def _tmp_root():
    return os.environ.get("TEST_TMPDIR") or None


def make_tempdir(prefix="sluice-it-"):
    return tempfile.mkdtemp(prefix=prefix, dir=_tmp_root())


def free_port():
    """A loopback port free right now (for processes that must listen on a known port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def report(msg, *args):
    """A measured figure, printed with the test's output."""
    sys.stderr.write(("  [measured] " + msg + "\n") % args)


def wait_until(predicate, timeout=5.0, interval=0.01, message="condition"):
    """Polls predicate() until it returns a truthy value (returned) or the deadline passes.

    Exceptions raised by the predicate count as "not yet" and are reported on timeout."""
    deadline = time.monotonic() + scaled(timeout)
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc is not None else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s"
                                 % (scaled(timeout), message, extra))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Data pattern for large bodies: byte i of a body is i % 256. Cheap to generate and to verify.
# ---------------------------------------------------------------------------------------------

PATTERN = bytes(range(256)) * 4096  # 1 MiB; a multiple of 256 so every block starts at 0
_PATTERN_EXT = PATTERN + bytes(range(256))


def pattern_blocks(total, block=MIB):
    """Yields memoryviews covering `total` pattern bytes (block <= 1 MiB, multiple of 256)."""
    assert block <= MIB and block % 256 == 0
    mv = memoryview(PATTERN)
    left = total
    while left > 0:
        n = min(block, left)
        yield mv[:n]
        left -= n


class PatternChecker:
    """Streaming verifier for pattern bodies: feed() data in any split; .count and .ok."""

    def __init__(self):
        self.count = 0
        self.mismatch_at = None

    def feed(self, data):
        mv = memoryview(data)
        while len(mv):
            n = min(len(mv), MIB)
            if self.mismatch_at is None:
                o = self.count % 256
                got = bytes(mv[:n])
                if got != _PATTERN_EXT[o:o + n]:
                    exp = _PATTERN_EXT[o:o + n]
                    i = next(i for i in range(n) if got[i] != exp[i])
                    self.mismatch_at = self.count + i
            self.count += n
            mv = mv[n:]

    @property
    def ok(self):
        return self.mismatch_at is None


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 wire helpers shared by the client and the upstream server
# ---------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


class PeerClosed(ProtocolError):
    pass


class BufferedSocket:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self._scratch = bytearray(MIB)
        self.eof = False

    def _fill(self):
        if self.eof:
            return 0
        data = self.sock.recv(MIB)
        if not data:
            self.eof = True
            return 0
        self.buf += data
        return len(data)

    def read_head(self, max_size=16 * MIB):
        """Returns the bytes up to and including the blank line, or None on a clean EOF
        before any byte. Raises PeerClosed on EOF in the middle."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            start = max(0, len(self.buf) - 3)
            if len(self.buf) > max_size:
                raise ProtocolError("head larger than %d bytes" % max_size)
            if not self._fill():
                if not self.buf:
                    return None
                raise PeerClosed("EOF inside message head after %r" % bytes(self.buf[:200]))

    def read_line(self, max_size=65536):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            start = max(0, len(self.buf) - 1)
            if len(self.buf) > max_size:
                raise ProtocolError("line too long")
            if not self._fill():
                raise PeerClosed("EOF while reading a line (have %r)" % bytes(self.buf[:200]))

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise PeerClosed("EOF after %d of %d bytes" % (len(self.buf), n))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_into_sink(self, n, sink):
        """Streams exactly n bytes to sink(memoryview) without holding them all."""
        left = n
        if self.buf:
            take = min(left, len(self.buf))
            sink(memoryview(bytes(self.buf[:take])))
            del self.buf[:take]
            left -= take
        scratch = self._scratch
        mv = memoryview(scratch)
        while left > 0:
            got = self.sock.recv_into(scratch, min(left, len(scratch)))
            if got == 0:
                self.eof = True
                raise PeerClosed("EOF after %d of %d body bytes" % (n - left, n))
            sink(mv[:got])
            left -= got

    def read_until_close(self, sink):
        if self.buf:
            sink(memoryview(bytes(self.buf)))
            self.buf.clear()
        scratch = self._scratch
        mv = memoryview(scratch)
        while not self.eof:
            try:
                got = self.sock.recv_into(scratch)
            except ConnectionResetError:
                self.eof = True
                raise
            if got == 0:
                self.eof = True
                break
            sink(mv[:got])

    def read_chunked(self, sink):
        """Decodes a chunked body into sink; returns the trailer fields as a list."""
        while True:
            line = self.read_line()
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise ProtocolError("bad chunk size line %r" % line)
            if size == 0:
                trailers = []
                while True:
                    t = self.read_line()
                    if not t:
                        return trailers
                    name, _, value = t.partition(b":")
                    trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            self.read_into_sink(size, sink)
            if self.read_exact(2) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")


def parse_head(head):
    """Splits a message head into (start_line, [(name, value), ...]) keeping names raw."""
    lines = head[:-4].split(b"\r\n")
    start = lines[0].decode("latin-1")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError("header line without colon: %r" % line)
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return start, headers


def _hget(headers, name, default=None):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def _hall(headers, name):
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def _tokens(values):
    out = []
    for v in values:
        out.extend(t.strip().lower() for t in v.split(",") if t.strip())
    return out


def is_chunked(headers):
    te = _tokens(_hall(headers, "transfer-encoding"))
    return bool(te) and te[-1] == "chunked"


def chunked(*parts, trailers=None, ext=None):
    """Encodes parts (bytes/str) as a chunked body (empty parts are skipped)."""
    out = bytearray()
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        if not p:
            continue
        out += b"%x" % len(p)
        if ext:
            out += b";" + ext.encode()
        out += b"\r\n" + p + b"\r\n"
    out += b"0\r\n"
    for k, v in (trailers or []):
        out += ("%s: %s\r\n" % (k, v)).encode("latin-1")
    out += b"\r\n"
    return bytes(out)


def build_request(method="GET", path="/", headers=None, body=None, host=DEFAULT_HOST,
                  version="HTTP/1.1"):
    """Builds request bytes. headers: dict or list of pairs, sent as given (case kept).
    Host is added first unless host is None or headers has one. Content-Length is added
    when body is given and neither Content-Length nor Transfer-Encoding is present."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    if isinstance(body, str):
        body = body.encode()
    names = {k.lower() for k, _ in headers}
    out = ["%s %s %s\r\n" % (method, path, version)]
    if host is not None and "host" not in names:
        out.append("Host: %s\r\n" % host)
    for k, v in headers:
        out.append("%s: %s\r\n" % (k, v))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        out.append("Content-Length: %d\r\n" % len(body))
    out.append("\r\n")
    data = "".join(out).encode("latin-1")
    if body:
        data += body
    return data


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------

class Response:
    def __init__(self, version, status, reason, headers, body=b"", trailers=None, interim=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.trailers = trailers or []
        self.interim = interim or []
        self.body_bytes = len(body) if body is not None else 0

    def header(self, name, default=None):
        return _hget(self.headers, name, default)

    def header_all(self, name):
        return _hall(self.headers, name)

    def has_header(self, name):
        return _hget(self.headers, name) is not None

    def connection_tokens(self):
        return _tokens(self.header_all("connection"))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError("response body is not JSON (%s): %r" % (e, self))

    def __repr__(self):
        hs = "".join("\n    %s: %s" % kv for kv in self.headers)
        body = self.body[:600] if self.body is not None else b""
        more = ""
        if self.body is not None and len(self.body) > 600:
            more = "...(%d bytes)" % len(self.body)
        return "<Response %s %s %s%s\n  body=%r%s>" % (self.version, self.status, self.reason,
                                                        hs, body, more)


class Conn:
    """One client TCP connection with exact-byte control.

        c = Conn(port)
        r = c.request("GET", "/x", headers={"X-A": "1"})
        c.send(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"); r = c.read_response()
        assert c.wait_closed()
    """

    def __init__(self, port, host="127.0.0.1", timeout=10.0, tls=None, sni=None):
        """tls: an ssl.SSLContext to speak TLS with (sni: the server name to send, None for
        none); the handshake is done when the constructor returns."""
        self.port = port
        self.timeout = scaled(timeout)
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=sni)
        self.bs = BufferedSocket(self.sock)
        self.unexpected = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_request(self, method="GET", path="/", headers=None, body=None, host=DEFAULT_HOST,
                     version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, host, version))

    def request(self, method="GET", path="/", headers=None, body=None, host=DEFAULT_HOST,
                version="HTTP/1.1", sink=None):
        self.send_request(method, path, headers, body, host, version)
        return self.read_response(method=method, sink=sink)

    def read_response(self, method="GET", sink=None, interim=False):
        """Reads one response. 1xx responses are collected in .interim and skipped unless
        interim=True (then the 1xx itself is returned). With sink, body bytes go to
        sink(memoryview) instead of .body (body_bytes still counts them)."""
        interims = []
        while True:
            head = self.bs.read_head()
            if head is None:
                raise PeerClosed("connection closed before a response (method %s)" % method)
            start, headers = parse_head(head)
            parts = start.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ProtocolError("bad status line %r" % start)
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            resp = Response(version, status, reason, headers)
            if 100 <= status < 200:
                if interim:
                    return resp
                interims.append(resp)
                continue
            break
        resp.interim = interims
        buf = bytearray()
        count = [0]

        def collect(mv):
            count[0] += len(mv)
            if sink is not None:
                sink(mv)
            else:
                buf.extend(mv)

        if method == "HEAD" or status in (204, 304):
            pass
        elif _hall(headers, "transfer-encoding"):
            if not is_chunked(headers):
                raise ProtocolError("response transfer-encoding not ending in chunked: %r"
                                    % resp)
            resp.trailers = self.bs.read_chunked(collect)
        elif _hget(headers, "content-length") is not None:
            self.bs.read_into_sink(int(_hget(headers, "content-length")), collect)
        else:
            self.bs.read_until_close(collect)
        resp.body = bytes(buf) if sink is None else None
        resp.body_bytes = count[0]
        return resp

    def wait_closed(self, timeout=5.0):
        """True if the peer closes (EOF or RST) within timeout; bytes received meanwhile are
        kept in .unexpected. False if the connection is still open at the deadline."""
        deadline = time.monotonic() + scaled(timeout)
        if self.bs.buf:
            self.unexpected += bytes(self.bs.buf)
            self.bs.buf.clear()
        if self.bs.eof:
            return True
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not data:
                    self.bs.eof = True
                    return True
                self.unexpected += data
        except (ConnectionResetError, BrokenPipeError):
            self.bs.eof = True
            return True
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass

    def is_open(self):
        """Non-blocking check: False if the peer has already closed."""
        try:
            self.sock.setblocking(False)
            try:
                data = self.sock.recv(1, socket.MSG_PEEK)
                return bool(data)
            except BlockingIOError:
                return True
            except OSError:
                return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(port, method="GET", path="/", headers=None, body=None, host=DEFAULT_HOST,
            version="HTTP/1.1", timeout=10.0, sink=None):
    """One request on a fresh connection, which is then closed."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, path, headers, body, host, version, sink=sink)


def connect_refused(port, host="127.0.0.1"):
    """True if a TCP connect to port is refused right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


class DeadPort:
    """A TCP port that refuses connections: bound (so nobody else takes it), never listening."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Upstream test server
# ---------------------------------------------------------------------------------------------

class UpstreamRequest:
    def __init__(self, method, target, version, headers, conn_id, seq):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.conn_id = conn_id
        self.seq = seq
        self.body = None
        self.body_len = 0
        self.trailers = []
        self.complete = False

    @property
    def path(self):
        return self.target

    def header(self, name, default=None):
        return _hget(self.headers, name, default)

    def header_all(self, name):
        return _hall(self.headers, name)

    def __repr__(self):
        return "<UpstreamRequest %s %s %s conn=%d headers=%r body_len=%d>" % (
            self.method, self.target, self.version, self.conn_id, self.headers, self.body_len)


class Upstream:
    """Threaded HTTP/1.1 test server on 127.0.0.1:<free port>.

    Per-request behaviour comes from request headers (they pass through the proxy):
      x-action: echo (default) | fixed | stream | consume | hold | close | garbage | truncate
        echo    - 200 JSON {upstream, method, path, version, headers: [[name, value]...],
                  body, body_len, trailers: [[name, value]...] (of a chunked request body),
                  conn_id, seq}; header names exactly as received
        fixed   - the body from `x-body` (latin-1), or `x-body-b64` (base64 of any bytes), or the
                  server's fixed_body; content-type `x-content-type` (empty: none), default
                  text/plain
        stream  - x-bytes: N pattern bytes (byte i = i % 256), generated on the fly
        consume - reads the body without storing it; JSON {bytes, pattern_ok, mismatch_at}
        hold    - chunked response: sends b"first-part", waits for .gate, sends b"second-part"
        close   - reads the request, closes the connection without answering
        garbage - reads the request, answers b"NOT HTTP AT ALL\\r\\n\\r\\n" and closes
        truncate - content-length x-bytes (default 1000), sends half of it, closes
        grpc    - a gRPC server over HTTP/1.1: echoes the request's gRPC frames back in a chunked
                  200 `application/grpc` response whose trailers carry grpc-status
                  (x-grpc-status, default 0; or the server's .grpc_status when set),
                  grpc-message (x-grpc-message) and each `x-grpc-trailer: name: value`; with
                  x-grpc-trailers-only: 1 (or a non-zero .grpc_status), a trailers-only response
                  (the status in the headers, no body)
      x-status: N           response status (default 200)
      x-sleep-ms: N         sleep after reading the request, before answering
      x-read-delay-ms: N    sleep before reading the request body
      x-read-gate: 1        wait for .gate (set by the test) before reading the request body
      x-chunked: 1          chunked response instead of content-length
      x-no-length: 1        neither content-length nor chunked: body delimited by close
      x-trailer: 1          with x-chunked, send a trailer `x-trailer-field: t`
      x-resp-header: "Name: value"   extra response header (repeatable)
      x-close-after: 1      send `connection: close` and close after the response
    Every response carries `x-upstream: <name>`.
    Counters: connections_accepted, requests (list of UpstreamRequest), bytes_received,
    bytes_sent (live progress counters, updated while streaming).
    """

    def __init__(self, name="upstream", default_action="echo", fixed_body=None, host="127.0.0.1",
                 port=0):
        self.name = name
        self.default_action = default_action
        self.fixed_body = fixed_body if fixed_body is not None else (
            "hello from %s\n" % name).encode()
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.requests = []
        self.connections_accepted = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.errors = []
        self.grpc_status = None  # x-action grpc: overrides x-grpc-status (trailers-only if != 0)
        self._conns = set()
        self._closed = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))  # a fixed port lets a test restart an upstream in place
        self.sock.listen(1024)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="upstream-" + name,
                                        daemon=True)
        self._thread.start()

    # -- public helpers -------------------------------------------------------------------

    def endpoint(self, weight=None):
        ep = {"address": self.host, "port": self.port}
        if weight is not None:
            ep["weight"] = weight
        return ep

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def request_count(self):
        with self.lock:
            return len(self.requests)

    def last_request(self):
        with self.lock:
            return self.requests[-1] if self.requests else None

    def wait_for_requests(self, n, timeout=5.0):
        wait_until(lambda: self.request_count() >= n, timeout,
                   message="upstream %s to receive %d request(s) (has %d)"
                   % (self.name, n, self.request_count()))
        with self.lock:
            return list(self.requests)

    def reset(self):
        with self.lock:
            self.requests = []
            self.connections_accepted = 0
            self.bytes_received = 0
            self.bytes_sent = 0
        self.gate.clear()

    def close(self):
        self._closed = True
        self.gate.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    # -- server ---------------------------------------------------------------------------

    def _accept_loop(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections_accepted += 1
                conn_id = self.connections_accepted
                self._conns.add(conn)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn, conn_id),
                             name="upstream-%s-%d" % (self.name, conn_id), daemon=True).start()

    def _serve(self, conn, conn_id):
        bs = BufferedSocket(conn)
        seq = 0
        try:
            while not self._closed:
                head = bs.read_head()
                if head is None:
                    return
                start, headers = parse_head(head)
                parts = start.split(" ")
                if len(parts) != 3:
                    raise ProtocolError("bad request line %r" % start)
                req = UpstreamRequest(parts[0], parts[1], parts[2], headers, conn_id, seq)
                seq += 1
                with self.lock:
                    self.requests.append(req)
                if not self._handle(bs, req):
                    return
        except (OSError, ProtocolError) as e:
            if not self._closed:
                with self.lock:
                    self.errors.append(repr(e))
        finally:
            with self.lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _read_body(self, bs, req, sink):
        def counting(mv):
            with self.lock:
                self.bytes_received += len(mv)
            req.body_len += len(mv)
            sink(mv)

        if is_chunked(req.headers):
            req.trailers = bs.read_chunked(counting)
        else:
            cl = req.header("content-length")
            if cl is not None:
                bs.read_into_sink(int(cl), counting)
        req.complete = True

    def _send(self, conn, data):
        conn.sendall(data)
        with self.lock:
            self.bytes_sent += len(data)

    def _handle(self, bs, req):
        """Serves one request; returns True to keep the connection open."""
        conn = bs.sock
        action = (req.header("x-action") or self.default_action).strip().lower()
        delay = int(req.header("x-read-delay-ms") or 0)
        if delay:
            time.sleep(delay / 1000.0)
        if req.header("x-read-gate") == "1":
            self.gate.wait(scaled(60))

        checker = None
        body = bytearray()
        if action == "consume":
            checker = PatternChecker()
            self._read_body(bs, req, checker.feed)
        else:
            self._read_body(bs, req, body.extend)
            req.body = bytes(body)

        sleep_ms = int(req.header("x-sleep-ms") or 0)
        if sleep_ms:
            deadline = time.monotonic() + sleep_ms / 1000.0
            while not self._closed and time.monotonic() < deadline:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

        if action == "close":
            return False
        if action == "garbage":
            self._send(conn, b"NOT HTTP AT ALL\r\n\r\n")
            return False
        if action == "truncate":
            total = int(req.header("x-bytes") or 1000)
            self._write_head(conn, 200, [("x-upstream", self.name)], "length", total, False)
            self._send(conn, PATTERN[:total // 2])
            return False

        conn_tokens = _tokens(req.header_all("connection"))
        keep = "close" not in conn_tokens and (req.version == "HTTP/1.1"
                                               or "keep-alive" in conn_tokens)
        if req.header("x-close-after") == "1":
            keep = False
        status = int(req.header("x-status") or 200)
        headers = [("x-upstream", self.name)]
        for extra in req.header_all("x-resp-header"):
            k, _, v = extra.partition(":")
            headers.append((k.strip(), v.strip()))
        head_only = req.method == "HEAD"
        no_body_status = status in (204, 304) or 100 <= status < 200
        mode = "length"
        if req.header("x-chunked") == "1":
            mode = "chunked"
        if req.header("x-no-length") == "1":
            mode = "close"
            keep = False
        if not keep:
            headers.append(("Connection", "close"))

        if action == "stream":
            total = int(req.header("x-bytes") or 0)
            self._write_head(conn, status, headers, mode, total, head_only or no_body_status)
            if not (head_only or no_body_status):
                for block in pattern_blocks(total):
                    if self._closed:
                        return False
                    if mode == "chunked":
                        self._send(conn, b"%x\r\n" % len(block))
                        self._send(conn, block)
                        self._send(conn, b"\r\n")
                    else:
                        self._send(conn, block)
                if mode == "chunked":
                    self._send(conn, b"0\r\n\r\n")
            return keep

        if action == "grpc":
            return self._grpc(conn, req, bytes(body), keep, headers)

        if action == "hold":
            self._write_head(conn, status, headers, "chunked", 0, head_only)
            if head_only:
                return keep
            self._send(conn, b"a\r\nfirst-part\r\n")
            self.gate.wait(scaled(30))
            self._send(conn, b"b\r\nsecond-part\r\n0\r\n\r\n")
            return keep

        if action == "consume":
            payload = {"upstream": self.name, "bytes": checker.count, "pattern_ok": checker.ok,
                       "mismatch_at": checker.mismatch_at}
            out = json.dumps(payload).encode()
            headers.append(("Content-Type", "application/json"))
        elif action == "fixed":
            xb = req.header("x-body")
            xb64 = req.header("x-body-b64")
            if xb64 is not None:
                out = base64.b64decode(xb64)
            else:
                out = xb.encode("latin-1") if xb is not None else self.fixed_body
            ctype = req.header("x-content-type", "text/plain")
            if ctype:
                headers.append(("Content-Type", ctype))
        else:  # echo
            payload = {
                "upstream": self.name,
                "method": req.method,
                "path": req.target,
                "version": req.version,
                "headers": [[k, v] for k, v in req.headers],
                "body": req.body.decode("latin-1"),
                "body_len": req.body_len,
                "trailers": [[k, v] for k, v in req.trailers],
                "conn_id": req.conn_id,
                "seq": req.seq,
            }
            out = json.dumps(payload).encode()
            headers.append(("Content-Type", "application/json"))
        skip_body = head_only or no_body_status
        self._write_head(conn, status, headers, mode, len(out), skip_body)
        if not skip_body:
            if mode == "chunked":
                half = len(out) // 2
                data = chunked(out[:half], out[half:],
                               trailers=[("x-trailer-field", "t")]
                               if req.header("x-trailer") == "1" else None)
                self._send(conn, data)
            else:
                self._send(conn, out)
        return keep

    def _grpc(self, conn, req, body, keep, headers):
        status = req.header("x-grpc-status") or "0"
        trailers_only = req.header("x-grpc-trailers-only") == "1"
        if self.grpc_status is not None:
            status = str(self.grpc_status)
            trailers_only = trailers_only or self.grpc_status != 0
        meta = [("grpc-status", status)]
        if req.header("x-grpc-message") is not None:
            meta.append(("grpc-message", req.header("x-grpc-message")))
        for extra in req.header_all("x-grpc-trailer"):
            k, _, v = extra.partition(":")
            meta.append((k.strip(), v.strip()))
        headers = headers + [("Content-Type", "application/grpc")]
        if trailers_only:
            self._write_head(conn, 200, headers + meta, "length", 0, False)
            return keep
        self._write_head(conn, 200, headers, "chunked", 0, False)
        # One chunk per gRPC frame of the request (5-byte prefix + message).
        pos = 0
        out = bytearray()
        while pos + 5 <= len(body):
            n = int.from_bytes(body[pos + 1:pos + 5], "big")
            f = body[pos:pos + 5 + n]
            out += b"%x\r\n" % len(f) + f + b"\r\n"
            pos += 5 + n
        out += b"0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                     for k, v in meta) + b"\r\n"
        self._send(conn, bytes(out))
        return keep

    def _write_head(self, conn, status, headers, mode, length, no_body):
        reason = http.client.responses.get(status, "Unknown")
        lines = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
        for k, v in headers:
            lines.append("%s: %s\r\n" % (k, v))
        if mode == "chunked":
            lines.append("Transfer-Encoding: chunked\r\n")
        elif mode == "length" and not (100 <= status < 200 or status == 204):
            lines.append("Content-Length: %d\r\n" % length)
        lines.append("\r\n")
        self._send(conn, "".join(lines).encode("latin-1"))


# ---------------------------------------------------------------------------------------------
# Config builders (bootstrap dicts; field names are the proto field names)
# ---------------------------------------------------------------------------------------------

def endpoint(target, weight=None):
    """target: Upstream, DeadPort, int port, or an endpoint dict."""
    if isinstance(target, dict):
        return dict(target)
    port = target if isinstance(target, int) else target.port
    ep = {"address": "127.0.0.1", "port": port}
    if weight is not None:
        ep["weight"] = weight
    return ep


def cluster(name, targets, lb_policy=None, **extra):
    """targets: list of Upstream / port / (Upstream, weight) / endpoint dicts."""
    eps = []
    for t in targets:
        if isinstance(t, tuple):
            eps.append(endpoint(t[0], t[1]))
        else:
            eps.append(endpoint(t))
    c = {"name": name, "endpoints": eps}
    if lb_policy:
        c["lb_policy"] = lb_policy
    c.update(extra)
    return c


def listener(name="public", route_table="main", limits=None, access_log=None, **extra):
    ln = {"name": name, "address": {"host": "127.0.0.1", "port": 0}, "route_table": route_table}
    if limits:
        ln["limits"] = limits
    if access_log:
        ln["access_log"] = {"path": access_log}
    ln.update(extra)
    return ln


def route(prefix=None, cluster=None, name=None, path=None, regex=None, **kw):
    """A route with a RouteMatch from prefix/path/regex (+ methods/headers/query_parameters/
    case_sensitive in kw) and an action: cluster=..., or route={...}, direct_response={...},
    redirect={...} in kw."""
    match = {}
    if prefix is not None:
        match["prefix"] = prefix
    if path is not None:
        match["path"] = path
    if regex is not None:
        match["regex"] = regex
    for k in ("methods", "headers", "query_parameters", "case_sensitive"):
        if k in kw:
            match[k] = kw.pop(k)
    r = {"match": match}
    if name:
        r["name"] = name
    action = kw.pop("route", None)
    if cluster is not None:
        action = dict(action or {})
        action["cluster"] = cluster
    if action is not None:
        r["route"] = action
    r.update(kw)
    return r


def vhost(name, domains, routes):
    return {"name": name, "domains": list(domains), "routes": list(routes)}


def route_table(name, virtual_hosts):
    return {"name": name, "virtual_hosts": list(virtual_hosts)}


def bootstrap(listeners, route_tables, clusters, **extra):
    b = {"static_resources": {"listeners": list(listeners), "route_tables": list(route_tables),
                              "clusters": list(clusters)}}
    b.update(extra)
    return b


def proxy_config(targets, lb_policy=None, limits=None, access_log=None, route_action=None,
                 cluster_name="backend", route_name="default", cluster_extra=None, **extra):
    """One listener `public` -> route table `main` -> vhost `all` (*) -> route `default`
    (prefix /) -> cluster `backend` with the given targets."""
    action = dict(route_action or {})
    action["cluster"] = cluster_name
    return bootstrap(
        [listener("public", "main", limits=limits, access_log=access_log)],
        [route_table("main", [vhost("all", ["*"], [
            {"name": route_name, "match": {"prefix": "/"}, "route": action}])])],
        [cluster(cluster_name, targets, lb_policy, **(cluster_extra or {}))],
        **extra)


# ---------------------------------------------------------------------------------------------
# The proxy process
# ---------------------------------------------------------------------------------------------

class SluiceStartError(AssertionError):
    pass


_INSTANCES = []
_INSTANCES_LOCK = threading.Lock()


try:  # resolved once in the parent: the child between fork and exec only makes the call
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def _pdeathsig():
    """Runs in the child: die with the test runner (PR_SET_PDEATHSIG = 1), so a killed test
    (e.g. a bazel timeout) never leaves a proxy behind."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGKILL), 0, 0, 0)


# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print when they find
# something (`make test-asan` runs every test against binaries built with them).
SANITIZER_REPORT_RE = re.compile(
    r"^(==\d+==ERROR: (AddressSanitizer|LeakSanitizer)\b|\S+:\d+:\d+: runtime error: |"
    r"SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)\b)", re.M)


def sanitizer_report(text, limit=12000):
    """The first sanitizer report in a process's output (from a little before it), or None."""
    m = SANITIZER_REPORT_RE.search(text or "")
    if m is None:
        return None
    start = max(0, text.rfind("\n", 0, max(0, m.start() - 1)) + 1)
    return text[start:start + limit]


def admin_request(host, port, method, path, body=None, timeout=10.0, headers=None):
    """Returns (status, {lower-case header: value}, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=scaled(timeout))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


class Nginx:
    """A real nginx on loopback (one worker, everything under `tempdir`), serving one server
    block: `listen 127.0.0.1:<port>[ ssl];` followed by `server` (directives and locations).
    Used as an independent upstream (a normalising HTTP server, a TLS server)."""

    BINARY = shutil.which("nginx") or "/usr/sbin/nginx"

    def __init__(self, tempdir, server, ssl=False):
        self.port = free_port()
        self.dir = tempdir
        os.makedirs(os.path.join(tempdir, "logs"), exist_ok=True)
        conf = os.path.join(tempdir, "nginx.conf")
        # As root, nginx chowns its temp dirs to its worker user; in a sandbox "nobody" may not
        # exist in the user namespace, so keep everything root's.
        user = "user root root;" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write("""
%(user)s
worker_processes 1;
error_log %(d)s/logs/error.log;
pid %(d)s/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fastcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  server {
    listen 127.0.0.1:%(port)d%(ssl)s;
%(server)s
  }
}
""" % {"d": tempdir, "port": self.port, "user": user, "ssl": " ssl" if ssl else "",
       "server": server})
        # -e: the error log before the config is read (the default is under /var/log, which a
        # sandboxed test can't write).
        self.proc = subprocess.Popen([self.BINARY, "-e", os.path.join(tempdir, "logs", "error.log"),
                                      "-p", tempdir, "-c", conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._up, 10, message="nginx listening")

    def _up(self):
        if self.proc.poll() is not None:
            log = os.path.join(self.dir, "logs", "error.log")
            detail = open(log).read() if os.path.exists(log) else ""
            raise AssertionError("nginx exited: %s %s" % (self.proc.stderr.read().decode(), detail))
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc.stderr.close()


class Sluice:
    """Runs the proxy on a bootstrap (dict, JSON text or YAML text).

    The admin server is set to 127.0.0.1:0 with address_path=<tmp>/admin unless the
    bootstrap has `admin` (then, if it has no address_path, --admin-address-path is passed).
    """

    def __init__(self, bootstrap, concurrency=1, extra_args=(), binary=None,
                 ready_timeout=20.0, wait_ready=True):
        self.binary = binary or sluice_binary()
        if not os.path.exists(self.binary):
            raise SluiceStartError("sluice binary not found at %r (set SLUICE_BIN)"
                                   % self.binary)
        self.tmpdir = make_tempdir()
        self.address_path = os.path.join(self.tmpdir, "admin")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self._stderr_cache = None
        self._stdout_cache = None
        self.admin_host = None
        self.admin_port = None
        args = []
        if isinstance(bootstrap, str) and bootstrap.lstrip().startswith("{"):
            bootstrap = json.loads(bootstrap)
        if isinstance(bootstrap, dict):
            cfg = copy.deepcopy(bootstrap)
            if "admin" not in cfg:
                cfg["admin"] = {"address": "127.0.0.1", "port": 0,
                                "address_path": self.address_path}
            elif cfg["admin"].get("address_path"):
                self.address_path = cfg["admin"]["address_path"]
            else:
                args += ["--admin-address-path", self.address_path]
            self.config = cfg
            self.config_path = os.path.join(self.tmpdir, "bootstrap.json")
            text = json.dumps(cfg, indent=2)
        else:
            self.config = None
            self.config_path = os.path.join(self.tmpdir, "bootstrap.yaml")
            text = bootstrap
            if re.search(r"^admin\s*:", text, re.M):
                args += ["--admin-address-path", self.address_path]
            else:
                text = text.rstrip("\n") + "\nadmin: {address: 127.0.0.1, port: 0, " \
                    "address_path: %s}\n" % json.dumps(self.address_path)
        with open(self.config_path, "w") as f:
            f.write(text)
        self.cmd = [self.binary, "-c", self.config_path]
        if concurrency is not None:
            self.cmd += ["--concurrency", str(concurrency)]
        self.cmd += args + list(extra_args)
        self._stderr_f = open(self.stderr_path, "wb")
        self._stdout_f = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._stdout_f,
                                     stderr=self._stderr_f, preexec_fn=_pdeathsig)
        self.pid = self.proc.pid
        with _INSTANCES_LOCK:
            _INSTANCES.append(self)
        if wait_ready:
            try:
                self.wait_ready(ready_timeout)
            except BaseException:
                self.stop()
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- startup ----------------------------------------------------------------------------

    def _read_address(self):
        try:
            with open(self.address_path) as f:
                txt = f.read().strip()
        except OSError:
            return None
        m = re.match(r"^\[?([^\[\]]+?)\]?:(\d+)$", txt)
        if not m:
            return None
        return m.group(1), int(m.group(2))

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + scaled(timeout)
        last = "no admin address file yet"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise SluiceStartError("sluice exited with %s during startup\ncmd: %s\n%s"
                                       % (rc, " ".join(self.cmd), self.stderr_tail()))
            addr = self._read_address()
            if addr:
                try:
                    status, _, body = admin_request(addr[0], addr[1], "GET", "/ready", timeout=2)
                    if status == 200:
                        self.admin_host, self.admin_port = addr
                        return
                    last = "/ready -> %d %r" % (status, body)
                except OSError as e:
                    last = "/ready: %r" % (e,)
            if time.monotonic() >= deadline:
                raise SluiceStartError("sluice not ready after %.1fs (%s)\ncmd: %s\n%s"
                                       % (scaled(timeout), last, " ".join(self.cmd),
                                          self.stderr_tail()))
            time.sleep(0.01)

    # -- admin ------------------------------------------------------------------------------

    @property
    def admin_url(self):
        return "http://%s:%d" % (self.admin_host, self.admin_port)

    def admin(self, method, path, body=None, timeout=10.0):
        """(status, headers, body) of an admin request."""
        return admin_request(self.admin_host, self.admin_port, method, path, body, timeout)

    def admin_get(self, path):
        return self.admin("GET", path)

    def admin_json(self, path):
        status, headers, body = self.admin("GET", path)
        if status != 200:
            raise AssertionError("admin GET %s -> %d %r" % (path, status, body))
        try:
            return json.loads(body)
        except ValueError as e:
            raise AssertionError("admin GET %s is not JSON (%s): %r" % (path, e, body[:2000]))

    def listeners(self):
        """{name: "host:port"} from GET /listeners."""
        data = self.admin_json("/listeners")
        return {ln["name"]: ln["address"] for ln in data["listeners"]}

    def listener_port(self, name="public"):
        ls = self.listeners()
        if name not in ls:
            raise AssertionError("listener %r not in /listeners: %r" % (name, ls))
        return int(ls[name].rsplit(":", 1)[1])

    def stats(self):
        """{stat name: value} from /stats?format=json (counters and gauges)."""
        data = self.admin_json("/stats?format=json")
        return {s["name"]: s["value"] for s in data.get("stats", [])}

    def stat(self, name, default=0):
        return self.stats().get(name, default)

    def histograms(self):
        data = self.admin_json("/stats?format=json")
        return {h["name"]: h for h in data.get("histograms", [])}

    def reload(self, bootstrap):
        """Writes `bootstrap` (a dict; this instance's admin settings are kept, since admin
        changes need a restart) as the config file, sends SIGHUP and waits until it is applied
        (server.config_reload moves)."""
        cfg = dict(bootstrap, admin=self.config["admin"])
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        before = self.stat("server.config_reload")
        self.signal(signal.SIGHUP)
        self.wait_stat("server.config_reload", lambda v: v > before)

    def wait_stat(self, name, predicate, timeout=5.0):
        """Polls until predicate(value of stat `name`, default 0) holds; returns the value."""
        holder = {}

        def check():
            holder["v"] = self.stat(name)
            return predicate(holder["v"])
        try:
            wait_until(check, timeout, 0.02, "stat %s" % name)
        except AssertionError as e:
            raise AssertionError("%s; last value %r" % (e, holder.get("v")))
        return holder["v"]

    # -- process ----------------------------------------------------------------------------

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=15.0):
        """Waits for exit, returns the exit code (AssertionError on timeout)."""
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("sluice (pid %d) did not exit within %.1fs\n%s"
                                 % (self.pid, scaled(timeout), self.stderr_tail()))

    def terminate(self, timeout=15.0):
        """SIGTERM, wait for exit, return the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def stop(self, grace=2.0):
        """Stops the process (SIGTERM, then SIGKILL after `grace` seconds: a test may leave a
        request in flight, which a graceful drain would wait for) and removes the temp dir."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(grace))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self._stderr_f, self._stdout_f):
            try:
                f.close()
            except OSError:
                pass
        if self._stderr_cache is None:
            self._stderr_cache = self._read(self.stderr_path)
            self._stdout_cache = self._read(self.stdout_path)
        if os.path.isdir(self.tmpdir) and not os.environ.get("SLUICE_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr(self):
        return self._stderr_cache if self._stderr_cache is not None else self._read(
            self.stderr_path)

    def stdout(self):
        return self._stdout_cache if self._stdout_cache is not None else self._read(
            self.stdout_path)

    def stderr_tail(self, limit=8000):
        err = self.stderr()
        if len(err) > limit:
            err = "...\n" + err[-limit:]
        return "----- sluice stderr (pid %d) -----\n%s\n----- end -----" % (self.pid, err)

    def check_sanitizers(self):
        """Raises AssertionError if a sanitizer reported something on this process's stderr
        (registered as a cleanup after stop(), so leaks reported at exit count too)."""
        report = sanitizer_report(self.stderr())
        if report is not None:
            raise AssertionError("sanitizer report from sluice (pid %d, %s):\n%s"
                                 % (self.pid, " ".join(self.cmd), report))


def run_validate(bootstrap, binary=None, extra_args=(), suffix=None, timeout=30):
    """Runs `sluice --validate -c FILE`; bootstrap is a dict (written as JSON) or text.
    Returns CompletedProcess with text stdout/stderr."""
    d = make_tempdir("sluice-validate-")
    try:
        if isinstance(bootstrap, dict):
            path = os.path.join(d, "bootstrap" + (suffix or ".json"))
            text = json.dumps(bootstrap, indent=2)
        else:
            path = os.path.join(d, "bootstrap" + (suffix or ".yaml"))
            text = bootstrap
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([binary or sluice_binary(), "--validate", "-c", path]
                              + list(extra_args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=scaled(timeout))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# unittest integration
# ---------------------------------------------------------------------------------------------

class SluiceTestCase(unittest.TestCase):
    """Base class: start_* helpers register cleanups; on failure the stderr written by every
    Sluice during the test is printed."""

    maxDiff = 4000

    def run(self, result=None):
        if result is None:
            return super().run(result)
        with _INSTANCES_LOCK:
            offsets = {id(s): len(s.stderr()) for s in _INSTANCES}
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                with _INSTANCES_LOCK:
                    instances = list(_INSTANCES)
                for s in instances:
                    err = s.stderr()[offsets.get(id(s), 0):]
                    if len(err) > 20000:
                        err = "...\n" + err[-20000:]
                    sys.stderr.write("\n----- sluice pid %d stderr during %s -----\n%s"
                                     "\n----- end -----\n" % (s.pid, self.id(), err))
            with _INSTANCES_LOCK:
                _INSTANCES[:] = [s for s in _INSTANCES if s.running()]

    # -- resources ----------------------------------------------------------------------------

    def start_sluice(self, bootstrap, **kw):
        s = Sluice(bootstrap, **kw)
        self.addCleanup(s.check_sanitizers)  # cleanups run last-in first-out: after stop()
        self.addCleanup(s.stop)
        return s

    def start_upstream(self, name="upstream", **kw):
        u = Upstream(name, **kw)
        self.addCleanup(u.close)
        return u

    def dead_port(self):
        d = DeadPort()
        self.addCleanup(d.close)
        return d

    def tempdir(self):
        d = make_tempdir()
        if not os.environ.get("SLUICE_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, d, True)
        return d

    def conn(self, port, **kw):
        c = Conn(port, **kw)
        self.addCleanup(c.close)
        return c

    @classmethod
    def start_class_sluice(cls, bootstrap, **kw):
        s = Sluice(bootstrap, **kw)
        cls.addClassCleanup(s.check_sanitizers)
        cls.addClassCleanup(s.stop)
        return s

    @classmethod
    def start_class_upstream(cls, name="upstream", **kw):
        u = Upstream(name, **kw)
        cls.addClassCleanup(u.close)
        return u

    # -- assertions ---------------------------------------------------------------------------

    def assertStatus(self, resp, status, msg=""):
        self.assertEqual(resp.status, status, "expected status %d, got %r %s"
                         % (status, resp, msg))

    def assertLocalReply(self, resp, status, message_contains=None, request_id_header=True):
        """A Sluice-generated error: status, JSON content type, {"message", "request_id"}."""
        self.assertStatus(resp, status)
        ct = resp.header("content-type") or ""
        self.assertTrue(ct.startswith("application/json"),
                        "local reply must have content-type application/json: %r" % resp)
        body = resp.json()
        self.assertIsInstance(body, dict, "local reply body must be a JSON object: %r" % resp)
        self.assertIsInstance(body.get("message"), str,
                              "local reply body needs a string 'message': %r" % resp)
        self.assertIsInstance(body.get("request_id"), str,
                              "local reply body needs a string 'request_id': %r" % resp)
        self.assertTrue(body["request_id"], "empty request_id in %r" % resp)
        if message_contains is not None:
            self.assertIn(message_contains, body["message"],
                          "local reply message: %r" % resp)
        rid = resp.header("x-request-id")
        if request_id_header:
            self.assertIsNotNone(rid, "local reply without x-request-id header: %r" % resp)
        if rid is not None:
            self.assertEqual(rid, body["request_id"],
                             "x-request-id header differs from the body's request_id: %r"
                             % resp)
        return body

    def assertClosed(self, conn, timeout=5.0, allow_data=False, msg=""):
        closed = conn.wait_closed(timeout)
        self.assertTrue(closed, "connection still open %.1fs later %s" % (scaled(timeout), msg))
        if not allow_data:
            self.assertEqual(conn.unexpected, b"",
                             "unexpected bytes before close %s" % msg)

    def assertOpen(self, conn, msg=""):
        self.assertTrue(conn.is_open(), "connection was closed by the proxy %s" % msg)


PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus(text):
    """Returns (types {family: type}, samples [(name, {label: value}, float)]); raises
    AssertionError on malformed lines."""
    types = {}
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise AssertionError("bad TYPE line %r" % line)
                types[parts[2]] = parts[3]
            continue
        m = PROM_SAMPLE.match(line)
        if not m:
            raise AssertionError("malformed Prometheus sample line %r" % line)
        labels = {}
        if m.group(3):
            pos = 0
            s = m.group(3)
            while pos < len(s):
                lm = PROM_LABEL.match(s, pos)
                if not lm or lm.end() == pos:
                    raise AssertionError("malformed labels in %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        value = m.group(4)
        try:
            v = float(value)
        except ValueError:
            raise AssertionError("bad sample value in %r" % line)
        samples.append((m.group(1), labels, v))
    return types, samples


def echo(resp):
    """Parses an echo-upstream response; returns the payload dict with an extra
    'hdr' = {lower name: value} and 'names' = [raw names]."""
    if resp.status // 100 not in (2, 3, 4, 5):
        raise AssertionError("unexpected response %r" % resp)
    data = resp.json()
    if not isinstance(data, dict) or "headers" not in data:
        raise AssertionError("not an echo response: %r" % resp)
    data["hdr"] = {}
    for k, v in data["headers"]:
        data["hdr"].setdefault(k.lower(), v)
    data["names"] = [k for k, _ in data["headers"]]
    data["all"] = lambda name: [v for k, v in data["headers"] if k.lower() == name.lower()]
    return data


def main():
    unittest.main(verbosity=2)
