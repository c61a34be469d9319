"""The rate_limit filter with REDIS policies, through the real binary and a real redis-server:
exactness across gateways (two Sluice processes, many concurrent clients, 3x the limit:
exactly the limit admitted in total, every round), Redis killed under load (fault_tolerant
true: 200s, false: 503s, none stalled), Redis back (limiting resumes), a Redis that accepts
connections but never answers (the timeout decides), headers and Retry-After.

The run-wide Redis of `.ci/run` (SLUICE_TEST_REDIS_PORT) is used where a test only needs a
Redis; tests that kill Redis start their own on a free loopback port.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/rate_limit_redis_test.py
"""

import socket
import threading
import time
import unittest
import uuid

import harness
import redis_harness
from rate_limit_test import (get, parse_sf_list, rl_bootstrap, rl_route, run_clients, statuses,
                             wait_for_window_room)


def redis_policy(name, port, **fields):
    p = {"name": name, "policy": "REDIS", "redis": {"host": "127.0.0.1", "port": port}}
    redis_fields = fields.pop("redis", {})
    p["redis"].update(redis_fields)
    p.update(fields)
    return p


class Load:
    """Clients sending requests in a loop on fresh connections until stopped; records every
    (status, seconds taken, body) so a test can check nothing stalled."""

    def __init__(self, port, path, clients=8, headers=None):
        self.port, self.path, self.headers = port, path, headers or {}
        self.results = []
        self.errors = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            try:
                r = harness.request(self.port, "GET", self.path, headers=self.headers, timeout=5)
                with self.lock:
                    self.results.append((r.status, time.monotonic() - t0, r))
            except Exception as e:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.errors.append(repr(e))

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(harness.scaled(10))


@unittest.skipUnless(redis_harness.available(), "redis-server not installed")
class RedisExactnessTest(harness.SluiceTestCase):
    """Two gateways sharing one Redis never admit more than the limit in total."""

    LIMIT = 60

    def redis_port(self):
        port = redis_harness.shared_redis()
        if port is None:
            r = redis_harness.RedisServer().start()
            self.addCleanup(r.stop)
            port = r.port
        return port

    def test_two_gateways_admit_exactly_the_limit(self):
        port = self.redis_port()
        up = self.start_upstream("u1")
        tag = uuid.uuid4().hex[:8]  # the shared Redis may hold keys of other runs
        policies = [
            redis_policy("dist-" + tag, port, minute=self.LIMIT, limit_by="HEADER",
                         header_name="x-round"),
            redis_policy("dist-fixed-" + tag, port, hour=self.LIMIT, limit_by="HEADER",
                         header_name="x-round", algorithm="FIXED_WINDOW"),
        ]
        cfg = rl_bootstrap(policies, [rl_route("/s", "dist-" + tag),
                                      rl_route("/f", "dist-fixed-" + tag)], up)
        gateways = [self.start_sluice(cfg, concurrency=2) for _ in range(2)]
        ports = [g.listener_port("public") for g in gateways]
        for path in ("/s", "/f"):
            for rnd in range(3):
                if path == "/f":
                    wait_for_window_room(3600, 30)
                key = "%s-%d" % (path, rnd)
                counts = run_clients(ports, path, {"x-round": key}, 3 * self.LIMIT, 40)
                self.assertEqual(counts.get(200, 0), self.LIMIT, (path, rnd, counts))
                self.assertEqual(counts.get(429, 0), 2 * self.LIMIT, (path, rnd, counts))
        for g in gateways:
            self.assertEqual(g.stat("rate_limit.dist-%s.redis_error" % tag), 0)
        allowed = sum(g.stat("rate_limit.dist-%s.allowed" % tag) for g in gateways)
        self.assertEqual(allowed, 3 * self.LIMIT)

    def test_headers_and_retry_after(self):
        port = self.redis_port()
        up = self.start_upstream("u1")
        tag = uuid.uuid4().hex[:8]
        cfg = rl_bootstrap([redis_policy("h-" + tag, port, minute=2, hour=20, limit_by="IP")],
                           [rl_route("/", "h-" + tag)], up)
        s = self.start_sluice(cfg)
        lp = s.listener_port("public")
        rs = [get(lp, "/") for _ in range(3)]
        self.assertEqual([r.status for r in rs], [200, 200, 429])
        self.assertEqual(rs[0].header("x-ratelimit-remaining-minute"), "1")
        self.assertEqual(rs[0].header("x-ratelimit-remaining-hour"), "19")
        self.assertEqual(rs[1].header("ratelimit-remaining"), "0")
        self.assertEqual(rs[1].header("ratelimit-limit"), "2")
        self.assertLocalReply(rs[2], 429, "API rate limit exceeded")
        retry = int(rs[2].header("retry-after"))
        self.assertTrue(55 <= retry <= 66, retry)
        names = [n for n, _ in parse_sf_list(rs[2].header("ratelimit"))]
        self.assertEqual(names, ["h-%s-minute" % tag, "h-%s-hour" % tag])


