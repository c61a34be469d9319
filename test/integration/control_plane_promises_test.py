"""Control-plane promises of README.md and docs/ that no other file checks, through sluice-cp,
sluicectl and data planes over ADS:

  * listeners moved (address changed) or removed by a push, without touching the other
    listeners' connections; only the changed listener's connections drain
    (docs/architecture.md "Dynamic config (ADS)" steps 4-5; the SIGHUP variant of the same
    scenario is in promises_test.py);
  * AuthPolicy and RateLimitPolicy resources pushed by sluice-cp and enforced end to end: a
    key-auth policy (401 without or with a wrong key, 200 with the key), a rotated key (the old
    one refused within a bounded time, also on a connection opened before the push), a
    rate-limit policy added (429 past the limit) and removed (no limiting);
  * the data plane's reconnect backoff after the stream breaks: jittered exponential,
    `retry_interval` doubling to `max_retry_interval`, each wait 50-100 % of its step
    (docs/configuration.md ControlPlane, docs/architecture.md), seen both in the data plane's
    stream attempts (`control_plane.stream_opened`) and in the TCP connections that reach the
    control plane's address.

Each scenario runs over state of the world and delta where the protocol matters.
"""

import socket
import threading
import time

import harness
import promises_test
from cp_harness import CpTestCase, dp_bootstrap
from harness import Conn, echo, scaled, wait_until
from promises_test import fmt, gaps, report

# From `sluicectl apply` returning to a changed policy being enforced (scaled).
POLICY_LIMIT = 2.0


# ---------------------------------------------------------------------------------------------
# 1. Listeners moved or removed by a push
# ---------------------------------------------------------------------------------------------

class CpListenerChangeTest(promises_test.ListenerChangeScenario, CpTestCase):
    API = "SOTW"
    GROUP = "edge"

    def start_with(self, resources):
        self.cp = self.start_cp()
        self.cp.apply(resources, group=self.GROUP)
        self.node_id = "lc-" + self.API.lower()
        return self.start_dp(self.cp, self.node_id, self.GROUP, concurrency=2)

    def change_to(self, s, resources):
        out = self.cp.apply(resources, group=self.GROUP).stdout
        self.assertIn("applied group", out)
        self.cp.wait_in_sync(self.node_id)
        self.assertEqual(0, s.stat("control_plane.Listener.update_rejected"))

    def test_listener_moved_by_push_leaves_other_listeners_connections_alone(self):
        self.run_listener_change("move")

    def test_listener_removed_by_push_leaves_other_listeners_connections_alone(self):
        self.run_listener_change("remove")


class DeltaCpListenerChangeTest(CpListenerChangeTest):
    API = "DELTA"


# ---------------------------------------------------------------------------------------------
# 2. AuthPolicy and RateLimitPolicy pushed and enforced
# ---------------------------------------------------------------------------------------------

def policy_config(upstream, key="key-1", rate_limit=None):
    """/api/ needs key-auth policy `keys` (consumer alice with `key`); /limited/ is open and,
    with rate_limit (a RateLimitPolicy dict), limited by it."""
    limited = {"name": "limited", "match": {"prefix": "/limited/"},
               "route": {"cluster": "backend"}}
    cfg = {
        "clusters": [harness.cluster("backend", [upstream], connect_timeout="1s")],
        "auth_policies": [{"name": "keys", "key_auth": {"key_names": ["apikey"]},
                           "consumers": [{"username": "alice",
                                          "keyauth_credentials": [{"key": key}]}]}],
        "route_tables": [{"name": "main", "virtual_hosts": [{"name": "all", "domains": ["*"],
                                                              "routes": [
            {"name": "api", "match": {"prefix": "/api/"}, "route": {"cluster": "backend"},
             "auth": "keys"},
            limited]}]}],
        "listeners": [{"name": "public", "address": {"host": "127.0.0.1", "port": 0},
                       "route_table": "main",
                       "http_filters": [{"name": "auth"}, {"name": "rate_limit"},
                                        {"name": "router"}]}],
    }
    if rate_limit:
        limited["rate_limit"] = rate_limit["name"]
        cfg["rate_limit_policies"] = [rate_limit]
    return cfg


