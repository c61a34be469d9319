"""Load balancing: ROUND_ROBIN (smooth weighted), LEAST_REQUEST, RANDOM, RING_HASH and
route-level weighted_clusters. All with --concurrency 1 (one worker, one LB state).

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/lb_test.py
"""

import collections
import threading

import harness
from harness import Conn, bootstrap, cluster, listener, proxy_config, route_table, vhost


def picks(port, n, headers=None, new_connection_each=False, header_fn=None):
    """Sends n GETs; returns the list of x-upstream values in order."""
    out = []
    c = None if new_connection_each else Conn(port)
    try:
        for i in range(n):
            h = dict(headers or {})
            if header_fn:
                h.update(header_fn(i))
            r = harness.request(port, headers=h) if c is None else c.request(headers=h)
            if r.status != 200:
                raise AssertionError("request %d failed: %r" % (i, r))
            out.append(r.header("x-upstream"))
    finally:
        if c:
            c.close()
    return out


def max_run(seq, value):
    best = cur = 0
    for v in seq:
        cur = cur + 1 if v == value else 0
        best = max(best, cur)
    return best


class RoundRobinTest(harness.SluiceTestCase):

    def test_weighted_round_robin_is_exact(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([(a, 100), (b, 50)], lb_policy="ROUND_ROBIN"))
        seq = picks(s.listener_port("public"), 300)
        counts = collections.Counter(seq)
        self.assertEqual(counts, {"a": 200, "b": 100},
                         "weights 100/50 over 300 requests on one worker must be exactly "
                         "200/100, got %r" % dict(counts))
        # Smooth WRR interleaves: never more than 2 a's in a row, never 2 b's in a row.
        self.assertLessEqual(max_run(seq, "a"), 2, "not smooth: %r" % seq[:30])
        self.assertLessEqual(max_run(seq, "b"), 1, "not smooth: %r" % seq[:30])
        self.assertEqual((a.request_count(), b.request_count()), (200, 100))

    def test_round_robin_is_the_default_policy(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([(a, 3), (b, 1)]))
        counts = collections.Counter(picks(s.listener_port("public"), 40))
        self.assertEqual(counts, {"a": 30, "b": 10}, dict(counts))

    def test_equal_weights_rotate(self):
        ups = [self.start_upstream(n) for n in ("a", "b", "c")]
        s = self.start_sluice(proxy_config(ups, lb_policy="ROUND_ROBIN"))
        seq = picks(s.listener_port("public"), 30)
        self.assertEqual(collections.Counter(seq), {"a": 10, "b": 10, "c": 10})
        for i in range(0, 30, 3):
            self.assertEqual(sorted(seq[i:i + 3]), ["a", "b", "c"],
                             "equal weights must rotate: %r" % seq)

    def test_round_robin_across_client_connections(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([(a, 2), (b, 1)]))
        seq = picks(s.listener_port("public"), 30, new_connection_each=True)
        self.assertEqual(collections.Counter(seq), {"a": 20, "b": 10},
                         "LB state is per worker, not per client connection")

    def test_clusters_admin_counts_match(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([(a, 100), (b, 50)]))
        picks(s.listener_port("public"), 30)

        def totals():
            cl = {c["name"]: c for c in s.admin_json("/clusters")["clusters"]}["backend"]
            return {e["address"]: e["requests_total"] for e in cl["endpoints"]}
        harness.wait_until(lambda: sum(totals().values()) == 30, message="/clusters totals")
        self.assertEqual(totals(), {a.address: 20, b.address: 10})


