"""Certificates pushed as Secret resources through sluice-cp and rotated under load: new
handshakes get the new certificate, open keep-alive connections stay up, not one request fails;
a bad secret (key not matching, expired, missing) is refused and the last good one keeps
serving.

Run by hand (after bazel build //source/exe:sluice //source/control_plane:sluice-cp
//source/cli:sluicectl): /usr/bin/python3 test/integration/tls_rotation_test.py
"""

import hashlib
import socket
import ssl
import threading
import time

import harness
from cp_harness import CpTestCase, declared
from harness import Conn, wait_until
from tls_certs import Pki


def fingerprint(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def secret(name, issued):
    return {"name": name, "tls_certificate": {"certificate_chain": issued.chain_pem(),
                                              "private_key": issued.key_pem()}}


class SecretRotationTest(CpTestCase):
    API = "SOTW"

    def setUp(self):
        super().setUp()
        d = self.tempdir()
        pki = self.pki = Pki(d)
        self.ca = pki.ca("rotation-ca")
        self.v1 = pki.issue(self.ca, "edge.test", dns=["edge.test"], name="edge-v1")
        self.v2 = pki.issue(self.ca, "edge.test", dns=["edge.test"], name="edge-v2", key="rsa")
        self.other = pki.issue(self.ca, "other.test", dns=["other.test"], name="other")
        self.expired = pki.expired(self.ca, "edge.test", dns=["edge.test"], name="edge-old")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(self.ca.cert_path)
        self.upstream = self.start_upstream()

    def config(self, secrets):
        cfg = declared({"backend": [self.upstream]}, routes=[("/", "backend")])
        cfg["listeners"][0]["tls"] = {"certificates": [{"secret": "edge"}]}
        cfg["secrets"] = secrets
        return cfg

    def test_rotation_under_load(self):
        cp = self.start_cp()
        cp.apply(self.config([secret("edge", self.v1)]))
        dp = self.start_dp(cp, "edge-1", concurrency=2)
        cp.wait_in_sync("edge-1")
        port = dp.listener_port("public")
        with Conn(port, tls=self.ctx, sni="edge.test") as c:
            self.assertEqual(fingerprint(c.sock), self.v1.fingerprint())
            self.assertStatus(c.request("GET", "/"), 200)

        stop = threading.Event()
        errors = []
        counts = {"keepalive": 0, "new": 0}
        seen = set()
        lock = threading.Lock()

        def keepalive():
            # Opened before the rotation, used all along: must never break.
            try:
                with Conn(port, tls=self.ctx, sni="edge.test") as c:
                    while not stop.is_set():
                        r = c.request("GET", "/ka")
                        if r.status != 200:
                            errors.append("keep-alive: %r" % r)
                            return
                        with lock:
                            counts["keepalive"] += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append("keep-alive: %r" % e)

        def fresh():
            while not stop.is_set():
                try:
                    with Conn(port, tls=self.ctx, sni="edge.test") as c:
                        fp = fingerprint(c.sock)
                        r = c.request("GET", "/new")
                    if r.status != 200:
                        errors.append("new connection: %r" % r)
                    with lock:
                        counts["new"] += 1
                        seen.add(fp)
                except Exception as e:  # noqa: BLE001
                    errors.append("new connection: %r" % e)

        threads = [threading.Thread(target=keepalive) for _ in range(4)]
        threads += [threading.Thread(target=fresh) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            cp.apply(self.config([secret("edge", self.v2)]))
            cp.wait_in_sync("edge-1")

            def rotated():
                with Conn(port, tls=self.ctx, sni="edge.test") as c:
                    return fingerprint(c.sock) == self.v2.fingerprint()
            wait_until(rotated, 10, message="new handshakes get the rotated certificate")
            time.sleep(0.5)
            # Bad secrets are refused by sluice-cp; the data plane keeps v2.
            for bad, why in ((secret("edge", self.expired), "expired"),
                             ({"name": "edge", "tls_certificate": {
                                 "certificate_chain": self.v2.chain_pem(),
                                 "private_key": self.other.key_pem()}}, "does not match"),
                             (None, 'unknown secret "edge"')):
                out = cp.apply(self.config([] if bad is None else [bad]), check=False)
                self.assertNotEqual(out.returncode, 0, out.stdout)
                self.assertIn(why, out.stderr + out.stdout)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(seen, {self.v1.fingerprint(), self.v2.fingerprint()})
        self.assertGreater(counts["keepalive"], 20)
        self.assertGreater(counts["new"], 20)
        with Conn(port, tls=self.ctx, sni="edge.test") as c:
            self.assertEqual(fingerprint(c.sock), self.v2.fingerprint())
        harness.report("rotation under load: %d keep-alive and %d new-connection requests, "
                       "0 failed", counts["keepalive"], counts["new"])

    def test_tls_turned_off_by_push(self):
        # The listener's tls and the secret go in one push; the listener serves cleartext.
        cp = self.start_cp()
        cp.apply(self.config([secret("edge", self.v1)]))
        dp = self.start_dp(cp, "edge-2")
        cp.wait_in_sync("edge-2")
        port = dp.listener_port("public")
        cfg = self.config([])
        cfg["listeners"][0].pop("tls")
        cp.apply(cfg)
        cp.wait_in_sync("edge-2")
        self.assertStatus(harness.request(port), 200)  # cleartext now


if __name__ == "__main__":
    harness.main()
