"""HTTP/2 helpers for the integration tests: python3-h2 4.1, hyperframe 6 and hpack 4 (Debian).

Pieces:
  * RawH2       - a client speaking raw frames (hyperframe + hpack): send exactly the frames a
                  test wants, protocol violations and floods included, and read what comes back
                  (GOAWAY, RST_STREAM, responses). Floods never block past their deadline.
  * H2Client    - a well-behaved client (h2.connection.H2Connection): requests with bodies,
                  trailers, many streams at once, flow control for large bodies both ways.
  * Front       - "the thing under test" as the tests see it: h2c port, TLS port, HTTP/1.1 port,
                  stats (None when it has none), liveness and RSS. SluiceFront wraps a Sluice;
                  NghttpxFront runs nghttpx (nghttp2's own proxy) as the reference the client
                  code and expectations are validated against.
  * config builders for sluice: h2_listener (listener `http2` options), h2_cluster
    (`protocol: HTTP2`).
  * find_tool / find_h2spec.

The sluice side of the HTTP/2 tests runs unless SLUICE_TEST_H2=0 (see H2_ENABLED). The nghttpx
reference runs with SLUICE_H2_REFERENCE=1.
"""

import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hpack import Decoder, Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

import harness
from harness import MIB, scaled, wait_until

# The sluice HTTP/2 tests run by default; SLUICE_TEST_H2=0 skips them (e.g. to run only the
# nghttpx reference).
H2_ENABLED = os.environ.get("SLUICE_TEST_H2", "1") == "1"  # SLUICE_TEST_H2=0 skips them
# Runs the same clients against nghttpx (nghttp2's proxy) to validate them; reports, asserts less.
REFERENCE_ENABLED = os.environ.get("SLUICE_H2_REFERENCE") == "1"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
               0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED",
               0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
               0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
               0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED"}
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x7, 0x8, 0xb

# SETTINGS identifiers
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

# Connection-specific header fields, never valid in HTTP/2 (RFC 9113 8.2.2).
CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade")


def err_name(code):
    return ERROR_NAMES.get(code, "0x%x" % code) if code is not None else None


def require_h2(cls):
    """Class decorator: the sluice HTTP/2 tests run unless SLUICE_TEST_H2=0."""
    return unittest.skipUnless(
        H2_ENABLED, "SLUICE_TEST_H2=0")(cls)


def require_reference(cls):
    return unittest.skipUnless(
        REFERENCE_ENABLED, "nghttpx reference run: set SLUICE_H2_REFERENCE=1")(cls)


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------

def find_tool(name):
    """Path of an installed tool (PATH, then /usr/sbin, /usr/bin); AssertionError if missing."""
    for p in (shutil.which(name), "/usr/sbin/" + name, "/usr/bin/" + name):
        if p and os.access(p, os.X_OK):
            return p
    raise AssertionError("%s is not installed (tools/setup.sh installs it)" % name)


