"""The rate_limit filter with LOCAL policies, through the real binary: every window, every
limit_by, both header styles and hidden headers, 429 with Retry-After and the JSON body, the
sliding window at a fixed-window boundary, exactness under concurrency (one budget for all
workers), counters kept across a config reload, validation errors, stats.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/rate_limit_test.py
"""

import json
import os
import signal
import socket
import threading
import time
import uuid

import harness
from harness import cluster, listener, route_table, run_validate, vhost


def rl_bootstrap(policies, routes, upstream, filters=("rate_limit", "router")):
    return {"static_resources": {
        "listeners": [listener("public", "main",
                               http_filters=[{"name": f} for f in filters])],
        "route_tables": [route_table("main", [vhost("all", ["*"], routes)])],
        "clusters": [cluster("backend", [upstream]), cluster("other", [upstream])],
        "rate_limit_policies": policies}}


def rl_route(prefix, policy, cluster_name="backend", name=None):
    r = {"name": name or prefix.strip("/").replace("/", "-") or "root",
         "match": {"prefix": prefix}, "route": {"cluster": cluster_name}}
    if policy:
        r["rate_limit"] = policy
    return r


class SourceConn(harness.Conn):
    """A client connection from a chosen loopback address (127.0.0.2, ...): another client IP."""

    def __init__(self, port, source="127.0.0.1", timeout=10.0):
        self.port = port
        self.timeout = harness.scaled(timeout)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=self.timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bs = harness.BufferedSocket(self.sock)
        self.unexpected = b""


def get(port, path, headers=None, source="127.0.0.1"):
    with SourceConn(port, source) as c:
        return c.request("GET", path, headers=headers)


def statuses(port, path, n, headers=None, source="127.0.0.1"):
    return [get(port, path, headers, source).status for _ in range(n)]


def wait_for_window_room(window_s, need_s):
    """Fixed windows: sleep past the next boundary if fewer than need_s seconds are left in the
    current window, so a burst that must stay within one window does."""
    left = window_s - (time.time() % window_s)
    if left < need_s:
        time.sleep(left + 0.02)


def parse_sf_list(value):
    """RateLimit / RateLimit-Policy (RFC 9651 list of strings with parameters) ->
    [(name, {param: int})]."""
    out = []
    for item in value.split(","):
        parts = item.strip().split(";")
        name = json.loads(parts[0])
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip()] = int(v)
        out.append((name, params))
    return out


POLICIES = [
    {"name": "w-second", "second": 3, "limit_by": "IP"},
    {"name": "w-minute", "minute": 3, "limit_by": "IP", "algorithm": "FIXED_WINDOW"},
    {"name": "w-hour", "hour": 3, "limit_by": "IP", "algorithm": "FIXED_WINDOW"},
    {"name": "w-day", "day": 3, "limit_by": "IP", "algorithm": "FIXED_WINDOW"},
    {"name": "by-ip", "minute": 2, "limit_by": "IP"},
    {"name": "by-consumer", "minute": 2},  # CONSUMER is the default
    {"name": "by-credential", "minute": 2, "limit_by": "CREDENTIAL"},
    {"name": "by-header", "minute": 2, "limit_by": "HEADER", "header_name": "X-Tenant"},
    {"name": "by-path", "minute": 2, "limit_by": "PATH"},
    {"name": "by-service", "minute": 2, "limit_by": "SERVICE"},
    {"name": "by-route", "minute": 2, "limit_by": "ROUTE"},
    {"name": "kong", "second": 50, "minute": 100, "limit_by": "IP", "headers": "KONG"},
    {"name": "ietf", "minute": 100, "limit_by": "IP", "headers": "IETF"},
    {"name": "both", "second": 50, "minute": 100, "limit_by": "IP"},
    {"name": "hidden", "minute": 1, "limit_by": "IP", "hide_client_headers": True},
    {"name": "slide", "second": 5, "limit_by": "HEADER", "header_name": "x-k"},
    {"name": "fixed", "second": 5, "limit_by": "HEADER", "header_name": "x-k",
     "algorithm": "FIXED_WINDOW"},
    {"name": "cap-minute", "minute": 2, "limit_by": "HEADER", "header_name": "x-k"},
    {"name": "cap-second", "second": 2, "limit_by": "HEADER", "header_name": "x-k"},
]