@unittest.skipUnless(redis_harness.available(), "redis-server not installed")
class RedisFailureTest(harness.SluiceTestCase):
    """Redis killed under load, then back."""

    LIMIT = 5

    def setUp(self):
        self.redis = redis_harness.RedisServer().start()
        self.addCleanup(self.redis.stop)
        self.up = self.start_upstream("u1")

    def start(self, fault_tolerant):
        cfg = rl_bootstrap(
            [redis_policy("p", self.redis.port, minute=self.LIMIT, limit_by="HEADER",
                          header_name="x-key", fault_tolerant=fault_tolerant,
                          redis={"timeout": "50ms"})],
            [rl_route("/", "p")], self.up)
        s = self.start_sluice(cfg, concurrency=2)
        return s, s.listener_port("public")

    def limiting_works(self, port):
        key = uuid.uuid4().hex
        got = statuses(port, "/", self.LIMIT + 1, {"x-key": key})
        return got == [200] * self.LIMIT + [429]

    def kill_under_load(self, port, expect):
        self.assertTrue(self.limiting_works(port))
        load = Load(port, "/", clients=8, headers={"x-key": "load-" + uuid.uuid4().hex})
        try:
            harness.wait_until(lambda: len(load.snapshot()) > 50, 10, message="load running")
            self.redis.stop()
            killed_at = len(load.snapshot())
            harness.wait_until(lambda: len(load.snapshot()) > killed_at + 300, 15,
                               message="requests after Redis died")
        finally:
            load.stop()
        self.assertEqual(load.errors, [])
        after = load.snapshot()[killed_at + 20:]  # the first few may still have been in flight
        self.assertGreater(len(after), 200)
        self.assertEqual({st for st, _, _ in after}, {expect},
                         "every request while Redis is down gets %d" % expect)
        slowest = max(t for _, t, _ in after)
        self.assertLess(slowest, 1.0, "no request may stall while Redis is down")
        return after

    def test_fail_open_then_limiting_resumes(self):
        s, port = self.start(fault_tolerant=True)
        self.kill_under_load(port, 200)
        self.assertGreater(s.stat("rate_limit.p.fail_open"), 200)
        self.assertGreater(s.stat("rate_limit.p.redis_error"), 200)
        self.assertEqual(s.stat("rate_limit.p.fail_closed"), 0)
        self.assertIn("rate_limit: redis 127.0.0.1:%d" % self.redis.port, s.stderr())
        # Logged, but not per request.
        self.assertLess(s.stderr().count("rate_limit: redis"), 20)

        self.redis.start()  # same port, empty
        harness.wait_until(lambda: self.limiting_works(port), 10, 0.05,
                           message="limiting to resume once Redis is back")
        self.assertIn("connected", s.stderr())

    def test_fail_closed_then_limiting_resumes(self):
        s, port = self.start(fault_tolerant=False)
        after = self.kill_under_load(port, 503)
        self.assertLocalReply(after[-1][2], 503, "rate limit service unavailable")
        self.assertGreater(s.stat("rate_limit.p.fail_closed"), 200)
        self.assertEqual(s.stat("rate_limit.p.fail_open"), 0)

        self.redis.start()
        harness.wait_until(lambda: self.limiting_works(port), 10, 0.05,
                           message="limiting to resume once Redis is back")

    def test_a_redis_that_never_answers_times_out(self):
        # Accepts connections, reads nothing, answers nothing.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        self.addCleanup(silent.close)
        sport = silent.getsockname()[1]
        cfg = rl_bootstrap(
            [redis_policy("open", sport, minute=5, redis={"timeout": "100ms"}),
             redis_policy("closed", sport, minute=5, fault_tolerant=False,
                          redis={"timeout": "100ms"})],
            [rl_route("/open", "open"), rl_route("/closed", "closed")], self.up)
        s = self.start_sluice(cfg)
        port = s.listener_port("public")
        for path, status in (("/open", 200), ("/closed", 503)):
            t0 = time.monotonic()
            r = get(port, path)
            took = time.monotonic() - t0
            self.assertEqual(r.status, status, r)
            self.assertGreaterEqual(took, 0.09)
            self.assertLess(took, 1.0)
        self.assertEqual(s.stat("rate_limit.open.redis_timeout"), 1)
        self.assertEqual(s.stat("rate_limit.closed.redis_timeout"), 1)


if __name__ == "__main__":
    harness.main()
