"""A threaded HTTP/2 test upstream (python3-h2): h2c with prior knowledge, or TLS with ALPN h2.

    up = H2Upstream("h2up", max_concurrent_streams=2)
    up.port, up.requests, up.connections_accepted, up.peak_streams, up.goaway()

Per-stream behaviour from request headers, like harness.Upstream's:
  x-action: echo (default) | stream | consume | hold
    echo    - 200 JSON {upstream, protocol: "HTTP/2", method, path, authority, scheme,
              headers: [[name, value]...] (regular fields, as received), body, body_len,
              trailers: [[name, value]...], conn_id, stream_id}
    stream  - x-bytes: N pattern bytes (byte i = i % 256)
    consume - JSON {bytes, pattern_ok, mismatch_at, trailers}; the body is not stored
    hold    - answers only once .gate is set (the stream stays open meanwhile)
  x-status: N             response status (default 200)
  x-sleep-ms: N           answer N ms after the request ended
  x-trailer: 1            send response trailers `x-trailer-field: t` (and `grpc-status: 0`)
  x-resp-header: "N: v"   extra response header (repeatable)
  x-upstream-goaway: 1    after answering this stream, send GOAWAY(NO_ERROR, this stream)
Connection behaviour (constructor):
  max_concurrent_streams  SETTINGS_MAX_CONCURRENT_STREAMS advertised; a peer opening more gets
                          REFUSED_STREAM (counted in .refused)
  goaway_after=N          when the N-th stream of a connection arrives, send GOAWAY with
                          last_stream_id = that stream, answer streams up to it, ignore (never
                          answer, count in .ignored_after_goaway) any later one, and close the
                          connection once the answered ones are done: the graceful server drain
                          whose later streams a client must retry elsewhere (RFC 9113 6.8)
Every response carries `x-upstream: <name>`. Request header validation is off (tests inspect
what the proxy sent, connection-specific fields included).
"""

import json
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

import harness
from harness import PATTERN, PatternChecker, scaled


class H2UpstreamRequest:
    def __init__(self, conn_id, stream_id, headers):
        self.conn_id = conn_id
        self.stream_id = stream_id
        self.pseudo = {k: v for k, v in headers if k.startswith(":")}
        self.headers = [(k, v) for k, v in headers if not k.startswith(":")]
        self.body = bytearray()
        self.body_len = 0
        self.checker = None
        self.trailers = []
        self.complete = False
        self.answered = False
        self.reset_code = None

    @property
    def method(self):
        return self.pseudo.get(":method")

    @property
    def path(self):
        return self.pseudo.get(":path")

    @property
    def authority(self):
        return self.pseudo.get(":authority")

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<H2UpstreamRequest conn=%d stream=%d %r %r body_len=%d trailers=%r>" % (
            self.conn_id, self.stream_id, self.pseudo, self.headers, self.body_len,
            self.trailers)


def _s(x):
    return x.decode("latin-1") if isinstance(x, bytes) else x


class _Out:
    """A response being sent: headers, then body (memoryview) within flow control, then
    trailers or END_STREAM."""

    def __init__(self, status, headers, body, trailers, not_before, wait_gate, goaway):
        self.status = status
        self.headers = headers
        self.body = memoryview(body)
        self.trailers = trailers
        self.not_before = not_before
        self.wait_gate = wait_gate
        self.goaway = goaway
        self.headers_sent = False