ROUTES = [
    rl_route("/w/second", "w-second"), rl_route("/w/minute", "w-minute"),
    rl_route("/w/hour", "w-hour"), rl_route("/w/day", "w-day"),
    rl_route("/by/ip", "by-ip"), rl_route("/by/consumer", "by-consumer"),
    rl_route("/by/credential", "by-credential"), rl_route("/by/header", "by-header"),
    rl_route("/by/path", "by-path"),
    rl_route("/by/service/a", "by-service"), rl_route("/by/service/b", "by-service"),
    rl_route("/by/service/other", "by-service", cluster_name="other"),
    rl_route("/by/route/a", "by-route"), rl_route("/by/route/b", "by-route"),
    rl_route("/h/kong", "kong"), rl_route("/h/ietf", "ietf"), rl_route("/h/both", "both"),
    rl_route("/h/hidden", "hidden"),
    rl_route("/slide", "slide"), rl_route("/fixed", "fixed"),
    rl_route("/cap/minute", "cap-minute"), rl_route("/cap/second", "cap-second"),
    rl_route("/", None, name="free"),
]


class LocalRateLimitTest(harness.SluiceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("u1")
        cls.sluice = cls.start_class_sluice(rl_bootstrap(POLICIES, ROUTES, cls.up),
                                            concurrency=2)
        cls.port = cls.sluice.listener_port("public")

    def test_each_window(self):
        for window, seconds in (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)):
            with self.subTest(window=window):
                if window != "second":
                    wait_for_window_room(seconds, 2)
                rs = [get(self.port, "/w/" + window) for _ in range(4)]
                self.assertEqual([r.status for r in rs], [200, 200, 200, 429], rs)
                for i, r in enumerate(rs[:3]):
                    self.assertEqual(r.header("x-ratelimit-limit-" + window), "3")
                    self.assertEqual(r.header("x-ratelimit-remaining-" + window), str(2 - i))
                    self.assertEqual(parse_sf_list(r.header("ratelimit-policy")),
                                     [("w-" + window, {"q": 3, "w": seconds})])
                over = rs[3]
                self.assertLocalReply(over, 429, "API rate limit exceeded")
                retry = int(over.header("retry-after"))
                # Fixed windows end on the UTC boundary; the sliding second frees its bucket
                # 1 to 1.1 s after it was used, and says at most the window.
                self.assertGreaterEqual(retry, 1)
                self.assertLessEqual(retry, seconds)
                _, params = parse_sf_list(over.header("ratelimit"))[0]
                self.assertEqual(params["r"], 0)
                self.assertEqual(params["t"], retry)
                self.assertEqual(over.header("x-ratelimit-remaining-" + window), "0")

    def test_429_reaches_nobody_upstream(self):
        before = self.up.request_count()
        rs = statuses(self.port, "/h/hidden", 3, source="127.0.0.9")
        self.assertEqual(rs, [200, 429, 429])
        self.assertEqual(self.up.request_count() - before, 1)

    def test_hidden_headers_keep_retry_after(self):
        ok = get(self.port, "/h/hidden", source="127.0.0.10")
        self.assertEqual(ok.status, 200)
        over = get(self.port, "/h/hidden", source="127.0.0.10")
        self.assertLocalReply(over, 429)
        for r in (ok, over):
            names = [k.lower() for k, _ in r.headers]
            self.assertFalse([n for n in names if "ratelimit" in n], r)
        self.assertGreaterEqual(int(over.header("retry-after")), 1)

    def test_header_styles(self):
        k = get(self.port, "/h/kong", source="127.0.0.20")
        self.assertEqual(k.status, 200)
        self.assertEqual(k.header("x-ratelimit-limit-second"), "50")
        self.assertEqual(k.header("x-ratelimit-remaining-second"), "49")
        self.assertEqual(k.header("x-ratelimit-limit-minute"), "100")
        self.assertEqual(k.header("x-ratelimit-remaining-minute"), "99")
        # Kong's RateLimit-* for the tightest window (least remaining).
        self.assertEqual(k.header("ratelimit-limit"), "50")
        self.assertEqual(k.header("ratelimit-remaining"), "49")
        self.assertEqual(int(k.header("ratelimit-reset")), 1)  # never more than the window
        self.assertIsNone(k.header("ratelimit-policy"))
        self.assertIsNone(k.header("ratelimit"))

        i = get(self.port, "/h/ietf", source="127.0.0.20")
        self.assertEqual(parse_sf_list(i.header("ratelimit-policy")),
                         [("ietf", {"q": 100, "w": 60})])
        (name, params), = parse_sf_list(i.header("ratelimit"))
        self.assertEqual(name, "ietf")
        self.assertEqual(params["r"], 99)
        self.assertEqual(params["t"], 60, params)  # the request's bucket leaves in 60-66 s
        self.assertIsNone(i.header("x-ratelimit-limit-minute"))
        self.assertIsNone(i.header("ratelimit-limit"))

        b = get(self.port, "/h/both", source="127.0.0.20")
        self.assertEqual(b.header("x-ratelimit-remaining-minute"), "99")
        self.assertEqual(parse_sf_list(b.header("ratelimit-policy")),
                         [("both-second", {"q": 50, "w": 1}), ("both-minute", {"q": 100, "w": 60})])
        self.assertEqual([p["r"] for _, p in parse_sf_list(b.header("ratelimit"))], [49, 99])

    def test_limit_by_ip(self):
        self.assertEqual(statuses(self.port, "/by/ip", 3, source="127.0.0.30"), [200, 200, 429])
        self.assertEqual(statuses(self.port, "/by/ip", 3, source="127.0.0.31"), [200, 200, 429])

    def test_limit_by_consumer_and_credential_fall_back_to_the_client_ip(self):
        # No auth filter on this listener: no consumer or credential, so the client IP decides
        # (ConsumerTest limits by consumer behind auth).
        for path in ("/by/consumer", "/by/credential"):
            with self.subTest(path=path):
                self.assertEqual(statuses(self.port, path, 3, source="127.0.0.40"),
                                 [200, 200, 429])
                self.assertEqual(statuses(self.port, path, 2, source="127.0.0.41"), [200, 200])

    def test_limit_by_header(self):
        self.assertEqual(statuses(self.port, "/by/header", 2, {"X-Tenant": "acme"}), [200, 200])
        # Same tenant from another client: the same budget.
        self.assertEqual(get(self.port, "/by/header", {"X-Tenant": "acme"},
                             source="127.0.0.50").status, 429)
        self.assertEqual(get(self.port, "/by/header", {"X-Tenant": "globex"}).status, 200)
        # No header: the client IP.
        self.assertEqual(statuses(self.port, "/by/header", 3, source="127.0.0.51"),
                         [200, 200, 429])

    def test_limit_by_path(self):
        self.assertEqual(get(self.port, "/by/path/a?x=1").status, 200)
        self.assertEqual(get(self.port, "/by/path/a?x=2", source="127.0.0.60").status, 200)
        self.assertEqual(get(self.port, "/by/path/a").status, 429)
        self.assertEqual(get(self.port, "/by/path/b").status, 200)

    def test_limit_by_service(self):
        self.assertEqual(get(self.port, "/by/service/a").status, 200)
        self.assertEqual(get(self.port, "/by/service/b", source="127.0.0.70").status, 200)
        self.assertEqual(get(self.port, "/by/service/a", source="127.0.0.71").status, 429,
                         "two routes to one cluster share its budget")
        self.assertEqual(get(self.port, "/by/service/other").status, 200)

    def test_limit_by_route(self):
        self.assertEqual(statuses(self.port, "/by/route/a", 3), [200, 200, 429])
        self.assertEqual(statuses(self.port, "/by/route/b", 2, source="127.0.0.80"), [200, 200])

    def test_sliding_window_holds_across_the_fixed_boundary(self):
        # Five requests just before a second boundary, five more just after it. A fixed window
        # admits the second five (ten in well under a second); the sliding window admits none
        # until the first five are a whole window (plus at most one 100 ms bucket) old.
        # The claim needs the first five inside one fixed second and the check after the
        # boundary less than a window after them. An attempt that missed that (the test process
        # was descheduled) proves nothing about the proxy: it is repeated with fresh keys, never
        # judged, and only the judged attempt's statuses are asserted.
        for attempt in range(5):
            key = "b%d-%d" % (attempt, os.getpid())
            while not 0.40 <= time.time() % 1 < 0.50:  # half a second on each side
                time.sleep(0.005)
            t_first = time.time()
            first = {p: statuses(self.port, p, 5, {"x-k": key}) for p in ("/slide", "/fixed")}
            t_first_done = time.time()
            boundary = int(t_first) + 1
            for p, st in first.items():
                self.assertEqual(st, [200] * 5, p)
            if t_first_done >= boundary:
                continue  # the first ten straddled the boundary: not a valid attempt
            time.sleep(max(0.0, boundary + 0.02 - time.time()))  # just past the boundary
            fixed = statuses(self.port, "/fixed", 5, {"x-k": key})
            slide = get(self.port, "/slide", {"x-k": key})
            if time.time() >= t_first + 1.0:
                continue  # the first five could have left the window: not a valid attempt
            self.assertEqual(fixed, [200] * 5, "a fixed window starts again at the boundary")
            self.assertLocalReply(slide, 429)
            self.assertLessEqual(int(slide.header("retry-after")), 1)
            # Once the first five are more than a window plus a bucket old: room again.
            time.sleep(max(0.0, t_first_done + 1.15 - time.time()))
            self.assertEqual(get(self.port, "/slide", {"x-k": key}).status, 200)
            return
        self.fail("5 attempts, none got ten requests into half a second: the test process is "
                  "too starved to judge the window (not a proxy failure, but not a pass)")

    def test_retry_after_and_reset_never_exceed_the_window(self):
        # A sliding window counts its current bucket and ten older ones (11 x 6 s for a
        # minute): a burst's bucket leaves the count up to 66 s later. Retry-After, the RateLimit
        # "t" and RateLimit-Reset say at most the window, and more than 0.
        for path, window in (("/cap/minute", 60), ("/cap/second", 1)):
            with self.subTest(path=path):
                key = "cap-%s-%d" % (uuid.uuid4().hex[:8], window)
                rs = [get(self.port, path, {"x-k": key}) for _ in range(3)]
                self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
                for r in rs:
                    (name, params), = parse_sf_list(r.header("ratelimit"))
                    self.assertTrue(0 < params["t"] <= window, (path, r.headers))
                    self.assertTrue(0 < int(r.header("ratelimit-reset")) <= window,
                                    (path, r.headers))
                over = rs[2]
                self.assertLocalReply(over, 429)
                retry = int(over.header("retry-after"))
                self.assertTrue(0 < retry <= window, (path, over.headers))
                if window == 60:
                    # A burst within one 6 s bucket: the exact wait is 54 to 66 s.
                    self.assertGreaterEqual(retry, 54)

    def test_stats(self):
        get(self.port, "/by/ip", source="127.0.0.90")
        get(self.port, "/by/ip", source="127.0.0.90")
        get(self.port, "/by/ip", source="127.0.0.90")
        self.sluice.wait_stat("rate_limit.by-ip.limited", lambda v: v >= 1)
        stats = self.sluice.stats()
        self.assertGreaterEqual(stats["rate_limit.by-ip.allowed"], 2)
        self.assertEqual(stats["rate_limit.by-ip.redis_error"], 0)
        self.assertGreaterEqual(stats["rate_limit.local_keys"], 1)
        status, _, body = self.sluice.admin("GET", "/stats/prometheus")
        self.assertEqual(status, 200)
        self.assertIn(b'sluice_rate_limit_limited_total{policy="by-ip"}', body)


