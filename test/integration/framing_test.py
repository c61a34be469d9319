"""Request framing: every ambiguous/malformed case in SPEC.md is refused with a 400 local
reply carrying `connection: close`, and the connection is then closed. Header-level errors
must never reach the upstream. Positive controls make sure valid edge cases still work.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/framing_test.py
"""

import itertools

import harness
from harness import echo, proxy_config

CASE_IDS = itertools.count()

REQ = b"POST /f HTTP/1.1\r\nHost: example.com\r\n"


class FramingTest(harness.SluiceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("u1")
        cls.sluice = cls.start_class_sluice(proxy_config([cls.up]))
        cls.port = cls.sluice.listener_port("public")

    def assertRejected(self, raw, upstream_must_not_see=True):
        # Give the request a unique path so the upstream check is immune to stragglers from
        # earlier tests (e.g. a chunked request whose head was legitimately forwarded).
        tag = "/case-%d" % next(CASE_IDS)
        eol = raw.find(b"\r\n")
        parts = raw[:eol].split(b" ")
        if eol > 0 and len(parts) == 3 and parts[1].startswith(b"/"):
            raw = b" ".join([parts[0], tag.encode(), parts[2]]) + raw[eol:]
        c = self.conn(self.port)
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may reject and close before we finish writing
        try:
            r = c.read_response()
        except (harness.PeerClosed, ConnectionResetError, TimeoutError) as e:
            self.fail("no 400 response for %r: %r" % (raw, e))
        self.assertLocalReply(r, 400, request_id_header=False)
        self.assertIn("close", r.connection_tokens(),
                      "400 for a framing error must carry connection: close: %r" % r)
        self.assertClosed(c, allow_data=False, msg="after 400 for %r" % raw)
        if upstream_must_not_see:
            with self.up.lock:
                seen = [r for r in self.up.requests if r.target == tag]
            self.assertEqual(seen, [], "a request refused for framing reached the upstream")

    def assertAccepted(self, raw, body):
        c = self.conn(self.port)
        c.send(raw)
        r = c.read_response()
        self.assertStatus(r, 200, "for %r" % raw)
        self.assertEqual(echo(r)["body"], body)
        r = c.request("GET", "/next")
        self.assertStatus(r, 200)

    # -- Content-Length / Transfer-Encoding ---------------------------------------------------

    def test_content_length_and_transfer_encoding(self):
        self.assertRejected(REQ + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")

    def test_transfer_encoding_and_content_length(self):
        self.assertRejected(REQ + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")

    def test_two_different_content_lengths(self):
        self.assertRejected(REQ + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n")

    def test_content_length_list_with_different_values(self):
        self.assertRejected(REQ + b"Content-Length: 5, 6\r\n\r\n")

    def test_content_length_not_a_number(self):
        for v in (b"abc", b"-1", b"1x", b"0x10", b"+5"):
            with self.subTest(content_length=v):
                self.assertRejected(REQ + b"Content-Length: " + v + b"\r\n\r\n")

    def test_transfer_encoding_not_ending_in_chunked(self):
        for te in (b"gzip", b"chunked, gzip", b"identity", b"chunked\r\nTransfer-Encoding: gzip"):
            with self.subTest(te=te):
                self.assertRejected(REQ + b"Transfer-Encoding: " + te + b"\r\n\r\n")

    # -- header syntax ------------------------------------------------------------------------

    def test_obs_fold_space(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n")

    def test_obs_fold_tab(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n\ttwo\r\n\r\n")

    def test_line_starting_with_space_after_request_line(self):
        self.assertRejected(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n")

    def test_whitespace_before_colon(self):
        for line in (b"X-Foo : bar", b"X-Foo\t: bar", b"Content-Length : 0"):
            with self.subTest(line=line):
                self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")

    def test_nul_in_header_value(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n")

    def test_cr_in_header_value(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n")

    def test_lf_in_header_value(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\nb\r\n\r\n")

    def test_header_without_colon(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n")

    def test_invalid_header_name(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: a\r\nBad[Name]: v\r\n\r\n")

    # -- request line -------------------------------------------------------------------------

    def test_garbage_request_line(self):
        self.assertRejected(b"GARBAGE\r\n\r\n")

    def test_bad_protocol(self):
        self.assertRejected(b"GET / FOO/1.1\r\nHost: a\r\n\r\n")

    # -- chunked body ---------------------------------------------------------------------------

    def test_invalid_chunk_size(self):
        for size in (b"zz", b"-5", b"0x5", b"g", b""):
            with self.subTest(chunk_size=size):
                self.assertRejected(REQ + b"Transfer-Encoding: chunked\r\n\r\n"
                                    + size + b"\r\nhello\r\n0\r\n\r\n",
                                    upstream_must_not_see=False)

    def test_chunk_size_overflow(self):
        for size in (b"10000000000000000", b"ffffffffffffffffffff", b"f" * 40):
            with self.subTest(chunk_size=size):
                self.assertRejected(REQ + b"Transfer-Encoding: chunked\r\n\r\n"
                                    + size + b"\r\nhello\r\n0\r\n\r\n",
                                    upstream_must_not_see=False)

    def test_chunk_data_not_followed_by_crlf(self):
        self.assertRejected(REQ + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"3\r\nabcdef\r\n0\r\n\r\n", upstream_must_not_see=False)

    # -- stats --------------------------------------------------------------------------------

    def test_protocol_error_stat(self):
        before = self.sluice.stat("downstream_rq_protocol_error")
        self.assertRejected(REQ + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n")
        self.sluice.wait_stat("downstream_rq_protocol_error", lambda v: v == before + 1)

    # -- positive controls ----------------------------------------------------------------------

    def test_valid_chunked_edge_cases_accepted(self):
        self.assertAccepted(REQ + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"005\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
                            "hello0123456789")

    def test_transfer_encoding_case_insensitive(self):
        self.assertAccepted(REQ + b"transfer-encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                            "abc")

    def test_header_value_whitespace_trimmed(self):
        c = self.conn(self.port)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Spaced: \t value with  inner \t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(echo(r)["hdr"].get("x-spaced"), "value with  inner")


if __name__ == "__main__":
    harness.main()