def repo_root_real():
    """The real checkout this file belongs to (symlinks resolved: under `bazel test` the file is
    a runfiles symlink into the workspace)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def h2spec_candidates():
    out = []
    if os.environ.get("H2SPEC"):
        out.append(os.environ["H2SPEC"])
    # The clone sits next to `shared` (as /work/main does): <clone>/../shared/tools/h2spec/h2spec
    for root in (repo_root_real(), harness.REPO_ROOT, os.environ.get("BUILD_WORKSPACE_DIRECTORY")):
        if root:
            out.append(os.path.normpath(os.path.join(root, "..", "shared", "tools", "h2spec",
                                                     "h2spec")))
    out.append("/work/shared/tools/h2spec/h2spec")
    if shutil.which("h2spec"):
        out.append(shutil.which("h2spec"))
    seen = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def find_h2spec():
    """The h2spec binary; AssertionError naming every place looked at if there is none (the test
    fails: a missing conformance suite must never look like a pass)."""
    tried = h2spec_candidates()
    for p in tried:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise AssertionError(
        "h2spec not found; looked at:\n  %s\nIt lives in the `shared` directory next to the "
        "clone (../shared/tools/h2spec/h2spec from the repo root, see its README.md); or set "
        "H2SPEC=/path/to/h2spec (bazel: --test_env=H2SPEC=...)." % "\n  ".join(tried))


def client_tls_ctx(alpn=("h2",), ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca is not None:
        ctx.load_verify_locations(ca.cert_path if hasattr(ca, "cert_path") else ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _connect(port, host, tls, timeout, sni="localhost"):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=sni)
        if sock.selected_alpn_protocol() != "h2":
            got = sock.selected_alpn_protocol()
            sock.close()
            raise AssertionError("ALPN selected %r, not h2" % got)
    return sock


def request_headers(path="/", method="GET", authority=harness.DEFAULT_HOST, scheme="http",
                    extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path)] + list(extra)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# ---------------------------------------------------------------------------------------------
# Raw frames
# ---------------------------------------------------------------------------------------------

def settings_frame(settings=None, ack=False):
    f = SettingsFrame(0)
    if ack:
        f.flags.add("ACK")
    else:
        f.settings = dict(settings or {})
    return f


class FloodResult:
    def __init__(self):
        self.units = 0          # whole units sent
        self.bytes = 0
        self.seconds = 0.0
        self.peer_closed = False  # EOF / reset / EPIPE seen while sending
        self.stalled = False    # the peer stopped reading (send buffer full until the deadline)

    def __repr__(self):
        return "<flood %d units, %d bytes in %.2fs, peer_closed=%s, stalled=%s>" % (
            self.units, self.bytes, self.seconds, self.peer_closed, self.stalled)


class RawH2:
    """One client connection speaking raw frames. Every frame received is decoded (HEADERS
    through one hpack Decoder, in order) and kept in .frames; SETTINGS are ACKed when
    ack_settings (a client that never ACKs is a test of its own).

        c = RawH2(port)                          # preface + SETTINGS sent
        c.send(c.headers(1, request_headers()))  # frames or bytes
        status, hdrs, body, rst = c.response(1)
        c.flood(PingFrame(0).serialize(), seconds=3, read=False)
        c.finish(); c.goaway, c.closed
    """

    def __init__(self, port, host="127.0.0.1", tls=None, settings=None, preface=True,
                 timeout=10.0, ack_settings=True):
        self.timeout = scaled(timeout)
        self.sock = _connect(port, host, tls, self.timeout)
        self.tls = tls is not None
        self.enc = Encoder()
        self.dec = Decoder()
        self.dec.max_header_list_size = 1 << 30  # we decode what the server sends, whatever size
        self.ack_settings = ack_settings
        self.buf = bytearray()
        self.frames = []
        self.goaway = None
        self.closed = False
        self.reset = False
        self.server_settings = {}
        self._pending_block = None  # (frame, bytearray) of a header block awaiting CONTINUATION
        if preface:
            self.sock.sendall(PREFACE + settings_frame(settings).serialize())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- building --------------------------------------------------------------------------

    def block(self, headers, huffman=True):
        """hpack-encodes headers with this connection's encoder (its dynamic table)."""
        return self.enc.encode(headers, huffman=huffman)

    def headers(self, stream_id, headers, end_stream=True, end_headers=True, priority=None):
        """A HEADERS frame; headers: a list of pairs (encoded here) or an already encoded block."""
        f = HeadersFrame(stream_id)
        f.data = headers if isinstance(headers, (bytes, bytearray)) else self.block(headers)
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        if priority is not None:
            f.flags.add("PRIORITY")
            f.depends_on, f.stream_weight, f.exclusive = priority
        return f

    @staticmethod
    def continuation(stream_id, data=b"", end_headers=False):
        f = ContinuationFrame(stream_id)
        f.data = data
        if end_headers:
            f.flags.add("END_HEADERS")
        return f

    @staticmethod
    def data(stream_id, data=b"", end_stream=False):
        f = DataFrame(stream_id)
        f.data = data
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    @staticmethod
    def rst(stream_id, code=CANCEL):
        f = RstStreamFrame(stream_id)
        f.error_code = code
        return f

    @staticmethod
    def ping(payload=b"\0" * 8, ack=False):
        f = PingFrame(0)
        f.opaque_data = payload
        if ack:
            f.flags.add("ACK")
        return f

    @staticmethod
    def priority(stream_id, depends_on=0, weight=16, exclusive=False):
        f = PriorityFrame(stream_id)
        f.depends_on, f.stream_weight, f.exclusive = depends_on, weight, exclusive
        return f

    @staticmethod
    def window_update(stream_id, increment):
        f = WindowUpdateFrame(stream_id)
        f.window_increment = increment
        return f

    # -- sending ---------------------------------------------------------------------------

    def send(self, *frames):
        data = b"".join(f if isinstance(f, (bytes, bytearray)) else f.serialize() for f in frames)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = self.reset = True
            raise

    def flood(self, unit, count=None, seconds=5.0, read=True, prefix=b""):
        """Sends `prefix`, then the bytes `unit` (one or more serialized frames, or a Frame, or
        a callable i -> bytes of the i-th unit) again and again:
        `count` times, or until `seconds` pass, or until the peer closes; never blocks past the
        deadline (plain TCP only: partial sends keep frame boundaries intact). read=True keeps
        reading (and decoding) what the server sends meanwhile; read=False never reads (a peer
        that does not read its ACKs). Returns a FloodResult."""
        assert not self.tls, "flood() needs a cleartext connection"
        if isinstance(unit, Frame):
            unit = unit.serialize()
        res = FloodResult()
        if callable(unit):  # unit(i) -> bytes of the i-th unit (e.g. a new stream id each)
            make = unit
            per_batch = 1000
        else:
            per_batch = max(1, 65536 // len(unit))
            batch = unit * per_batch

            def make(_i, n=None):
                return unit
        t0 = time.monotonic()
        deadline = t0 + seconds
        pending = memoryview(bytes(prefix))
        pending_units = 0
        sock = self.sock
        sock.setblocking(False)
        try:
            while True:
                if not len(pending):
                    res.units += pending_units
                    if count is not None and res.units >= count:
                        break
                    n = per_batch if count is None else min(per_batch, count - res.units)
                    if callable(unit):
                        pending = memoryview(b"".join(make(res.units + i) for i in range(n)))
                    else:
                        pending = memoryview(batch if n == per_batch else unit * n)
                    pending_units = n
                now = time.monotonic()
                if now >= deadline:
                    res.stalled = True
                    break
                rl = [sock] if read else []
                r, w, _ = select.select(rl, [sock], [], min(0.05, deadline - now))
                if r:
                    if not self._recv_nowait():
                        res.peer_closed = True
                        break
                if w:
                    try:
                        sent = sock.send(pending[:262144])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        res.peer_closed = True
                        self.closed = self.reset = True
                        break
                    res.bytes += sent
                    pending = pending[sent:]
        finally:
            res.seconds = time.monotonic() - t0
            try:
                sock.settimeout(self.timeout)
            except OSError:
                pass
        if res.peer_closed:
            self.closed = True
        self._parse()
        return res

    # -- receiving -------------------------------------------------------------------------

    def _recv_nowait(self):
        """One recv on a readable socket; False on EOF / reset."""
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.closed = self.reset = True
            return False
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _parse(self):
        out = []
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
            self._on_frame(f)
            out.append(f)
        return out

    def _on_frame(self, f):
        self.frames.append(f)
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.server_settings.update(f.settings)
            if self.ack_settings and not self.closed:
                try:
                    self.sock.sendall(settings_frame(ack=True).serialize())
                except OSError:
                    pass
        elif isinstance(f, GoAwayFrame):
            self.goaway = f
        elif isinstance(f, HeadersFrame):
            if "END_HEADERS" in f.flags:
                f.decoded = self._decode(f.data)
            else:
                self._pending_block = (f, bytearray(f.data))
        elif isinstance(f, ContinuationFrame) and self._pending_block is not None:
            hf, blk = self._pending_block
            blk += f.data
            if "END_HEADERS" in f.flags:
                hf.decoded = self._decode(bytes(blk))
                self._pending_block = None

    def _decode(self, data):
        return [(k.decode("latin-1") if isinstance(k, bytes) else k,
                 v.decode("latin-1") if isinstance(v, bytes) else v)
                for k, v in self.dec.decode(data, raw=True)]

    def read_frame(self, timeout=5.0):
        """The next frame, or None on EOF / timeout (see .closed)."""
        deadline = time.monotonic() + scaled(timeout)
        idx = len(self.frames)
        while True:
            if len(self.frames) > idx:
                return self.frames[idx]
            got = self._parse()
            if got:
                continue
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                self.closed = self.reset = True
                return None
            finally:
                try:
                    self.sock.settimeout(self.timeout)
                except OSError:
                    pass
            if not data:
                self.closed = True
                continue
            self.buf += data

    def wait_for(self, predicate, timeout=5.0):
        """Reads until a frame satisfies predicate (returned) or EOF / timeout (None). Frames
        received earlier are checked first."""
        for f in self.frames:
            if predicate(f):
                return f
        deadline = time.monotonic() + scaled(timeout)
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()) / max(harness.TIMEOUT_SCALE, 1))
            if f is None:
                return None
            if predicate(f):
                return f

    def finish(self, timeout=5.0):
        """Reads until the peer closes (True) or timeout (False); GOAWAY lands in .goaway."""
        deadline = time.monotonic() + scaled(timeout)
        while not self.closed:
            if self.read_frame(max(0.0, deadline - time.monotonic()) / max(
                    harness.TIMEOUT_SCALE, 1)) is None and not self.closed:
                return False
        return True

    def stream_frames(self, stream_id):
        return [f for f in self.frames if f.stream_id == stream_id]

    def rst_code(self, stream_id):
        for f in self.frames:
            if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                return f.error_code
        return None

    def response(self, stream_id, timeout=5.0):
        """Waits for the end of stream_id (END_STREAM or RST_STREAM) or connection close.
        Returns (status or None, headers, body bytes, rst code or None)."""
        def ended(f):
            return f.stream_id == stream_id and (
                "END_STREAM" in f.flags or isinstance(f, RstStreamFrame))
        self.wait_for(ended, timeout)
        status, hdrs, body = None, [], bytearray()
        for f in self.stream_frames(stream_id):
            if isinstance(f, HeadersFrame) and getattr(f, "decoded", None) is not None:
                if status is None:
                    hdrs = f.decoded
                    status = int(dict(f.decoded).get(":status", 0)) or None
            elif isinstance(f, DataFrame):
                body += f.data
        return status, hdrs, bytes(body), self.rst_code(stream_id)

    def ping_roundtrip(self, timeout=5.0):
        """True if a PING is answered (the connection still serves)."""
        payload = os.urandom(8)
        try:
            self.send(self.ping(payload))
        except OSError:
            return False
        f = self.wait_for(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags
                          and f.opaque_data == payload, timeout)
        return f is not None