class LocalExactnessTest(harness.SluiceTestCase):
    """One budget for the whole process: 4 workers, 48 concurrent keep-alive clients sending
    3x the limit; exactly the limit is admitted, every round."""

    LIMIT = 100

    def test_exactly_the_limit_across_workers(self):
        up = self.start_upstream("u1")
        policies = [{"name": "exact", "minute": self.LIMIT, "limit_by": "HEADER",
                     "header_name": "x-round"},
                    {"name": "exact-fixed", "hour": self.LIMIT, "limit_by": "HEADER",
                     "header_name": "x-round", "algorithm": "FIXED_WINDOW"}]
        s = self.start_sluice(rl_bootstrap(policies, [rl_route("/s", "exact"),
                                                      rl_route("/f", "exact-fixed")], up),
                              concurrency=4)
        port = s.listener_port("public")
        for path in ("/s", "/f"):
            for rnd in range(3):
                if path == "/f":
                    wait_for_window_room(3600, 30)
                key = "%s-%d-%s" % (path, rnd, uuid.uuid4().hex[:8])
                counts = run_clients([port], path, {"x-round": key}, 3 * self.LIMIT, 48)
                self.assertEqual(counts.get(200, 0), self.LIMIT, (path, rnd, counts))
                self.assertEqual(counts.get(429, 0), 2 * self.LIMIT, (path, rnd, counts))


