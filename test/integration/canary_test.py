"""Traffic shifting through the real binary: weighted_clusters splits (exact over many
requests), sticky canaries (hash_on HEADER / COOKIE / CONSUMER / IP), the canary_header
override, and split changes by SIGHUP and through the control plane without a restart."""

import threading

import cp_harness
from harness import (Conn, SluiceTestCase, bootstrap, cluster, listener, main, report,
                     route_table, vhost)


def split_route(weights, **split):
    wc = {"clusters": [{"name": n, "weight": w} for n, w in weights]}
    wc.update(split)
    return {"name": "split", "match": {"prefix": "/"}, "route": {"weighted_clusters": wc}}


def split_config(ups, weights, **split):
    return bootstrap([listener("public", "main")],
                     [route_table("main", [vhost("all", ["*"], [split_route(weights, **split)])])],
                     [cluster(name, [ups[name]]) for name, _ in weights])


def count_sides(port, n, threads=4, headers=None):
    """n GETs over `threads` keep-alive connections; {x-upstream: count}."""
    counts = {}
    lock = threading.Lock()
    errors = []

    def run(k):
        mine = {}
        try:
            with Conn(port) as c:
                for _ in range(k):
                    r = c.request("GET", "/s", headers=headers)
                    if r.status != 200:
                        errors.append(r.status)
                    side = r.header("x-upstream")
                    mine[side] = mine.get(side, 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        with lock:
            for k2, v in mine.items():
                counts[k2] = counts.get(k2, 0) + v

    ts = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    return counts


class CanaryTest(SluiceTestCase):
    def upstreams(self, *names):
        return {n: self.start_upstream(n) for n in names}

    def test_90_10_split_over_10000_requests_is_within_one_point(self):
        ups = self.upstreams("v1", "v2")
        s = self.start_sluice(split_config(ups, [("v1", 90), ("v2", 10)]), concurrency=2)
        counts = count_sides(s.listener_port(), 10000)
        share = 100.0 * counts.get("v2", 0) / sum(counts.values())
        report("split 90/10 over %d requests (2 workers, 4 connections): %s, canary %.2f %%",
               sum(counts.values()), counts, share)
        self.assertEqual(10000, sum(counts.values()))
        self.assertLessEqual(abs(share - 10.0), 1.0)

    def sticky_clients(self, port, make_headers, n=100, per_client=10):
        """{client: set of sides} for n clients sending per_client requests each."""
        sides = {}
        for i in range(n):
            headers = make_headers("client-%d" % i)
            with Conn(port) as c:
                sides[i] = {c.request("GET", "/s", headers=headers).header("x-upstream")
                            for _ in range(per_client)}
        return sides

    def test_sticky_canary_keeps_each_of_100_clients_on_one_side(self):
        ups = self.upstreams("stable", "canary")
        cases = [
            ({"hash_on": "HEADER", "hash_key": "x-user"}, lambda c: {"x-user": c}),
            ({"hash_on": "COOKIE", "hash_key": "session"},
             lambda c: {"cookie": "theme=dark; session=%s" % c}),
            ({"hash_on": "CONSUMER"}, lambda c: {"x-consumer-username": c}),
        ]
        for split, make in cases:
            s = self.start_sluice(split_config(ups, [("stable", 80), ("canary", 20)], **split),
                                  concurrency=2)
            sides = self.sticky_clients(s.listener_port(), make)
            on_canary = sum(1 for v in sides.values() if v == {"canary"})
            report("sticky %s: 100 clients x 10 requests, %d on the canary (20 %% configured), "
                   "%d switched sides", split["hash_on"], on_canary,
                   sum(1 for v in sides.values() if len(v) > 1))
            self.assertTrue(all(len(v) == 1 for v in sides.values()), sides)
            self.assertGreater(on_canary, 5)
            self.assertLess(on_canary, 40)
            s.stop()

    def test_ip_hash_keeps_a_client_address_on_one_side(self):
        ups = self.upstreams("stable", "canary")
        s = self.start_sluice(split_config(ups, [("stable", 50), ("canary", 50)], hash_on="IP"))
        # Every test client is 127.0.0.1: one side for all of them.
        self.assertEqual(1, len(count_sides(s.listener_port(), 200)))

    def test_canary_header_override(self):
        ups = self.upstreams("stable", "canary")
        s = self.start_sluice(split_config(ups, [("stable", 99), ("canary", 1)],
                                           hash_on="HEADER", hash_key="x-user",
                                           canary_header="x-canary"))
        port = s.listener_port()
        self.assertEqual({"canary": 100},
                         count_sides(port, 100, threads=1, headers={"x-canary": "always"}))
        self.assertEqual({"stable": 100},
                         count_sides(port, 100, threads=1, headers={"x-canary": "never"}))

    def test_split_change_by_sighup_keeps_canary_clients_on_the_canary(self):
        ups = self.upstreams("stable", "canary")
        cfg = split_config(ups, [("stable", 90), ("canary", 10)], hash_on="HEADER",
                           hash_key="x-user")
        s = self.start_sluice(cfg, concurrency=2)
        port = s.listener_port()
        before = self.sticky_clients(port, lambda c: {"x-user": c}, n=200, per_client=1)
        s.reload(split_config(ups, [("stable", 50), ("canary", 50)], hash_on="HEADER",
                                    hash_key="x-user"))
        after = self.sticky_clients(port, lambda c: {"x-user": c}, n=200, per_client=1)
        n_before = sum(1 for v in before.values() if v == {"canary"})
        n_after = sum(1 for v in after.values() if v == {"canary"})
        report("SIGHUP 90/10 -> 50/50 (same process): canary clients %d -> %d of 200",
               n_before, n_after)
        self.assertGreater(n_after, n_before + 40)
        for c, side in before.items():
            if side == {"canary"}:
                self.assertEqual({"canary"}, after[c], "a canary client stays on the canary")
        # Random split follows too.
        s.reload(split_config(ups, [("stable", 70), ("canary", 30)]))
        counts = count_sides(port, 2000)
        self.assertLessEqual(abs(100.0 * counts["canary"] / 2000 - 30.0), 1.0)


class CanaryControlPlaneTest(cp_harness.CpTestCase):
    def test_split_change_through_the_control_plane(self):
        ups = {n: self.start_upstream(n) for n in ("v1", "v2")}
        cp = self.start_cp()

        def declared(w1, w2):
            d = cp_harness.declared({"v1": [ups["v1"]], "v2": [ups["v2"]]})
            d["route_tables"][0]["virtual_hosts"][0]["routes"] = [
                split_route([("v1", w1), ("v2", w2)])]
            return d

        cp.apply(declared(90, 10))
        dp = self.start_dp(cp, "edge-1", concurrency=2)
        port = dp.listener_port()
        first = count_sides(port, 4000)
        cp.apply(declared(50, 50))
        cp.wait_in_sync("edge-1")
        second = count_sides(port, 4000)
        report("control plane 90/10 -> 50/50 without a restart: %s -> %s", first, second)
        self.assertLessEqual(abs(100.0 * first["v2"] / 4000 - 10.0), 1.0)
        self.assertLessEqual(abs(100.0 * second["v2"] / 4000 - 50.0), 1.0)
        self.assertTrue(dp.running())


if __name__ == "__main__":
    main()
