"""HTTP/2 attacks: each one closes (GOAWAY) or refuses only the offending connection or stream,
moves its counter, keeps sluice's memory bounded, and a well-behaved client on other
connections (h2 and HTTP/1.1) keeps getting 200 during and after (h2_harness.Bystander).

| attack | client does | sluice must | counter |
|---|---|---|---|
| rapid reset (CVE-2023-44487) | HEADERS + RST_STREAM, thousands of streams | GOAWAY, close | http2.premature_reset_close |
| CONTINUATION flood (CVE-2024-27316) | HEADERS without END_HEADERS, then endless empty CONTINUATION | GOAWAY, close | http2.continuation_flood |
| header block too large | HEADERS + 6 CONTINUATION, 96 KB of fields (limit 64 KiB) | stream refused (RST / 431) or GOAWAY, never forwarded | http2.header_overflow |
| HPACK bomb | one 4 KB field in the dynamic table, then 16,000 one-byte references to it (64 MB decoded) | same | http2.header_overflow |
| SETTINGS flood | empty SETTINGS, reading the ACKs | GOAWAY, close | http2.control_flood (or outbound_flood) |
| PING flood | PINGs, never reading the ACKs | close | http2.outbound_flood (or control_flood) |
| PRIORITY flood | PRIORITY on ever new idle streams | GOAWAY, close | http2.control_flood |
| WINDOW_UPDATE flood | WINDOW_UPDATE(0, +1) | GOAWAY, close | http2.control_flood |
| empty DATA flood | DATA frames of length 0 on an open stream | GOAWAY, close | http2.empty_data_flood |
| zero window | SETTINGS_INITIAL_WINDOW_SIZE 0, never a WINDOW_UPDATE, asks for 1 MiB | stream reset after stream_idle_timeout | downstream_rq_idle_timeout |
| too many streams, before SETTINGS ACK | 15 streams open at once, max_concurrent_streams 10 | the extras REFUSED_STREAM, the 10 served | http2.refused_stream |
| too many streams, after SETTINGS ACK | same, once the limit is acknowledged | GOAWAY(PROTOCOL_ERROR): libnghttp2's rule (a connection error, which RFC 9113 5.1.2 allows as well) | http2.protocol_error |
| max_requests_per_connection 5 | 6 requests | GOAWAY(NO_ERROR, last = the 5th) | http2.goaway_sent |

SluiceH2AttackTest run unless SLUICE_TEST_H2=0 (h2_harness.H2_ENABLED).
NghttpxH2AttackTest (SLUICE_H2_REFERENCE=1) runs the same attack clients against nghttpx
(libnghttp2 1.52, Debian) to show the clients work; there only liveness and the bystander are
asserted, what nghttpx did is printed as [measured] lines.
"""

import threading
import time
import unittest

import harness
import h2_harness as H
from h2_harness import (CANCEL, INITIAL_WINDOW_SIZE, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM,
                        RawH2, request_headers)
from harness import SluiceTestCase, bootstrap, route, route_table, vhost

