"""gRPC handling that works over HTTP/1.1 today, through the real binary: trailers-only gRPC
local replies (no route, auth, timeouts), grpc-timeout and max_grpc_timeout, the gRPC retry_on
conditions, the grpc_web filter (binary and text) in front of a gRPC-ish HTTP/1.1 upstream that
answers with chunked trailers (harness.Upstream's `grpc` action), and the grpc_stats counters in
/stats. Real gRPC clients and servers over HTTP/2 are in grpc_test.py.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/grpc_http1_test.py
"""

import base64
import time
import unittest

from harness import (Conn, SluiceTestCase, bootstrap, cluster, listener, route, route_table,
                     scaled, vhost, wait_until)


def frame(message, flags=0):
    return bytes([flags]) + len(message).to_bytes(4, "big") + message


def frames(data):
    """[(flags, message)] of a gRPC / gRPC-Web body."""
    out = []
    pos = 0
    while pos < len(data):
        n = int.from_bytes(data[pos + 1:pos + 5], "big")
        out.append((data[pos], data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    return out


def trailer_block(payload):
    """{name: value} of a gRPC-Web trailer frame's payload."""
    out = {}
    for line in payload.decode().split("\r\n"):
        if line:
            k, _, v = line.partition(":")
            out[k] = v
    return out


class GrpcHttp1Test(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = cls.start_class_upstream("backend", default_action="grpc")
        cls.good = cls.start_class_upstream("good", default_action="grpc")
        cls.bad = cls.start_class_upstream("bad", default_action="grpc")
        cls.bad.grpc_status = 14
        routes = [
            route(prefix="/svc.Slow/", cluster="backend", route={"timeout": "5s"}),
            route(prefix="/svc.Capped/", cluster="backend",
                  route={"timeout": "10s", "max_grpc_timeout": "0.2s"}),
            route(prefix="/svc.Retry/", cluster="pair",
                  route={"retry_policy": {"retry_on": ["unavailable"], "num_retries": 2,
                                          "backoff": {"base_interval": "0.001s"}}}),
            route(prefix="/auth.Svc/", cluster="backend", auth="keys", name="authed"),
            route(prefix="/svc.", cluster="backend"),
        ]
        cfg = bootstrap(
            [listener("public", "main",
                      http_filters=[{"name": "grpc_web"}, {"name": "grpc_stats"},
                                    {"name": "auth"}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("backend", [cls.backend]),
             cluster("pair", [cls.bad, cls.good], "ROUND_ROBIN")])
        cfg["static_resources"]["auth_policies"] = [
            {"name": "keys", "key_auth": {},
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "k1"}]}]}]
        cls.sluice = cls.start_class_sluice(cfg, concurrency=2)
        cls.port = cls.sluice.listener_port("public")

    def call(self, path, messages=(b"hello",), headers=None, content_type="application/grpc"):
        h = {"Content-Type": content_type, "TE": "trailers"}
        h.update(headers or {})
        body = b"".join(frame(m) for m in messages)
        with Conn(self.port) as c:
            return c.request("POST", path, headers=h, body=body)

    def assertTrailersOnly(self, resp, grpc_status):
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header("content-type"), "application/grpc")
        self.assertEqual(resp.header("grpc-status"), str(grpc_status), resp)
        self.assertEqual(resp.header("content-length"), "0")
        self.assertEqual(resp.body, b"")

    # -- gRPC over HTTP/1.1 ---------------------------------------------------------------------

    def test_call_with_trailers(self):
        r = self.call("/svc.Echo/Call", [b"one", b"two"],
                      {"x-grpc-message": "fine", "x-grpc-trailer": "x-custom: v"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc")
        self.assertEqual(frames(r.body), [(0, b"one"), (0, b"two")])
        self.assertEqual(dict(r.trailers), {"grpc-status": "0", "grpc-message": "fine",
                                            "x-custom": "v"})
        req = self.backend.last_request()
        self.assertEqual(req.header("content-type"), "application/grpc")
        self.assertEqual(req.body, frame(b"one") + frame(b"two"))

    def test_no_route_is_unimplemented(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/other.Svc/M", headers={"Content-Type": "application/grpc"},
                          body=frame(b"x"))
            self.assertTrailersOnly(r, 12)
            self.assertEqual(r.header("grpc-message"), "no route matched")
            self.assertTrue(r.header("x-request-id"))
            # Still usable.
            self.assertTrailersOnly(c.request("POST", "/other.Svc/M", headers={
                "Content-Type": "application/grpc+proto"}, body=frame(b"x")), 12)

    def test_non_grpc_local_reply_is_json(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/other.Svc/M", body=b"x")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["message"], "no route matched")

    def test_auth_failure_is_unauthenticated(self):
        r = self.call("/auth.Svc/M")
        self.assertTrailersOnly(r, 16)
        self.assertTrue(r.header("grpc-message"))
        ok = self.call("/auth.Svc/M", headers={"apikey": "k1"})
        self.assertEqual(ok.status, 200)
        self.assertEqual(dict(ok.trailers)["grpc-status"], "0")

    def test_grpc_timeout_is_deadline_exceeded(self):
        start = time.monotonic()
        r = self.call("/svc.Slow/M", headers={"grpc-timeout": "200m", "x-sleep-ms": "3000"})
        self.assertTrailersOnly(r, 4)
        self.assertLess(time.monotonic() - start, scaled(2.0))

    def test_invalid_grpc_timeout_is_ignored(self):
        r = self.call("/svc.Slow/M", headers={"grpc-timeout": "200ms", "x-sleep-ms": "300"})
        self.assertEqual(r.status, 200)
        self.assertEqual(dict(r.trailers)["grpc-status"], "0")

    def test_max_grpc_timeout_caps_the_client(self):
        start = time.monotonic()
        r = self.call("/svc.Capped/M", headers={"grpc-timeout": "30S", "x-sleep-ms": "3000",
                                                "x-tag": "capped"})
        self.assertTrailersOnly(r, 4)
        self.assertLess(time.monotonic() - start, scaled(2.0))
        seen = [q for q in self.backend.requests if q.header("x-tag") == "capped"]
        self.assertEqual(seen[-1].header("grpc-timeout"), "200m")

    def test_retry_on_unavailable(self):
        before = self.sluice.stat("cluster.pair.upstream_rq_retry")
        for _ in range(4):
            r = self.call("/svc.Retry/M", [b"again"])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(frames(r.body), [(0, b"again")])
            self.assertEqual(dict(r.trailers)["grpc-status"], "0")
        self.assertGreaterEqual(self.sluice.stat("cluster.pair.upstream_rq_retry") - before, 1)
        # The refused tries reached the bad endpoint with the whole body.
        self.assertTrue(any(q.body == frame(b"again") for q in self.bad.requests))

    # -- grpc_web -------------------------------------------------------------------------------

    def test_grpc_web_binary(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/svc.Web/Echo", headers={
                "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1",
                "x-grpc-message": "done", "x-grpc-trailer": "x-extra: 1"},
                body=frame(b"browser"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc-web+proto")
        self.assertEqual(r.trailers, [])
        got = frames(r.body)
        self.assertEqual(got[0], (0, b"browser"))
        self.assertEqual(got[1][0], 0x80)
        self.assertEqual(trailer_block(got[1][1]),
                         {"grpc-status": "0", "grpc-message": "done", "x-extra": "1"})
        req = self.backend.last_request()
        self.assertEqual(req.header("content-type"), "application/grpc+proto")
        # te: trailers goes to HTTP/2 upstreams only (hop-by-hop on HTTP/1.1).
        self.assertIsNone(req.header("te"))
        self.assertIsNone(req.header("content-length"))
        self.assertEqual(req.body, frame(b"browser"))

    def test_grpc_web_text(self):
        body = base64.b64encode(frame(b"first")) + base64.b64encode(frame(b"second!"))
        with Conn(self.port) as c:
            # Sent in small chunks: decoded in 4-character groups as they arrive.
            c.send(b"POST /svc.Web/Echo HTTP/1.1\r\nHost: h\r\n"
                   b"Content-Type: application/grpc-web-text\r\n"
                   b"Accept: application/grpc-web-text\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 7):
                piece = body[i:i + 7]
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            c.send(b"0\r\n\r\n")
            r = c.read_response("POST")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc-web-text")
        decoded = base64.b64decode(r.body)
        got = frames(decoded)
        self.assertEqual(got[:2], [(0, b"first"), (0, b"second!")])
        self.assertEqual(got[2][0], 0x80)
        self.assertEqual(trailer_block(got[2][1]), {"grpc-status": "0"})

    def test_grpc_web_error_is_trailers_only(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/svc.Web/Fail", headers={
                "Content-Type": "application/grpc-web-text", "x-grpc-trailers-only": "1",
                "x-grpc-status": "7", "x-grpc-message": "nope"},
                body=base64.b64encode(frame(b"x")))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc-web-text")
        self.assertEqual(r.header("grpc-status"), "7")
        self.assertEqual(r.header("grpc-message"), "nope")
        self.assertEqual(r.body, b"")

    def test_grpc_web_local_reply(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/nowhere.Svc/M", headers={
                "Content-Type": "application/grpc-web+proto"}, body=frame(b"x"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc-web+proto")
        self.assertEqual(r.header("grpc-status"), "12")

    def test_grpc_web_invalid_base64(self):
        with Conn(self.port) as c:
            r = c.request("POST", "/svc.Web/Echo", headers={
                "Content-Type": "application/grpc-web-text"}, body=b"!!!!")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("grpc-status"), "13")

    def test_preflight_and_plain_requests_pass_untouched(self):
        with Conn(self.port) as c:
            r = c.request("OPTIONS", "/svc.Web/Echo", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                "x-action": "echo"})
            self.assertEqual(r.status, 200)
            seen = r.json()
            self.assertEqual(seen["method"], "OPTIONS")
            names = [k.lower() for k, _ in seen["headers"]]
            self.assertNotIn("te", names)
            r = c.request("POST", "/svc.Web/Echo", headers={"Content-Type": "application/json",
                                                           "x-action": "echo"}, body=b"{}")
            self.assertEqual(r.header("content-type"), "application/json")
            self.assertEqual(r.json()["body"], "{}")

    # -- grpc_stats -----------------------------------------------------------------------------

    def test_grpc_stats(self):
        for _ in range(3):
            self.call("/svc.Stats/Count")
        self.call("/svc.Stats/Count", headers={"x-grpc-status": "5"})
        self.call("/svc.Stats/Count", headers={"x-grpc-status": "14",
                                               "x-grpc-trailers-only": "1"})
        with Conn(self.port) as c:
            c.request("POST", "/svc.Stats/Web", headers={
                "Content-Type": "application/grpc-web"}, body=frame(b"w"))
        self.call("/svc.Slow/Count", headers={"grpc-timeout": "50m", "x-sleep-ms": "1000"})
        self.call("/svc.Stats/Plain", content_type="application/json")
        wait_until(lambda: self.sluice.stat("grpc.svc.Stats.Count.total") == 5, 5,
                   message="grpc stats")
        stats = self.sluice.stats()
        self.assertEqual(stats["grpc.svc.Stats.Count.status.0"], 3)
        self.assertEqual(stats["grpc.svc.Stats.Count.status.5"], 1)
        self.assertEqual(stats["grpc.svc.Stats.Count.status.14"], 1)
        self.assertEqual(stats["grpc.svc.Stats.Web.total"], 1)
        self.assertEqual(stats["grpc.svc.Stats.Web.status.0"], 1)
        self.assertEqual(stats["grpc.svc.Slow.Count.status.4"], 1)
        self.assertNotIn("grpc.svc.Stats.Plain.total", stats)
        status, _, body = self.sluice.admin_get("/stats/prometheus")
        self.assertEqual(status, 200)
        text = body.decode() if isinstance(body, bytes) else body
        self.assertIn('sluice_grpc_requests_total{grpc_service="svc.Stats",grpc_method="Count"} 5',
                      text)
        self.assertIn('sluice_grpc_responses_total{grpc_service="svc.Stats",grpc_method="Count",'
                      'grpc_status="14"} 1', text)


if __name__ == "__main__":
    unittest.main()
