"""HTTP/2 options at the edges of the proxy: an HTTP2 cluster over TLS (h2 chosen by ALPN,
the endpoint's certificate verified), and a listener with `http2: {enabled: false}` (no h2 in
ALPN, the h2c preface is not HTTP/2 there).

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/h2_options_test.py
"""

import json
import socket
import ssl
import unittest

import h2_harness as H
import harness
from h2_upstream import H2Upstream
from harness import SluiceTestCase, bootstrap, route, route_table, vhost
from tls_certs import class_pki


@H.require_h2
class H2OptionsTest(SluiceTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pki = class_pki(cls)
        cls.ca = pki.ca("h2-options-ca")
        up_cert = pki.issue(cls.ca, "grpc.internal", dns=["grpc.internal"])
        cls.edge_cert = pki.issue(cls.ca, "localhost", dns=["localhost"], ip=["127.0.0.1"])
        cls.h2tls = H2Upstream("h2tls", tls=(up_cert.chain_path, up_cert.key_path))
        cls.addClassCleanup(cls.h2tls.close)

    def start(self):
        cluster = H.h2_cluster("h2tls", [self.h2tls], tls={
            "sni": "grpc.internal", "ca_file": self.ca.cert_path})
        cfg = bootstrap(
            [H.h2_listener("public", "main"),
             harness.listener("h1only", "main", http2={"enabled": False},
                              tls=H.tls_config(self.edge_cert)),
             harness.listener("h1plain", "main", http2={"enabled": False}),
             H.h2_listener("small", "main", limits={"max_request_body_bytes": 100})],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/", cluster="h2tls", name="h2tls")])])],
            [cluster])
        return self.start_sluice(cfg)

    def test_http2_cluster_over_tls_uses_h2_by_alpn(self):
        s = self.start()
        c = H.H2Client(s.listener_port("public"))
        self.addCleanup(c.close)
        r = c.request("POST", "/over-tls", body=b"x" * 1000, trailers=[("x-t", "1")])
        self.assertEqual(r.status, 200, r)
        e = json.loads(r.body)
        self.assertEqual((e["protocol"], e["scheme"], e["path"], e["body_len"]),
                         ("HTTP/2", "https", "/over-tls", 1000))
        self.assertEqual(e["trailers"], [["x-t", "1"]])
        self.assertEqual(self.h2tls.alpn_seen[-1], "h2", "the upstream connection is h2 (ALPN)")

    def test_body_over_max_request_body_bytes_is_413(self):
        # The codec answers (the connection manager's stream is reset): the client still gets
        # the 413, not a bare RST_STREAM, and the connection keeps serving.
        s = self.start()
        c = H.H2Client(s.listener_port("small"))
        self.addCleanup(c.close)
        self.assertEqual(c.request("POST", "/big", body=b"x" * 1000).status, 413)
        self.assertEqual(c.request("POST", "/small", body=b"x" * 10).status, 200)

    def test_listener_without_http2(self):
        s = self.start()
        # TLS: ALPN does not offer h2; a client offering both gets http/1.1.
        ctx = ssl.create_default_context(cafile=self.ca.cert_path)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with harness.Conn(s.listener_port("h1only"), tls=ctx, sni="localhost") as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
        # Cleartext: the preface is not taken as HTTP/2; it is a malformed HTTP/1.1 request.
        with socket.create_connection(("127.0.0.1", s.listener_port("h1plain")), 5) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            data = sock.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 4"), data[:80])
        self.assertEqual(s.stat("downstream_cx_http2_total"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