# ---------------------------------------------------------------------------------------------
# Well-behaved client (python3-h2)
# ---------------------------------------------------------------------------------------------

class H2Response:
    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.status = None
        self.headers = []
        self.interim = []
        self.body = bytearray()
        self.body_bytes = 0
        self.trailers = []
        self.ended = False
        self.reset_code = None
        self.sink = None

    def header(self, name, default=None):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        import json
        try:
            return json.loads(bytes(self.body))
        except ValueError as e:
            raise AssertionError("response body is not JSON (%s): %r" % (e, self))

    @property
    def done(self):
        return self.ended or self.reset_code is not None

    def __repr__(self):
        return "<H2Response stream %d status=%s reset=%s headers=%r body=%r%s trailers=%r>" % (
            self.stream_id, self.status, err_name(self.reset_code), self.headers,
            bytes(self.body[:400]), "...(%d bytes)" % self.body_bytes
            if self.body_bytes > 400 else "", self.trailers)


def _s(x):
    return x.decode("latin-1") if isinstance(x, bytes) else x


class H2Client:
    """A correct HTTP/2 client on one connection (h2c prior knowledge, or TLS with ALPN h2).

        c = H2Client(port)
        r = c.request("POST", "/x", headers=[("x-action", "echo")], body=b"abc",
                      trailers=[("x-t", "1")])
        rs = c.requests([("GET", "/a"), ("GET", "/b")])   # concurrent streams
    Body arguments may be bytes or an iterable of bytes blocks (streamed, flow controlled);
    sink=callable receives response body blocks instead of .body.
    """

    def __init__(self, port, host="127.0.0.1", tls=None, authority=harness.DEFAULT_HOST,
                 timeout=15.0, settings=None, scheme=None):
        self.timeout = scaled(timeout)
        self.sock = _connect(port, host, tls, self.timeout)
        self.authority = authority
        self.scheme = scheme or ("https" if tls is not None else "http")
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.conn.increment_flow_control_window(16 * MIB)
        self.streams = {}
        self.goaway = None  # h2.events.ConnectionTerminated
        self.closed = False
        self.events = []
        self._flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.conn.close_connection()
            self._flush()
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _receive_frames(self, data):
        """Feeds python-h2 one whole frame at a time, so that the GOAWAY workaround below
        (back to CLIENT_OPEN) applies before the frames that follow it in the same read."""
        self._rx = getattr(self, "_rx", b"") + data
        while len(self._rx) >= 9:
            n = 9 + int.from_bytes(self._rx[:3], "big")
            if len(self._rx) < n:
                break
            frame, self._rx = self._rx[:n], self._rx[n:]
            for ev in self.conn.receive_data(frame):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
                yield ev

    def _pump(self, timeout):
        """Reads once (up to timeout) and dispatches events; False on EOF."""
        self._flush()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.closed = True
            return False
        for ev in self._receive_frames(data):
            self.events.append(ev)
            sid = getattr(ev, "stream_id", None)
            r = self.streams.get(sid)
            if isinstance(ev, h2.events.ResponseReceived) and r is not None:
                r.headers = [(_s(k), _s(v)) for k, v in ev.headers]
                r.status = int(dict(r.headers)[":status"])
            elif isinstance(ev, h2.events.InformationalResponseReceived) and r is not None:
                r.interim.append([(_s(k), _s(v)) for k, v in ev.headers])
            elif isinstance(ev, h2.events.DataReceived):
                if r is not None:
                    r.body_bytes += len(ev.data)
                    if r.sink is not None:
                        r.sink(ev.data)
                    else:
                        r.body += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived) and r is not None:
                r.trailers = [(_s(k), _s(v)) for k, v in ev.headers]
            elif isinstance(ev, h2.events.StreamEnded) and r is not None:
                r.ended = True
            elif isinstance(ev, h2.events.StreamReset) and r is not None:
                r.reset_code = int(ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
                # python-h2 4.1 moves the whole connection to CLOSED on a GOAWAY and then
                # rejects the DATA of streams the GOAWAY lets finish (RFC 9113 6.8). Keep it
                # open for them; this client never starts a stream after a GOAWAY.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        self._flush()
        return True

    def start(self, method="GET", path="/", headers=(), end_stream=True, authority=None):
        if self.goaway is not None:
            raise harness.PeerClosed("no new stream after GOAWAY %r" % self.goaway)
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme),
                (":authority", authority or self.authority), (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        self.streams[sid] = H2Response(sid)
        self._flush()
        return sid

    def send_body(self, sid, body, trailers=None, deadline=None):
        """Sends body (bytes or iterable of blocks) within flow control, then trailers or
        END_STREAM."""
        deadline = deadline or time.monotonic() + self.timeout
        blocks = [body] if isinstance(body, (bytes, bytearray, memoryview)) else body
        for block in blocks:
            mv = memoryview(block)
            while len(mv):
                r = self.streams[sid]
                if r.done:
                    return False
                window = min(self.conn.local_flow_control_window(sid),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    if time.monotonic() > deadline:
                        raise AssertionError("flow-control window closed for too long on "
                                             "stream %d" % sid)
                    if not self._pump(0.05) and self.closed:
                        raise harness.PeerClosed("connection closed while sending a body")
                    continue
                n = min(window, len(mv))
                self.conn.send_data(sid, bytes(mv[:n]))
                mv = mv[n:]
                self._flush()
        if trailers:
            self.conn.send_headers(sid, list(trailers), end_stream=True)
        else:
            self.conn.end_stream(sid)
        self._flush()
        return True

    def wait(self, sids, timeout=None):
        deadline = time.monotonic() + (scaled(timeout) if timeout else self.timeout)
        while not all(self.streams[s].done for s in sids):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for streams %r: %r" % (
                    [s for s in sids if not self.streams[s].done],
                    [self.streams[s] for s in sids if not self.streams[s].done][:3]))
            if not self._pump(min(left, 0.5)):
                if not all(self.streams[s].done for s in sids):
                    raise harness.PeerClosed("connection closed with streams %r open (goaway %r)"
                                             % ([s for s in sids if not self.streams[s].done],
                                                self.goaway))
        return [self.streams[s] for s in sids]

    def request(self, method="GET", path="/", headers=(), body=None, trailers=None,
                authority=None, sink=None, timeout=None):
        has_body = body is not None or trailers
        sid = self.start(method, path, headers, end_stream=not has_body, authority=authority)
        self.streams[sid].sink = sink
        if has_body:
            self.send_body(sid, body if body is not None else b"", trailers)
        return self.wait([sid], timeout)[0]

    def requests(self, reqs, timeout=None):
        """Concurrent streams: reqs = [(method, path[, headers])]; returns the responses."""
        sids = [self.start(r[0], r[1], r[2] if len(r) > 2 else ()) for r in reqs]
        return self.wait(sids, timeout)

    def ping(self, timeout=5.0):
        payload = os.urandom(8)
        self.conn.ping(payload)
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for ev in self.events:
                if isinstance(ev, h2.events.PingAckReceived) and ev.ping_data == payload:
                    return True
            if not self._pump(0.1):
                return False
        return False


