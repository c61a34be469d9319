"""DNS service discovery through the real binary, with dns_server.py as the only DNS server.

STRICT_DNS and LOGICAL_DNS clusters reach upstreams on 127.0.0.1 and 127.0.0.2 (same port) by a
name whose answers the tests change while traffic flows: addresses that appear get traffic,
addresses that go stop getting it (no failed request meanwhile), addresses that stay keep their
upstream connections and health state, health checks follow the addresses, TTLs set the refresh
pace, SERVFAIL and silence keep the last addresses, and a name never resolved answers 503. The
config sources: file (+ SIGHUP) and sluice-cp. Host names also for Redis (rate limiting), a
remote JWKS and control_plane.address.
"""

import threading
import time

import cp_harness
import redis_harness
from dns_server import DnsServer
from harness import (Conn, bootstrap, listener, main, report, request, route, route_table,
                     run_validate, vhost, wait_until)

NAME = "backend.sluice.test"


def dns_cluster(name, host, port, type_="STRICT_DNS", **extra):
    c = {"name": name, "type": type_, "endpoints": [{"address": host, "port": port}],
         "connect_timeout": "1s"}
    c.update(extra)
    return c


class DnsTest(cp_harness.CpTestCase):
    def setUp(self):
        self.dns = DnsServer()
        self.addCleanup(self.dns.stop)

    # -- helpers --------------------------------------------------------------------------------

    def resolvers(self):
        return [{"address": "127.0.0.1", "port": self.dns.port}]

    def pair(self):
        """Upstreams `a` on 127.0.0.1:P and `b` on 127.0.0.2:P (one port: one endpoint config)."""
        a = self.start_upstream("a", host="127.0.0.1")
        b = self.start_upstream("b", host="127.0.0.2", port=a.port)
        return a, b

    def config(self, clusters, routes=None, **extra):
        routes = routes or [route(prefix="/", cluster=clusters[0]["name"], name="default")]
        return bootstrap([listener("public", "main")],
                         [route_table("main", [vhost("all", ["*"], routes)])],
                         clusters, dns_resolvers=self.resolvers(), **extra)

    def fast(self, **extra):
        """Settings that make a cluster ask again every 100 ms whatever the TTL."""
        d = {"dns_refresh_rate": "0.1s", "respect_dns_ttl": False}
        d.update(extra)
        return d

    def sides(self, port, n, path="/"):
        """Which upstream answered each of n requests (one keep-alive connection)."""
        out = {}
        with Conn(port) as c:
            for _ in range(n):
                r = c.request("GET", path)
                self.assertEqual(r.status, 200, r)
                side = r.header("x-upstream")
                out[side] = out.get(side, 0) + 1
        return out

    def wait_served_by(self, port, side, n=4, timeout=10.0):
        """Waits until n requests in a row are all served by `side`."""
        wait_until(lambda: self.sides(port, n) == {side: n}, timeout, interval=0.05,
                   message="traffic to move to %s" % side)

    def cluster_json(self, s, name="backend"):
        return next(c for c in s.admin_json("/clusters")["clusters"] if c["name"] == name)

    def endpoints(self, s, name="backend"):
        return sorted(e["address"] for e in self.cluster_json(s, name)["endpoints"])

    # -- STRICT_DNS -------------------------------------------------------------------------------

    def test_strict_dns_sends_traffic_to_every_address(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1", "127.0.0.2"], ttl=30)
        s = self.start_sluice(self.config([dns_cluster("backend", NAME, a.port)]))
        # /ready waited for the first answer: both addresses serve from the first request.
        self.assertEqual(self.sides(s.listener_port(), 20), {"a": 10, "b": 10})
        c = self.cluster_json(s)
        self.assertEqual(c["type"], "STRICT_DNS")
        self.assertEqual(c["dns"]["hosts"], [{"host": NAME, "port": a.port, "resolved": True,
                                              "addresses": ["127.0.0.1", "127.0.0.2"]}])
        self.assertEqual(c["dns"]["refresh_rate_ms"], 5000)
        self.assertTrue(c["dns"]["respect_dns_ttl"])
        self.assertEqual(c["dns"]["lookup_family"], "V4_ONLY")
        self.assertEqual(self.endpoints(s), ["127.0.0.1:%d" % a.port, "127.0.0.2:%d" % a.port])
        self.assertEqual(s.stat("cluster.backend.dns.update_success"), 1)
        self.assertEqual(s.stat("cluster.backend.dns.update_attempt"), 1)
        self.assertEqual(s.stat("cluster.backend.dns.update_changed"), 1)
        prom = s.admin_get("/stats/prometheus")[2]
        prom = prom.decode() if isinstance(prom, bytes) else prom
        self.assertIn('sluice_cluster_dns_update_success_total{cluster="backend"} 1', prom)
        # Only A records were asked for (V4_ONLY), once.
        self.assertEqual(self.dns.queries(NAME, "A"), 1)
        self.assertEqual(self.dns.queries(NAME, "AAAA"), 0)

    def test_address_moves_without_a_failed_request(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"])
        s = self.start_sluice(self.config([dns_cluster("backend", NAME, a.port, **self.fast())]),
                              concurrency=2)
        port = s.listener_port()
        self.assertEqual(self.sides(port, 4), {"a": 4})
        statuses = {}
        stop = threading.Event()
        errors = []

        def load(keepalive):
            try:
                while not stop.is_set():
                    if keepalive:
                        with Conn(port) as c:
                            for _ in range(50):
                                r = c.request("GET", "/")
                                statuses[r.status] = statuses.get(r.status, 0) + 1
                    else:
                        r = request(port, "GET", "/")
                        statuses[r.status] = statuses.get(r.status, 0) + 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=load, args=(k,)) for k in (True, True, False)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: sum(statuses.values()) > 100, 10, message="load running")
            moved_at = time.monotonic()
            self.dns.set(NAME, a=["127.0.0.2"])
            wait_until(lambda: b.request_count() > 50, 10, message="traffic on b")
            report("address moved: traffic on the new address %.0f ms after the answer changed",
                   (time.monotonic() - moved_at) * 1000)
            time.sleep(0.3)  # more load on the new address only
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        self.assertEqual(errors, [])
        self.assertEqual(set(statuses), {200}, statuses)
        report("%d requests during the move, all 200", sum(statuses.values()))
        a_before = a.request_count()
        self.assertEqual(self.sides(port, 10), {"b": 10})
        self.assertEqual(a.request_count(), a_before)
        self.assertEqual(self.endpoints(s), ["127.0.0.2:%d" % a.port])

    def test_addresses_that_stay_keep_their_connections_and_health(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"])
        cfg = self.config([dns_cluster(
            "backend", NAME, a.port,
            health_check={"http_path": "/health", "interval": "0.1s", "healthy_threshold": 1},
            **self.fast())])
        s = self.start_sluice(cfg)
        port = s.listener_port()
        self.assertEqual(self.sides(port, 3), {"a": 3})
        wait_until(lambda: self.cluster_json(s)["endpoints"][0]["active_health_check"]["checks"]
                   >= 3, 5, message="health checks of a")
        a_conns = a.connections_accepted
        checks_before = self.cluster_json(s)["endpoints"][0]["active_health_check"]["checks"]

        self.dns.set(NAME, a=["127.0.0.1", "127.0.0.2"])
        wait_until(lambda: len(self.endpoints(s)) == 2, 5, message="b added")
        # The health checker of b starts; a's keeps its count (its state is the same object).
        wait_until(lambda: any(r.path == "/health" for r in b.wait_for_requests(1)), 5,
                   message="health checks of b")
        ep_a = next(e for e in self.cluster_json(s)["endpoints"]
                    if e["address"].startswith("127.0.0.1"))
        self.assertGreaterEqual(ep_a["active_health_check"]["checks"], checks_before)
        self.assertEqual(ep_a["health"], "healthy")
        # The keep-alive connection the worker had to a is taken over by the new cluster version:
        # requests to a reuse it (health checks use connections of their own, counted apart).
        hc_conns = a.connections_accepted - a_conns
        self.assertEqual(self.sides(port, 10), {"a": 5, "b": 5})
        new_conn_ids = {r.conn_id for r in a.requests if r.path == "/"}
        report("a's connections: %d before b appeared, health checks opened %d since; proxied "
               "requests to a used %d connection(s) in all", a_conns, hc_conns, len(new_conn_ids))
        self.assertEqual(len(new_conn_ids), 1, "a's upstream connection was not kept")

        # a goes: its health checks stop, b's go on.
        self.dns.set(NAME, a=["127.0.0.2"])
        wait_until(lambda: self.endpoints(s) == ["127.0.0.2:%d" % a.port], 5, message="a gone")
        time.sleep(0.3)
        a_health = sum(1 for r in a.requests if r.path == "/health")
        time.sleep(0.5)  # a lower bound: no check of a may arrive meanwhile
        self.assertEqual(sum(1 for r in a.requests if r.path == "/health"), a_health)

    def test_ttl_sets_the_refresh_pace(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"], ttl=1)
        s = self.start_sluice(self.config([dns_cluster("backend", NAME, a.port,
                                                       dns_refresh_rate="60s")]))
        port = s.listener_port()
        self.assertEqual(self.sides(port, 2), {"a": 2})
        start = time.monotonic()
        self.dns.set(NAME, a=["127.0.0.2"], ttl=1)
        self.wait_served_by(port, "b", timeout=5)
        took = time.monotonic() - start
        report("TTL 1s, dns_refresh_rate 60s: new address served after %.2f s", took)
        self.assertLess(took, 3.0)
        wait_until(lambda: self.dns.queries(NAME) >= 4, 6, message="a query every second")

        # Without respect_dns_ttl the TTL does not matter.
        self.dns.set("other.sluice.test", a=["127.0.0.1"], ttl=1)
        s2 = self.start_sluice(self.config([dns_cluster(
            "backend", "other.sluice.test", a.port, dns_refresh_rate="60s",
            respect_dns_ttl=False)]))
        time.sleep(1.5)  # a lower bound: a TTL-paced refresh would have happened
        self.assertEqual(self.dns.queries("other.sluice.test"), 1)
        self.assertEqual(self.sides(s2.listener_port(), 2), {"a": 2})

    def test_servfail_and_silence_keep_the_last_addresses(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"])
        s = self.start_sluice(self.config([dns_cluster("backend", NAME, a.port, **self.fast())]))
        port = s.listener_port()
        self.assertEqual(self.sides(port, 3), {"a": 3})

        self.dns.servfail(NAME)
        s.wait_stat("cluster.backend.dns.update_failure", lambda v: v >= 3)
        self.assertEqual(self.sides(port, 5), {"a": 5})
        self.dns.set(NAME, a=[])  # NODATA: an empty answer
        s.wait_stat("cluster.backend.dns.update_empty", lambda v: v >= 2)
        self.assertEqual(self.sides(port, 5), {"a": 5})
        self.dns.nxdomain(NAME)
        failures = s.stat("cluster.backend.dns.update_failure")
        s.wait_stat("cluster.backend.dns.update_failure", lambda v: v > failures + 1)
        self.assertEqual(self.sides(port, 5), {"a": 5})
        self.dns.silent(NAME)
        attempts = s.stat("cluster.backend.dns.update_attempt")
        s.wait_stat("cluster.backend.dns.update_attempt", lambda v: v > attempts)
        time.sleep(1.0)  # the lookup is waiting for an answer that never comes
        self.assertEqual(self.sides(port, 5), {"a": 5})
        self.assertEqual(self.endpoints(s), ["127.0.0.1:%d" % a.port])
        self.assertEqual(self.cluster_json(s)["dns"]["hosts"][0]["addresses"], ["127.0.0.1"])
        self.assertIn("DNS resolution of %s failed" % NAME, s.stderr())

    def test_name_never_resolved_answers_503(self):
        a = self.start_upstream("a")
        s = self.start_sluice(self.config([dns_cluster("backend", "nowhere.sluice.test",
                                                       a.port)]))
        self.assertLocalReply(request(s.listener_port(), "GET", "/"), 503, "no healthy upstream")
        c = self.cluster_json(s)
        self.assertEqual(c["endpoints"], [])
        self.assertEqual(c["dns"]["hosts"][0]["resolved"], False)
        self.assertEqual(s.stat("cluster.backend.dns.update_failure"), 1)
        # It resolves later: served without a restart.
        self.dns.set("nowhere.sluice.test", a=["127.0.0.1"], ttl=1)
        wait_until(lambda: request(s.listener_port(), "GET", "/").status == 200, 10,
                   message="served once the name resolves")

    # -- LOGICAL_DNS ------------------------------------------------------------------------------

    def test_logical_dns_uses_the_first_address(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.2", "127.0.0.1"])
        s = self.start_sluice(self.config([dns_cluster("backend", NAME, a.port, "LOGICAL_DNS",
                                                       **self.fast())]))
        port = s.listener_port()
        self.assertEqual(self.sides(port, 10), {"b": 10})
        self.assertEqual(self.endpoints(s), ["127.0.0.2:%d" % a.port])
        self.dns.set(NAME, a=["127.0.0.1", "127.0.0.2"])
        self.wait_served_by(port, "a")
        self.assertEqual(self.endpoints(s), ["127.0.0.1:%d" % a.port])

    # -- config ---------------------------------------------------------------------------------

    def test_host_name_in_a_static_cluster_is_refused_with_the_fix(self):
        cfg = self.config([{"name": "backend", "endpoints": [{"address": NAME, "port": 80}]}])
        p = run_validate(cfg)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('static_resources.clusters[0].endpoints[0].address: "%s" is a host name'
                      % NAME, p.stderr)
        self.assertIn("type: STRICT_DNS", p.stderr)

        bad = self.config([
            {"name": "eds", "type": "STRICT_DNS", "eds": True},
            {"name": "logical", "type": "LOGICAL_DNS",
             "endpoints": [{"address": "a.sluice.test", "port": 80},
                           {"address": "b.sluice.test", "port": 80}]},
            dns_cluster("badname", "bad_name.sluice.test", 80),
            dns_cluster("rate", NAME, 80, dns_refresh_rate="0s"),
            dns_cluster("family", NAME, 80, dns_lookup_family="V5_ONLY")],
            routes=[route(prefix="/", cluster="eds", name="default")])
        bad["dns_resolvers"] = [{"address": "dns.sluice.test"}, {"address": "127.0.0.1",
                                                                 "port": 70000}]
        p = run_validate(bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        if "V5_ONLY" in p.stderr:  # an unknown enum name fails at parse time, alone
            self.assertIn("dns_lookup_family", p.stderr)
            del bad["static_resources"]["clusters"][4]
            p = run_validate(bad)
            self.assertEqual(p.returncode, 1, p.stderr)
        for needle in (
                "static_resources.clusters[0].eds: must not be set in a STRICT_DNS cluster",
                "static_resources.clusters[1].endpoints: a LOGICAL_DNS cluster takes exactly one "
                "endpoint",
                'static_resources.clusters[2].endpoints[0].address: "bad_name.sluice.test" is '
                "not an IP address or a valid host name",
                "static_resources.clusters[3].dns_refresh_rate: must be > 0",
                'dns_resolvers[0].address: "dns.sluice.test" is not an IP address',
                "dns_resolvers[1].port: must be <= 65535"):
            self.assertIn(needle, p.stderr)

        # YAML, with every DNS field, is accepted.
        ok = """
dns_resolvers: [{address: 127.0.0.1, port: %d}, {address: "::1"}]
static_resources:
  listeners: [{name: public, address: {host: 127.0.0.1, port: 0}, route_table: main}]
  route_tables:
  - name: main
    virtual_hosts: [{domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]
  clusters:
  - name: c
    type: STRICT_DNS
    dns_refresh_rate: 10s
    respect_dns_ttl: false
    dns_lookup_family: AUTO
    endpoints: [{address: %s, port: 80}]
""" % (self.dns.port, NAME)
        p = run_validate(ok, suffix=".yaml")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_sighup_publishes_at_once_and_resolves_after(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"])
        static = {"name": "static", "endpoints": [{"address": "127.0.0.1", "port": a.port}]}
        routes = [route(prefix="/static", cluster="static", name="static"),
                  route(prefix="/", cluster="backend", name="default")]
        s = self.start_sluice(self.config([static, dns_cluster("backend", NAME, a.port)],
                                          routes=routes))
        port = s.listener_port()
        self.assertEqual(self.sides(port, 2), {"a": 2})
        # A new DNS cluster, whose name answers only after a while: the reload is not held up,
        # the route to it answers 503 until the name resolves, the others serve throughout.
        self.dns.set("late.sluice.test", a=["127.0.0.2"])
        self.dns.silent("late.sluice.test")
        routes2 = [route(prefix="/late", cluster="late", name="late")] + routes
        started = time.monotonic()
        s.reload(self.config([static, dns_cluster("backend", NAME, a.port),
                                    dns_cluster("late", "late.sluice.test", a.port,
                                                **self.fast())], routes=routes2))
        report("SIGHUP with a name that does not answer yet: reloaded in %.0f ms",
               (time.monotonic() - started) * 1000)
        self.assertLocalReply(request(port, "GET", "/late"), 503, "no healthy upstream")
        self.assertEqual(self.sides(port, 2, "/static"), {"a": 2})
        # The unchanged DNS cluster kept its addresses (no wait, no 503).
        self.assertEqual(self.sides(port, 2), {"a": 2})
        self.dns.answer("late.sluice.test")
        wait_until(lambda: request(port, "GET", "/late").header("x-upstream") == "b", 15,
                   message="the new cluster served once its name answers")

    # -- sluice-cp ------------------------------------------------------------------------------

    def test_dns_cluster_pushed_by_the_control_plane(self):
        a, b = self.pair()
        self.dns.set(NAME, a=["127.0.0.1"])
        cp = self.start_cp()
        declared = cp_harness.declared({}, routes=[("/", "backend")], clusters=[
            dns_cluster("backend", NAME, a.port, **self.fast())])
        cp.apply(declared, group="edge")
        s = self.start_dp(cp, "dns-1", group="edge", dns_resolvers=self.resolvers())
        cp.wait_in_sync("dns-1")
        port = s.listener_port("public")
        self.assertEqual(self.sides(port, 4), {"a": 4})
        # The address moves: the data plane follows without a push.
        self.dns.set(NAME, a=["127.0.0.2"])
        self.wait_served_by(port, "b")
        # A push that changes something else is served at once with the known address.
        declared["route_tables"][0]["virtual_hosts"][0]["routes"].insert(0, {
            "name": "health", "match": {"path": "/healthz"},
            "direct_response": {"status": 200, "body": "ok"}})
        cp.apply(declared, group="edge")
        wait_until(lambda: request(port, "GET", "/healthz").status == 200, 10,
                   message="push applied")
        self.assertEqual(self.sides(port, 4), {"b": 4})
        # sluice-cp validates the same way: a host name in a STATIC cluster is refused.
        bad = cp_harness.declared({}, routes=[("/", "backend")], clusters=[
            {"name": "backend", "endpoints": [{"address": NAME, "port": a.port}]}])
        p = cp.apply(bad, group="edge", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("type: STRICT_DNS", p.stdout + p.stderr)

    def test_control_plane_address_by_host_name(self):
        a = self.start_upstream("a")
        cp = self.start_cp()
        cp.apply(cp_harness.declared({"backend": [a]}, routes=[("/", "backend")]))
        cp_port = int(cp.address.rsplit(":", 1)[1])
        self.dns.set("cp.sluice.test", a=["127.0.0.1"])
        # gRPC resolves the name itself, asking the first of dns_resolvers.
        s = self.start_sluice(cp_harness.dp_bootstrap(
            "cp.sluice.test:%d" % cp_port, "named-cp", dns_resolvers=self.resolvers()))
        cp.wait_in_sync("named-cp")
        self.assertEqual(request(s.listener_port("public"), "GET", "/").status, 200)
        self.assertGreaterEqual(self.dns.queries("cp.sluice.test", "A"), 1)

    # -- Redis and remote JWKS ------------------------------------------------------------------

    def test_redis_by_host_name(self):
        if not redis_harness.available():
            self.skipTest("redis-server not installed")
        redis = redis_harness.RedisServer().start()
        self.addCleanup(redis.stop)
        a = self.start_upstream("a")
        self.dns.set("redis.sluice.test", a=["127.0.0.1"])
        cfg = bootstrap(
            [listener("public", "main",
                      http_filters=[{"name": "rate_limit"}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], [
                {"name": "limited", "match": {"prefix": "/"}, "route": {"cluster": "backend"},
                 "rate_limit": "per-ip"}])])],
            [{"name": "backend", "endpoints": [{"address": "127.0.0.1", "port": a.port}]}],
            dns_resolvers=self.resolvers())
        cfg["static_resources"]["rate_limit_policies"] = [{
            "name": "per-ip", "minute": 3, "limit_by": "IP", "policy": "REDIS",
            "fault_tolerant": False,
            "redis": {"host": "redis.sluice.test", "port": redis.port, "timeout": "2s"}}]
        s = self.start_sluice(cfg, concurrency=2)
        port = s.listener_port()
        got = [request(port, "GET", "/").status for _ in range(5)]
        self.assertEqual(got, [200, 200, 200, 429, 429])
        self.assertTrue(any(k.startswith("sluice:rl:") for k in redis.command("KEYS", "*")))
        self.assertGreaterEqual(self.dns.queries("redis.sluice.test"), 1)

        # A name that does not resolve is Redis being down: fail closed here (503).
        cfg["static_resources"]["rate_limit_policies"][0]["redis"]["host"] = "gone.sluice.test"
        s.reload(cfg)
        self.assertLocalReply(request(port, "GET", "/"), 503)

    def test_remote_jwks_by_host_name(self):
        import jwt  # python3-jwt, as in auth_test
        from auth_test import ISSUER, JwksServer, public_jwk
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        srv = JwksServer([public_jwk(key, "k1")])
        self.addCleanup(srv.stop)
        self.dns.set("idp.sluice.test", a=["127.0.0.1"])
        a = self.start_upstream("a")
        uri = "http://idp.sluice.test:%d/.well-known/jwks.json" % srv.port
        cfg = bootstrap(
            [listener("public", "main", http_filters=[{"name": "auth"}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], [
                {"name": "api", "match": {"prefix": "/"}, "route": {"cluster": "backend"},
                 "auth": "remote"}])])],
            [{"name": "backend", "endpoints": [{"address": "127.0.0.1", "port": a.port}]}],
            dns_resolvers=self.resolvers())
        cfg["static_resources"]["auth_policies"] = [{"name": "remote", "jwt": {"providers": [{
            "issuer": ISSUER, "remote_jwks": {"uri": uri, "timeout": "2s"}}]}}]
        s = self.start_sluice(cfg)
        s.wait_stat("auth.remote.jwks_fetch", lambda v: v >= 1)
        token = jwt.encode({"iss": ISSUER, "sub": "u", "exp": int(time.time()) + 600}, key,
                           algorithm="RS256", headers={"kid": "k1"})
        wait_until(lambda: request(s.listener_port(), "GET", "/", headers={
            "Authorization": "Bearer " + token}).status == 200, 10,
            message="token accepted with keys fetched from a host name")
        self.assertEqual(srv.requests, 1)
        self.assertEqual(s.stat("auth.remote.jwks_fetch_failed"), 0)
        self.assertGreaterEqual(self.dns.queries("idp.sluice.test"), 1)


if __name__ == "__main__":
    main()