# RSS growth allowed during one attack (the attacks push tens to hundreds of MB at the server).
RSS_LIMIT_KB = 48 * 1024
FLOOD_SECONDS = 4.0
STREAM_IDLE_TIMEOUT_S = 1.0


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """RFC 7541 5.1 integer with an N-bit prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, indexing=True):
    """A literal field with a new name (no Huffman): with incremental indexing (0x40) or
    without (0x00)."""
    name, value = name.encode(), value.encode()
    return (bytes([0x40 if indexing else 0x00]) + hpack_int(len(name), 7) + name
            + hpack_int(len(value), 7) + value)


def hpack_get(path, authority=harness.DEFAULT_HOST):
    """:method GET, :scheme http (static 2, 6), :path and :authority as literals without
    indexing (static names 4 and 1): leaves the dynamic table untouched."""
    a, p = authority.encode(), path.encode()
    return (b"\x82\x86" + b"\x04" + hpack_int(len(p), 7) + p
            + b"\x01" + hpack_int(len(a), 7) + a)


class AttackMixin:
    """The attacks; subclasses provide self.front (h2_harness.Front) with .streams10_port (a
    listener with max_concurrent_streams 10) and .requests5_port (max_requests_per_connection
    5), self.strict (assert sluice's contract) and self.up (the harness.Upstream behind /up)."""

    strict = True

    # -- helpers ---------------------------------------------------------------------------

    def counters(self):
        return self.front.stats()

    def attack(self, name, run, counters, outcome="goaway"):
        """Runs run() -> RawH2 (the attacker's connection, finished) while a bystander is
        served, then checks: the server is alive, RSS grew < RSS_LIMIT_KB, one of `counters`
        went up, and the attacker's fate is `outcome`:
          goaway  - the connection was closed; a GOAWAY arrived unless the server could not
                    send one (the client never read, or a reset discarded it: flood tests)
          closed  - the connection was closed (GOAWAY optional: the attacker never reads)
          refused - the offending stream was not answered 200 (RST_STREAM, 431, or GOAWAY)
        Returns the attacker's RawH2."""
        before = self.counters()
        rss0 = self.front.rss_kb()
        peak = [rss0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], self.front.rss_kb())
                except (OSError, AssertionError, TypeError):
                    pass
                stop.wait(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with H.Bystander(self.front) as by:
                t0 = time.monotonic()
                conn = run()
                secs = time.monotonic() - t0
        finally:
            stop.set()
            sampler.join()
        after = self.counters()
        moved = {c: (after or {}).get(c, 0) - (before or {}).get(c, 0) for c in counters}
        g = conn.goaway
        harness.report(
            "%s %s: %.1fs; attacker closed=%s reset=%s goaway=%s%s; RSS %d -> peak %d KiB "
            "(+%d); bystander ok %r; counters %s", self.front.name, name, secs, conn.closed,
            conn.reset, H.err_name(g.error_code) if g else None,
            " (last stream %d, %r)" % (g.last_stream_id, g.additional_data[:80]) if g else "",
            rss0, peak[0], peak[0] - rss0, by.ok, moved if after is not None else "n/a")
        by.check()
        self.assertTrue(self.front.alive(), "%s died during %s" % (self.front.name, name))
        if not self.strict:
            return conn
        self.assertLess(peak[0] - rss0, RSS_LIMIT_KB, "RSS grew by %d KiB during %s"
                        % (peak[0] - rss0, name))
        self.assertTrue(any(v > 0 for v in moved.values()),
                        "none of %s moved during %s: %r" % (counters, name, moved))
        if outcome in ("goaway", "closed"):
            self.assertTrue(conn.closed, "%s: the attacker's connection is still open" % name)
            if outcome == "goaway" and not conn.reset:
                self.assertIsNotNone(conn.goaway, "%s: closed without a GOAWAY" % name)
                self.assertNotEqual(conn.goaway.error_code, NO_ERROR,
                                    "%s: GOAWAY NO_ERROR for an attack" % name)
        return conn

    def flood_until_closed(self, c, unit, read=True, seconds=FLOOD_SECONDS):
        res = c.flood(unit, seconds=seconds, read=read)
        c.finish(timeout=10)
        harness.report("%s flood: %r", self.front.name, res)
        return c

    def raw(self, port=None, **kw):
        c = RawH2(port or self.front.h2c_port, **kw)
        self.addCleanup(c.close)
        return c

    # -- rapid reset -----------------------------------------------------------------------

    def test_rapid_reset(self):
        def run():
            c = self.raw()

            def unit(i):
                sid = 1 + 2 * i
                return (c.headers(sid, hpack_get("/up/rapid-reset")).serialize()
                        + c.rst(sid, CANCEL).serialize())
            return self.flood_until_closed(c, unit)
        self.attack("rapid reset", run, ["http2.premature_reset_close"])

    # -- header blocks ---------------------------------------------------------------------

    def test_continuation_flood(self):
        def run():
            c = self.raw()
            c.send(c.headers(1, hpack_get("/attack"), end_headers=False))
            return self.flood_until_closed(c, c.continuation(1, b""))
        self.attack("CONTINUATION flood (empty frames)", run,
                    ["http2.continuation_flood", "http2.header_overflow"])

    def test_continuation_huge_header_block(self):
        def run():
            c = self.raw()
            c.send(c.headers(1, hpack_get("/attack"), end_headers=False))
            # ~96 KB of fields (> max_header_list_size 64 KiB) in 7 frames: few enough that
            # libnghttp2's own CONTINUATION count limit (Debian's CVE-2024-28182 fix) is not
            # what stops it; a 2 MiB block is the CONTINUATION flood below.
            field = hpack_literal("x-filler", "a" * 16000, indexing=False)
            frames = [c.continuation(1, field) for _ in range(5)]
            frames.append(c.continuation(1, field, end_headers=True))
            try:
                c.send(*frames)
            except OSError:
                pass
            status, _, _, rst = c.response(1, timeout=10)
            harness.report("%s: huge header block -> status %s, RST %s", self.front.name,
                           status, H.err_name(rst))
            c.finish(timeout=3)
            self.assertNotEqual(status, 200, "a 96 KB header block was served")
            return c
        self.attack("header block over max_header_list_size", run, ["http2.header_overflow"],
                    outcome="refused")

    def test_hpack_bomb(self):
        def run():
            c = self.raw()
            # Stream 1: a legitimate request that leaves a 4 KB field in the dynamic table
            # (6 + 4000 + 32 = 4038 of the default 4096 bytes: it is entry 62 alone).
            c.send(c.headers(1, hpack_get("/attack") + hpack_literal("x-bomb", "b" * 4000)))
            c.response(1, timeout=5)
            # Stream 3: 16,000 one-byte references to entry 62: 16 KB on the wire, 64 MB decoded.
            c.send(c.headers(3, hpack_get("/attack") + b"\xbe" * 16000))
            status, _, _, rst = c.response(3, timeout=10)
            harness.report("%s: HPACK bomb -> status %s, RST %s", self.front.name, status,
                           H.err_name(rst))
            c.finish(timeout=3)
            self.assertNotEqual(status, 200, "a 64 MB header list was served")
            return c
        self.attack("HPACK bomb", run, ["http2.header_overflow"], outcome="refused")

    # -- control frame floods ----------------------------------------------------------------

    def test_settings_flood(self):
        self.attack("SETTINGS flood", lambda: self.flood_until_closed(
            self.raw(), H.settings_frame({})), ["http2.control_flood", "http2.outbound_flood"])

    def test_ping_flood_not_reading(self):
        self.attack("PING flood (ACKs never read)", lambda: self.flood_until_closed(
            self.raw(), RawH2.ping(), read=False),
            ["http2.outbound_flood", "http2.control_flood"], outcome="closed")

    def test_priority_flood(self):
        def run():
            c = self.raw()
            return self.flood_until_closed(
                c, lambda i: RawH2.priority(1 + 2 * i, 0, 16).serialize())
        self.attack("PRIORITY flood", run, ["http2.control_flood"])

    def test_window_update_flood(self):
        self.attack("WINDOW_UPDATE flood", lambda: self.flood_until_closed(
            self.raw(), RawH2.window_update(0, 1)), ["http2.control_flood"])

    def test_rst_stream_flood_on_idle_streams(self):
        """RST_STREAM on streams that were never opened is a connection error of its own
        (PROTOCOL_ERROR); on closed ones it is the 'RST flood' half of control_flood."""
        def run():
            c = self.raw()
            c.send(c.headers(1, hpack_get("/attack")))
            c.response(1)
            return self.flood_until_closed(c, RawH2.rst(1, CANCEL))
        self.attack("RST_STREAM flood", run, ["http2.control_flood", "http2.protocol_error"])

    def test_empty_data_flood(self):
        def run():
            c = self.raw()
            c.send(c.headers(1, request_headers("/attack", "POST"), end_stream=False))
            return self.flood_until_closed(c, RawH2.data(1, b""))
        # While the stream is open the flood limit ends it; once the response completed first
        # (the stream was closed with RST_STREAM(NO_ERROR)), libnghttp2 ends the connection
        # on the first DATA for the closed stream (GOAWAY STREAM_CLOSED: a protocol error).
        self.attack("empty DATA flood", run, ["http2.empty_data_flood", "http2.protocol_error"])

    # -- resources held ---------------------------------------------------------------------

    def test_zero_window_stream_freed_by_stream_idle_timeout(self):
        def run():
            c = self.raw(settings={INITIAL_WINDOW_SIZE: 0})
            c.send(c.headers(1, request_headers("/up/zero-window", extra=[
                ("x-action", "stream"), ("x-bytes", str(harness.MIB))])))
            f = c.wait_for(lambda f: f.stream_id == 1 and (
                isinstance(f, H.RstStreamFrame) or "END_STREAM" in f.flags),
                timeout=STREAM_IDLE_TIMEOUT_S + 10)
            c.ended_by = f
            return c
        t0 = time.monotonic()
        c = self.attack("zero window", run, ["downstream_rq_idle_timeout"], outcome="none")
        elapsed = time.monotonic() - t0
        harness.report("%s: zero-window stream 1 ended by %r after %.1fs", self.front.name,
                       c.ended_by, elapsed)
        if self.strict:
            self.assertIsInstance(c.ended_by, H.RstStreamFrame,
                                  "stream 1 not reset after stream_idle_timeout (frames %r)"
                                  % c.frames[-5:])
            self.assertGreaterEqual(elapsed, STREAM_IDLE_TIMEOUT_S * 0.9)
            self.assertTrue(c.ping_roundtrip(), "the connection itself must stay usable")
            self.front.sluice.wait_stat("downstream_rq_active", lambda v: v == 0)

    def test_streams_beyond_max_concurrent_streams_after_settings_ack(self):
        """The client ACKs the server's SETTINGS (max_concurrent_streams 10) and then opens 15
        streams. libnghttp2 1.52 treats a limit the client acknowledged and broke as a
        connection error: GOAWAY(PROTOCOL_ERROR, "request HEADERS: max concurrent streams
        exceeded"), as nghttpx does (RFC 9113 5.1.2 allows a stream or a connection error). The
        offender's connection goes; nothing is queued; others are served."""
        def run():
            c = self.raw(self.front.streams10_port)
            c.wait_for(lambda f: isinstance(f, H.SettingsFrame) and "ACK" in f.flags)
            c.send(*[c.headers(1 + 2 * i, request_headers("/up/hold", extra=[
                ("x-action", "hold")])) for i in range(15)])
            c.finish(timeout=5)
            return c
        self.up.gate.clear()
        self.addCleanup(self.up.gate.set)
        c = self.attack("15 streams over max_concurrent_streams 10 (after SETTINGS ACK)", run,
                        ["http2.protocol_error"])
        if self.strict:
            self.assertIsNotNone(c.goaway, "no GOAWAY")
            self.assertEqual(c.goaway.error_code, PROTOCOL_ERROR)

    def test_streams_beyond_max_concurrent_streams_before_settings_ack(self):
        """The 15 streams are sent with the preface, before the server's SETTINGS arrive."""
        self._too_many_streams(ack_first=False)

    def _too_many_streams(self, ack_first):
        self.up.gate.clear()
        self.addCleanup(self.up.gate.set)

        def run():
            c = self.raw(self.front.streams10_port)
            if ack_first:
                c.wait_for(lambda f: isinstance(f, H.SettingsFrame) and "ACK" in f.flags)
            held = [c.headers(1 + 2 * i, request_headers("/up/hold", extra=[
                ("x-action", "hold")])) for i in range(15)]
            c.send(*held)
            extra = []
            for i in range(10, 15):
                f = c.wait_for(lambda f, s=1 + 2 * i: f.stream_id == s and isinstance(
                    f, H.RstStreamFrame), timeout=5)
                extra.append(f.error_code if f is not None else None)
            c.extra_codes = extra
            # Under a sanitizer and the bystander's load one PING round trip has been seen to
            # take longer than its wait: a second one tells a slow connection from a dead one
            # (a closed or GOAWAY'd connection fails both, and is asserted separately).
            c.alive_after = c.ping_roundtrip() or c.ping_roundtrip()
            self.up.gate.set()
            c.statuses = [c.response(1 + 2 * i, timeout=10)[0] for i in range(10)]
            return c
        c = self.attack("%d streams over max_concurrent_streams 10 (%s)" % (
            15, "after SETTINGS ACK" if ack_first else "before SETTINGS ACK"), run,
            ["http2.refused_stream"], outcome="none")
        harness.report("%s: extra streams got %r; connection usable %s; goaway %r; first 10 %r",
                       self.front.name, [H.err_name(x) for x in c.extra_codes], c.alive_after,
                       c.goaway, c.statuses)
        if self.strict:
            if ack_first:
                self.assertEqual(c.extra_codes, [REFUSED_STREAM] * 5,
                                 "streams 11..15 must get REFUSED_STREAM (goaway %r)" % c.goaway)
            else:
                # Before the ACK the limit is not in force yet (RFC 9113 6.5.3): a server may
                # still accept a few (libnghttp2 accepts the 11th: nghttpx answers
                # [accepted, REFUSED x4]); every one it does not accept is REFUSED_STREAM.
                self.assertTrue(all(x in (None, REFUSED_STREAM) for x in c.extra_codes)
                                and REFUSED_STREAM in c.extra_codes,
                                "extra streams: %r" % [H.err_name(x) for x in c.extra_codes])
            self.assertTrue(c.alive_after, "refusing streams must not close the connection")
            self.assertIsNone(c.goaway, "refusing streams must not GOAWAY the connection")
            self.assertEqual(c.statuses, [200] * 10)

    def test_max_requests_per_connection(self):
        def run():
            c = self.raw(self.front.requests5_port)
            c.statuses = []
            for i in range(5):
                c.send(c.headers(1 + 2 * i, request_headers("/up/n%d" % i)))
                c.statuses.append(c.response(1 + 2 * i, timeout=5)[0])
            c.wait_for(lambda f: isinstance(f, H.GoAwayFrame), timeout=5)
            try:
                c.send(c.headers(11, request_headers("/up/sixth")))
            except OSError:
                pass
            c.sixth = c.response(11, timeout=2)
            c.finish(timeout=5)
            return c
        c = self.attack("max_requests_per_connection 5", run, ["http2.goaway_sent"],
                        outcome="none")
        harness.report("%s: 5 requests -> %r, GOAWAY %r, 6th -> %r, closed %s", self.front.name,
                       c.statuses, c.goaway, c.sixth[::3], c.closed)
        if self.strict:
            self.assertEqual(c.statuses, [200] * 5)
            self.assertIsNotNone(c.goaway, "no GOAWAY after max_requests_per_connection")
            self.assertEqual((c.goaway.error_code, c.goaway.last_stream_id), (NO_ERROR, 9))
            self.assertNotEqual(c.sixth[0], 200, "stream 11 is past the GOAWAY's last stream")
            self.assertTrue(c.closed, "the connection must close once its streams are done")


def attack_config(upstream):
    """Listener `public` (defaults, stream_idle_timeout 1s), `streams10` (max_concurrent_streams
    10) and `requests5` (max_requests_per_connection 5); /up/... and /bystander -> the upstream,
    the rest a direct response."""
    routes = [route(prefix="/up/", cluster="backend", name="up"),
              route(prefix="/bystander", cluster="backend", name="bystander"),
              route(prefix="/", name="direct", direct_response={"status": 200, "body": "ok\n"})]
    limits = {"stream_idle_timeout": "%gs" % STREAM_IDLE_TIMEOUT_S}
    return bootstrap(
        [H.h2_listener("public", "main", limits=limits),
         H.h2_listener("streams10", "main", limits=limits, http2={"max_concurrent_streams": 10}),
         H.h2_listener("requests5", "main", limits=limits,
                       http2={"max_requests_per_connection": 5})],
        [route_table("main", [vhost("all", ["*"], routes)])],
        [harness.cluster("backend", [upstream])])


@H.require_h2
class SluiceH2AttackTest(AttackMixin, SluiceTestCase):
    strict = True

    def setUp(self):
        # A fresh sluice per attack: counters, RSS and connections start clean.
        self.up = self.start_upstream("attack-up")
        s = self.start_sluice(attack_config(self.up), concurrency=2)
        self.front = H.SluiceFront(s)
        self.front.streams10_port = s.listener_port("streams10")
        self.front.requests5_port = s.listener_port("requests5")


@H.require_reference
class NghttpxH2AttackTest(AttackMixin, SluiceTestCase):
    """The attack clients against nghttpx: they run, nghttpx survives, bystanders are served."""
    strict = False

    def setUp(self):
        self.up = self.start_upstream("attack-up")
        backend = "127.0.0.1,%d" % self.up.port
        ng = H.Nghttpx([backend], options=["--stream-write-timeout=%gs" % STREAM_IDLE_TIMEOUT_S])
        self.addCleanup(ng.stop)
        s10 = H.Nghttpx([backend], options=["-c", "10"])
        self.addCleanup(s10.stop)
        r5 = H.Nghttpx([backend], options=["--frontend-max-requests=5"])
        self.addCleanup(r5.stop)
        self.front = H.NghttpxFront(ng)
        self.front.streams10_port = s10.h2c_port
        self.front.requests5_port = r5.h2c_port


if __name__ == "__main__":
    unittest.main(verbosity=2)