class OtherPoliciesTest(harness.SluiceTestCase):

    def test_least_request_avoids_busy_endpoint(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([a, b], lb_policy="LEAST_REQUEST"))
        port = s.listener_port("public")
        # Park one request (upstream sleeps) so one endpoint has 1 active request.
        held = self.conn(port, timeout=30)
        held.send_request("GET", "/held", headers={"x-sleep-ms": "20000"})
        harness.wait_until(lambda: a.request_count() + b.request_count() == 1,
                           message="held request to reach an upstream")
        busy = "a" if a.request_count() == 1 else "b"
        idle = "b" if busy == "a" else "a"
        counts = collections.Counter(picks(port, 100))
        # P2C picks the less loaded of two candidates; even if both candidates may be the same
        # host the idle one gets ~75%; 55% is > 4 standard deviations away.
        self.assertGreater(counts[idle], 55, "LEAST_REQUEST should prefer the idle endpoint "
                           "%s while %s is busy: %r" % (idle, busy, dict(counts)))
        held.close()

    def test_least_request_uses_all_endpoints(self):
        ups = [self.start_upstream(n) for n in ("a", "b")]
        s = self.start_sluice(proxy_config(ups, lb_policy="LEAST_REQUEST"))
        port = s.listener_port("public")
        # Concurrent slow requests: the second must go to the other (idle) endpoint whenever
        # the two candidates differ; over several rounds both endpoints see traffic.
        results = []

        def one(i):
            r = harness.request(port, headers={"x-sleep-ms": "200"}, timeout=30)
            results.append(r.header("x-upstream"))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(harness.scaled(30))
        self.assertEqual(len(results), 8)
        self.assertEqual(set(results), {"a", "b"}, "both endpoints should get requests: %r"
                         % results)

    def test_random_respects_weights(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        s = self.start_sluice(proxy_config([(a, 3), (b, 1)], lb_policy="RANDOM"))
        counts = collections.Counter(picks(s.listener_port("public"), 400))
        # Expected 300/100, sd ~8.7: [240, 360] is ~7 sd.
        self.assertTrue(240 <= counts["a"] <= 360, "RANDOM 3:1 over 400: %r" % dict(counts))
        self.assertEqual(counts["a"] + counts["b"], 400)

    def test_ring_hash_header_is_consistent(self):
        ups = [self.start_upstream(n) for n in ("a", "b", "c")]
        s = self.start_sluice(proxy_config(
            ups, lb_policy="RING_HASH",
            cluster_extra={"ring_hash": {"hash_on": "HEADER", "header_name": "x-user"}}))
        port = s.listener_port("public")
        c = self.conn(port)
        mapping = {}
        for round_ in range(3):
            for i in range(40):
                user = "user-%d" % i
                r = c.request(headers={"X-User": user})
                self.assertStatus(r, 200)
                got = r.header("x-upstream")
                if round_ == 0:
                    mapping[user] = got
                else:
                    self.assertEqual(got, mapping[user], "user %s moved from %s to %s"
                                     % (user, mapping[user], got))
        spread = collections.Counter(mapping.values())
        self.assertGreaterEqual(len(spread), 2, "40 keys all hashed to one endpoint: %r"
                                % dict(spread))

    def test_ring_hash_header_absent_falls_back_to_source_ip(self):
        ups = [self.start_upstream(n) for n in ("a", "b", "c")]
        s = self.start_sluice(proxy_config(
            ups, lb_policy="RING_HASH",
            cluster_extra={"ring_hash": {"hash_on": "HEADER", "header_name": "x-user"}}))
        seq = picks(s.listener_port("public"), 20, new_connection_each=True)
        self.assertEqual(len(set(seq)), 1, "no header: hash the client IP, one endpoint: %r"
                         % seq)

    def test_ring_hash_source_ip(self):
        ups = [self.start_upstream(n) for n in ("a", "b", "c")]
        s = self.start_sluice(proxy_config(ups, lb_policy="RING_HASH",
                                           cluster_extra={"ring_hash": {"hash_on": "SOURCE_IP"}}))
        seq = picks(s.listener_port("public"), 20, new_connection_each=True,
                    header_fn=lambda i: {"x-user": "u%d" % i})
        self.assertEqual(len(set(seq)), 1, "same client IP must map to one endpoint: %r" % seq)

    def test_weighted_clusters(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        cfg = bootstrap(
            [listener("public", "main")],
            [route_table("main", [vhost("all", ["*"], [{
                "name": "split", "match": {"prefix": "/"},
                "route": {"weighted_clusters": {"clusters": [
                    {"name": "ca", "weight": 3}, {"name": "cb", "weight": 1}]}}}])])],
            [cluster("ca", [a]), cluster("cb", [b])])
        s = self.start_sluice(cfg)
        counts = collections.Counter(picks(s.listener_port("public"), 400))
        self.assertEqual(counts["a"] + counts["b"], 400)
        self.assertTrue(240 <= counts["a"] <= 360,
                        "weighted_clusters 3:1 over 400 requests: %r" % dict(counts))
        s.wait_stat("cluster.ca.upstream_rq_total", lambda v: v == counts["a"])
        s.wait_stat("cluster.cb.upstream_rq_total", lambda v: v == counts["b"])


if __name__ == "__main__":
    harness.main()
