"""TLS at both ends: listener certificates by SNI, ALPN, the version floor, mTLS (with XFCC and the
auth filter's `mtls` method), session resumption across workers, handshake limits, OCSP
stapling; upstream TLS to a real nginx (verification failures named: expired, wrong name,
unknown CA); secrets in the bootstrap and bad certificate material refused.

Clients are Python's ssl module (OpenSSL underneath, but its own client code paths), curl and
`openssl s_client`.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \\
    /usr/bin/python3 test/integration/tls_test.py [TlsListenerTest.test_name]
"""

import datetime
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import (Conn, SluiceTestCase, bootstrap, cluster, listener, route, route_table,
                     run_validate, vhost, wait_until)
from tls_certs import Pki

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"


def client_ctx(ca=None, alpn=None, cert=None, minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca is not None:
        ctx.load_verify_locations(ca.cert_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert is not None:
        ctx.load_cert_chain(cert.chain_path, cert.key_path)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def peer_fingerprint(sock):
    import hashlib
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def tls_listener(name, certs, route_table_name="main", **tls):
    cfg = {"certificates": certs}
    cfg.update(tls)
    return listener(name, route_table_name, tls=cfg)


def file_cert(issued):
    return {"cert_chain_file": issued.chain_path, "private_key_file": issued.key_path}


class TlsListenerTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = harness.make_tempdir("sluice-tls-")
        pki = cls.pki = Pki(cls.dir)
        cls.ca = pki.ca("root-ca")
        cls.inter = pki.ca("intermediate-ca", issuer=cls.ca)
        cls.default = pki.issue(cls.inter, "default.test", dns=["default.test"], key="ec")
        cls.wild = pki.issue(cls.inter, "wild", dns=["*.wild.test"], key="rsa", name="wild")
        cls.exact = pki.issue(cls.inter, "exact.wild.test", dns=["exact.wild.test"])
        cls.client_ca = pki.ca("client-ca")
        cls.other_ca = pki.ca("other-ca")
        cls.alice = pki.issue(cls.client_ca, "alice", uri=["spiffe://test/alice"],
                              dns=["alice.clients.test"], client=True)
        cls.bob = pki.issue(cls.client_ca, "bob", uri=["spiffe://test/bob"], client=True)
        cls.mallory = pki.issue(cls.other_ca, "mallory", uri=["spiffe://test/alice"],
                                client=True)
        cls.expired_client = pki.expired(cls.client_ca, "old-alice", uri=["spiffe://test/alice"],
                                         client=True)
        cls.upstream = cls.start_class_upstream()
        cls.access_log = os.path.join(cls.dir, "access.log")
        routes = [route(prefix="/", cluster="backend", name="all")]
        mtls_routes = [route(prefix="/me", cluster="backend", auth="by-cert", name="me"),
                       route(prefix="/", cluster="backend", name="all")]
        mtls = tls_listener("mtls", [file_cert(cls.default)], "mtls",
                            client_ca_file=cls.client_ca.cert_path,
                            require_client_certificate=True,
                            forward_client_cert_details="SANITIZE_SET",
                            set_current_client_cert_details={"subject": True, "uri": True,
                                                             "dns": True})
        mtls["http_filters"] = [{"name": "auth"}, {"name": "router"}]
        mtls["access_log"] = {"path": cls.access_log}
        cfg = bootstrap(
            [tls_listener("https", [file_cert(cls.default), file_cert(cls.wild),
                                    file_cert(cls.exact)], handshake_timeout="500ms"),
             mtls,
             tls_listener("optional-mtls", [file_cert(cls.default)],
                          client_ca_file=cls.client_ca.cert_path),
             listener("plain", "main")],
            [route_table("main", [vhost("all", ["*"], routes)]),
             route_table("mtls", [vhost("all", ["*"], mtls_routes)])],
            [cluster("backend", [cls.upstream])])
        cfg["static_resources"]["auth_policies"] = [{
            "name": "by-cert", "mtls": {"consumers_by_san": {"spiffe://test/alice": "alice"}}}]
        cls.sluice = cls.start_class_sluice(cfg, concurrency=2)
        cls.port = cls.sluice.listener_port("https")
        cls.mtls_port = cls.sluice.listener_port("mtls")
        cls.optional_port = cls.sluice.listener_port("optional-mtls")
        cls.plain_port = cls.sluice.listener_port("plain")

    def https(self, port=None, sni=None, ctx=None, path="/", headers=None):
        with Conn(port or self.port, tls=ctx or client_ctx(self.ca), sni=sni) as c:
            return c.request("GET", path, headers=headers), c

    # -- certificates by SNI ------------------------------------------------------------------

    def test_sni_selects_certificate(self):
        cases = [("default.test", self.default), ("a.wild.test", self.wild),
                 ("exact.wild.test", self.exact), ("unknown.test", self.default),
                 ("x.y.wild.test", self.default), ("EXACT.WILD.TEST", self.exact),
                 (None, self.default)]
        for sni, want in cases:
            with Conn(self.port, tls=client_ctx(self.ca), sni=sni) as c:
                self.assertEqual(peer_fingerprint(c.sock), want.fingerprint(),
                                 "SNI %r should get %s" % (sni, want.name))
                r = c.request("GET", "/")
                self.assertStatus(r, 200)

    def test_chain_verifies_with_root_only(self):
        # The client trusts only the root: the intermediate must come from the server.
        with Conn(self.port, tls=client_ctx(self.ca), sni="default.test") as c:
            self.assertStatus(c.request("GET", "/"), 200)

    def test_rsa_and_ecdsa(self):
        with Conn(self.port, tls=client_ctx(self.ca), sni="a.wild.test") as c:
            self.assertIn("RSA", c.sock.cipher()[0] if c.sock.version() == "TLSv1.2" else "RSA")
            self.assertStatus(c.request("GET", "/"), 200)
        ctx = client_ctx(self.ca, maximum=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with Conn(self.port, tls=ctx, sni="default.test") as c:
            self.assertEqual(c.sock.cipher()[0], "ECDHE-ECDSA-AES128-GCM-SHA256")
        ctx = client_ctx(self.ca, maximum=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
        with Conn(self.port, tls=ctx, sni="a.wild.test") as c:
            self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-AES128-GCM-SHA256")

    # -- ALPN, versions -----------------------------------------------------------------------

    def test_alpn(self):
        # HTTP/2 is on by default: a client offering both gets h2 (the h2 tests speak it).
        with Conn(self.port, tls=client_ctx(self.ca, alpn=["h2", "http/1.1"])) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2")
        with Conn(self.port, tls=client_ctx(self.ca, alpn=["http/1.1"])) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
        with Conn(self.port, tls=client_ctx(self.ca)) as c:
            self.assertIsNone(c.sock.selected_alpn_protocol())
            self.assertStatus(c.request("GET", "/"), 200)
        # Nothing in common: the handshake still succeeds without ALPN (as nginx does).
        with Conn(self.port, tls=client_ctx(self.ca, alpn=["spdy/3"])) as c:
            self.assertIsNone(c.sock.selected_alpn_protocol())
            self.assertStatus(c.request("GET", "/"), 200)

    def test_versions(self):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with Conn(self.port, tls=client_ctx(self.ca, minimum=v, maximum=v)) as c:
                self.assertEqual(c.sock.version(), v.name.replace("_", "."))
                self.assertStatus(c.request("GET", "/"), 200)
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = client_ctx(None, minimum=v, maximum=v)
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError), msg=v.name):
                Conn(self.port, tls=ctx).close()
        # openssl s_client, the same floor.
        out = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.port,
                              "-tls1_1", "-cipher", "ALL:@SECLEVEL=0"],
                             input=b"", capture_output=True, timeout=20)
        self.assertNotEqual(out.returncode, 0)
        self.assertStatus(harness.request(self.plain_port), 200)

    def test_curl_https(self):
        out = subprocess.run([CURL, "-sS", "--cacert", self.ca.cert_path, "--resolve",
                              "default.test:%d:127.0.0.1" % self.port,
                              "https://default.test:%d/hello" % self.port, "-o", "/dev/null",
                              "-w", "%{http_code} %{ssl_verify_result}"],
                             capture_output=True, timeout=20)
        self.assertEqual(out.stdout.decode(), "200 0", out.stderr.decode())

    def test_forwarded_proto_https(self):
        r, _ = self.https(headers={"X-Forwarded-Proto": "http"})
        self.assertStatus(r, 200)
        up = self.upstream.last_request()
        self.assertEqual(up.header_all("x-forwarded-proto"), ["https"])
        harness.request(self.plain_port)
        self.assertEqual(self.upstream.last_request().header_all("x-forwarded-proto"), ["http"])

    # -- mTLS ---------------------------------------------------------------------------------

    def test_mtls_required(self):
        ok = client_ctx(self.ca, cert=self.alice)
        with Conn(self.mtls_port, tls=ok) as c:
            self.assertStatus(c.request("GET", "/"), 200)
        for name, ctx in (("no certificate", client_ctx(self.ca)),
                          ("untrusted CA", client_ctx(self.ca, cert=self.mallory)),
                          ("expired", client_ctx(self.ca, cert=self.expired_client))):
            # TLS 1.3 reports the refusal after the client's handshake: on the first read.
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError,
                                    harness.ProtocolError), msg=name):
                with Conn(self.mtls_port, tls=ctx) as c:
                    c.request("GET", "/")
        wait_until(lambda: self.sluice.stat("listener.mtls.ssl.connection_error") >= 3, 5,
                   message="three refused handshakes counted")
        self.assertGreaterEqual(self.sluice.stat("listener.mtls.ssl.no_certificate"), 1)
        self.assertGreaterEqual(self.sluice.stat("listener.mtls.ssl.fail_verify_error"), 2)
        self.assertStatus(harness.request(self.plain_port), 200)

    def test_mtls_optional(self):
        with Conn(self.optional_port, tls=client_ctx(self.ca)) as c:
            self.assertStatus(c.request("GET", "/"), 200)
        with Conn(self.optional_port, tls=client_ctx(self.ca, cert=self.bob)) as c:
            self.assertStatus(c.request("GET", "/"), 200)
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError, harness.ProtocolError)):
            with Conn(self.optional_port, tls=client_ctx(self.ca, cert=self.mallory)) as c:
                c.request("GET", "/")

    def test_xfcc(self):
        forged = "By=spiffe://evil;Hash=00;URI=spiffe://test/admin"
        with Conn(self.mtls_port, tls=client_ctx(self.ca, cert=self.alice)) as c:
            self.assertStatus(c.request("GET", "/", headers={
                "X-Forwarded-Client-Cert": forged}), 200)
        xfcc = self.upstream.last_request().header_all("x-forwarded-client-cert")
        self.assertEqual(len(xfcc), 1, xfcc)
        parts = xfcc[0].split(";")
        self.assertEqual(parts[0], "Hash=" + self.alice.fingerprint())
        self.assertIn('Subject="O=Sluice Tests,CN=alice"', parts)
        self.assertIn("URI=spiffe://test/alice", parts)
        self.assertIn("DNS=alice.clients.test", parts)
        # Sanitized everywhere else: never forwarded as the client sent it.
        for port, ctx in ((self.port, client_ctx(self.ca)),
                          (self.optional_port, client_ctx(self.ca, cert=self.bob))):
            with Conn(port, tls=ctx) as c:
                c.request("GET", "/", headers={"X-Forwarded-Client-Cert": forged})
            self.assertIsNone(self.upstream.last_request().header("x-forwarded-client-cert"))
        harness.request(self.plain_port, headers={"X-Forwarded-Client-Cert": forged})
        self.assertIsNone(self.upstream.last_request().header("x-forwarded-client-cert"))

    def test_mtls_auth_consumer(self):
        with Conn(self.mtls_port, tls=client_ctx(self.ca, cert=self.alice)) as c:
            r = c.request("GET", "/me", headers={"X-Consumer-Username": "root"})
        self.assertStatus(r, 200)
        self.assertEqual(self.upstream.last_request().header_all("x-consumer-username"),
                         ["alice"])
        with Conn(self.mtls_port, tls=client_ctx(self.ca, cert=self.bob)) as c:
            r = c.request("GET", "/me")
        self.assertStatus(r, 401)

    def test_access_log_has_tls_fields(self):
        with Conn(self.mtls_port, tls=client_ctx(self.ca, cert=self.alice),
                  sni="default.test") as c:
            self.assertStatus(c.request("GET", "/logged"), 200)

        def entry():
            if not os.path.exists(self.access_log):
                return None
            with open(self.access_log) as f:
                for line in f:
                    e = json.loads(line)
                    if e["path"] == "/logged":
                        return e
            return None
        wait_until(lambda: entry() is not None, 5, message="access log line")
        e = entry()
        self.assertIn(e["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(e["tls_sni"], "default.test")
        self.assertEqual(e["client_cert_subject"], "O=Sluice Tests,CN=alice")
        self.assertEqual(e["client_cert_sans"], "alice.clients.test,spiffe://test/alice")

    # -- resumption ---------------------------------------------------------------------------

    def test_session_resumption_across_workers(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(self.ca, minimum=version, maximum=version)
            with Conn(self.port, tls=ctx) as c:
                self.assertStatus(c.request("GET", "/"), 200)  # TLS 1.3 tickets come after
                session = c.sock.session
                self.assertFalse(c.sock.session_reused)
            self.assertIsNotNone(session)
            reused = 0
            # Two workers: these land on both.
            for _ in range(8):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                t = ctx.wrap_socket(s, session=session)
                reused += t.session_reused
                t.close()
            self.assertEqual(reused, 8, version.name)
        # The server counts a TLS 1.3 handshake when the client's Finished arrives, which may be
        # after the client has moved on.
        wait_until(lambda: self.sluice.stat("listener.https.ssl.session_reused") >= 16, 5,
                   message="16 resumed handshakes counted")

    # -- hostile and broken peers -------------------------------------------------------------

    def test_handshake_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        start = time.monotonic()
        s.settimeout(5)
        self.assertEqual(s.recv(100), b"")  # closed by the server
        self.assertLess(time.monotonic() - start, 3)
        s.close()

    def test_cleartext_to_tls_port(self):
        with Conn(self.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(c.wait_closed())
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(os.urandom(3000))
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()
        r, _ = self.https()
        self.assertStatus(r, 200)

    def test_large_bodies(self):
        body = os.urandom(3 * 1024 * 1024)
        with Conn(self.port, tls=client_ctx(self.ca)) as c:
            for _ in range(2):
                r = c.request("POST", "/echo", body=body)
                self.assertStatus(r, 200)
        self.assertEqual(self.upstream.last_request().body_len, len(body))


class OcspTest(SluiceTestCase):
    def test_staple_sent_when_asked(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp
        d = self.tempdir()
        pki = Pki(d)
        ca = pki.ca("ocsp-ca")
        leaf = pki.issue(ca, "ocsp.test", dns=["ocsp.test"])
        now = datetime.datetime.utcnow()
        resp = ocsp.OCSPResponseBuilder().add_response(
            cert=leaf.cert, issuer=ca.cert, algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
            next_update=now + datetime.timedelta(days=1), revocation_time=None,
            revocation_reason=None).responder_id(
                ocsp.OCSPResponderEncoding.HASH, ca.cert).sign(ca.key, hashes.SHA256())
        der = os.path.join(d, "staple.der")
        with open(der, "wb") as f:
            f.write(resp.public_bytes(serialization.Encoding.DER))
        cert = file_cert(leaf)
        cert["ocsp_staple_file"] = der
        up = self.start_upstream()
        s = self.start_sluice(bootstrap([tls_listener("https", [cert])],
                                        [route_table("main", [vhost("all", ["*"], [
                                            route(prefix="/", cluster="b")])])],
                                        [cluster("b", [up])]))
        port = s.listener_port("https")
        with_status = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                                      "-status", "-servername", "ocsp.test"],
                                     input=b"", capture_output=True, timeout=20).stdout.decode()
        self.assertIn("OCSP Response Status: successful", with_status)
        without = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                                  "-servername", "ocsp.test"],
                                 input=b"", capture_output=True, timeout=20).stdout.decode()
        self.assertNotIn("OCSP Response Status", without)


class BadMaterialTest(SluiceTestCase):
    """Broken certificates and keys are refused at load with a message that names them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = harness.make_tempdir("sluice-tls-bad-")
        pki = Pki(cls.dir)
        cls.ca = pki.ca("ca")
        cls.good = pki.issue(cls.ca, "good.test", dns=["good.test"])
        cls.other = pki.issue(cls.ca, "other.test", dns=["other.test"])
        cls.expired = pki.expired(cls.ca, "expired.test", dns=["expired.test"])

    def config(self, cert, **tls):
        return bootstrap([tls_listener("https", [cert], **tls)],
                         [route_table("main", [vhost("all", ["*"], [
                             route(prefix="/", direct_response={"status": 200})])])], [])

    def refused(self, cfg, *needles):
        out = run_validate(cfg)
        self.assertNotEqual(out.returncode, 0, out.stdout + out.stderr)
        for n in needles:
            self.assertIn(n, out.stderr + out.stdout)

    def test_key_mismatch(self):
        self.refused(self.config({"cert_chain_file": self.good.chain_path,
                                  "private_key_file": self.other.key_path}),
                     "static_resources.listeners[0].tls.certificates[0]",
                     "the private key does not match the certificate")

    def test_expired(self):
        self.refused(self.config(file_cert(self.expired)), "the certificate has expired")

    def test_missing_file_and_garbage(self):
        self.refused(self.config({"cert_chain_file": "/nonexistent.pem",
                                  "private_key_file": self.good.key_path}),
                     "certificates[0].cert_chain_file", "/nonexistent.pem")
        junk = os.path.join(self.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        self.refused(self.config({"cert_chain_file": junk,
                                  "private_key_file": self.good.key_path}),
                     "no PEM certificate")

    def test_shape_errors(self):
        self.refused(self.config(file_cert(self.good), require_client_certificate=True),
                     "require_client_certificate: needs client_ca_file")
        self.refused(self.config(file_cert(self.good), min_version="TLSv1_3",
                                 max_version="TLSv1_2"), "min_version: is above max_version")
        self.refused(self.config(file_cert(self.good), alpn=["spdy/3"]),
                     'unknown protocol "spdy/3"')
        self.refused(self.config({"secret": "nope"}), 'unknown secret "nope"')
        self.refused(bootstrap([listener("https", "main", tls={"certificates": []})],
                               [route_table("main", [])], []),
                     "at least one certificate is required")

    def test_secrets(self):
        good = {"name": "edge", "tls_certificate": {"certificate_chain": self.good.chain_pem(),
                                                    "private_key": self.good.key_pem()}}
        cfg = self.config({"secret": "edge"})
        cfg["static_resources"]["secrets"] = [good]
        out = run_validate(cfg)
        self.assertEqual(out.returncode, 0, out.stderr)
        bad = dict(good, tls_certificate={"certificate_chain": self.good.chain_pem(),
                                          "private_key": self.other.key_pem()})
        cfg["static_resources"]["secrets"] = [bad]
        self.refused(cfg, "static_resources.secrets[0].tls_certificate",
                     "the private key does not match")
        ca_only = {"name": "edge", "validation_context": {"trusted_ca": self.ca.cert_pem()}}
        cfg["static_resources"]["secrets"] = [ca_only]
        self.refused(cfg, 'secret "edge" has no tls_certificate')

    def test_served_from_secret(self):
        up = self.start_upstream()
        cfg = bootstrap([tls_listener("https", [{"secret": "edge"}])],
                        [route_table("main", [vhost("all", ["*"], [
                            route(prefix="/", cluster="b")])])], [cluster("b", [up])])
        cfg["static_resources"]["secrets"] = [
            {"name": "edge", "tls_certificate": {"certificate_chain": self.good.chain_pem(),
                                                 "private_key": self.good.key_pem()}}]
        s = self.start_sluice(cfg)
        with Conn(s.listener_port("https"), tls=client_ctx(self.ca), sni="good.test") as c:
            self.assertEqual(peer_fingerprint(c.sock), self.good.fingerprint())
            self.assertStatus(c.request("GET", "/"), 200)
        status, _, dump = s.admin_get("/config_dump")
        self.assertEqual(status, 200)
        dump = dump.decode() if isinstance(dump, bytes) else dump
        self.assertIn("BEGIN CERTIFICATE", dump)  # the certificate is shown
        self.assertNotIn("PRIVATE KEY", dump)     # the key never is


def Nginx(tempdir, cert, client_ca=None):
    """nginx terminating TLS on loopback with `cert`; optionally asking for a client
    certificate. Answers 200 "nginx-ok <client verify> <SNI>"."""
    verify = ""
    if client_ca is not None:
        verify = "ssl_client_certificate %s; ssl_verify_client on;" % client_ca.cert_path
    return harness.Nginx(tempdir, """
    ssl_certificate %s;
    ssl_certificate_key %s;
    %s
    location / { return 200 "nginx-ok $ssl_client_verify $ssl_server_name\\n"; }""" % (
        cert.chain_path, cert.key_path, verify), ssl=True)


class UpstreamTlsTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = harness.make_tempdir("sluice-tls-up-")
        pki = Pki(cls.dir)
        cls.ca = pki.ca("up-ca")
        cls.other_ca = pki.ca("stranger-ca")
        cls.client_ca = pki.ca("up-client-ca")
        cls.good = pki.issue(cls.ca, "backend.test", dns=["backend.test"], ip=["127.0.0.1"],
                             uri=["spiffe://test/backend"])
        cls.expired = pki.expired(cls.ca, "old.test", dns=["backend.test"])
        cls.client = pki.issue(cls.client_ca, "sluice-client", client=True)
        cls.nginx_good = Nginx(os.path.join(cls.dir, "ng1"), cls.good)
        cls.nginx_expired = Nginx(os.path.join(cls.dir, "ng2"), cls.expired)
        cls.nginx_mtls = Nginx(os.path.join(cls.dir, "ng3"), cls.good, client_ca=cls.client_ca)

    @classmethod
    def tearDownClass(cls):
        for n in (cls.nginx_good, cls.nginx_expired, cls.nginx_mtls):
            n.stop()
        super().tearDownClass()

    def proxy(self, clusters):
        routes = [route(prefix="/" + c["name"], cluster=c["name"]) for c in clusters]
        return self.start_sluice(bootstrap([listener("public", "main")],
                                           [route_table("main", [vhost("all", ["*"], routes)])],
                                           clusters))

    def test_verification(self):
        def c(name, nginx, **tls):
            return cluster(name, [nginx.port], tls=tls)
        ca = self.ca.cert_path
        s = self.proxy([
            c("good", self.nginx_good, sni="backend.test", ca_file=ca),
            c("bysan", self.nginx_good, ca_file=ca,
              verify_subject_alt_name=["spiffe://test/backend"]),
            c("byip", self.nginx_good, ca_file=ca, verify_subject_alt_name=["127.0.0.1"]),
            c("wrongname", self.nginx_good, sni="api.example.com", ca_file=ca),
            c("expired", self.nginx_expired, sni="backend.test", ca_file=ca),
            c("unknownca", self.nginx_good, sni="backend.test",
              ca_file=self.other_ca.cert_path),
            c("insecure", self.nginx_expired, sni="backend.test", insecure_skip_verify=True),
            c("mtls", self.nginx_mtls, sni="backend.test", ca_file=ca,
              certificate=file_cert(self.client)),
            c("nocert", self.nginx_mtls, sni="backend.test", ca_file=ca)])
        port = s.listener_port("public")
        with Conn(port) as conn:
            for _ in range(3):  # pooled connections are reused
                r = conn.request("GET", "/good")
                self.assertStatus(r, 200)
                self.assertEqual(r.text, "nginx-ok NONE backend.test\n")
        self.assertEqual(s.stat("cluster.good.upstream_cx_total"), 1)
        self.assertStatus(harness.request(port, path="/bysan"), 200)
        self.assertStatus(harness.request(port, path="/byip"), 200)
        for path, why in (("/wrongname", "wrong name"), ("/expired", "certificate expired"),
                          ("/unknownca", "unknown CA")):
            r = harness.request(port, path=path)
            self.assertLocalReply(r, 503, why)
            self.assertIn("TLS", r.text)
        wait_until(lambda: "certificate expired" in s.stderr(), 5, message="log line")
        self.assertIn('cluster "wrongname"', s.stderr())
        self.assertIn("wrong name", s.stderr())
        self.assertIn("unknown CA", s.stderr())
        r = harness.request(port, path="/insecure")
        self.assertStatus(r, 200)
        self.assertIn("insecure_skip_verify", s.stderr())
        r = harness.request(port, path="/mtls")
        self.assertStatus(r, 200)
        self.assertEqual(r.text, "nginx-ok SUCCESS backend.test\n")
        r = harness.request(port, path="/nocert")
        self.assertEqual(r.status, 400)  # nginx: "No required SSL certificate was sent"
        self.assertGreaterEqual(s.stat("cluster.expired.upstream_cx_tls_fail"), 1)

    def test_health_checks_use_tls(self):
        s = self.proxy([cluster("hc", [self.nginx_good.port, self.nginx_expired.port], tls={
            "sni": "backend.test", "ca_file": self.ca.cert_path},
            health_check={"http_path": "/", "interval": "100ms", "unhealthy_threshold": 1,
                          "healthy_threshold": 1})])
        port = s.listener_port("public")
        wait_until(lambda: s.stat("cluster.hc.health_check.failure") >= 1, 10,
                   message="the expired endpoint fails its check")
        for _ in range(10):
            r = harness.request(port, path="/hc")
            self.assertStatus(r, 200)


class HttpsJwksTest(SluiceTestCase):
    """remote_jwks over https://: the JWKS server's certificate is verified (CA and name)."""

    def test_https_jwks(self):
        import base64
        import http.server
        import jwt  # python3-jwt
        d = self.tempdir()
        pki = Pki(d)
        ca = pki.ca("jwks-ca")
        stranger = pki.ca("stranger-ca")
        server_cert = pki.issue(ca, "127.0.0.1", ip=["127.0.0.1"])
        secret = b"0123456789abcdef0123456789abcdef"
        jwks = json.dumps({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
                                     "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}]})

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = jwks.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(server_cert.chain_path, server_cert.key_path)
        httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        uri = "https://127.0.0.1:%d/jwks.json" % httpd.server_address[1]
        up = self.start_upstream()

        def policy(name, ca_file):
            return {"name": name, "jwt": {"providers": [{
                "name": "p", "remote_jwks": {"uri": uri, "ca_file": ca_file}}]}}
        routes = [route(prefix="/good", cluster="b", auth="good"),
                  route(prefix="/bad", cluster="b", auth="bad")]
        cfg = bootstrap([listener("public", "main",
                                  http_filters=[{"name": "auth"}, {"name": "router"}])],
                        [route_table("main", [vhost("all", ["*"], routes)])],
                        [cluster("b", [up])])
        cfg["static_resources"]["auth_policies"] = [policy("good", ca.cert_path),
                                                    policy("bad", stranger.cert_path)]
        s = self.start_sluice(cfg)
        port = s.listener_port("public")
        token = jwt.encode({"sub": "u", "exp": int(time.time()) + 600}, secret,
                           algorithm="HS256", headers={"kid": "k1"})
        auth = {"Authorization": "Bearer " + token}
        wait_until(lambda: s.stat("auth.good.jwks_fetch") >= 1, 10, message="JWKS over https")
        self.assertStatus(harness.request(port, path="/good", headers=auth), 200)
        wait_until(lambda: s.stat("auth.bad.jwks_fetch_failed") >= 1, 10,
                   message="JWKS fetch refused: unknown CA")
        self.assertStatus(harness.request(port, path="/bad", headers=auth), 401)
        self.assertIn("unknown CA", s.stderr())


if __name__ == "__main__":
    harness.main()