# ---------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------

class Front:
    """What a test talks to. h2c_port: cleartext (HTTP/1.1 and h2 prior knowledge);
    tls_port: TLS with ALPN (h2, http/1.1); ca: the CA to verify with (or None).
    stats(): {name: value} or None when the server has no stats (the reference)."""

    name = "?"
    h2c_port = None
    tls_port = None
    ca = None

    def stats(self):
        return None

    def stat(self, name):
        s = self.stats()
        return None if s is None else s.get(name, 0)

    def alive(self):
        raise NotImplementedError

    def rss_kb(self):
        raise NotImplementedError


class SluiceFront(Front):
    name = "sluice"

    def __init__(self, sluice, h2c_listener="public", tls_listener=None, ca=None):
        self.sluice = sluice
        self.h2c_port = sluice.listener_port(h2c_listener)
        self.tls_port = sluice.listener_port(tls_listener) if tls_listener else None
        self.ca = ca

    def stats(self):
        return self.sluice.stats()

    def alive(self):
        return self.sluice.running()

    def rss_kb(self):
        return self.sluice.rss_kb()


class Nghttpx:
    """nghttpx (nghttp2's reverse proxy) with one worker: frontends h2c (+ HTTP/1.1) and,
    with tls=(cert_path, key_path), TLS (ALPN h2, http/1.1); backends as nghttpx
    `--backend` strings. Extra options are passed through (e.g. "-c", "10")."""

    def __init__(self, backends, tls=None, options=(), tempdir=None):
        self.binary = find_tool("nghttpx")
        self.dir = tempdir or harness.make_tempdir("sluice-nghttpx-")
        self.h2c_port = harness.free_port()
        self.tls_port = harness.free_port() if tls else None
        cmd = [self.binary, "--conf=/dev/null", "--workers=1", "--no-ocsp",
               "--accesslog-file=/dev/null",
               "--errorlog-file=%s" % os.path.join(self.dir, "error.log"),
               "--pid-file=%s" % os.path.join(self.dir, "nghttpx.pid"),
               "--frontend=127.0.0.1,%d;no-tls" % self.h2c_port]
        if tls:
            cmd.append("--frontend=127.0.0.1,%d" % self.tls_port)
        for b in backends:
            cmd.append("--backend=" + b)
        cmd += list(options)
        if tls:
            cmd += [tls[1], tls[0]]  # private key, then certificate
        self.cmd = cmd
        self.log = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=harness._pdeathsig)
        for port in filter(None, (self.h2c_port, self.tls_port)):
            wait_until(lambda: self._up(port), 10, message="nghttpx listening on %d" % port)
        wait_until(self.worker_pid, 10, message="nghttpx worker process")

    def _up(self, port):
        if self.proc.poll() is not None:
            raise AssertionError("nghttpx exited: %s" % self.output())
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    def output(self):
        out = ""
        for fn in ("stdout.log", "error.log"):
            try:
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    out += f.read()[-4000:]
            except OSError:
                pass
        return out

    def worker_pid(self):
        """nghttpx forks one worker process (it does the work; the parent only supervises)."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return None
        return kids[0] if kids else None

    def alive(self):
        w = self.worker_pid()
        return self.proc.poll() is None and w is not None and os.path.exists("/proc/%d" % w)

    def rss_kb(self):
        return rss_kb(self.worker_pid())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nghttpx: SIGTERM = fast shutdown
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if not os.environ.get("SLUICE_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


class NghttpxFront(Front):
    name = "nghttpx"

    def __init__(self, nghttpx, ca=None):
        self.nghttpx = nghttpx
        self.h2c_port = nghttpx.h2c_port
        self.tls_port = nghttpx.tls_port
        self.ca = ca

    def alive(self):
        return self.nghttpx.alive()

    def rss_kb(self):
        return self.nghttpx.rss_kb()


# ---------------------------------------------------------------------------------------------
# Sluice config builders (field names of api/sluice/config/v1/{listener,cluster}.proto)
# ---------------------------------------------------------------------------------------------

def h2_listener(name="public", route_table="main", http2=None, limits=None, access_log=None,
                **extra):
    """A listener with `http2: {enabled: true, ...}` (h2c prior knowledge + HTTP/1.1; with
    tls=..., h2 by ALPN too)."""
    opts = {"enabled": True}
    opts.update(http2 or {})
    return harness.listener(name, route_table, limits=limits, access_log=access_log,
                            http2=opts, **extra)


def h2_cluster(name, targets, **extra):
    """A cluster with `protocol: HTTP2` (h2c; with tls=..., h2 by ALPN)."""
    return harness.cluster(name, targets, protocol="HTTP2", **extra)


def tls_config(issued, alpn=None):
    cfg = {"certificates": [{"cert_chain_file": issued.chain_path,
                             "private_key_file": issued.key_path}]}
    if alpn:
        cfg["alpn"] = list(alpn)
    return cfg


# ---------------------------------------------------------------------------------------------
# A well-behaved bystander: keeps being served while an attack runs on another connection
# ---------------------------------------------------------------------------------------------

class Bystander:
    """Runs requests in a thread on one h2 connection and, alternately, fresh HTTP/1.1
    connections, from start() to stop(); every response must be a 200.

        with Bystander(front) as b:
            attack()
        b.check()  # AssertionError listing the failures, or if nothing was served
    """

    def __init__(self, front, interval=0.02, path="/bystander"):
        self.front = front
        self.interval = interval
        self.path = path
        self.ok = {"h2": 0, "http/1.1": 0}
        self.failures = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.client = H2Client(self.front.h2c_port)
        r = self.client.request("GET", self.path)  # connected and served before the attack
        if r.status != 200:
            raise AssertionError("bystander not served before the attack: %r" % r)
        self._thread = threading.Thread(target=self._run, daemon=True, name="bystander")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        # An attack may end in milliseconds: let the bystander finish at least one request of
        # each kind first (still on the connections it had during the attack).
        deadline = time.monotonic() + scaled(10)
        while (time.monotonic() < deadline and self._thread.is_alive()
               and not (self.ok["h2"] and self.ok["http/1.1"])):
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(scaled(30))
        # And once more after the attack: the same h2 connection, a new h2 connection and a
        # new HTTP/1.1 connection.
        for kind, fn in (("h2 (same connection, after)", lambda: self.client.request(
                "GET", self.path).status),
                         ("h2 (new connection, after)", self._new_h2),
                         ("http/1.1 (new connection, after)", self._h1)):
            try:
                st = fn()
                if st != 200:
                    self.failures.append("%s: status %s" % (kind, st))
            except Exception as e:  # noqa: BLE001 - collected and reported
                self.failures.append("%s: %r" % (kind, e))
        self.client.close()

    def _new_h2(self):
        with H2Client(self.front.h2c_port) as c:
            return c.request("GET", self.path).status

    def _h1(self):
        return harness.request(self.front.h2c_port, "GET", self.path).status

    def _run(self):
        i = 0
        while not self._stop.is_set():
            kind = "h2" if i % 2 == 0 else "http/1.1"
            i += 1
            try:
                st = (self.client.request("GET", self.path, timeout=10).status if kind == "h2"
                      else self._h1())
                if st == 200:
                    self.ok[kind] += 1
                else:
                    self.failures.append("%s during the attack: status %s" % (kind, st))
            except Exception as e:  # noqa: BLE001
                self.failures.append("%s during the attack: %r" % (kind, e))
                if kind == "h2":
                    return  # the connection is gone; __exit__ reports the rest
            self._stop.wait(self.interval)

    def check(self):
        if self.failures:
            raise AssertionError("well-behaved client not served: %s" % "; ".join(
                self.failures[:10]))
        if not (self.ok["h2"] and self.ok["http/1.1"]):
            raise AssertionError("bystander got no answer during the attack: %r" % self.ok)