def status_is(status, **extra):
    def check(resp):
        return resp.status == status and all(
            (resp.header(k) is not None) == v for k, v in extra.items())
    check.description = "status %d%s" % (status, "".join(
        " with%s %s" % ("" if v else "out", k) for k, v in extra.items()))
    return check


def wait_request(port, path, headers, expect, since, limit):
    """Like cp_harness.wait_served, with request headers: polls (fresh connections) until
    expect(response); returns the seconds from `since`."""
    deadline = since + scaled(limit)
    last = None
    while True:
        try:
            with Conn(port, timeout=5) as c:
                last = c.request("GET", path, headers=headers)
            if expect(last):
                return time.monotonic() - since
        except (OSError, harness.ProtocolError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("GET %s %s: not %s within %.2fs of the apply; last: %r"
                                 % (path, headers, getattr(expect, "description", expect),
                                    scaled(limit), last))
        time.sleep(0.005)


class CpPolicyTest(CpTestCase):
    API = "SOTW"

    def get(self, port, path, headers=None):
        with Conn(port) as c:
            return c.request("GET", path, headers=headers or {})

    def assertKeyDenied(self, resp):
        self.assertLocalReply(resp, 401)
        self.assertEqual(['Key realm="sluice"'], resp.header_all("www-authenticate"), resp)

    def test_pushed_policies_are_enforced_and_changes_apply_within_bound(self):
        up = self.start_upstream("backend")
        cp = self.start_cp()
        node = "pol-" + self.API.lower()
        cp.apply(policy_config(up, key="key-1"), group="edge")
        dp = self.start_dp(cp, node, "edge", concurrency=2)
        port = dp.listener_port("public")

        # -- key-auth as pushed -------------------------------------------------------------
        self.assertKeyDenied(self.get(port, "/api/x"))
        self.assertKeyDenied(self.get(port, "/api/x", {"apikey": "nope"}))
        r = self.get(port, "/api/x", {"apikey": "key-1"})
        self.assertEqual(200, r.status, r)
        self.assertEqual("alice", echo(r)["hdr"].get("x-consumer-username"), r)
        self.assertNotIn("apikey", echo(r)["hdr"], "the key must not reach the upstream")
        self.assertEqual(200, self.get(port, "/limited/x").status)

        # A keep-alive connection opened before the change takes the new policy at its next
        # request.
        kept = self.conn(port)
        self.assertEqual(200, kept.request("GET", "/api/kept", headers={"apikey": "key-1"}).status)

        # -- key rotated: the old key is refused within POLICY_LIMIT ------------------------
        cp.apply(policy_config(up, key="key-2"), group="edge")
        applied = time.monotonic()
        took = wait_request(port, "/api/x", {"apikey": "key-1"}, status_is(401), applied,
                            POLICY_LIMIT)
        report("%s: rotated API key: old key refused %.0f ms after sluicectl apply", self.API,
               took * 1000)
        for _ in range(6):  # fresh connections: both workers
            self.assertKeyDenied(self.get(port, "/api/x", {"apikey": "key-1"}))
            self.assertEqual(200, self.get(port, "/api/x", {"apikey": "key-2"}).status)
        self.assertKeyDenied(kept.request("GET", "/api/kept", headers={"apikey": "key-1"}))
        self.assertEqual(200, kept.request("GET", "/api/kept", headers={"apikey": "key-2"}).status)
        cp.wait_in_sync(node)

        # -- rate-limit policy pushed: 429 past the limit -----------------------------------
        # Sliding window (the default): never more than 3 in any minute, boundaries included.
        rl = {"name": "per-client", "minute": 3, "limit_by": "HEADER", "header_name": "x-client"}
        cp.apply(policy_config(up, key="key-2", rate_limit=rl), group="edge")
        applied = time.monotonic()
        # Each probe has a client id of its own, so probing spends no budget of the next ones.
        probe = [0]

        def limited_probe(resp):
            return resp.status == 200 and resp.header("x-ratelimit-limit-minute") == "3"

        def probe_headers():
            probe[0] += 1
            return {"x-client": "probe-%d" % probe[0]}
        deadline = applied + scaled(POLICY_LIMIT)
        while True:
            r = self.get(port, "/limited/x", probe_headers())
            if limited_probe(r):
                break
            self.assertLess(time.monotonic(), deadline,
                            "rate-limit headers not served within %.1fs of the apply: %r"
                            % (scaled(POLICY_LIMIT), r))
        report("%s: rate-limit policy enforced %.0f ms after sluicectl apply", self.API,
               (time.monotonic() - applied) * 1000)
        cp.wait_in_sync(node)
        client = {"x-client": "alice-app"}
        got = [self.get(port, "/limited/x", client) for _ in range(4)]
        self.assertEqual([200, 200, 200, 429], [x.status for x in got], got[-1])
        self.assertLocalReply(got[-1], 429, "API rate limit exceeded")
        self.assertIsNotNone(got[-1].header("retry-after"), got[-1])
        for _ in range(3):
            self.assertEqual(429, self.get(port, "/limited/x", client).status)
        self.assertEqual(200, self.get(port, "/limited/x", {"x-client": "other"}).status)
        self.assertGreaterEqual(dp.stat("rate_limit.per-client.limited"), 4)

        # -- rate-limit policy removed (policy and the route's reference): no limiting ------
        cp.apply(policy_config(up, key="key-2"), group="edge")
        applied = time.monotonic()
        took = wait_request(port, "/limited/x", client,
                            status_is(200, **{"x-ratelimit-limit-minute": False}), applied,
                            POLICY_LIMIT)
        report("%s: rate-limit policy removed: the exhausted client served again %.0f ms "
               "after sluicectl apply", self.API, took * 1000)
        for _ in range(10):
            r = self.get(port, "/limited/x", client)
            self.assertEqual(200, r.status, r)
            self.assertIsNone(r.header("x-ratelimit-remaining-minute"), r)
        self.assertEqual(200, self.get(port, "/api/x", {"apikey": "key-2"}).status)
        n = cp.wait_in_sync(node)
        self.assertEqual(0, sum(dp.stat("control_plane.%s.update_rejected" % t)
                                for t in ("AuthPolicy", "RateLimitPolicy", "RouteTable")), n)
        dump = dp.admin_json("/config_dump")
        self.assertEqual([], dump["dynamic_resources"]["RateLimitPolicy"]["resources"])
        self.assertFalse([x for x in dump.get("retained", []) if "RateLimitPolicy" in x],
                         dump.get("retained"))


class DeltaCpPolicyTest(CpPolicyTest):
    API = "DELTA"


# ---------------------------------------------------------------------------------------------
# 3. Reconnect backoff
# ---------------------------------------------------------------------------------------------

class FakeControlPlane:
    """A TCP listener on the control plane's address that accepts every connection, notes when,
    and closes it: each accept is one connection attempt of the data plane."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.accepts = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepts.append(time.monotonic())
            c.close()

    def times(self):
        with self.lock:
            return list(self.accepts)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class ReconnectBackoffTest(CpTestCase):
    RETRY_S = 0.1  # retry_interval
    MAX_S = 1.0  # max_retry_interval
    CAPPED_GAPS = 12  # gaps observed at the cap

    def steps(self, n):
        """The documented step of each of the first n waits: retry_interval doubling to
        max_retry_interval."""
        out, step = [], self.RETRY_S
        for _ in range(n):
            out.append(min(step, self.MAX_S))
            step *= 2
        return out

    def break_stream(self):
        """A data plane connected to sluice-cp, which is then SIGKILLed and replaced by a
        FakeControlPlane on its port. Returns (dp, fake, time of the kill)."""
        cp = self.start_cp()
        cp.apply({"route_tables": [{"name": "main", "virtual_hosts": [{
            "name": "all", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": "ok"}}]}]}],
            "listeners": [{"name": "public", "address": {"host": "127.0.0.1", "port": 0},
                           "route_table": "main"}]})
        b = dp_bootstrap(cp, "rb-1")
        b["control_plane"]["retry_interval"] = "%dms" % (self.RETRY_S * 1000)
        b["control_plane"]["max_retry_interval"] = "%dms" % (self.MAX_S * 1000)
        dp = self.start_sluice(b, concurrency=1)
        cp.wait_in_sync("rb-1")
        t_kill = time.monotonic()
        cp.kill()
        fake = FakeControlPlane(cp.port)
        self.addCleanup(fake.close)
        return dp, fake, t_kill

    def attempts_needed(self):
        """Attempts that cover the ramp (steps below the cap) and CAPPED_GAPS waits at it."""
        return sum(1 for st in self.steps(20) if st < self.MAX_S) + self.CAPPED_GAPS

    def observe(self, attempts_so_far):
        """Waits until attempts_so_far() has attempts_needed() entries, at most as long as the
        documented schedule can take plus headroom; returns those (fewer if it gave up, and
        check_schedule says what it got)."""
        n = self.attempts_needed()
        longest = sum(self.steps(n))
        try:
            wait_until(lambda: len(attempts_so_far()) >= n, timeout=longest + 10, interval=0.005,
                       message="%d reconnect attempts" % n)
        except AssertionError:
            pass
        return attempts_so_far()[:n]

    def check_schedule(self, label, t_break, attempts):
        """attempts: monotonic times of the reconnect attempts after the stream broke at
        t_break. Checks the documented schedule: wait k (before attempt k) is 50-100 % of step
        k; steps double from retry_interval and stop at max_retry_interval."""
        g = gaps([t_break] + attempts)
        steps = self.steps(len(g))
        report("%s: %d attempts, gaps %s s", label, len(attempts), fmt(g))
        # A gap is the wait plus the time to notice the failed attempt and get back to the main
        # thread, which a busy 2-core machine (the whole suite in parallel) stretches by 100 ms
        # and more; it never lowers a gap much.
        slack = scaled(0.2)
        for k, (got, step) in enumerate(zip(g, steps)):
            self.assertLessEqual(got, step + slack,
                                 "%s: gap %d is %.3f s, above its step %.3f s (retry_interval "
                                 "%.1f s doubling to max_retry_interval %.1f s); gaps %s"
                                 % (label, k, got, step, self.RETRY_S, self.MAX_S, fmt(g)))
            self.assertGreaterEqual(got, 0.5 * step - slack,
                                    "%s: gap %d is %.3f s, below 50 %% of its step %.3f s; "
                                    "gaps %s" % (label, k, got, step, fmt(g)))
        capped = [x for x, step in zip(g, steps) if step == self.MAX_S]
        self.assertGreaterEqual(len(capped), self.CAPPED_GAPS,
                                "%s: fewer attempts than %d within %.1f s: gaps %s"
                                % (label, self.attempts_needed(),
                                   sum(self.steps(self.attempts_needed())) + 10, fmt(g)))
        # Growth: the waits before the cap are shorter than those at the cap.
        self.assertLess(max(g[:2]), min(capped), "%s: no growth: %s" % (label, fmt(g)))
        # Jitter 50-100 %: waits at the cap average 75 % of it (12 samples: +-4 % s.d.).
        mean = sum(capped) / len(capped)
        report("%s: waits at the cap average %.0f %% of max_retry_interval (documented jitter "
               "50-100 %%: 75 %%)", label, 100 * mean / self.MAX_S)
        self.assertLess(mean, 0.9 * self.MAX_S + slack,
                        "%s: waits at the cap average %.3f s, documented 50-100 %% of %.1f s; "
                        "gaps %s" % (label, mean, self.MAX_S, fmt(g)))

    def test_stream_attempts_back_off_exponentially_to_the_cap(self):
        """The data plane's own view: control_plane.stream_opened counts every stream
        attempt."""
        dp, fake, t_kill = self.break_stream()
        attempts = []
        last = [dp.stat("control_plane.stream_opened")]

        def so_far():
            v = dp.stat("control_plane.stream_opened")
            if v > last[0]:
                attempts.extend([time.monotonic()] * (v - last[0]))
                last[0] = v
            return attempts
        attempts = self.observe(so_far)
        self.assertEqual(0, dp.stat("control_plane.connected"))
        self.check_schedule("stream attempts (control_plane.stream_opened)", t_kill, attempts)
        # Serving all along.
        self.assertEqual(200, harness.request(dp.listener_port("public"), path="/").status)

    def test_connections_to_the_control_plane_back_off_exponentially_to_the_cap(self):
        """What the control plane's side sees: TCP connections to its address."""
        dp, fake, t_kill = self.break_stream()
        attempts = self.observe(fake.times)
        self.assertEqual(0, dp.stat("control_plane.connected"))
        self.check_schedule("TCP connections to the control plane's address", t_kill, attempts)


if __name__ == "__main__":
    harness.main()
