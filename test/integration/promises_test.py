"""Data-plane promises of README.md and docs/ that no other file checks, through the real binary:

  * listeners moved (address changed) or removed by a SIGHUP reload, without touching the other
    listeners' connections; only the changed listener's own connections drain
    (docs/operations.md "Reloading the config", docs/architecture.md "Dynamic config" step 5);
    the same scenario pushed by sluice-cp runs in control_plane_promises_test.py;
  * remote JWKS refreshed every `cache_duration`, fetch failures retried after 1 s, 2 s, 4 s, ...
    up to `cache_duration` while the cached keys keep serving, rotated keys picked up by the
    refresh (docs/configuration.md RemoteJwks);
  * circuit breakers (`max_requests`) enforced across all workers of the process
    (docs/configuration.md CircuitBreakers, docs/architecture.md);
  * `max_retries` and `retry_budget` bound the retries in flight to a cluster: a retry beyond
    them is not made, the failed try's response goes to the client and
    `upstream_rq_retry_overflow` counts it (docs/configuration.md CircuitBreakers, RetryPolicy).

Measured figures are printed as `[measured]` lines.
"""

import http.server
import json
import signal
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import harness
from harness import (Conn, SluiceTestCase, Upstream, bootstrap, cluster, connect_refused,
                     listener, main, route, route_table, scaled, vhost, wait_until)


report = harness.report


free_port = harness.free_port


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def fmt(seconds):
    return "[" + ", ".join("%.3f" % s for s in seconds) + "]"


# ---------------------------------------------------------------------------------------------
# 1. Listeners moved or removed without touching the other listeners' connections
# ---------------------------------------------------------------------------------------------

def listener_resources(upstream, ports):
    """Declared resources (static_resources keys): one listener per entry of `ports`
    ({name: port, 0 = any}) on route table `main`, which sends /<anything> to `backend`."""
    return {
        "listeners": [{"name": name, "address": {"host": "127.0.0.1", "port": port},
                       "route_table": "main"} for name, port in sorted(ports.items())],
        "route_tables": [route_table("main", [vhost("all", ["*"], [
            route(prefix="/", cluster="backend", name="all")])])],
        "clusters": [cluster("backend", [upstream], connect_timeout="1s")],
    }


