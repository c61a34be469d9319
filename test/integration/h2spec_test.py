"""HTTP/2 conformance: h2spec 2.6.0 (the suite HAProxy's CI runs; 146 cases) against a sluice
h2c listener (prior knowledge, HTTP/1.1 on the same port) and a TLS listener (ALPN h2).

Every case must pass except the ones named in ALLOWED_FAILURES, each decided by libnghttp2
itself or by serving HTTP/1.1 and h2c on one cleartext port, with the reason. A case that fails
and is not listed fails the test; a listed case that passes is reported (so the list shrinks).

The h2spec binary is not in the workspace: it lives in `shared/tools/h2spec/h2spec` next to the
clone (../shared/tools/h2spec/h2spec from the repo root; README.md there). $H2SPEC overrides.
Not found = the test FAILS (never a silent skip).

  * H2specSluiceTest      - sluice; run unless SLUICE_TEST_H2=0 (h2_harness.H2_ENABLED)
  * H2specReferenceTest   - the same runner against nghttpx (libnghttp2 1.52 as a proxy, HTTP/1.1
                            backend = harness.Upstream), with nghttpx's own allow-list: proves the
                            runner, the JUnit parsing and the allow-list reasoning; always runs

Run by hand: SLUICE_BIN=... /usr/bin/python3 test/integration/h2spec_test.py
"""

import os
import subprocess
import unittest
import xml.etree.ElementTree as ET

import harness
import h2_harness as H
from harness import SluiceTestCase, bootstrap, route, route_table, vhost
from tls_certs import class_pki

# Cases libnghttp2 decides (sluice hands every frame to nghttp2_session_mem_recv2), or that a
# cleartext port serving both HTTP/1.1 and h2c decides. id -> why. Keep it short and named.
LIBNGHTTP2 = {
    "http2/5.1.1/2": (
        "HEADERS on a stream id lower than the last one: libnghttp2 treats the stream as closed "
        "and ignores the frame instead of a PROTOCOL_ERROR connection error (nghttpd fails it "
        "too; known upstream behaviour, see shared/tools/h2spec/README.md)"),
}
# Only when the server sends SETTINGS_NO_RFC7540_PRIORITIES=1 (RFC 9218 priorities, as
# nghttpx does): libnghttp2 then keeps no closed streams, so a frame on a stream closed by the
# peer's RST_STREAM / END_STREAM looks like one on a long-gone stream and is ignored instead of
# answered with STREAM_CLOSED. With nghttp2's defaults (no SETTINGS_NO_RFC7540_PRIORITIES;
# nghttpd passes them) these pass, so they are listed for the nghttpx reference only; if sluice
# ever sends SETTINGS_NO_RFC7540_PRIORITIES=1, they move into SLUICE_ALLOWED with this reason.
NO_CLOSED_STREAMS = {
    "http2/5.1/8": "DATA after the client's RST_STREAM: ignored (no closed-stream record)",
    "http2/5.1/9": "HEADERS after the client's RST_STREAM: ignored (no closed-stream record)",
    "http2/5.1/11": "DATA on a closed stream: ignored (no closed-stream record)",
    "http2/5.1/12": "HEADERS on a closed stream: ignored (no closed-stream record)",
    # Timing: when nghttpx has already answered and closed the stream before the DATA arrives,
    # the stream is a closed one without a record (seen failing once in ~10 runs over TLS).
    "http2/6.1/2": "DATA on a half-closed (remote) stream: ignored once nghttpx closed it",
}
# Cleartext only: bytes that are not the HTTP/2 preface are an HTTP/1.1 request on a listener
# that serves both (HTTP/1.1 keeps working there), so an invalid preface gets an HTTP/1.1 400,
# not a GOAWAY. Over TLS with ALPN h2 the connection is HTTP/2 from the first byte: must pass.
CLEARTEXT_SHARED_PORT = {
    "http2/3.5/2": (
        "invalid connection preface on a port that also serves HTTP/1.1: parsed as HTTP/1.1, "
        "answered 400 and closed (h2spec reads the 400 as a truncated frame)"),
}

SLUICE_ALLOWED = {"h2c": dict(LIBNGHTTP2, **CLEARTEXT_SHARED_PORT), "tls": dict(LIBNGHTTP2)}
NGHTTPX_ALLOWED = {"h2c": dict(LIBNGHTTP2, **CLEARTEXT_SHARED_PORT, **NO_CLOSED_STREAMS),
                   "tls": dict(LIBNGHTTP2, **NO_CLOSED_STREAMS)}


