"""sluice <-> sluice-cp and sluicectl -> sluice-cp over TLS with client certificates.

Certificates are made with tls_certs.py: a CA, sluice-cp's server
certificate (SANs 127.0.0.1 and localhost), client certificates for data planes and the
operator, and a second CA whose certificates sluice-cp must refuse. sluice-cp runs with
--tls-cert/--tls-key/--client-ca; data planes with control_plane.tls in their bootstrap.
"""

import json
import os
import subprocess
import unittest

import cp_harness
import harness
import tls_certs
from harness import wait_until


def healthz_config():
    return cp_harness.direct_config(body="ok over tls cp\n")


class ControlPlaneTlsTest(cp_harness.CpTestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki = tls_certs.class_pki(cls)
        cls.ca = pki.ca("cp-ca")
        cls.server = pki.issue(cls.ca, "sluice-cp", dns=["localhost"], ip=["127.0.0.1"])
        cls.edge = pki.issue(cls.ca, "edge-1", dns=["edge-1"], client=True)
        cls.operator = pki.issue(cls.ca, "operator", client=True)
        # Another CA, and a client certificate of it for the same name.
        cls.other_ca = pki.ca("other-ca")
        cls.stranger = pki.issue(cls.other_ca, "edge-1", client=True, name="stranger-edge-1")

    def ctl_tls(self, client=None):
        client = client or self.operator
        return ["--tls-ca", self.ca.cert_path, "--tls-cert", client.cert_path,
                "--tls-key", client.key_path]

    def start_tls_cp(self, client_ca=True):
        args = ["--tls-cert", self.server.cert_path, "--tls-key", self.server.key_path]
        if client_ca:
            args += ["--client-ca", self.ca.cert_path]
        return self.start_cp(extra_args=args, ctl_args=self.ctl_tls())

    def dp(self, cp, node_id, tls, address=None, **kw):
        b = cp_harness.dp_bootstrap(cp, node_id)
        if address:
            b["control_plane"]["address"] = address
        if tls is not None:
            b["control_plane"]["tls"] = tls
        return self.start_sluice(b, **kw)

    def dp_tls(self, client=None, ca=None, **extra):
        """control_plane.tls: the edge-1 client certificate unless `client` is another Cert,
        or False for none."""
        if client is None:
            client = self.edge
        tls = {"ca_file": ca or self.ca.cert_path}
        if client is not False:
            tls.update({"cert_chain_file": client.cert_path,
                        "private_key_file": client.key_path})
        tls.update(extra)
        return tls

    def assert_healthz(self, dp):
        port = dp.listener_port("public")
        resp = harness.request(port, "GET", "/healthz")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"ok over tls cp\n")

    def assert_refused(self, cp, dp, node_id, dp_log, cp_log=None):
        """The data plane never gets config: it logs why, is not ready, and sluice-cp never
        sees the node."""
        wait_until(lambda: dp_log in dp.stderr(), timeout=10,
                   message="sluice to log %r" % dp_log)
        if cp_log:
            cp.wait_log(cp_log, timeout=10)
        addr = dp._read_address()
        self.assertIsNotNone(addr)
        status, _, _ = harness.admin_request(addr[0], addr[1], "GET", "/ready")
        self.assertEqual(status, 503)
        self.assertIsNone(cp.node(node_id))
        self.assertNotIn("accepted", dp.stderr())

    # -----------------------------------------------------------------------------------------

    def test_mtls_config_arrives_and_sluicectl_works(self):
        cp = self.start_tls_cp()
        cp.wait_log(r"listening on .* \(TLS, client certificates required")
        out = cp.apply(healthz_config()).stdout  # sluicectl apply over mTLS
        self.assertIn("version 1", out)
        dp = self.dp(cp, "edge-1", self.dp_tls())
        self.assert_healthz(dp)
        node = cp.wait_in_sync("edge-1")
        self.assertTrue(node["connected"])
        self.assertIn("TLS with a client certificate", dp.stderr())
        dump = dp.admin_json("/config_dump")
        self.assertTrue(dump["control_plane"]["tls"])
        self.assertTrue(dump["control_plane"]["connected"])
        # get, validate, diff: the other commands over mTLS.
        got = json.loads(cp.ctl("get", "listeners", "-o", "json").stdout)
        self.assertEqual([l["name"] for l in got], ["public"])
        path = cp.write_config(healthz_config())
        self.assertEqual(cp.ctl("validate", "-f", path).stdout, "valid\n")
        self.assertEqual(cp.ctl("diff", "-f", path).returncode, 0)
        # The same with the environment instead of flags.
        env = dict(os.environ, SLUICECTL_SERVER=cp.address, SLUICECTL_TLS_CA=self.ca.cert_path,
                   SLUICECTL_TLS_CERT=self.operator.cert_path,
                   SLUICECTL_TLS_KEY=self.operator.key_path)
        r = subprocess.run([cp_harness.ctl_binary(), "status", "-o", "json"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["nodes"][0]["id"], "edge-1")

    def test_data_plane_without_client_certificate_is_refused(self):
        cp = self.start_tls_cp()
        cp.apply(healthz_config())
        dp = self.dp(cp, "edge-2", self.dp_tls(client=False), wait_ready=False)
        self.assert_refused(cp, dp, "edge-2", "our client certificate",
                            cp_log=r"grpc: Handshake failed.*peer did not return a certificate")

    def test_client_certificate_of_another_ca_is_refused(self):
        cp = self.start_tls_cp()
        cp.apply(healthz_config())
        dp = self.dp(cp, "edge-1", self.dp_tls(client=self.stranger), wait_ready=False)
        self.assert_refused(cp, dp, "edge-1", "our client certificate",
                            cp_log=r"grpc: Handshake failed.*certificate verify failed")

    def test_server_certificate_of_another_ca_is_refused(self):
        cp = self.start_tls_cp()
        cp.apply(healthz_config())
        dp = self.dp(cp, "edge-1", self.dp_tls(ca=self.other_ca.cert_path), wait_ready=False)
        self.assert_refused(cp, dp, "edge-1", "certificate verify failed")

    def test_server_name(self):
        cp = self.start_tls_cp()
        cp.apply(healthz_config())
        # The certificate says localhost (and 127.0.0.1): dialing the IP but verifying the
        # name works; a name it does not carry is refused.
        good = self.dp(cp, "edge-1", self.dp_tls(server_name="localhost"))
        self.assert_healthz(good)
        bad = self.dp(cp, "edge-2", self.dp_tls(server_name="wrong.example"), wait_ready=False)
        self.assert_refused(cp, bad, "edge-2", "wrong.example")
        # Dialing by the name the certificate carries, without an override.
        by_name = self.dp(cp, "edge-3", self.dp_tls(), address="localhost:%d" % cp.port)
        self.assert_healthz(by_name)

    def test_sluicectl_refused_without_the_right_certificate(self):
        cp = self.start_tls_cp()
        base = [cp_harness.ctl_binary(), "--server", cp.address]

        def ctl(*args):
            return subprocess.run(base + list(args) + ["status"], capture_output=True,
                                  text=True, timeout=30)
        r = ctl()
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach sluice-cp", r.stderr)
        self.assertIn("if sluice-cp serves TLS, pass --tls-ca", r.stderr)
        r = ctl("--tls-ca", self.ca.cert_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("may want a client certificate", r.stderr)
        r = ctl(*self.ctl_tls(self.stranger))
        self.assertEqual(r.returncode, 1)
        self.assertIn("may have refused the client certificate", r.stderr)
        r = ctl("--tls-ca", self.other_ca.cert_path, "--tls-cert", self.operator.cert_path,
                "--tls-key", self.operator.key_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate verify failed", r.stderr)
        r = ctl("--tls-ca", self.ca.cert_path, "--tls-cert", self.operator.cert_path,
                "--tls-key", self.edge.key_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls-cert %s and --tls-key %s: the private key does not match the "
                      "certificate" % (self.operator.cert_path, self.edge.key_path), r.stderr)
        self.assertEqual(ctl(*self.ctl_tls()).returncode, 0)
        # Nothing but gRPC's status line: no gRPC log lines on sluicectl's stderr.
        r = ctl("--tls-ca", self.ca.cert_path)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_tls_without_client_certificates(self):
        cp = self.start_tls_cp(client_ca=False)
        cp.ctl_args = ["--tls-ca", self.ca.cert_path]
        cp.wait_log(r"listening on .* \(TLS;")
        cp.apply(healthz_config())
        dp = self.dp(cp, "edge-1", self.dp_tls(client=False))
        self.assert_healthz(dp)
        # A cleartext data plane cannot talk to it.
        plain = self.dp(cp, "edge-2", None, wait_ready=False)
        wait_until(lambda: "unavailable" in plain.stderr(), timeout=10,
                   message="cleartext sluice to log it cannot connect")
        self.assertIsNone(cp.node("edge-2"))

    def test_cleartext_still_works(self):
        cp = self.start_cp()
        cp.wait_log(r"listening on .* \(cleartext;")
        cp.apply(healthz_config())
        dp = self.dp(cp, "edge-1", None)
        self.assert_healthz(dp)
        self.assertFalse(dp.admin_json("/config_dump")["control_plane"]["tls"])

    def test_bad_files_stop_sluice_and_sluice_cp_at_start(self):
        d = self.tempdir()
        not_pem = os.path.join(d, "not.pem")
        with open(not_pem, "w") as f:
            f.write("hello\n")
        bootstrap = {
            "node": {"id": "edge-1"},
            "control_plane": {"address": "127.0.0.1:1", "tls": {
                "ca_file": os.path.join(d, "missing.pem"),
                "cert_chain_file": self.edge.cert_path,
                "private_key_file": not_pem}},
        }
        path = os.path.join(d, "bootstrap.json")
        with open(path, "w") as f:
            json.dump(bootstrap, f)
        for extra in ([], ["--validate"]):
            r = subprocess.run([harness.sluice_binary(), "-c", path] + extra,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("control_plane.tls.ca_file: cannot read %s" % os.path.join(
                d, "missing.pem"), r.stderr)
            self.assertIn("control_plane.tls.cert_chain_file %s and "
                          "control_plane.tls.private_key_file %s: the private key is not a PEM "
                          "private key" % (self.edge.cert_path, not_pem), r.stderr)
        bootstrap["control_plane"]["tls"] = {"cert_chain_file": self.edge.cert_path,
                                             "private_key_file": self.operator.key_path}
        with open(path, "w") as f:
            json.dump(bootstrap, f)
        r = subprocess.run([harness.sluice_binary(), "-c", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("control_plane.tls.private_key_file %s: the private key does not match "
                      "the certificate" % self.operator.key_path, r.stderr)

        # An expired client certificate: refused at start, not at the first handshake.
        expired = self.pki.expired(self.ca, "old-edge", client=True)
        bootstrap["control_plane"]["tls"] = {"cert_chain_file": expired.cert_path,
                                             "private_key_file": expired.key_path}
        with open(path, "w") as f:
            json.dump(bootstrap, f)
        r = subprocess.run([harness.sluice_binary(), "-c", path, "--validate"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the certificate has expired", r.stderr)

        state = os.path.join(d, "state")
        for args, want in [
                (["--tls-cert", self.server.cert_path, "--tls-key", not_pem],
                 "--tls-key %s: the private key is not a PEM private key" % not_pem),
                (["--tls-cert", not_pem, "--tls-key", self.server.key_path],
                 "--tls-cert %s and --tls-key %s: no PEM certificate found"
                 % (not_pem, self.server.key_path)),
                (["--tls-cert", self.server.cert_path], "--tls-cert needs --tls-key"),
                (["--client-ca", self.ca.cert_path], "--client-ca needs --tls-cert"),
                (["--tls-cert", self.server.cert_path, "--tls-key", self.server.key_path,
                  "--client-ca", os.path.join(d, "missing.pem")], "--client-ca: cannot read")]:
            r = subprocess.run([cp_harness.cp_binary(), "--state-dir", state,
                                "--listen", "127.0.0.1:0"] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(want, r.stderr)


if __name__ == "__main__":
    unittest.main()