class ListenerChangeScenario:
    """The listener scenario, shared by the SIGHUP variant (here) and the sluice-cp one
    (control_plane_promises_test.py). A subclass (also a SluiceTestCase) provides

        start_with(resources) -> Sluice   a data plane serving `resources`, 2 workers
        change_to(s, resources)           makes it serve `resources`; returns once applied

    Listener `a` is on a fixed port, `b` on port 0 (the same address as written in both
    configs, so `b` is unchanged); both route to one keep-alive upstream."""

    B_CONNS = 6  # keep-alive connections to b: with 2 workers, both almost surely have some

    def run_listener_change(self, change):
        assert change in ("move", "remove")
        up = self.start_upstream("backend")
        p1 = free_port()
        s = self.start_with(listener_resources(up, {"a": p1, "b": 0}))
        self.assertEqual(p1, s.listener_port("a"))
        port_b = s.listener_port("b")

        # b: keep-alive connections with a request served on each.
        b_conns = [self.conn(port_b) for _ in range(self.B_CONNS)]
        for i, c in enumerate(b_conns):
            self.assertEqual(200, c.request("GET", "/b/before/%d" % i).status)
        # a: two idle keep-alive connections and one with a request in flight (the upstream
        # holds it until up.gate is set; nothing of the response has been sent).
        a_idle = [self.conn(p1) for _ in range(2)]
        for c in a_idle:
            self.assertEqual(200, c.request("GET", "/a/idle").status)
        a_busy = self.conn(p1)
        before_busy = up.request_count()
        a_busy.send_request("GET", "/a/busy", headers={"x-read-gate": "1"})
        up.wait_for_requests(before_busy + 1)
        # One more request on each b connection, one at a time: every worker with a b
        # connection now has an idle pooled upstream connection (besides the one a's busy
        # request holds).
        for i, c in enumerate(b_conns):
            self.assertEqual(200, c.request("GET", "/b/pooled/%d" % i).status)
        upstream_conns = up.connections_accepted
        drain_before = s.stat("downstream_cx_drain_close")
        self.assertEqual(self.B_CONNS + 3, s.stat("downstream_cx_active"))

        if change == "move":
            p2 = free_port()
            new_ports = {"a": p2, "b": 0}
        else:
            p2 = None
            new_ports = {"b": 0}
        t0 = time.monotonic()
        self.change_to(s, listener_resources(up, new_ports))
        expected = {"b": "127.0.0.1:%d" % port_b}
        if p2:
            expected["a"] = "127.0.0.1:%d" % p2
        wait_until(lambda: s.listeners() == expected, timeout=5,
                   message="/listeners to show %s" % expected)

        # The changed listener: its old address stops accepting on every worker, its idle
        # connections close, the busy one finishes its response with connection: close.
        wait_until(lambda: connect_refused(p1), timeout=5,
                   message="old address 127.0.0.1:%d to refuse connections" % p1)
        for c in a_idle:
            self.assertClosed(c, timeout=5, msg="(idle connection of the %sd listener)" % change)
        closed_after = time.monotonic() - t0
        self.assertTrue(a_busy.is_open(), "the busy connection of the %sd listener was closed "
                        "before its response" % change)

        # Every connection of the other listener is untouched: still open, and the next request
        # is served on the same socket, over the pooled upstream connections of before.
        for i, c in enumerate(b_conns):
            self.assertOpen(c, "(b's connection %d after a was %sd)" % (i, change))
            r = c.request("GET", "/b/after/%d" % i)
            self.assertEqual(200, r.status, r)
            self.assertNotIn("close", r.connection_tokens(),
                             "b's connection %d is being drained: %r" % (i, r))
        self.assertEqual(upstream_conns, up.connections_accepted,
                         "b's requests needed new upstream connections: the unchanged cluster "
                         "lost its pooled ones")
        if p2:
            r = harness.request(p2, "GET", "/a/new-address")
            self.assertEqual(200, r.status, r)
        self.assertEqual(200, harness.request(port_b, "GET", "/b/new-connection").status)

        # The busy connection of a: its response, then close.
        up.gate.set()
        r = a_busy.read_response()
        self.assertEqual(200, r.status, r)
        self.assertIn("close", r.connection_tokens(),
                      "the last response on a drained connection must say connection: close")
        self.assertClosed(a_busy, timeout=5, msg="(busy connection after its response)")

        # Still nothing happened to b's connections.
        for i, c in enumerate(b_conns):
            self.assertOpen(c, "(b's connection %d after a's drain ended)" % i)
            r = c.request("GET", "/b/later/%d" % i)
            self.assertEqual(200, r.status, r)
            self.assertNotIn("close", r.connection_tokens())
        self.assertEqual(3, s.stat("downstream_cx_drain_close") - drain_before,
                         "downstream_cx_drain_close counts a's 2 idle and 1 busy connections")
        s.wait_stat("downstream_cx_active", lambda v: v == self.B_CONNS, timeout=5)
        report("listener a %sd: its old address refused and its idle connections closed "
               "%.0f ms after the change was applied; b's %d keep-alive connections untouched",
               change, closed_after * 1000, self.B_CONNS)


class SighupListenerChangeTest(ListenerChangeScenario, SluiceTestCase):
    """Listeners moved and removed by editing the -c file and sending SIGHUP."""

    def start_with(self, resources):
        return self.start_sluice({"static_resources": resources}, concurrency=2)

    def change_to(self, s, resources):
        cfg = {"admin": s.config["admin"], "static_resources": resources}
        with open(s.config_path, "w") as f:
            json.dump(cfg, f)
        before = s.stat("server.config_reload")
        s.signal(signal.SIGHUP)
        s.wait_stat("server.config_reload", lambda v: v > before, timeout=5)
        self.assertEqual(0, s.stat("server.config_reload_failed"), s.stderr_tail())

    def test_listener_moved_by_sighup_leaves_other_listeners_connections_alone(self):
        self.run_listener_change("move")

    def test_listener_removed_by_sighup_leaves_other_listeners_connections_alone(self):
        self.run_listener_change("remove")