def run_clients(ports, path, headers, total, clients):
    """`clients` threads, each with one keep-alive connection per port (used in turn), send
    `total` requests between them; returns {status: count}."""
    counts = {}
    lock = threading.Lock()
    remaining = [total]
    errors = []
    start = threading.Barrier(clients)

    def worker(i):
        conns = [harness.Conn(p) for p in ports]
        try:
            start.wait(harness.scaled(30))
            n = 0
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                c = conns[(i + n) % len(conns)]
                n += 1
                r = c.request("GET", path, headers=headers)
                with lock:
                    counts[r.status] = counts.get(r.status, 0) + 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            for c in conns:
                c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(harness.scaled(60))
    if errors:
        raise AssertionError("client errors: %s" % errors[:5])
    return counts


class ConsumerTest(harness.SluiceTestCase):
    """limit_by CONSUMER / CREDENTIAL behind the auth filter (key-auth): one budget per
    authenticated consumer, or per key, whatever client address it comes from."""

    def start_with_auth(self, policy):
        up = self.start_upstream("u1")
        cfg = rl_bootstrap([policy], [dict(rl_route("/", policy["name"]), auth="keys")], up,
                           filters=("auth", "rate_limit", "router"))
        cfg["static_resources"]["auth_policies"] = [{
            "name": "keys", "key_auth": {"key_names": ["apikey"]},
            "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-1"},
                                                                       {"key": "alice-2"}]},
                          {"username": "bob", "keyauth_credentials": [{"key": "bob-1"}]}]}]
        s = self.start_sluice(cfg, concurrency=2)
        return s, s.listener_port("public")

    def test_one_budget_per_credential(self):
        s, port = self.start_with_auth({"name": "per-key", "minute": 2,
                                        "limit_by": "CREDENTIAL"})
        self.assertEqual(get(port, "/", {"apikey": "alice-1"}).status, 200)
        self.assertEqual(get(port, "/", {"apikey": "alice-1"}, source="127.0.0.2").status, 200)
        self.assertLocalReply(get(port, "/", {"apikey": "alice-1"}, source="127.0.0.3"), 429)
        # The same consumer's other key has its own budget.
        self.assertEqual(statuses(port, "/", 2, {"apikey": "alice-2"}), [200, 200])

    def test_one_budget_per_consumer(self):
        s, port = self.start_with_auth({"name": "per-consumer", "minute": 2})
        self.assertEqual(get(port, "/", {"apikey": "alice-1"}).status, 200)
        self.assertEqual(get(port, "/", {"apikey": "alice-2"}, source="127.0.0.2").status, 200)
        over = get(port, "/", {"apikey": "alice-1"}, source="127.0.0.3")
        self.assertLocalReply(over, 429)
        self.assertEqual(statuses(port, "/", 2, {"apikey": "bob-1"}), [200, 200])
        # Not authenticated: auth answers first; the budget is never touched.
        self.assertEqual(get(port, "/", {"apikey": "nobody"}).status, 401)
        self.assertEqual(s.stat("rate_limit.per-consumer.allowed"), 4)


