"""Self-test of harness.py without the proxy: the raw client against the upstream server.

Run: /usr/bin/python3 test/integration/harness_selftest.py
Set SELFTEST_BIG=1 to also push 1 GiB each way (measures the Python side's throughput).
"""

import io
import json
import os
import sys
import time
import unittest

import harness
from harness import GIB, MIB, chunked


class UpstreamAndClientTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")

    def test_echo_get_keepalive(self):
        c = self.conn(self.up.port)
        for i in range(5):
            r = c.request("GET", "/p/%d?q=1" % i, headers={"X-Mixed-Case": "V"})
            self.assertStatus(r, 200)
            e = harness.echo(r)
            self.assertEqual(e["path"], "/p/%d?q=1" % i)
            self.assertIn("X-Mixed-Case", e["names"])
            self.assertEqual(e["seq"], i)
            self.assertEqual(r.header("x-upstream"), "u1")
        self.assertEqual(self.up.connections_accepted, 1)

    def test_echo_post_cl_and_chunked(self):
        r = harness.request(self.up.port, "POST", "/b", body=b"hello")
        self.assertEqual(harness.echo(r)["body"], "hello")
        c = self.conn(self.up.port)
        c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(b"abc", b"defg", trailers=[("X-T", "1")], ext="e=1"))
        r = c.read_response()
        self.assertEqual(harness.echo(r)["body"], "abcdefg")

    def test_pipelined(self):
        c = self.conn(self.up.port)
        c.send(harness.build_request("GET", "/1") + harness.build_request("POST", "/2", body="xy")
               + harness.build_request("GET", "/3"))
        paths = [harness.echo(c.read_response())["path"] for _ in range(3)]
        self.assertEqual(paths, ["/1", "/2", "/3"])

    def test_head_has_length_but_no_body(self):
        c = self.conn(self.up.port)
        r = c.request("HEAD", "/h", headers={"x-action": "fixed", "x-body": "12345"})
        self.assertEqual(r.header("content-length"), "5")
        self.assertEqual(r.body, b"")
        r = c.request("GET", "/h2", headers={"x-action": "fixed", "x-body": "abc"})
        self.assertEqual(r.body, b"abc")

    def test_response_modes(self):
        r = harness.request(self.up.port, headers={"x-chunked": "1", "x-trailer": "1"})
        self.assertTrue(harness.is_chunked(r.headers))
        self.assertEqual(harness.echo(r)["path"], "/")
        self.assertEqual(r.trailers, [("x-trailer-field", "t")])
        r = harness.request(self.up.port, headers={"x-no-length": "1"})
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(harness.echo(r)["path"], "/")
        r = harness.request(self.up.port, headers={"x-status": "503",
                                                   "x-resp-header": "X-Extra: 1"})
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("x-extra"), "1")
        r = harness.request(self.up.port, headers={"x-status": "204"})
        self.assertEqual((r.status, r.body), (204, b""))

    def test_stream_and_consume_small(self):
        for extra in ({}, {"x-chunked": "1"}, {"x-no-length": "1"}):
            chk = harness.PatternChecker()
            h = {"x-action": "stream", "x-bytes": str(3 * MIB + 17)}
            h.update(extra)
            r = harness.request(self.up.port, headers=h, sink=chk.feed)
            self.assertEqual(r.body_bytes, 3 * MIB + 17, extra)
            self.assertEqual(chk.count, 3 * MIB + 17)
            self.assertTrue(chk.ok, extra)
        c = self.conn(self.up.port)
        n = 2 * MIB + 5
        c.send(harness.build_request("PUT", "/u", headers={"x-action": "consume",
                                                           "Content-Length": str(n)}))
        for block in harness.pattern_blocks(n, 64 * 1024):
            c.send(block)
        r = c.read_response()
        self.assertEqual(r.json(), {"upstream": "u1", "bytes": n, "pattern_ok": True,
                                    "mismatch_at": None})

    def test_pattern_checker_detects_corruption(self):
        chk = harness.PatternChecker()
        data = bytearray(harness.PATTERN[:1000])
        data[700] ^= 1
        chk.feed(data[:300])
        chk.feed(data[300:])
        self.assertEqual(chk.mismatch_at, 700)

    def test_close_and_garbage(self):
        c = self.conn(self.up.port)
        c.send_request(headers={"x-action": "close"})
        self.assertClosed(c)
        c = self.conn(self.up.port)
        c.send_request(headers={"x-action": "garbage"})
        with self.assertRaises(harness.ProtocolError):
            c.read_response()

    def test_hold_gate(self):
        c = self.conn(self.up.port)
        c.send_request(headers={"x-action": "hold"})
        head = c.bs.read_head()
        self.assertIn(b"chunked", head.lower())
        self.assertEqual(c.bs.read_line(), b"a")
        self.assertEqual(c.bs.read_exact(12), b"first-part\r\n")
        self.up.gate.set()
        self.assertEqual(c.bs.read_chunked(lambda mv: None), [])

    def test_sleep_and_wait_closed(self):
        t0 = time.monotonic()
        r = harness.request(self.up.port, headers={"x-sleep-ms": "200"})
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual(r.status, 200)
        c = self.conn(self.up.port)
        self.assertFalse(c.wait_closed(0.2))
        c.request(headers={"Connection": "close"})
        self.assertClosed(c)

    def test_dead_port_refuses(self):
        d = self.dead_port()
        self.assertTrue(harness.connect_refused(d.port))
        self.assertFalse(harness.connect_refused(self.up.port))

    def test_config_builders(self):
        b = harness.proxy_config([(self.up, 100), 1234], lb_policy="ROUND_ROBIN",
                                 limits={"max_headers_count": 5})
        json.dumps(b)
        eps = b["static_resources"]["clusters"][0]["endpoints"]
        self.assertEqual(eps, [{"address": "127.0.0.1", "port": self.up.port, "weight": 100},
                               {"address": "127.0.0.1", "port": 1234}])
        r = harness.route(prefix="/a", cluster="c", methods=["GET"], name="n",
                          route={"prefix_rewrite": "/b"})
        self.assertEqual(r, {"name": "n", "match": {"prefix": "/a", "methods": ["GET"]},
                             "route": {"prefix_rewrite": "/b", "cluster": "c"}})

    @unittest.skipUnless(os.environ.get("SELFTEST_BIG"), "set SELFTEST_BIG=1")
    def test_big_both_ways(self):
        chk = harness.PatternChecker()
        t0 = time.monotonic()
        r = harness.request(self.up.port, headers={"x-action": "stream", "x-bytes": str(GIB)},
                            sink=chk.feed, timeout=60)
        self.assertEqual(chk.count, GIB)
        self.assertTrue(chk.ok)
        t1 = time.monotonic()
        c = self.conn(self.up.port, timeout=60)
        c.send(harness.build_request("PUT", "/u", headers={"x-action": "consume",
                                                           "Content-Length": str(GIB)}))
        for block in harness.pattern_blocks(GIB):
            c.send(block)
        r = c.read_response()
        self.assertEqual(r.json()["bytes"], GIB)
        self.assertTrue(r.json()["pattern_ok"])
        print("\n1 GiB down %.1fs, up %.1fs" % (t1 - t0, time.monotonic() - t1))


