"""Core proxying: forwarding, header rewriting, keep-alive/pipelining, HEAD, Expect,
Upgrade, chunked bodies, and the local replies for upstream failures (502/503/504).

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/proxy_test.py [ProxyTest.test_name]
"""

import time

import harness
from harness import UUID4_RE, build_request, chunked, echo, proxy_config


class ProxyTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")
        self.sluice = self.start_sluice(proxy_config([self.up]))
        self.port = self.sluice.listener_port("public")

    # -- basic forwarding ---------------------------------------------------------------------

    def test_get_is_forwarded(self):
        r = harness.request(self.port, "GET", "/some/path?a=1&b=two", host="svc.example.com")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("x-upstream"), "u1", "response headers from upstream kept")
        e = echo(r)
        self.assertEqual(e["method"], "GET")
        self.assertEqual(e["path"], "/some/path?a=1&b=two", "path and query forwarded verbatim")
        self.assertEqual(e["version"], "HTTP/1.1", "upstream requests are HTTP/1.1")
        self.assertEqual(e["hdr"].get("host"), "svc.example.com", "Host forwarded: %r" % e)

    def test_post_with_content_length(self):
        body = bytes(range(256)) * 4
        r = harness.request(self.port, "POST", "/upload", body=body)
        self.assertStatus(r, 200)
        e = echo(r)
        self.assertEqual(e["method"], "POST")
        self.assertEqual(e["body"].encode("latin-1"), body, "request body forwarded intact")
        self.assertEqual(e["hdr"].get("content-length"), str(len(body)))
        self.assertNotIn("transfer-encoding", e["hdr"],
                         "a content-length request should stay content-length: %r" % e)

    def test_methods_forwarded(self):
        c = self.conn(self.port)
        for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            body = b"x" if m in ("POST", "PUT", "PATCH") else None
            r = c.request(m, "/m", body=body)
            self.assertStatus(r, 200, m)
            self.assertEqual(echo(r)["method"], m)

    def test_upstream_error_statuses_are_passed_through(self):
        for status in (404, 500, 503):
            r = harness.request(self.port, headers={"x-status": str(status)})
            self.assertEqual(r.status, status, r)
            self.assertEqual(r.header("x-upstream"), "u1",
                             "an upstream %d is not a local reply: %r" % (status, r))
            self.assertEqual(echo(r)["path"], "/")

    def test_response_body_from_upstream(self):
        r = harness.request(self.port, headers={"x-action": "fixed", "x-body": "plain text!"})
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"plain text!")
        self.assertEqual(r.header("content-length"), "11")

    # -- header handling ----------------------------------------------------------------------

    def test_request_header_names_lower_cased(self):
        r = harness.request(self.port, headers=[("X-Custom-Header", "Some Value"),
                                                ("ACCEPT", "*/*"), ("User-Agent", "UA/1")])
        e = echo(r)
        for name in e["names"]:
            self.assertEqual(name, name.lower(), "upstream saw a non-lower-case header name "
                             "%r in %r" % (name, e["names"]))
        self.assertEqual(e["hdr"].get("x-custom-header"), "Some Value", "values keep their case")
        self.assertEqual(e["hdr"].get("accept"), "*/*")
        self.assertEqual(e["hdr"].get("user-agent"), "UA/1")

    def test_request_id_generated(self):
        r = harness.request(self.port)
        e = echo(r)
        rid = e["hdr"].get("x-request-id")
        self.assertIsNotNone(rid, "upstream must see x-request-id: %r" % e)
        self.assertRegex(rid, UUID4_RE, "generated x-request-id must be a UUIDv4")
        self.assertEqual(r.header("x-request-id"), rid,
                         "client response must carry the same x-request-id")
        self.assertEqual(len(e["all"]("x-request-id")), 1)

    def test_request_ids_are_unique(self):
        c = self.conn(self.port)
        ids = [echo(c.request())["hdr"]["x-request-id"] for _ in range(30)]
        self.assertEqual(len(set(ids)), 30, "x-request-id values repeat: %r" % ids)

    def test_valid_request_id_is_kept(self):
        c = self.conn(self.port)
        for rid in ("abc", "A.b_c-9", "0", "x" * 128, "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"):
            r = c.request(headers={"X-Request-Id": rid})
            e = echo(r)
            self.assertEqual(e["hdr"].get("x-request-id"), rid, "valid id %r replaced" % rid)
            self.assertEqual(r.header("x-request-id"), rid)

    def test_invalid_request_id_is_replaced(self):
        c = self.conn(self.port)
        for rid in ("has space", "a/b", "x" * 129, "semi;colon", "quote\"d", "a:b", "", "\t"):
            r = c.request(headers={"X-Request-Id": rid})
            e = echo(r)
            got = e["hdr"].get("x-request-id")
            self.assertIsNotNone(got)
            self.assertNotEqual(got, rid.strip(), "invalid id %r must be replaced" % rid)
            self.assertRegex(got, UUID4_RE, "replacement for %r must be a UUIDv4" % rid)
            self.assertEqual(r.header("x-request-id"), got)
            self.assertEqual(len(e["all"]("x-request-id")), 1, "exactly one x-request-id upstream")

    def test_x_forwarded_headers(self):
        r = harness.request(self.port, host="svc.example.com")
        e = echo(r)
        self.assertEqual(e["all"]("x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(e["all"]("x-forwarded-proto"), ["http"])
        self.assertEqual(e["all"]("x-forwarded-host"), ["svc.example.com"])

    def test_x_forwarded_for_is_appended(self):
        for existing, want in (("203.0.113.7", ["203.0.113.7", "127.0.0.1"]),
                               ("198.51.100.1, 203.0.113.7",
                                ["198.51.100.1", "203.0.113.7", "127.0.0.1"])):
            r = harness.request(self.port, headers={"X-Forwarded-For": existing})
            values = echo(r)["all"]("x-forwarded-for")
            toks = [t.strip() for v in values for t in v.split(",")]
            self.assertEqual(toks, want, "x-forwarded-for %r -> upstream saw %r"
                             % (existing, values))

    def test_x_forwarded_proto_not_trusted_from_client(self):
        r = harness.request(self.port, headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(echo(r)["all"]("x-forwarded-proto"), ["http"],
                         "listener scheme is http, the client's value is not trusted")

    def test_hop_by_hop_request_headers_removed(self):
        r = harness.request(self.port, "POST", "/", body=b"abc", headers=[
            ("Connection", "keep-alive, X-Named-In-Connection"),
            ("X-Named-In-Connection", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Something"),
            ("X-Kept", "yes"),
        ])
        e = echo(r)
        for h in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                  "x-named-in-connection", "transfer-encoding"):
            self.assertNotIn(h, e["hdr"], "hop-by-hop %r reached the upstream: %r"
                             % (h, e["headers"]))
        conn_toks = harness._tokens(e["all"]("connection"))
        self.assertTrue(set(conn_toks) <= {"keep-alive", "close"},
                        "client's Connection header leaked upstream: %r" % conn_toks)
        self.assertEqual(e["hdr"].get("x-kept"), "yes")
        self.assertEqual(e["body"], "abc")

    def test_hop_by_hop_response_headers_removed(self):
        r = harness.request(self.port, headers=[
            ("x-resp-header", "Connection: X-Resp-Named"),
            ("x-resp-header", "X-Resp-Named: 1"),
            ("x-resp-header", "Keep-Alive: timeout=5"),
            ("x-resp-header", "Proxy-Connection: keep-alive"),
            ("x-resp-header", "Trailer: X-T"),
            ("x-resp-header", "X-Resp-Kept: yes"),
        ])
        self.assertStatus(r, 200)
        for h in ("keep-alive", "proxy-connection", "trailer", "x-resp-named"):
            self.assertFalse(r.has_header(h), "hop-by-hop response header %r reached the "
                             "client: %r" % (h, r))
        self.assertTrue(set(r.connection_tokens()) <= {"keep-alive", "close"},
                        "upstream's Connection header leaked: %r" % r)
        self.assertEqual(r.header("x-resp-kept"), "yes")

    # -- keep-alive and connection management -------------------------------------------------

    def test_upstream_keepalive_reuse(self):
        c = self.conn(self.port)
        conn_ids = set()
        for i in range(100):
            r = c.request("GET", "/r/%d" % i)
            self.assertStatus(r, 200)
            conn_ids.add(echo(r)["conn_id"])
        self.assertEqual(self.up.connections_accepted, 1,
                         "100 sequential requests should reuse one upstream connection")
        self.assertEqual(conn_ids, {1})
        self.sluice.wait_stat("cluster.backend.upstream_rq_total", lambda v: v == 100)
        stats = self.sluice.stats()
        self.assertEqual(stats.get("cluster.backend.upstream_cx_total"), 1, stats)
        self.assertEqual(stats.get("downstream_cx_total"), 1, stats)

    def test_upstream_pool_shared_across_client_connections(self):
        for i in range(10):
            r = harness.request(self.port, "GET", "/c/%d" % i)
            self.assertStatus(r, 200)
        self.assertEqual(self.up.connections_accepted, 1,
                         "sequential client connections on one worker share the upstream pool")

    def test_upstream_connection_close_is_honoured(self):
        c = self.conn(self.port)
        r = c.request(headers={"x-close-after": "1"})
        self.assertStatus(r, 200)
        # The upstream's Connection: close is hop-by-hop: the client connection stays open.
        r = c.request("GET", "/after")
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/after")
        self.assertEqual(self.up.connections_accepted, 2,
                         "a connection the upstream closed must not be reused")

    def test_client_connection_close(self):
        c = self.conn(self.port)
        r = c.request(headers={"Connection": "close"})
        self.assertStatus(r, 200)
        self.assertIn("close", r.connection_tokens(), "response should announce close")
        self.assertClosed(c)

    def test_http10_closes_by_default(self):
        c = self.conn(self.port)
        r = c.request("GET", "/ten", version="HTTP/1.0")
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/ten")
        self.assertClosed(c, msg="HTTP/1.0 without keep-alive")

    def test_http10_keepalive(self):
        c = self.conn(self.port)
        r = c.request("GET", "/one", headers={"Connection": "keep-alive"}, version="HTTP/1.0")
        self.assertStatus(r, 200)
        self.assertNotIn("chunked", r.header("transfer-encoding") or "",
                         "no chunked encoding for an HTTP/1.0 client")
        r = c.request("GET", "/two", headers={"Connection": "keep-alive"}, version="HTTP/1.0")
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/two")

    def test_keepalive_many_requests_with_bodies(self):
        c = self.conn(self.port)
        for i in range(20):
            body = ("body-%d-" % i) * (i + 1)
            r = c.request("POST", "/k/%d" % i, body=body)
            e = echo(r)
            self.assertEqual((e["path"], e["body"]), ("/k/%d" % i, body))

    # -- pipelining ---------------------------------------------------------------------------

    def test_pipelined_requests_answered_in_order(self):
        c = self.conn(self.port)
        c.send(build_request("GET", "/p1", headers={"x-sleep-ms": "300"})
               + build_request("POST", "/p2", body=b"second")
               + build_request("GET", "/p3"))
        got = []
        for _ in range(3):
            r = c.read_response()
            self.assertStatus(r, 200)
            e = echo(r)
            got.append((e["path"], e["body"]))
        self.assertEqual(got, [("/p1", ""), ("/p2", "second"), ("/p3", "")])

    def test_pipelined_burst(self):
        c = self.conn(self.port)
        c.send(b"".join(build_request("GET", "/b/%d" % i) for i in range(50)))
        paths = [echo(c.read_response())["path"] for _ in range(50)]
        self.assertEqual(paths, ["/b/%d" % i for i in range(50)])

    def test_pipelined_flood_is_read_in_bounded_steps(self):
        # 3,000 pipelined requests (~130 KB) behind a slow one, with a 16 KiB buffer limit: the
        # proxy stops reading ahead at the limit and resumes as responses go out, losing none.
        import threading
        s = self.start_sluice(proxy_config([self.up], limits={"buffer_limit_bytes": 16384}))
        c = harness.Conn(s.listener_port("public"))
        n = 3000
        data = build_request("GET", "/slow", headers={"x-sleep-ms": "200"}) + b"".join(
            build_request("GET", "/f/%d" % i) for i in range(n))
        sender = threading.Thread(target=c.send, args=(data,))
        sender.start()
        paths = [echo(c.read_response())["path"] for _ in range(n + 1)]
        sender.join()
        self.assertEqual(paths, ["/slow"] + ["/f/%d" % i for i in range(n)])

    def test_pipelined_chunked_then_get(self):
        c = self.conn(self.port)
        c.send(b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(b"xy", b"z") + build_request("GET", "/after"))
        self.assertEqual(echo(c.read_response())["body"], "xyz")
        self.assertEqual(echo(c.read_response())["path"], "/after")

    # -- chunked and close-delimited bodies ---------------------------------------------------

    def test_chunked_request_body(self):
        c = self.conn(self.port)
        c.send(b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(b"abc", b"defgh", b"i" * 5000, ext="name=value",
                         trailers=[("X-Trailer", "v")]))
        r = c.read_response()
        self.assertStatus(r, 200)
        e = echo(r)
        self.assertEqual(e["body"], "abcdefgh" + "i" * 5000)
        self.assertFalse("content-length" in e["hdr"] and "transfer-encoding" in e["hdr"],
                         "upstream got both content-length and transfer-encoding: %r" % e)
        r = c.request("GET", "/next")
        self.assertEqual(echo(r)["path"], "/next", "connection usable after a chunked body")

    def test_chunked_request_with_uppercase_hex_and_leading_zeros(self):
        c = self.conn(self.port)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n"
               b"00A\r\n0123456789\r\n0000\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body"], "0123456789")

    def test_chunked_response_body(self):
        c = self.conn(self.port)
        r = c.request(headers={"x-chunked": "1", "x-trailer": "1"})
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/")
        r = c.request("GET", "/next")
        self.assertEqual(echo(r)["path"], "/next")

    def test_response_without_length_is_chunked_to_http11_client(self):
        c = self.conn(self.port)
        r = c.request("GET", "/nolen", headers={"x-no-length": "1"})
        self.assertStatus(r, 200)
        self.assertTrue(harness.is_chunked(r.headers),
                        "a response without content-length must be sent chunked to an "
                        "HTTP/1.1 client: %r" % r)
        self.assertEqual(echo(r)["path"], "/nolen")
        r = c.request("GET", "/again")
        self.assertEqual(echo(r)["path"], "/again", "client connection stays usable")

    def test_response_without_length_to_http10_client(self):
        c = self.conn(self.port)
        r = c.request("GET", "/nolen10", headers={"x-no-length": "1"}, version="HTTP/1.0")
        self.assertStatus(r, 200)
        self.assertFalse(harness.is_chunked(r.headers), "no chunked to HTTP/1.0: %r" % r)
        self.assertEqual(echo(r)["path"], "/nolen10")
        self.assertClosed(c)

    # -- HEAD, Expect, Upgrade ----------------------------------------------------------------

    def test_head(self):
        c = self.conn(self.port)
        r = c.request("HEAD", "/h", headers={"x-action": "fixed", "x-body": "12345"})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("content-length"), "5",
                         "HEAD keeps the upstream's content-length: %r" % r)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.up.last_request().method, "HEAD")
        # Any stray body bytes would corrupt the next response on this connection.
        r = c.request("GET", "/after-head")
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/after-head")

    def test_head_with_chunked_upstream_headers(self):
        c = self.conn(self.port)
        c.send_request("HEAD", "/hc", headers={"x-chunked": "1"})
        r = c.read_response("HEAD")
        self.assertStatus(r, 200)
        r = c.request("GET", "/after")
        self.assertEqual(echo(r)["path"], "/after", "no body bytes after a HEAD response")

    def test_expect_100_continue(self):
        c = self.conn(self.port)
        c.send(b"POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response(interim=True)
        self.assertEqual(interim.status, 100,
                         "Sluice must answer 100 Continue before the body is sent: %r" % interim)
        c.send(b"hello world")
        r = c.read_response("POST")
        self.assertStatus(r, 200)
        e = echo(r)
        self.assertEqual(e["body"], "hello world")
        r = c.request("GET", "/after")
        self.assertEqual(echo(r)["path"], "/after")

    def test_expect_100_continue_chunked(self):
        c = self.conn(self.port)
        c.send(b"PUT /expect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               b"Expect: 100-continue\r\n\r\n")
        self.assertEqual(c.read_response(interim=True).status, 100)
        c.send(chunked(b"part1", b"part2"))
        r = c.read_response()
        self.assertEqual(echo(r)["body"], "part1part2")

    def test_upgrade_is_not_performed(self):
        c = self.conn(self.port)
        r = c.request("GET", "/ws", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")])
        self.assertStatus(r, 200, "upgrade requests are proxied as plain HTTP")
        e = echo(r)
        self.assertNotIn("upgrade", e["hdr"], "Upgrade header must be dropped: %r" % e)
        self.assertNotIn("upgrade", harness._tokens(e["all"]("connection")))
        self.assertFalse(r.has_header("upgrade"))
        r = c.request("GET", "/after-upgrade")
        self.assertEqual(echo(r)["path"], "/after-upgrade",
                         "connection continues as HTTP/1.1 after a refused upgrade")

    # -- upstream failures --------------------------------------------------------------------

    def test_upstream_closes_before_response_is_502(self):
        c = self.conn(self.port)
        r = c.request(headers={"x-action": "close"})
        self.assertLocalReply(r, 502)
        r = c.request("GET", "/next")
        self.assertEqual(echo(r)["path"], "/next", "client connection survives a 502")

    def test_upstream_garbage_is_502(self):
        r = harness.request(self.port, headers={"x-action": "garbage"})
        self.assertLocalReply(r, 502)

    def test_upstream_truncated_body_closes_client(self):
        c = self.conn(self.port)
        c.send_request(headers={"x-action": "truncate", "x-bytes": "100000"})
        with self.assertRaises((harness.PeerClosed, ConnectionResetError),
                               msg="a truncated upstream body must not look complete"):
            c.read_response()
        self.assertClosed(c, allow_data=True)

    def test_route_timeout_is_504(self):
        cfg = proxy_config([self.up], route_action={"timeout": "500ms"})
        s = self.start_sluice(cfg)
        port = s.listener_port("public")
        t0 = time.monotonic()
        r = harness.request(port, headers={"x-sleep-ms": "3000"})
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 504)
        self.assertGreaterEqual(elapsed, 0.45, "504 before the 500ms timeout")
        self.assertLess(elapsed, harness.scaled(2.5), "504 should come at ~500ms")
        s.wait_stat("cluster.backend.upstream_rq_timeout", lambda v: v == 1)

    def test_sub_millisecond_route_timeout_still_applies(self):
        # "500us" rounds up to 1 ms; it must not turn into 0 (= no timeout).
        s = self.start_sluice(proxy_config([self.up], route_action={"timeout": "500us"}))
        r = harness.request(s.listener_port("public"), headers={"x-sleep-ms": "1500"})
        self.assertLocalReply(r, 504)

    def test_date_added_to_direct_responses(self):
        cfg = proxy_config([self.up])
        routes = cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"]
        routes.insert(0, {"match": {"path": "/direct"},
                          "direct_response": {"status": 200, "body": "hi"}})
        s = self.start_sluice(cfg)
        r = harness.request(s.listener_port("public"), "GET", "/direct")
        self.assertEqual(r.status, 200)
        self.assertIsNotNone(r.header("date"), r)

    def test_many_clients_vanishing_mid_request(self):
        # Regression: a client reset while its request waits on the upstream once freed the
        # connection manager before its stream (a worker crash under wrk). Clients that close
        # and clients that reset (SO_LINGER 0) must both leave the proxy serving.
        import socket
        import struct
        conns = []
        for i in range(40):
            c = harness.Conn(self.port)
            # Slow enough that none completes before the clients are gone, even on a busy CI.
            c.send_request("GET", "/slow/%d" % i, headers={"x-sleep-ms": "5000"})
            conns.append(c)
        self.up.wait_for_requests(40)
        for i, c in enumerate(conns):
            if i % 2:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        self.sluice.wait_stat("downstream_rq_reset", lambda v: v >= 40)
        r = harness.request(self.port, "GET", "/after")
        self.assertEqual(r.status, 200)
        self.assertIsNone(self.sluice.proc.poll(), "sluice exited")
        # The upstream connections of the reset requests were not returned to the pool.
        self.sluice.wait_stat("cluster.backend.upstream_rq_active", lambda v: v == 0)

    def test_route_timeout_zero_disables(self):
        s = self.start_sluice(proxy_config([self.up], route_action={"timeout": "0s"}))
        r = harness.request(s.listener_port("public"), headers={"x-sleep-ms": "1200"})
        self.assertStatus(r, 200)


class UpstreamDownTest(harness.SluiceTestCase):

    def test_dead_upstream_is_503(self):
        dead = self.dead_port()
        s = self.start_sluice(proxy_config([dead]))
        c = self.conn(s.listener_port("public"))
        r = c.request()
        self.assertLocalReply(r, 503)
        r = c.request("GET", "/again")
        self.assertLocalReply(r, 503)
        s.wait_stat("cluster.backend.upstream_cx_connect_fail", lambda v: v >= 2)
        self.assertGreaterEqual(s.stat("downstream_rq_5xx"), 2)

    def test_request_id_on_local_reply_is_kept(self):
        dead = self.dead_port()
        s = self.start_sluice(proxy_config([dead]))
        r = harness.request(s.listener_port("public"), headers={"X-Request-Id": "my-id-1"})
        body = self.assertLocalReply(r, 503)
        self.assertEqual(body["request_id"], "my-id-1")


if __name__ == "__main__":
    harness.main()
