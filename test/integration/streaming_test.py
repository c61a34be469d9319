"""Streaming: 1 GiB uploads and downloads (content-length and chunked) through the proxy
with its RSS sampled during the transfer (growth must stay < 64 MiB), backpressure in both
directions with a stalled peer, and proof that bodies are forwarded as they arrive.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/streaming_test.py
SLUICE_STREAM_BYTES overrides the 1 GiB transfer size (e.g. 268435456 for a quick run).
"""

import os
import socket
import threading
import time

import harness
from harness import GIB, MIB, Conn, PatternChecker, pattern_blocks, proxy_config

BIG = int(os.environ.get("SLUICE_STREAM_BYTES", str(GIB)))
MAX_RSS_GROWTH_KB = 64 * 1024
WARMUP = 16 * MIB


class RssMonitor:
    """Samples the proxy's VmRSS every 20ms in a thread (and on demand)."""

    def __init__(self, sluice):
        self.sluice = sluice
        self.baseline = sluice.rss_kb()
        self.peak = self.baseline
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self):
        try:
            v = self.sluice.rss_kb()
        except (OSError, AssertionError):
            return
        self.peak = max(self.peak, v)
        self.samples += 1

    def _run(self):
        while not self._stop.wait(0.02):
            self.sample()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak - self.baseline

    def describe(self):
        return "RSS baseline %d KiB, peak %d KiB (+%d KiB) over %d samples" % (
            self.baseline, self.peak, self.peak - self.baseline, self.samples)


class StreamingTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("big")
        # Route timeout bounds the whole upstream exchange (default 15s): lift it for 1 GiB.
        self.sluice = self.start_sluice(proxy_config([self.up], route_action={"timeout": "300s"}))
        self.port = self.sluice.listener_port("public")
        self.warm_up()
        self.up.reset()

    def warm_up(self):
        """Pushes a little data both ways so steady-state buffers exist before the baseline."""
        chk = PatternChecker()
        harness.request(self.port, headers={"x-action": "stream", "x-bytes": str(WARMUP)},
                        sink=chk.feed)
        self.assertEqual(chk.count, WARMUP)
        r = self.upload(WARMUP, chunked=False)
        self.assertEqual(r.json()["bytes"], WARMUP)

    def upload(self, total, chunked, conn=None, rss=None, extra_headers=None):
        c = conn or Conn(self.port, timeout=60)
        try:
            headers = {"x-action": "consume"}
            headers.update(extra_headers or {})
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = str(total)
            c.send_request("PUT", "/upload", headers=headers)
            sent = 0
            for block in pattern_blocks(total):
                if chunked:
                    c.send(b"%x\r\n" % len(block))
                    c.send(block)
                    c.send(b"\r\n")
                else:
                    c.send(block)
                sent += len(block)
                if rss and sent % (32 * MIB) == 0:
                    rss.sample()
            if chunked:
                c.send(b"0\r\n\r\n")
            r = c.read_response()
            if r.status != 200:
                raise AssertionError("upload failed: %r" % r)
            return r
        finally:
            if conn is None:
                c.close()

    def download(self, total, mode, version="HTTP/1.1", rss=None):
        headers = {"x-action": "stream", "x-bytes": str(total)}
        if mode == "chunked":
            headers["x-chunked"] = "1"
        elif mode == "close":
            headers["x-no-length"] = "1"
        chk = PatternChecker()
        progress = [0]

        def sink(mv):
            chk.feed(mv)
            progress[0] += len(mv)
            if rss and progress[0] >= 32 * MIB:
                progress[0] = 0
                rss.sample()
        c = Conn(self.port, timeout=60)
        try:
            r = c.request("GET", "/download", headers=headers, version=version, sink=sink)
        finally:
            c.close()
        return r, chk

    def check_rss(self, rss, what):
        growth = rss.stop()
        self.assertLess(growth, MAX_RSS_GROWTH_KB,
                        "%s: proxy RSS grew by %d KiB (limit %d KiB); %s"
                        % (what, growth, MAX_RSS_GROWTH_KB, rss.describe()))
        self.assertTrue(self.sluice.running())

    # -- big transfers -----------------------------------------------------------------------

    def test_download_1gib_content_length(self):
        rss = RssMonitor(self.sluice)
        t0 = time.monotonic()
        r, chk = self.download(BIG, "length", rss=rss)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), str(BIG))
        self.assertEqual(chk.count, BIG, "bytes received")
        self.assertTrue(chk.ok, "body corrupted at byte %s" % chk.mismatch_at)
        self.check_rss(rss, "1 GiB download")
        print("\n  download %d MiB in %.1fs; %s" % (BIG // MIB, elapsed, rss.describe()))

    def test_upload_1gib_content_length(self):
        rss = RssMonitor(self.sluice)
        t0 = time.monotonic()
        r = self.upload(BIG, chunked=False, rss=rss)
        elapsed = time.monotonic() - t0
        body = r.json()
        self.assertEqual(body["bytes"], BIG, "bytes the upstream received")
        self.assertTrue(body["pattern_ok"], "upload corrupted at byte %s" % body["mismatch_at"])
        self.check_rss(rss, "1 GiB upload")
        print("\n  upload %d MiB in %.1fs; %s" % (BIG // MIB, elapsed, rss.describe()))

    def test_download_1gib_chunked(self):
        rss = RssMonitor(self.sluice)
        r, chk = self.download(BIG, "chunked", rss=rss)
        self.assertEqual(r.status, 200)
        self.assertTrue(harness.is_chunked(r.headers), r)
        self.assertEqual(chk.count, BIG)
        self.assertTrue(chk.ok, "body corrupted at byte %s" % chk.mismatch_at)
        self.check_rss(rss, "1 GiB chunked download")

    def test_upload_1gib_chunked(self):
        rss = RssMonitor(self.sluice)
        r = self.upload(BIG, chunked=True, rss=rss)
        body = r.json()
        self.assertEqual(body["bytes"], BIG)
        self.assertTrue(body["pattern_ok"], "upload corrupted at byte %s" % body["mismatch_at"])
        self.check_rss(rss, "1 GiB chunked upload")

    def test_close_delimited_download_is_rechunked(self):
        total = min(BIG, 256 * MIB)
        rss = RssMonitor(self.sluice)
        r, chk = self.download(total, "close", rss=rss)
        self.assertTrue(harness.is_chunked(r.headers),
                        "no content-length upstream -> chunked to an HTTP/1.1 client: %r" % r)
        self.assertEqual(chk.count, total)
        self.assertTrue(chk.ok)
        self.check_rss(rss, "close-delimited download")

    def test_keepalive_after_big_transfers(self):
        c = Conn(self.port, timeout=60)
        try:
            self.upload(64 * MIB, chunked=True, conn=c)
            chk = PatternChecker()
            c.request("GET", "/d", headers={"x-action": "stream", "x-bytes": str(64 * MIB),
                                            "x-chunked": "1"}, sink=chk.feed)
            self.assertEqual((chk.count, chk.ok), (64 * MIB, True))
            r = c.request("GET", "/small")
            self.assertEqual(harness.echo(r)["path"], "/small")
        finally:
            c.close()

    # -- backpressure --------------------------------------------------------------------------

    def test_slow_client_pauses_upstream(self):
        total = 512 * MIB
        rss = RssMonitor(self.sluice)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)  # no autotuning
        s.settimeout(harness.scaled(60))
        s.connect(("127.0.0.1", self.port))
        s.sendall(harness.build_request("GET", "/slow-reader", headers={
            "x-action": "stream", "x-bytes": str(total)}))
        bs = harness.BufferedSocket(s)
        start, headers = harness.parse_head(bs.read_head())
        self.assertTrue(start.startswith("HTTP/1.1 200"), start)
        self.assertEqual(harness._hget(headers, "content-length"), str(total))
        chk = PatternChecker()
        bs.read_into_sink(4 * MIB, chk.feed)  # read a little, then stop reading
        stalled = wait_stable(lambda: self.up.bytes_sent, 0.5, 15)
        rss.sample()
        self.assertLess(stalled, 128 * MIB,
                        "upstream kept sending (%d MiB) to a client that stopped reading: "
                        "no backpressure" % (stalled // MIB))
        self.assertLess(rss.peak - rss.baseline, MAX_RSS_GROWTH_KB,
                        "stalled client: " + rss.describe())
        # Resume reading: everything arrives intact.
        bs.read_into_sink(total - 4 * MIB, chk.feed)
        self.assertEqual(chk.count, total)
        self.assertTrue(chk.ok, "body corrupted at byte %s" % chk.mismatch_at)
        self.check_rss(rss, "slow client")

    def test_slow_upstream_pauses_client(self):
        total = 512 * MIB
        rss = RssMonitor(self.sluice)
        c = Conn(self.port, timeout=60)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        c.send_request("PUT", "/slow-upstream", headers={
            "x-action": "consume", "x-read-gate": "1", "Content-Length": str(total)})
        sent = [0]
        errors = []

        def writer():
            try:
                for block in pattern_blocks(total, 256 * 1024):
                    c.send(block)
                    sent[0] += len(block)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        self.up.wait_for_requests(1)
        stalled = wait_stable(lambda: sent[0], 0.5, 15)
        rss.sample()
        self.assertLess(stalled, 128 * MIB,
                        "client could send %d MiB to an upstream that reads nothing: "
                        "no backpressure" % (stalled // MIB))
        self.assertLess(rss.peak - rss.baseline, MAX_RSS_GROWTH_KB,
                        "stalled upstream: " + rss.describe())
        self.up.gate.set()
        t.join(harness.scaled(120))
        self.assertFalse(t.is_alive(), "upload did not finish after the upstream resumed")
        self.assertEqual(errors, [])
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["bytes"], total)
        self.assertTrue(r.json()["pattern_ok"])
        self.check_rss(rss, "slow upstream")

    # -- bodies are forwarded as they arrive -------------------------------------------------

    def test_response_body_streamed_before_upstream_finishes(self):
        c = self.conn(self.port, timeout=5)
        c.send_request("GET", "/hold", headers={"x-action": "hold"})
        head = c.bs.read_head()
        self.assertIsNotNone(head)
        start, headers = harness.parse_head(head)
        self.assertIn(" 200 ", start + " ")
        self.assertTrue(harness.is_chunked(headers), headers)
        got = bytearray()
        try:
            while len(got) < len(b"first-part"):
                size = int(c.bs.read_line().split(b";")[0], 16)
                self.assertNotEqual(size, 0, "body ended early")
                got += c.bs.read_exact(size)
                self.assertEqual(c.bs.read_exact(2), b"\r\n")
        except TimeoutError:
            self.fail("first part of the body not forwarded while the upstream is still "
                      "sending (got %r): response is buffered" % bytes(got))
        self.assertEqual(bytes(got), b"first-part")
        self.up.gate.set()
        rest = bytearray()
        c.bs.read_chunked(rest.extend)
        self.assertEqual(bytes(rest), b"second-part")

    def test_request_body_streamed_before_client_finishes(self):
        # Request buffering holds the first request_buffer_bytes (64 KiB) of a body before the
        # upstream request starts; past that, the body streams while the client still sends.
        early = b"e" * 70000
        for framing in ("chunked", "length"):
            with self.subTest(framing=framing):
                self.up.reset()
                c = self.conn(self.port)
                if framing == "chunked":
                    c.send(b"POST /stream-up HTTP/1.1\r\nHost: a\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(early), early))
                else:
                    c.send(b"POST /stream-up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s"
                           % (len(early) + 10, early))
                harness.wait_until(lambda: self.up.bytes_received >= 65536, 5.0,
                                   message="upstream to receive the first body bytes before "
                                   "the client finished the body (%s)" % framing)
                if framing == "chunked":
                    c.send(b"a\r\nlate-bytes\r\n0\r\n\r\n")
                else:
                    c.send(b"late-bytes")
                r = c.read_response()
                self.assertEqual(harness.echo(r)["body"], early.decode() + "late-bytes")


def wait_stable(read, quiet, timeout):
    """Polls read() until its value has not changed for `quiet` seconds; returns it."""
    deadline = time.monotonic() + harness.scaled(timeout)
    last = read()
    since = time.monotonic()
    while True:
        time.sleep(0.05)
        v = read()
        now = time.monotonic()
        if v != last:
            last, since = v, now
        elif now - since >= quiet:
            return v
        if now >= deadline:
            raise AssertionError("value still changing after %.0fs (now %d)" % (timeout, v))


if __name__ == "__main__":
    harness.main()