STUB = r"""#!/usr/bin/python3
# Stand-in for the sluice binary: just enough admin API for the Sluice wrapper.
import json, signal, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
args = sys.argv[1:]
cfg = json.load(open(args[args.index("-c") + 1]))
path = cfg.get("admin", {}).get("address_path")
if "--admin-address-path" in args:
    path = args[args.index("--admin-address-path") + 1]
print("stub starting with", args, file=sys.stderr, flush=True)
lsocks = {}
for ln in cfg["static_resources"]["listeners"]:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); lsocks[ln["name"]] = s
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/ready": body = b"LIVE\n"
        elif self.path == "/listeners":
            body = json.dumps({"listeners": [{"name": n, "address": "127.0.0.1:%d" %
                               s.getsockname()[1]} for n, s in lsocks.items()]}).encode()
        elif self.path == "/stats?format=json":
            body = json.dumps({"stats": [{"name": "downstream_rq_total", "value": 3}],
                               "histograms": [{"name": "h", "count": 1, "sum": 2,
                                               "buckets": []}]}).encode()
        else:
            self.send_response(404); self.send_header("content-length", "0");
            self.end_headers(); return
        self.send_response(200); self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(path, "w").write("127.0.0.1:%d" % srv.server_address[1])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
threading.Thread(target=srv.serve_forever, daemon=True).start()
signal.pause()
"""