class H2Upstream:
    def __init__(self, name="h2up", max_concurrent_streams=100, goaway_after=None, tls=None,
                 initial_window_size=None, host="127.0.0.1", port=0):
        """tls: (cert_path, key_path) for h2 over TLS (ALPN h2)."""
        self.name = name
        self.max_concurrent_streams = max_concurrent_streams
        self.goaway_after = goaway_after
        self.initial_window_size = initial_window_size
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.requests = []
        self.connections_accepted = 0
        self.active = {}          # conn_id -> open streams now
        self.peak_streams = {}    # conn_id -> most streams open at once
        self.refused = 0
        self.ignored_after_goaway = 0
        self.goaways_sent = 0
        self.errors = []
        self._closed = False
        self._conns = {}          # conn_id -> socket
        self._commands = {}       # conn_id -> list of callables run on the connection's thread
        self.ssl_ctx = None
        self.alpn_seen = []       # TLS: the protocol ALPN selected, per connection
        if tls:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(tls[0], tls[1])
            self.ssl_ctx.set_alpn_protocols(["h2"])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(1024)
        self.host = host
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True, name="h2up-" + name).start()

    # -- public ----------------------------------------------------------------------------

    def endpoint(self, weight=None):
        ep = {"address": self.host, "port": self.port}
        if weight is not None:
            ep["weight"] = weight
        return ep

    def request_count(self):
        with self.lock:
            return len(self.requests)

    def wait_for_requests(self, n, timeout=5.0):
        harness.wait_until(lambda: self.request_count() >= n, timeout,
                           message="h2 upstream %s to receive %d request(s) (has %d)"
                           % (self.name, n, self.request_count()))
        with self.lock:
            return list(self.requests)

    def open_streams(self):
        with self.lock:
            return sum(self.active.values())

    def goaway(self, error_code=0):
        """Sends GOAWAY(last_stream_id = highest stream seen) on every open connection; streams
        already open are still answered; the connection closes when they are done."""
        with self.lock:
            for cid in list(self._conns):
                self._commands.setdefault(cid, []).append(
                    lambda st, code=error_code: st.send_goaway(code))

    def busy_connections(self):
        """Connections with a stream open now."""
        with self.lock:
            return sum(1 for v in self.active.values() if v)

    def reset(self):
        """Forgets requests and counters (peaks restart from what is open now); connection ids
        keep counting."""
        with self.lock:
            self.requests = []
            self.peak_streams = dict(self.active)
            self.refused = 0
            self.ignored_after_goaway = 0
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
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- server ----------------------------------------------------------------------------

    def _accept_loop(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections_accepted += 1
                cid = self.connections_accepted
                self._conns[cid] = conn
                self.active[cid] = 0
                self.peak_streams[cid] = 0
            threading.Thread(target=self._serve, args=(conn, cid), daemon=True,
                             name="h2up-%s-%d" % (self.name, cid)).start()

    def _serve(self, sock, cid):
        st = _ConnState(self, sock, cid)
        try:
            st.run()
        except (OSError, h2.exceptions.H2Error, ssl.SSLError) as e:
            if not self._closed:
                with self.lock:
                    self.errors.append("conn %d: %r" % (cid, e))
        finally:
            with self.lock:
                self._conns.pop(cid, None)
                self.active[cid] = 0
            try:
                sock.close()
            except OSError:
                pass


class _ConnState:
    def __init__(self, server, sock, cid):
        self.server = server
        self.cid = cid
        self.raw = sock
        self.sock = sock
        self.streams = {}   # stream id -> H2UpstreamRequest
        self.out = {}       # stream id -> _Out
        self.nstreams = 0
        self.goaway_last = None  # last_stream_id of the GOAWAY we sent
        self.done = False

    def run(self):
        srv = self.server
        if srv.ssl_ctx is not None:
            self.sock = srv.ssl_ctx.wrap_socket(self.raw, server_side=True)
            with srv.lock:
                srv.alpn_seen.append(self.sock.selected_alpn_protocol())
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: srv.max_concurrent_streams}
        if srv.initial_window_size:
            settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = srv.initial_window_size
        self.conn.update_settings(settings)
        self.conn.increment_flow_control_window(16 * harness.MIB)
        self.flush()
        self.sock.settimeout(0.01)
        while not srv._closed and not self.done:
            with srv.lock:
                cmds = srv._commands.pop(self.cid, [])
            for c in cmds:
                c(self)
            try:
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                self.handle(self.conn.receive_data(data))
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            self.send_pending()
            self.flush()
            if self.goaway_last is not None and not self.out and all(
                    r.answered or r.reset_code is not None or r.stream_id > self.goaway_last
                    for r in self.streams.values()):
                return  # drained after our GOAWAY

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.settimeout(scaled(30))
            try:
                self.sock.sendall(data)
            finally:
                self.sock.settimeout(0.01)

    def send_goaway(self, code=0, last=None):
        if self.goaway_last is not None:
            return
        last = last if last is not None else max(self.streams, default=0)
        self.goaway_last = last
        # Written by hand: h2's state machine would refuse frames on streams after its own
        # GOAWAY, but we keep answering the streams up to `last`.
        self.flush()
        f = GoAwayFrame(0)
        f.last_stream_id = last
        f.error_code = code
        self.sock.settimeout(scaled(30))
        self.sock.sendall(f.serialize())
        self.sock.settimeout(0.01)
        with self.server.lock:
            self.server.goaways_sent += 1

    def _closed_stream(self, sid):
        with self.server.lock:
            self.server.active[self.cid] = max(0, self.server.active[self.cid] - 1)

    def handle(self, events):
        srv = self.server
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                sid = ev.stream_id
                if self.goaway_last is not None and sid > self.goaway_last:
                    with srv.lock:
                        srv.ignored_after_goaway += 1
                    continue
                headers = [(_s(k), _s(v)) for k, v in ev.headers]
                req = H2UpstreamRequest(self.cid, sid, headers)
                with srv.lock:
                    open_now = srv.active[self.cid]
                if open_now >= srv.max_concurrent_streams:
                    with srv.lock:
                        srv.refused += 1
                    self.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                    continue
                self.streams[sid] = req
                self.nstreams += 1
                with srv.lock:
                    srv.requests.append(req)
                    srv.active[self.cid] += 1
                    srv.peak_streams[self.cid] = max(srv.peak_streams[self.cid],
                                                     srv.active[self.cid])
                if (req.header("x-action") or "").lower() == "consume":
                    req.checker = PatternChecker()
                if srv.goaway_after and self.nstreams == srv.goaway_after:
                    self.send_goaway(0, sid)
            elif isinstance(ev, h2.events.DataReceived):
                req = self.streams.get(ev.stream_id)
                if req is not None:
                    if req.checker is not None:
                        req.checker.feed(ev.data)
                    else:
                        req.body += ev.data
                    req.body_len += len(ev.data)
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
            elif isinstance(ev, h2.events.TrailersReceived):
                req = self.streams.get(ev.stream_id)
                if req is not None:
                    req.trailers = [(_s(k), _s(v)) for k, v in ev.headers]
            elif isinstance(ev, h2.events.StreamEnded):
                req = self.streams.get(ev.stream_id)
                if req is not None and not req.complete:
                    req.complete = True
                    self.out[ev.stream_id] = self.respond(req)
            elif isinstance(ev, h2.events.StreamReset):
                req = self.streams.get(ev.stream_id)
                if req is not None and req.reset_code is None and not req.answered:
                    req.reset_code = int(ev.error_code)
                    self._closed_stream(ev.stream_id)
                self.out.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.done = True

    def respond(self, req):
        srv = self.server
        action = (req.header("x-action") or "echo").lower()
        status = int(req.header("x-status") or 200)
        headers = [("x-upstream", srv.name)]
        for extra in req.header_all("x-resp-header"):
            k, _, v = extra.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        if action == "stream":
            n = int(req.header("x-bytes") or 0)
            body = (PATTERN * (n // len(PATTERN) + 1))[:n] if n > len(PATTERN) else PATTERN[:n]
            headers.append(("content-type", "application/octet-stream"))
        elif action == "consume":
            c = req.checker
            body = json.dumps({"upstream": srv.name, "bytes": c.count, "pattern_ok": c.ok,
                               "mismatch_at": c.mismatch_at,
                               "trailers": [[k, v] for k, v in req.trailers]}).encode()
            headers.append(("content-type", "application/json"))
        else:
            body = json.dumps({
                "upstream": srv.name, "protocol": "HTTP/2", "method": req.method,
                "path": req.path, "authority": req.authority,
                "scheme": req.pseudo.get(":scheme"),
                "headers": [[k, v] for k, v in req.headers],
                "body": bytes(req.body).decode("latin-1"), "body_len": req.body_len,
                "trailers": [[k, v] for k, v in req.trailers], "conn_id": req.conn_id,
                "stream_id": req.stream_id}).encode()
            headers.append(("content-type", "application/json"))
        if req.method == "HEAD" or status in (204, 304):
            body = b""
        else:
            headers.append(("content-length", str(len(body))))
        trailers = None
        if req.header("x-trailer") == "1":
            trailers = [("x-trailer-field", "t"), ("grpc-status", "0")]
        sleep_ms = int(req.header("x-sleep-ms") or 0)
        return _Out(status, headers, body, trailers, time.monotonic() + sleep_ms / 1000.0,
                    action == "hold", req.header("x-upstream-goaway") == "1")

    def send_pending(self):
        now = time.monotonic()
        for sid in list(self.out):
            o = self.out[sid]
            if o.not_before > now or (o.wait_gate and not self.server.gate.is_set()):
                continue
            try:
                if not o.headers_sent:
                    self.conn.send_headers(sid, [(":status", str(o.status))] + o.headers,
                                           end_stream=not len(o.body) and not o.trailers)
                    o.headers_sent = True
                while len(o.body):
                    window = min(self.conn.local_flow_control_window(sid),
                                 self.conn.max_outbound_frame_size)
                    if window <= 0:
                        break
                    self.conn.send_data(sid, bytes(o.body[:window]),
                                        end_stream=(window >= len(o.body) and not o.trailers))
                    o.body = o.body[window:]
                    self.flush()
                if len(o.body):
                    continue
                if o.trailers:
                    self.conn.send_headers(sid, o.trailers, end_stream=True)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            del self.out[sid]
            req = self.streams[sid]
            req.answered = True
            self._closed_stream(sid)
            self.flush()
            if o.goaway:
                self.send_goaway(0, sid)