def parse_junit(path):
    """{case id: (passed, title, detail)}; case id = "<package>/<1-based index in its section>",
    the numbering h2spec prints and accepts as an argument (e.g. http2/5.1.1/2)."""
    out = {}
    for suite in ET.parse(path).getroot().iter("testsuite"):
        pkg = suite.get("package")
        for i, case in enumerate(suite.iter("testcase"), 1):
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            skipped = case.find("skipped") is not None
            cid = "%s/%d" % (pkg, i)
            detail = (bad.text or bad.get("message") or "").strip() if bad is not None else ""
            out[cid] = ("skipped" if skipped else bad is None, case.get("classname"), detail)
    return out


def run_h2spec(port, tls, tmpdir, label):
    """Runs h2spec, returns ({case id: (passed, title, detail)}, console output)."""
    binary = H.find_h2spec()
    report = os.path.join(tmpdir, "h2spec-%s.xml" % label)
    cmd = [binary, "-h", "127.0.0.1", "-p", str(port), "-j", report,
           "-o", str(max(2, int(harness.scaled(2))))]
    if tls:
        cmd += ["-t", "-k"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=harness.scaled(300))
    console = p.stdout + p.stderr
    if not os.path.exists(report):
        raise AssertionError("h2spec wrote no report (exit %d):\n%s" % (p.returncode,
                                                                      console[-4000:]))
    cases = parse_junit(report)
    if len(cases) < 140:
        raise AssertionError("h2spec ran only %d cases:\n%s" % (len(cases), console[-4000:]))
    return cases, console


class H2specMixin:
    ALLOWED = None  # {"h2c": {...}, "tls": {...}}

    def check(self, port, tls, label):
        cases, console = run_h2spec(port, tls, self.tmp, label)
        allowed = self.ALLOWED["tls" if tls else "h2c"]
        failed = {c: v for c, v in cases.items() if v[0] is False}
        unexpected = {c: v for c, v in failed.items() if c not in allowed}
        fixed = sorted(c for c in allowed if c in cases and cases[c][0] is True)
        passed = sum(1 for v in cases.values() if v[0] is True)
        harness.report("h2spec %s %s: %d/%d passed; failed %s; allowed but passed %s",
                       self.front_name, label, passed, len(cases), sorted(failed) or "none",
                       fixed or "none")
        if unexpected:
            self.fail("h2spec %s (%s): %d case(s) failed outside the allow-list:\n%s\n\n"
                      "h2spec output (tail):\n%s" % (
                          self.front_name, label, len(unexpected),
                          "\n".join("  %s  %s\n      %s" % (c, v[1], v[2].replace("\n", " | "))
                                    for c, v in sorted(unexpected.items())),
                          console[-3000:]))
        skipped = [c for c, v in cases.items() if v[0] == "skipped"]
        self.assertEqual(skipped, [], "h2spec skipped cases")


@H.require_h2
class H2specSluiceTest(H2specMixin, SluiceTestCase):
    ALLOWED = SLUICE_ALLOWED
    front_name = "sluice"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pki = class_pki(cls)
        cls.ca = pki.ca("h2spec-ca")
        cert = pki.issue(cls.ca, "localhost", dns=["localhost"], ip=["127.0.0.1"])
        cls.up = cls.start_class_upstream("h2spec-up", default_action="fixed")
        routes = [route(prefix="/", cluster="backend", name="all")]
        cfg = bootstrap(
            [H.h2_listener("h2c", "main"),
             H.h2_listener("tls", "main", tls=H.tls_config(cert))],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [harness.cluster("backend", [cls.up])])
        cls.sluice = cls.start_class_sluice(cfg, concurrency=1)

    def setUp(self):
        self.tmp = self.tempdir()

    def test_h2c_prior_knowledge(self):
        self.check(self.sluice.listener_port("h2c"), False, "h2c")
        self.assertTrue(self.sluice.running())

    def test_tls_alpn_h2(self):
        self.check(self.sluice.listener_port("tls"), True, "tls")
        self.assertTrue(self.sluice.running())


class H2specReferenceTest(H2specMixin, SluiceTestCase):
    """The runner against nghttpx: every failure must be one nghttpx's list names."""
    ALLOWED = NGHTTPX_ALLOWED
    front_name = "nghttpx"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pki = class_pki(cls)
        ca = pki.ca("h2spec-ca")
        cert = pki.issue(ca, "localhost", dns=["localhost"], ip=["127.0.0.1"])
        cls.up = cls.start_class_upstream("h2spec-up", default_action="fixed")
        cls.nghttpx = H.Nghttpx(["127.0.0.1,%d" % cls.up.port],
                                tls=(cert.chain_path, cert.key_path))
        cls.addClassCleanup(cls.nghttpx.stop)

    def setUp(self):
        self.tmp = self.tempdir()

    def test_h2c_prior_knowledge(self):
        self.check(self.nghttpx.h2c_port, False, "h2c")

    def test_tls_alpn_h2(self):
        self.check(self.nghttpx.tls_port, True, "tls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
