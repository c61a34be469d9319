"""Secrets through sluice-cp: a group's `secrets` (certificate and private key PEM, CA bundles)
flow like every other resource (sluicectl apply, the config dir, get, diff, status, the data
plane's /config_dump), and private keys never appear in clear: not in sluicectl get or diff,
not in /config_dump, not in either process's log, not in sluice-cp's state dir (0700, files
0600, keys encrypted with the state key), while sluice-cp still serves them after a restart.
"""

import hashlib
import json
import os
import stat
import subprocess
import unittest

import cp_harness
import tls_certs
from harness import wait_until


def fingerprint(pem):
    return "[redacted sha256:%s]" % hashlib.sha256(pem.encode()).hexdigest()[:8]


def key_lines(pem):
    """The base64 lines of a PEM key: none of them may show up anywhere."""
    return [l for l in pem.splitlines() if l and not l.startswith("-----")]


class ControlPlaneSecretsTest(cp_harness.CpTestCase):

    @classmethod
    def setUpClass(cls):
        pki = tls_certs.class_pki(cls)
        cls.ca = pki.ca("secrets-ca")
        cls.edge = pki.issue(cls.ca, "api.example.com", dns=["api.example.com"], name="edge")
        cls.edge2 = pki.issue(cls.ca, "api.example.com", dns=["api.example.com"],
                              name="edge-renewed")

    def config(self, cert=None):
        cert = cert or self.edge
        return cp_harness.direct_config(secrets=[
            {"name": "edge", "tls_certificate": {"certificate_chain": cert.chain_pem(),
                                                 "private_key": cert.key_pem()}},
            {"name": "clients-ca", "validation_context": {"trusted_ca": self.ca.cert_pem()}},
        ])

    def assert_no_key(self, text, where, *certs):
        certs = certs or (self.edge, self.edge2)
        for c in certs:
            self.assertNotIn("PRIVATE KEY", text, where)
            for line in key_lines(c.key_pem()):
                self.assertNotIn(line, text, "%s holds a private key line" % where)

    def assert_state_dir_private(self, cp):
        self.assertEqual(stat.S_IMODE(os.stat(cp.state_dir).st_mode), 0o700)
        groups = os.path.join(cp.state_dir, "groups")
        self.assertEqual(stat.S_IMODE(os.stat(groups).st_mode), 0o700)
        texts = []
        for root, _, files in os.walk(cp.state_dir):
            for name in files:
                path = os.path.join(root, name)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
                with open(path, errors="replace") as f:
                    text = f.read()
                self.assert_no_key(text, path)
                texts.append(text)
        return "\n".join(texts)

    def dp_secret(self, dp, name="edge"):
        dump = dp.admin_json("/config_dump")
        for r in dump["dynamic_resources"]["Secret"]["resources"]:
            if r["name"] == name:
                return r["resource"], json.dumps(dump)
        return None, json.dumps(dump)

    # -----------------------------------------------------------------------------------------

    def test_secrets_flow_redacted_and_survive_a_restart(self):
        cp = self.start_cp()
        self.assertIn("version 1", cp.apply(self.config()).stdout)
        status = cp.group("default")
        self.assertEqual(status["resources"]["Secret"], 2)

        # sluicectl get: the certificate and CA in full, the key as its fingerprint.
        got = json.loads(cp.ctl("get", "secrets", "-o", "json").stdout)
        self.assertEqual(sorted(s["name"] for s in got), ["clients-ca", "edge"])
        edge = [s for s in got if s["name"] == "edge"][0]
        self.assertEqual(edge["tls_certificate"]["private_key"],
                         fingerprint(self.edge.key_pem()))
        self.assertEqual(edge["tls_certificate"]["certificate_chain"], self.edge.chain_pem())
        yaml_out = cp.ctl("get", "secret", "edge").stdout
        self.assertIn(fingerprint(self.edge.key_pem()), yaml_out)
        self.assert_no_key(cp.ctl("get", "secrets").stdout, "sluicectl get secrets")

        # The data plane gets them first and redacts them in /config_dump.
        dp = self.start_dp(cp, "edge-1")
        cp.wait_in_sync("edge-1")
        secret, dump = self.dp_secret(dp)
        self.assertEqual(secret["tls_certificate"]["private_key"],
                         fingerprint(self.edge.key_pem()))
        self.assert_no_key(dump, "/config_dump")

        # diff: a renewed key shows as a changed Secret with another fingerprint.
        path = cp.write_config(self.config(self.edge2))
        r = cp.ctl("diff", "-f", path, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("~ Secret edge", r.stdout)
        self.assertIn(fingerprint(self.edge.key_pem()), r.stdout)
        self.assertIn(fingerprint(self.edge2.key_pem()), r.stdout)
        self.assert_no_key(r.stdout + r.stderr, "sluicectl diff")
        self.assertIn("version 2", cp.ctl("apply", "-f", path).stdout)
        wait_until(lambda: self.dp_secret(dp)[0]["tls_certificate"]["private_key"]
                   == fingerprint(self.edge2.key_pem()), timeout=10,
                   message="the renewed key on the data plane")

        # The state dir: private, keys encrypted.
        state = self.assert_state_dir_private(cp)
        self.assertIn("enc:v1:", state)

        # SIGKILL and restart: the key is still served, to a data plane that connects anew.
        cp.kill()
        cp.start()
        cp.wait_in_sync("edge-1")
        dp2 = self.start_dp(cp, "edge-2")
        secret, dump = self.dp_secret(dp2)
        self.assertEqual(secret["tls_certificate"]["private_key"],
                         fingerprint(self.edge2.key_pem()))
        self.assertEqual(secret["tls_certificate"]["certificate_chain"], self.edge2.chain_pem())

        # Nothing logged the key either.
        self.assert_no_key(cp.stderr(), "sluice-cp's log")
        self.assert_no_key(dp.stderr() + dp2.stderr(), "sluice's log")

    def test_config_dir_secrets(self):
        cp = self.start_cp()
        cp.write_group_file("edge", cp_harness.to_yaml(self.config()))
        cp.wait_log(r'apply group "edge" version 1')
        got = json.loads(cp.ctl("get", "secrets", "--group", "edge", "-o", "json").stdout)
        self.assertEqual(len(got), 2)
        self.assert_no_key(json.dumps(got), "sluicectl get")
        self.assert_state_dir_private(cp)

    def test_redacted_output_applied_back_is_refused(self):
        cp = self.start_cp()
        cp.apply(self.config())
        d = self.tempdir()
        path = os.path.join(d, "secrets.yaml")
        with open(path, "w") as f:
            f.write("secrets:\n" + "".join(
                "  " + l + "\n" for l in cp.ctl("get", "secrets").stdout.splitlines()))
        r = cp.ctl("apply", "-f", path, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("private_key: is a redacted placeholder", r.stderr)
        self.assertEqual(cp.group_version("default"), "1")

    def test_bootstrap_secrets_are_redacted_in_config_dump(self):
        dp = self.start_sluice({"static_resources": {"secrets": self.config()["secrets"]}})
        text = json.dumps(dp.admin_json("/config_dump"))
        self.assertIn(fingerprint(self.edge.key_pem()), text)
        self.assert_no_key(text, "/config_dump")

    def test_state_key_file(self):
        d = self.tempdir()
        key = os.path.join(d, "state.key")
        subprocess.run("umask 077; openssl rand -hex 32 > %s" % key, shell=True, check=True)
        cp = self.start_cp(extra_args=["--state-key-file", key])
        cp.apply(self.config())
        self.assertFalse(os.path.exists(os.path.join(cp.state_dir, "state.key")))
        self.assert_state_dir_private(cp)
        cp.stop()
        # Another key: the secrets do not decrypt, and sluice-cp says so instead of serving
        # something else.
        other = os.path.join(d, "other.key")
        subprocess.run("umask 077; openssl rand -hex 32 > %s" % other, shell=True, check=True)
        r = subprocess.run([cp_harness.cp_binary(), "--listen", "127.0.0.1:0",
                            "--state-dir", cp.state_dir, "--state-key-file", other],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("resources.secrets[0].tls_certificate.private_key: does not decrypt",
                      r.stderr)
        # A missing key file given by flag is an error, not a new key.
        r = subprocess.run([cp_harness.cp_binary(), "--listen", "127.0.0.1:0",
                            "--state-dir", cp.state_dir, "--state-key-file",
                            os.path.join(d, "missing.key")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--state-key-file: cannot read", r.stderr)
        # The right key again: served.
        cp.start()
        got = json.loads(cp.ctl("get", "secrets", "-o", "json").stdout)
        self.assertEqual(len(got), 2)


if __name__ == "__main__":
    unittest.main()