class ReloadTest(harness.SluiceTestCase):

    def test_counters_survive_a_config_reload(self):
        up = self.start_upstream("u1")
        cfg = rl_bootstrap([{"name": "keep", "minute": 3, "limit_by": "IP"}],
                           [rl_route("/", "keep")], up)
        s = self.start_sluice(cfg)
        port = s.listener_port("public")
        self.assertEqual(statuses(port, "/", 2), [200, 200])
        # Raise the limit to 4 and reload: the two already counted still count.
        cfg["static_resources"]["rate_limit_policies"][0]["minute"] = 4
        cfg["admin"] = s.config["admin"]
        with open(s.config_path, "w") as f:
            json.dump(cfg, f)
        s.signal(signal.SIGHUP)
        s.wait_stat("server.config_reload", lambda v: v >= 1)
        rs = [get(port, "/") for _ in range(3)]
        self.assertEqual([r.status for r in rs], [200, 200, 429])
        self.assertEqual(rs[0].header("x-ratelimit-limit-minute"), "4")


class ValidationTest(harness.SluiceTestCase):

    def test_bad_policies_are_refused_with_field_paths(self):
        up = harness.DeadPort()
        self.addCleanup(up.close)
        cfg = rl_bootstrap(
            [{"name": "none"},
             {"name": "order", "second": 10, "minute": 5},
             {"name": "hdr", "minute": 1, "limit_by": "HEADER"},
             {"name": "redis", "minute": 1, "policy": "REDIS",
              "redis": {"host": "redis internal", "timeout": "0s"}},
             {"name": "by-route", "minute": 1, "limit_by": "ROUTE"}],
            [{"match": {"prefix": "/"}, "route": {"cluster": "backend"},
              "rate_limit": "by-route"}], up)
        p = run_validate(cfg)
        self.assertEqual(p.returncode, 1, p.stderr)
        for needle in (
                "static_resources.rate_limit_policies[0]: needs at least one of second, minute, "
                "hour, day",
                "static_resources.rate_limit_policies[1].minute: must be >= second (10)",
                "static_resources.rate_limit_policies[2].header_name: is required when limit_by "
                "is HEADER",
                "static_resources.rate_limit_policies[3].redis.host: \"redis internal\" is not "
                "an IP address or a host name",
                "static_resources.rate_limit_policies[3].redis.timeout: must be > 0",
                "static_resources.route_tables[0].virtual_hosts[0].routes[0].name: is required: "
                "rate limit policy \"by-route\" limits by ROUTE"):
            self.assertIn(needle, p.stderr)

    def test_a_limited_route_needs_the_filter_on_its_listener(self):
        up = harness.DeadPort()
        self.addCleanup(up.close)
        cfg = rl_bootstrap([{"name": "p", "minute": 1}], [rl_route("/", "p", name="users")], up,
                           filters=("router",))
        p = run_validate(cfg)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('static_resources.listeners[0].http_filters: route "users" '
                      '(static_resources.route_tables[0].virtual_hosts[0].routes[0]) requires rate '
                      'limit policy "p" but listener "public" has no rate_limit filter', p.stderr)

    def test_the_filter_config_is_typed(self):
        up = harness.DeadPort()
        self.addCleanup(up.close)
        cfg = rl_bootstrap([], [rl_route("/", None)], up)
        cfg["static_resources"]["listeners"][0]["http_filters"][0]["config"] = {"minute": 5}
        p = run_validate(cfg)
        self.assertEqual(p.returncode, 1)
        self.assertIn("static_resources.listeners[0].http_filters[0].config.minute: unknown field",
                      p.stderr)


if __name__ == "__main__":
    harness.main()
