"""Listener limits: header size/count (431), body size (413, up front and while streaming
chunked bodies), request_headers_timeout (408 + close), idle_timeout (close) and
request_timeout.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/limits_test.py
"""

import select
import time

import harness
from harness import echo, proxy_config


def many_headers(n):
    return [("X-H-%03d" % i, "v%d" % i) for i in range(n)]


class HeaderLimitsTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")

    def start(self, limits=None):
        s = self.start_sluice(proxy_config([self.up], limits=limits))
        return s, s.listener_port("public")

    def test_headers_kb_limit(self):
        s, port = self.start({"max_request_headers_kb": 8})
        r = harness.request(port, headers={"X-Big": "a" * (4 * 1024)})
        self.assertStatus(r, 200, "4 KiB of headers is under an 8 KiB limit")
        r = harness.request(port, headers={"X-Big": "a" * (10 * 1024)})
        self.assertLocalReply(r, 431)
        self.assertEqual(self.up.request_count(), 1, "the 431 request must not reach upstream")

    def test_headers_kb_limit_counts_all_headers(self):
        s, port = self.start({"max_request_headers_kb": 8})
        r = harness.request(port, headers=[("X-Part-%d" % i, "b" * 1000) for i in range(12)])
        self.assertLocalReply(r, 431)

    def test_headers_kb_default_is_60(self):
        s, port = self.start()
        value = "c" * (40 * 1024)
        r = harness.request(port, headers={"X-Big": value})
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["hdr"]["x-big"], value, "big header forwarded intact")
        r = harness.request(port, headers={"X-Big": "c" * (70 * 1024)})
        self.assertLocalReply(r, 431)

    def test_headers_count_limit(self):
        s, port = self.start({"max_headers_count": 10})
        r = harness.request(port, headers=many_headers(5))
        self.assertStatus(r, 200)
        r = harness.request(port, headers=many_headers(20))
        self.assertLocalReply(r, 431)

    def test_headers_count_default_is_100(self):
        s, port = self.start()
        r = harness.request(port, headers=many_headers(50))
        self.assertStatus(r, 200)
        self.assertEqual(len([n for n in echo(r)["names"] if n.startswith("x-h-")]), 50)
        r = harness.request(port, headers=many_headers(150))
        self.assertLocalReply(r, 431)


class BodyLimitsTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")
        self.sluice = self.start_sluice(
            proxy_config([self.up], limits={"max_request_body_bytes": 1000}))
        self.port = self.sluice.listener_port("public")

    def test_content_length_at_limit_accepted(self):
        r = harness.request(self.port, "POST", "/", body=b"x" * 1000)
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body_len"], 1000)

    def test_content_length_over_limit_rejected_up_front(self):
        c = self.conn(self.port)
        # Only the head is sent: the 413 must come from the Content-Length alone.
        c.send(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")
        r = c.read_response()
        self.assertLocalReply(r, 413)
        self.assertEqual(self.up.request_count(), 0, "a 413 request must not reach upstream")

    def test_huge_content_length_rejected(self):
        c = self.conn(self.port)
        c.send(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1099511627776\r\n\r\n")
        self.assertLocalReply(c.read_response(), 413)

    def test_chunked_at_limit_accepted(self):
        c = self.conn(self.port)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + harness.chunked(b"a" * 400, b"b" * 400, b"c" * 200))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body_len"], 1000)

    def test_chunked_over_limit_rejected_while_streaming(self):
        c = self.conn(self.port)
        c.send(b"POST /chunky HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(4):  # 1600 bytes > 1000, body never terminated
                c.send(b"190\r\n" + b"z" * 400 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        self.assertLocalReply(r, 413)
        for req in self.up.requests:
            self.assertFalse(req.complete and req.body_len > 1000,
                             "upstream received more than the limit: %r" % req)

    def test_expect_continue_over_limit(self):
        c = self.conn(self.port)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        # The Content-Length is checked up front, so the final 413 comes without the body
        # (whether a 100 Continue precedes it is not specified; read_response skips 1xx).
        r = c.read_response()
        self.assertLocalReply(r, 413)
        self.assertEqual(self.up.request_count(), 0)


class TimeoutsTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")

    def start(self, **limits):
        s = self.start_sluice(proxy_config([self.up], limits=limits))
        return s, s.listener_port("public")

    def test_request_headers_timeout(self):
        s, port = self.start(request_headers_timeout="1s")
        c = self.conn(port)
        t0 = time.monotonic()
        c.send(b"GET /slow HTTP/1.1\r\nHost: example.com\r\nX-Half: ")
        r = c.read_response()
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 408, request_id_header=False)
        self.assertGreaterEqual(elapsed, 0.9, "408 came before the 1s timeout")
        self.assertLess(elapsed, harness.scaled(4), "408 came far too late")
        self.assertClosed(c, msg="after 408")
        self.assertEqual(self.up.request_count(), 0)
        s.wait_stat("downstream_cx_header_timeout", lambda v: v == 1)

    def test_request_headers_timeout_is_not_reset_by_trickle(self):
        s, port = self.start(request_headers_timeout="1s")
        c = self.conn(port)
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        # A slowloris: one more header byte every 100ms. The deadline counts from the first
        # byte, so the 408 must still come after ~1s.
        deadline = t0 + harness.scaled(5)
        while time.monotonic() < deadline:
            try:
                c.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([c.sock], [], [], 0.1)
            if readable:
                break
        r = c.read_response()
        self.assertLocalReply(r, 408, request_id_header=False)
        self.assertLess(time.monotonic() - t0, harness.scaled(3),
                        "trickled bytes must not extend the header timeout")

    def test_stream_idle_timeout_ends_a_stalled_body(self):
        # Headers complete, then the body stalls: 408 after stream_idle_timeout, then close.
        s, port = self.start(stream_idle_timeout="1s")
        c = self.conn(port)
        t0 = time.monotonic()
        c.send(b"POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        r = c.read_response()
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 408)
        self.assertGreaterEqual(elapsed, 0.9, "408 came before the 1s idle timeout")
        self.assertLess(elapsed, harness.scaled(4), "408 came far too late")
        self.assertClosed(c, msg="after the idle 408")
        s.wait_stat("downstream_rq_idle_timeout", lambda v: v == 1)

    def test_stream_idle_timeout_is_reset_by_activity(self):
        # A body trickling in faster than the idle timeout is not cut off.
        s, port = self.start(stream_idle_timeout="1s")
        c = self.conn(port)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
        for ch in (b"a", b"b", b"c", b"d"):
            time.sleep(0.4)  # pacing: 1.6s in all, each gap under the 1s idle timeout
            c.send(ch)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.stat("downstream_rq_idle_timeout"), 0)

    def test_request_headers_timeout_does_not_cover_body(self):
        s, port = self.start(request_headers_timeout="1s")
        c = self.conn(port)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n")
        for ch in (b"a", b"b", b"c"):
            time.sleep(0.5)  # pacing: the body takes ~1.5s, longer than the headers timeout
            c.send(ch)
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body"], "abc")

    def test_request_headers_timeout_on_second_request(self):
        s, port = self.start(request_headers_timeout="1s")
        c = self.conn(port)
        self.assertStatus(c.request(), 200)
        c.send(b"GET /second HTTP/1.1\r\nHost: a\r\n")
        r = c.read_response()
        self.assertLocalReply(r, 408, request_id_header=False)
        self.assertClosed(c)

    def test_idle_timeout_closes_connection(self):
        s, port = self.start(idle_timeout="1s")
        c = self.conn(port)
        self.assertStatus(c.request(), 200)
        t0 = time.monotonic()
        self.assertClosed(c, timeout=5, msg="idle keep-alive connection")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.8, "closed before the 1s idle timeout")
        s.wait_stat("downstream_cx_idle_timeout", lambda v: v == 1)

    def test_idle_timeout_not_applied_while_request_in_flight(self):
        s, port = self.start(idle_timeout="1s")
        c = self.conn(port)
        r = c.request(headers={"x-sleep-ms": "1600"})
        self.assertStatus(r, 200, "a request in flight is not idle")
        self.assertEqual(s.stat("downstream_cx_idle_timeout"), 0)

    def test_idle_timeout_reset_by_activity(self):
        s, port = self.start(idle_timeout="1s")
        c = self.conn(port)
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0:  # requests every ~0.3s for 2s
            self.assertStatus(c.request(), 200,
                              "request %d after %.1fs" % (n, time.monotonic() - t0))
            n += 1
            time.sleep(0.3)
        self.assertGreaterEqual(n, 5)

    # request_timeout (docs/configuration.md, HttpLimits): the timer starts once the headers are
    # parsed; when it fires the client gets 408 if the request body was still arriving, 504 if
    # the request was complete (flag RT). The route timeout (15 s by default) stays out of it.

    def test_request_timeout_complete_request_slow_upstream_is_504(self):
        s, port = self.start(request_timeout="1s")
        t0 = time.monotonic()
        r = harness.request(port, headers={"x-sleep-ms": "4000"})
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 504, "request timeout")
        self.assertGreaterEqual(elapsed, 0.9, "504 came before the 1s request_timeout")
        self.assertLess(elapsed, harness.scaled(3), "504 came far too late")
        self.assertEqual(s.stat("downstream_rq_timeout"), 1)
        self.assertEqual(s.stat("cluster.backend.upstream_rq_timeout"), 0,
                         "the route timeout must not be what fired")

    def test_request_timeout_body_still_arriving_is_408(self):
        s, port = self.start(request_timeout="1s")
        c = self.conn(port)
        t0 = time.monotonic()
        # Headers complete, 2 of 10 body bytes, then nothing (stream_idle_timeout is 300 s).
        c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        r = c.read_response(method="POST")
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 408, "request timeout")
        self.assertGreaterEqual(elapsed, 0.9, "408 came before the 1s request_timeout")
        self.assertLess(elapsed, harness.scaled(3), "408 came far too late")
        self.assertEqual(s.stat("downstream_rq_timeout"), 1)
        self.assertEqual(s.stat("downstream_rq_idle_timeout"), 0)

if __name__ == "__main__":
    harness.main()