# ---------------------------------------------------------------------------------------------
# 2. Remote JWKS: refresh every cache_duration, backoff on failure, rotation
# ---------------------------------------------------------------------------------------------

ISSUER = "https://issuer.example"


def public_jwk(private_key, kid):
    d = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    d["kid"] = kid
    return d


class CountingJwksServer:
    """An HTTP JWKS endpoint on 127.0.0.1:<free port> recording the monotonic time of every
    request. `status` 200 serves {"keys": keys}; anything else answers that status."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.status = 200
        self.lock = threading.Lock()
        self.fetches = []  # (monotonic time, status answered)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server API
                with outer.lock:
                    status = outer.status
                    outer.fetches.append((time.monotonic(), status))
                    body = json.dumps({"keys": outer.keys}).encode() if status == 200 \
                        else b'{"error":"unavailable"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self):
        return "http://127.0.0.1:%d/jwks.json" % self.port

    def times(self, status=None):
        with self.lock:
            return [t for t, st in self.fetches if status is None or st == status]

    def count(self):
        with self.lock:
            return len(self.fetches)

    def wait_fetches(self, n, timeout, status=None):
        """Waits until at least n fetches (answered with `status`, if given) were made."""
        wait_until(lambda: len(self.times(status)) >= n, timeout=timeout, interval=0.01,
                   message="%d JWKS fetches%s (have %s)" % (
                       n, "" if status is None else " answered %d" % status,
                       fmt(self.times(status))))
        return self.times(status)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class JwksRefreshTest(SluiceTestCase):
    CACHE_S = 3.0  # cache_duration: the refresh period and the cap of the retry backoff

    def token(self, key):
        """An RS256 token without kid: every key of the provider is tried, so a token whose key
        is not in the set fails with bad_signature and never triggers a refetch (only an
        unknown kid does)."""
        return jwt.encode({"iss": ISSUER, "sub": "u", "exp": int(time.time()) + 600}, key,
                          algorithm="RS256")

    def status_with(self, port, token):
        with Conn(port) as c:
            return c.request("GET", "/jwt/x", headers={"Authorization": "Bearer " + token}).status

    def test_refresh_period_retry_backoff_and_rotation(self):
        key1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        t1, t2 = self.token(key1), self.token(key2)
        srv = CountingJwksServer([public_jwk(key1, "k1")])
        self.addCleanup(srv.stop)
        up = self.start_upstream("backend")
        cfg = bootstrap(
            [listener("public", "main", http_filters=[{"name": "auth"}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/jwt/", cluster="backend", auth="remote", name="jwt")])])],
            [cluster("backend", [up])])
        cfg["static_resources"]["auth_policies"] = [{"name": "remote", "jwt": {"providers": [{
            "issuer": ISSUER, "remote_jwks": {
                "uri": srv.uri, "cache_duration": "%dms" % (self.CACHE_S * 1000),
                "timeout": "1s", "min_refetch_interval": "600s"}}]}}]
        s = self.start_sluice(cfg, concurrency=2)
        port = s.listener_port("public")
        cache = self.CACHE_S
        slack = scaled(0.5)  # upper-bound slack for a busy machine

        # -- refresh every cache_duration -----------------------------------------------------
        srv.wait_fetches(1, timeout=10)
        wait_until(lambda: self.status_with(port, t1) == 200, timeout=5,
                   message="a token of the first key to be accepted")
        times = srv.wait_fetches(3, timeout=2 * cache + 10)
        period = gaps(times[:3])
        report("JWKS refresh with cache_duration %.0f s: gaps between fetches %s s", cache,
               fmt(period))
        for g in period:
            self.assertGreaterEqual(g, cache - 0.2, "refreshed before cache_duration: %s"
                                    % fmt(period))
            self.assertLessEqual(g, cache + slack, "not refreshed every cache_duration: %s"
                                 % fmt(period))

        # -- the server fails: retries after 1 s, 2 s, then cache_duration; keys keep serving --
        failed_before = s.stat("auth.remote.jwks_fetch_failed")
        with srv.lock:
            srv.status = 500
        fails = srv.wait_fetches(4, status=500, timeout=cache + 1 + 2 + cache + 10)
        backoff = gaps(fails[:4])
        report("JWKS answering 500: gaps between retries %s s (documented: 1, 2, then "
               "cache_duration %.0f)", fmt(backoff), cache)
        for got, want in zip(backoff, [1.0, 2.0, cache]):
            self.assertGreaterEqual(got, want - 0.2, "retries %s s apart, documented "
                                    "1, 2, %.0f" % (fmt(backoff), cache))
            self.assertLessEqual(got, want + slack, "retries %s s apart, documented 1, 2, %.0f"
                                 % (fmt(backoff), cache))
        self.assertGreaterEqual(s.stat("auth.remote.jwks_fetch_failed") - failed_before, 3)
        for _ in range(4):  # fresh connections: both workers
            self.assertEqual(200, self.status_with(port, t1),
                             "the cached key must keep serving while the JWKS server fails")

        # -- back, rotated: the next retry brings the new key and drops the old one -----------
        with srv.lock:
            srv.keys = [public_jwk(key2, "k2")]
            srv.status = 200
        n_ok = len(srv.times(200))
        srv.wait_fetches(n_ok + 1, status=200, timeout=cache + 10)
        wait_until(lambda: self.status_with(port, t2) == 200, timeout=5,
                   message="a token of the rotated key to be accepted")
        fetches = srv.count()
        for _ in range(4):
            self.assertEqual(200, self.status_with(port, t2))
            self.assertEqual(401, self.status_with(port, t1), "the key rotated out still works")
        self.assertLessEqual(srv.count(), fetches + 1,
                             "requests must not cause fetches (only the refresh timer does)")

        # -- the server is down (refused): retries back off again, keys keep serving ----------
        srv.stop()
        t_down = time.monotonic()
        started = []
        last = [s.stat("auth.remote.jwks_fetch")]

        def fetch_started():
            v = s.stat("auth.remote.jwks_fetch")
            if v > last[0]:
                started.extend([time.monotonic()] * (v - last[0]))
                last[0] = v
            return len(started) >= 4
        wait_until(fetch_started, timeout=cache + 1 + 2 + cache + 10, interval=0.01,
                   message="4 JWKS fetch attempts while the server is down")
        down = gaps(started[:4])
        report("JWKS server down: first attempt %.3f s after the stop, then gaps %s s",
               started[0] - t_down, fmt(down))
        for got, want in zip(down, [1.0, 2.0, cache]):
            self.assertGreaterEqual(got, want - 0.2, "attempts %s s apart, documented 1, 2, %.0f"
                                    % (fmt(down), cache))
            self.assertLessEqual(got, want + slack, "attempts %s s apart, documented 1, 2, %.0f"
                                 % (fmt(down), cache))
        for _ in range(4):
            self.assertEqual(200, self.status_with(port, t2),
                             "the cached key must keep serving while the JWKS server is down")


# ---------------------------------------------------------------------------------------------
# 3. Circuit breakers: one limit (and one queue) for the whole process
# ---------------------------------------------------------------------------------------------

class Client(threading.Thread):
    """One request on its own connection, in the background."""

    def __init__(self, port, path, headers=None):
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers or {}
        self.resp = None
        self.error = None
        self.done = threading.Event()
        self.start()

    def run(self):
        try:
            with Conn(self.port, timeout=60) as c:
                self.resp = c.request("GET", self.path, headers=self.headers)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.done.set()

    def result(self, timeout=10):
        if not self.done.wait(scaled(timeout)):
            raise AssertionError("GET %s still unanswered" % self.path)
        if self.error is not None:
            raise AssertionError("GET %s failed: %r" % (self.path, self.error))
        return self.resp


class CircuitBreakerAcrossWorkersTest(SluiceTestCase):
    """N requests held upstream over N connections (SO_REUSEPORT spreads them over the 2
    workers; the proxy exposes no per-worker stats, so the spread is not checked), then more
    requests on fresh connections, each landing on either worker. A per-worker limit of N would
    let nearly all of them through (neither worker holds N): the test fails for it unless all
    the held and all the extra requests landed on one worker (probability about
    2^-(N+EXTRA-2))."""

    N = 10  # max_requests
    EXTRA = 8

    def start(self, breakers):
        up = self.start_upstream("held")
        s = self.start_sluice(harness.proxy_config([up], cluster_extra={
            "circuit_breakers": breakers}), concurrency=2)
        return up, s, s.listener_port()

    def hold(self, up, s, port, n):
        held = []
        for i in range(n):
            c = self.conn(port)
            c.send_request("GET", "/held/%d" % i, headers={"x-read-gate": "1"})
            held.append(c)
        up.wait_for_requests(n)
        wait_until(lambda: self.breakers(s)["requests"] == n, timeout=5,
                   message="/clusters to count %d requests in flight" % n)
        return held

    def release(self, up, s, held):
        up.gate.set()
        for c in held:
            self.assertEqual(200, c.read_response().status)
        wait_until(lambda: self.breakers(s)["requests"] == 0, timeout=5,
                   message="the breaker's count back to 0")

    def assertOverloaded(self, resp, message):
        self.assertLocalReply(resp, 503, message)
        self.assertEqual("true", resp.header("x-sluice-overloaded"), resp)

    @staticmethod
    def breakers(s):
        for c in s.admin_json("/clusters")["clusters"]:
            if c["name"] == "backend":
                return c["circuit_breakers"]
        raise AssertionError("no cluster backend in /clusters")

    def test_max_requests_without_queue_is_one_limit_for_all_workers(self):
        up, s, port = self.start({"max_requests": self.N, "max_queued_requests": 0})
        held = self.hold(up, s, port, self.N)
        for i in range(self.EXTRA):
            t0 = time.monotonic()
            with Conn(port) as c:
                r = c.request("GET", "/extra/%d" % i)
            self.assertOverloaded(r, "upstream overloaded")
            self.assertLess(time.monotonic() - t0, scaled(1.0), "max_queued_requests 0: at once")
        self.assertEqual(self.EXTRA, s.stat("cluster.backend.upstream_rq_overflow"))
        self.assertEqual(self.N, up.request_count(), "an overflowing request reached upstream")
        self.assertEqual(self.N, self.breakers(s)["requests"])
        self.release(up, s, held)
        for i in range(self.EXTRA):
            self.assertEqual(200, harness.request(port, path="/after/%d" % i).status)

    def test_queue_is_one_queue_for_all_workers(self):
        """max_queued_requests Q: Q requests over max_requests wait (whichever worker took
        them), the next ones get 503 at once, and the queued ones are served when slots free."""
        q = 4
        up, s, port = self.start({"max_requests": self.N, "max_queued_requests": q,
                                  "queue_timeout": "60s"})
        held = self.hold(up, s, port, self.N)
        queued = [Client(port, "/queued/%d" % i) for i in range(q)]
        s.wait_stat("cluster.backend.upstream_rq_queued", lambda v: v == q, timeout=5)
        for i in range(self.EXTRA):
            t0 = time.monotonic()
            with Conn(port) as c:
                r = c.request("GET", "/extra/%d" % i)
            self.assertOverloaded(r, "upstream overloaded")
            self.assertLess(time.monotonic() - t0, scaled(1.0), "a full queue answers at once")
        self.assertEqual(self.EXTRA, s.stat("cluster.backend.upstream_rq_queue_overflow"))
        self.assertEqual(q, s.stat("cluster.backend.upstream_rq_queued"))
        self.assertEqual(self.N, up.request_count(), "a queued or refused request reached upstream")
        self.assertFalse([c for c in queued if c.done.is_set()], "a queued request was answered")
        self.release(up, s, held)
        for c in queued:
            r = c.result()
            self.assertEqual(200, r.status, r)
        self.assertEqual(self.N + q, up.request_count())

    def test_queue_timeout_then_503_and_the_count_stays_right(self):
        up, s, port = self.start({"max_requests": self.N, "queue_timeout": "300ms"})
        held = self.hold(up, s, port, self.N)
        waits = []
        for i in range(4):
            t0 = time.monotonic()
            with Conn(port) as c:
                r = c.request("GET", "/late/%d" % i)
            waits.append(time.monotonic() - t0)
            self.assertOverloaded(r, "no request slot within queue_timeout")
            # Timing out of the queue gives back no slot it never had.
            self.assertEqual(self.N, self.breakers(s)["requests"], "after %d timeouts" % (i + 1))
        report("queue_timeout 300 ms: 503 after %s s", fmt(waits))
        for w in waits:
            self.assertGreaterEqual(w, 0.29)
            self.assertLess(w, 0.3 + scaled(1.0))
        self.assertEqual(4, s.stat("cluster.backend.upstream_rq_queue_timeout"))
        self.assertEqual(self.N, up.request_count())
        self.release(up, s, held)
        self.assertEqual(200, harness.request(port, path="/after").status)


# ---------------------------------------------------------------------------------------------
# 4. max_retries and the retry budget
# ---------------------------------------------------------------------------------------------

class GatedUpstream(Upstream):
    """x-role: fail -> 503, but first waits: a request id's first try on `first_gate`, every
    retry (same x-request-id) on `retry_gate`, so the retries stay in flight until the test
    lets them go. x-role: held -> waits on `held_gate`, then 200."""

    def __init__(self, name):
        self.first_gate = threading.Event()
        self.retry_gate = threading.Event()
        self.held_gate = threading.Event()
        self.seen = {}
        super().__init__(name)

    def tries(self, role="fail"):
        with self.lock:
            return [r for r in self.requests if r.header("x-role") == role]

    def _handle(self, bs, req):
        role = req.header("x-role")
        if role == "fail":
            rid = req.header("x-request-id")
            with self.lock:
                n = self.seen.get(rid, 0)
                self.seen[rid] = n + 1
            (self.retry_gate if n else self.first_gate).wait(scaled(30))
            req.headers = [(k, v) for k, v in req.headers if k.lower() != "x-status"]
            req.headers.append(("x-status", "503"))
        elif role == "held":
            self.held_gate.wait(scaled(30))
        return super()._handle(bs, req)

    def close(self):
        self.first_gate.set()
        self.retry_gate.set()
        self.held_gate.set()
        super().close()


class RetryBudgetTest(SluiceTestCase):
    RETRY = {"retry_on": ["5xx"], "num_retries": 1, "backoff": {"base_interval": "1ms"}}

    def start(self, breakers):
        up = GatedUpstream("flaky")
        self.addCleanup(up.close)
        s = self.start_sluice(harness.proxy_config(
            [up], cluster_extra={"circuit_breakers": breakers},
            route_action={"retry_policy": self.RETRY, "timeout": "60s"}), concurrency=2)
        return up, s, s.listener_port()

    def fail_concurrently(self, up, s, port, n, held=0, expect_retries=None):
        """`held` requests kept in flight (200 later), then `n` requests whose tries all fail
        with 503 at the same moment. Returns (retries made, overflowed) while the retries are
        still in flight, after checking the breaker's view and that the requests not retried
        were answered with the upstream's 503."""
        holders = [Client(port, "/held/%d" % i, {"x-role": "held"}) for i in range(held)]
        if held:
            wait_until(lambda: len(up.tries("held")) == held, timeout=10,
                       message="%d held requests upstream" % held)
        failing = [Client(port, "/fail/%d" % i, {"x-role": "fail", "x-request-id": "fail-%d" % i})
                   for i in range(n)]
        wait_until(lambda: len(up.tries("fail")) == n, timeout=10,
                   message="%d first tries upstream" % n)
        up.first_gate.set()  # every first try fails now
        wait_until(lambda: s.stat("cluster.backend.upstream_rq_retry")
                   + s.stat("cluster.backend.upstream_rq_retry_overflow") == n, timeout=10,
                   message="a retry decision for each of the %d failed tries" % n)
        retries = s.stat("cluster.backend.upstream_rq_retry")
        overflow = s.stat("cluster.backend.upstream_rq_retry_overflow")
        if expect_retries is not None:
            # The retries made are in flight upstream (held on retry_gate), no more.
            wait_until(lambda: len(up.tries("fail")) == n + retries, timeout=10,
                       message="%d retries upstream" % retries)
            cb = self.breakers(s)
            self.assertEqual(retries, cb["retries"], "/clusters retries in flight: %r" % cb)
            # Those not retried got the failed try's response: the upstream's 503, not one of
            # the breaker's own.
            wait_until(lambda: sum(c.done.is_set() for c in failing) >= overflow, timeout=10,
                       message="the %d requests not retried to be answered" % overflow)
            not_retried = [c for c in failing if c.done.is_set()]
            self.assertEqual(overflow, len(not_retried),
                             "requests answered while the retries are held")
            for c in not_retried:
                self.assertIsNone(c.error, c.error)
                self.assertEqual(503, c.resp.status, c.resp)
                self.assertEqual("flaky", c.resp.header("x-upstream"), c.resp)
                self.assertIsNone(c.resp.header("x-sluice-overloaded"), c.resp)
        up.retry_gate.set()
        up.held_gate.set()
        for c in failing + holders:
            self.assertTrue(c.done.wait(scaled(10)), "request still unanswered")
            self.assertIsNone(c.error, c.error)
        self.assertEqual(n + retries, len(up.tries("fail")), "tries the upstream saw")
        return retries, overflow

    @staticmethod
    def breakers(s):
        for c in s.admin_json("/clusters")["clusters"]:
            if c["name"] == "backend":
                return c["circuit_breakers"]
        raise AssertionError("no cluster backend in /clusters")

    def test_max_retries_bounds_retries_in_flight(self):
        up, s, port = self.start({"max_retries": 2})
        retries, overflow = self.fail_concurrently(up, s, port, 6, expect_retries=2)
        report("max_retries 2: 6 concurrent failures -> %d retried, %d not (overflow)",
               retries, overflow)
        self.assertEqual((2, 4), (retries, overflow))

    def test_retry_budget_min_retry_concurrency(self):
        """20 % of at most 13 requests in flight is 2, below min_retry_concurrency 3: 3 retries,
        and the budget replaces max_retries (0 here, which alone would allow none)."""
        up, s, port = self.start({"max_retries": 0, "retry_budget": {
            "budget_percent": 20, "min_retry_concurrency": 3}})
        retries, overflow = self.fail_concurrently(up, s, port, 10, expect_retries=3)
        report("retry_budget 20%%, min 3: 10 concurrent failures -> %d retried, %d not",
               retries, overflow)
        self.assertEqual((3, 7), (retries, overflow))

    def test_retry_budget_percent_of_requests_in_flight(self):
        """30 requests held in flight plus 5 failing: 10 % of the 30..38 requests in flight is
        3 (min_retry_concurrency 1), so 3 of the 5 failures are retried."""
        up, s, port = self.start({"retry_budget": {"budget_percent": 10,
                                                   "min_retry_concurrency": 1}})
        retries, overflow = self.fail_concurrently(up, s, port, 5, held=30, expect_retries=3)
        report("retry_budget 10%% with 30 requests held: 5 concurrent failures -> %d retried, "
               "%d not", retries, overflow)
        self.assertEqual((3, 2), (retries, overflow))


if __name__ == "__main__":
    main()