class SluiceWrapperTest(harness.SluiceTestCase):
    """The Sluice process wrapper against a stub binary (no proxy needed)."""

    def setUp(self):
        d = self.tempdir()
        self.stub = os.path.join(d, "stub_sluice")
        with open(self.stub, "w") as f:
            f.write(STUB)
        os.chmod(self.stub, 0o755)
        self.cfg = harness.proxy_config([1234])

    def test_start_admin_and_terminate(self):
        s = self.start_sluice(self.cfg, binary=self.stub)
        self.assertRegex(s.admin_url, r"^http://127\.0\.0\.1:\d+$")
        self.assertGreater(s.listener_port("public"), 0)
        self.assertEqual(s.stats(), {"downstream_rq_total": 3})
        self.assertEqual(s.histograms()["h"]["count"], 1)
        self.assertGreater(s.rss_kb(), 1000)
        self.assertIn("--concurrency", s.cmd)
        with open(s.config_path) as f:
            written = json.load(f)
        self.assertEqual(written["admin"]["port"], 0)
        self.assertEqual(written["admin"]["address_path"], s.address_path)
        harness.wait_until(lambda: "stub starting" in s.stderr(), message="stderr captured")
        self.assertEqual(s.terminate(), 0)
        s.stop()
        self.assertIn("stub starting", s.stderr(), "stderr kept after stop()")
        self.assertFalse(os.path.exists(s.tmpdir))

    def test_admin_without_address_path_uses_flag(self):
        cfg = dict(self.cfg, admin={"address": "127.0.0.1", "port": 0})
        s = self.start_sluice(cfg, binary=self.stub)
        self.assertIn("--admin-address-path", s.cmd)
        self.assertEqual(s.admin_get("/ready")[0], 200)

    def test_startup_failure_reports_stderr(self):
        bad = os.path.join(self.tempdir(), "bad")
        with open(bad, "w") as f:
            f.write("#!/bin/sh\necho 'config error: static_resources.x' >&2\nexit 1\n")
        os.chmod(bad, 0o755)
        with self.assertRaises(harness.SluiceStartError) as cm:
            harness.Sluice(self.cfg, binary=bad)
        self.assertIn("config error: static_resources.x", str(cm.exception))
        self.assertIn("exited with 1", str(cm.exception))

    def test_yaml_text_gets_admin_appended(self):
        sleeper = os.path.join(self.tempdir(), "sleeper")
        with open(sleeper, "w") as f:
            f.write("#!/bin/sh\nexec sleep 30\n")
        os.chmod(sleeper, 0o755)
        s = harness.Sluice("static_resources:\n  listeners: []\n", binary=sleeper,
                           wait_ready=False)
        try:
            with open(s.config_path) as f:
                text = f.read()
            self.assertTrue(s.config_path.endswith(".yaml"))
            self.assertIn("\nadmin: {address: 127.0.0.1, port: 0, address_path: \"%s\"}\n"
                          % s.address_path, text)
            self.assertNotIn("--admin-address-path", s.cmd)
        finally:
            s.stop(grace=0.1)
        s2 = harness.Sluice("admin:\n  port: 0\n", binary=sleeper, wait_ready=False)
        s2.stop(grace=0.1)
        self.assertIn("--admin-address-path", s2.cmd)

    def test_failure_prints_sluice_stderr(self):
        stub = self.stub
        cfg = self.cfg

        class Inner(harness.SluiceTestCase):
            def test_fails(self):
                self.start_sluice(cfg, binary=stub)
                self.fail("deliberate")
        result = unittest.TestResult()
        captured = io.StringIO()
        old = sys.stderr
        sys.stderr = captured
        try:
            Inner("test_fails").run(result)
        finally:
            sys.stderr = old
        self.assertEqual(len(result.failures), 1)
        self.assertIn("stub starting", captured.getvalue())

    def test_missing_binary(self):
        with self.assertRaises(harness.SluiceStartError):
            harness.Sluice(self.cfg, binary="/nonexistent/sluice")


if __name__ == "__main__":
    harness.main()
