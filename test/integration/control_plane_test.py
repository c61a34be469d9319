#!/usr/bin/python3
"""Data planes configured by sluice-cp over ADS (state of the world; control_plane_delta_test.py
runs the same tests over delta): per-group configs applied with sluicectl and how fast each
change is served, the default group, NACKs, sluice-cp killed and restarted, data planes
restarted or started before sluice-cp.

Every change is checked the way a client sees it: requests through the proxy, answered by the
upstream the new config names (x-upstream) or by the proxy's own 404 for a removed route.
"""

import json
import socket
import time
import unittest

import harness
from harness import scaled, wait_until
from cp_harness import (CpTestCase, assert_served, declared, not_routed, routed_to,
                        wait_served)

# From `sluicectl apply` returning to the change being served by a data plane (scaled).
SERVE_LIMIT = 1.0

# Every measured apply -> served time, printed at the end of the run (for the report).
TIMINGS = []


def config(clusters, routes, **extra):
    """clusters: {cluster name: Upstream}; routes: [(prefix, cluster name)]."""
    return declared({name: [u] for name, u in clusters.items()}, routes=routes, **extra)


def admin_ready(dp):
    """(status, body) of /ready of a data plane started with wait_ready=False."""
    addr = dp._read_address()
    if addr is None:
        raise AssertionError("no admin address yet")
    status, _, body = harness.admin_request(addr[0], addr[1], "GET", "/ready", timeout=2)
    return status, body


class ControlPlaneTest(CpTestCase):
    API = "SOTW"

    @classmethod
    def setUpClass(cls):
        cls.ups = {n: cls.start_class_upstream(n) for n in ("A", "B", "C", "D")}

    def apply_and_time(self, cp, group, cfg, dps_checks, label):
        """Applies cfg to group; for each (dp, path, expect) waits until that data plane serves
        it (within SERVE_LIMIT of the apply returning) and then checks 8 more requests (fresh
        connections, so both workers) give the same. Returns the apply's version."""
        t0 = time.monotonic()
        r = cp.apply(cfg, group=group)
        applied = time.monotonic()
        self.assertIn("applied group \"%s\"" % group, r.stdout)
        for dp, path, expect in dps_checks:
            port = dp.listener_port("public")
            took = wait_served(port, path, expect, since=applied, limit=SERVE_LIMIT)
            TIMINGS.append((self.API, label, took, time.monotonic() - t0))
            for _ in range(8):
                assert_served(port, path, expect, msg="(after %s was first served)" % label)
        return r.stdout.strip().rsplit(" ", 1)[1]

    # -- 1. two groups, every kind of change ----------------------------------------------------

    def test_groups_serve_own_config_and_every_change_within_1s(self):
        A, B, C, D = (self.ups[n] for n in "ABCD")
        cp = self.start_cp()
        # Each group's config by step; `other` mirrors `edge` with other upstreams.
        edge = [
            ("initial", {"a": A, "b": B}, [("/x", "a")], [("/x", routed_to("A"))]),
            ("route cluster changed", {"a": A, "b": B}, [("/x", "b")],
             [("/x", routed_to("B"))]),
            ("route added", {"a": A, "b": B}, [("/x", "b"), ("/y", "a")],
             [("/y", routed_to("A")), ("/x", routed_to("B"))]),
            ("route removed", {"a": A, "b": B}, [("/y", "a")],
             [("/x", not_routed), ("/y", routed_to("A"))]),
            ("cluster added", {"a": A, "b": B, "c": C}, [("/y", "a"), ("/z", "c")],
             [("/z", routed_to("C")), ("/y", routed_to("A"))]),
            ("cluster removed", {"a": A, "b": B}, [("/y", "a")],
             [("/z", not_routed), ("/y", routed_to("A"))]),
        ]
        swap = {"A": "B", "B": "A", "C": "D"}
        internal = []
        for label, clusters, routes, checks in edge:
            internal.append((label, {n: self.ups[swap[u.name]] for n, u in clusters.items()},
                             routes, [(p, routed_to(swap[e.description.split("'")[1]])
                                       if e is not not_routed else not_routed)
                                      for p, e in checks]))
        self.assertEqual(internal[0][3][0][1].description, "200 from upstream 'B'")

        cp.apply(config(*edge[0][1:3]), group="edge")
        cp.apply(config(*internal[0][1:3]), group="internal")
        dps = {"edge": self.start_dp(cp, "edge-1", "edge", concurrency=2),
               "internal": self.start_dp(cp, "internal-1", "internal", concurrency=2)}
        ports = {g: dp.listener_port("public") for g, dp in dps.items()}
        steps = {"edge": edge, "internal": internal}
        for g in dps:
            for path, expect in steps[g][0][3]:
                assert_served(ports[g], path, expect, msg="(%s's own config)" % g)

        versions = {}
        for i in range(1, len(edge)):
            for g, other in (("edge", "internal"), ("internal", "edge")):
                label, clusters, routes, checks = steps[g][i]
                first_path, first_expect = checks[0]
                versions[g] = self.apply_and_time(
                    cp, g, config(clusters, routes),
                    [(dps[g], first_path, first_expect)], "%s: %s" % (g, label))
                for path, expect in checks[1:]:
                    assert_served(ports[g], path, expect, msg="(%s after %s)" % (g, label))
                # The other group's data plane still serves its own config: `edge` has moved
                # on to step i, `internal` is still at step i-1 (or at i once it is applied).
                other_step = i if other == "edge" else i - 1
                for path, expect in steps[other][other_step][3]:
                    assert_served(ports[other], path, expect,
                                  msg="(%s must not change when %s is applied)" % (other, g))

        # The removed cluster is gone from the data plane, and the listener (unchanged
        # throughout) was never re-bound.
        for g, dp in dps.items():
            names = [c["name"] for c in dp.admin_json("/clusters")["clusters"]]
            self.assertEqual(sorted(names), ["a", "b"], "%s /clusters" % g)
            self.assertEqual(dp.listener_port("public"), ports[g],
                             "%s's unchanged listener was re-bound" % g)
        self.assertNotEqual(versions["edge"], versions["internal"])
        for g, node in (("edge", "edge-1"), ("internal", "internal-1")):
            n = cp.wait_in_sync(node)
            self.assertEqual(n["group"], g)
            self.assertEqual(n["api"], self.API.lower())
            self.assertEqual(cp.group_version(g), versions[g])
            # What the data plane runs is what sluice-cp publishes, resource for resource.
            dump = dps[g].admin_json("/config_dump")["dynamic_resources"]
            for t in ("Cluster", "RouteTable", "Listener"):
                published = json.loads(cp.ctl("get", t, "--group", g, "-o", "json").stdout)
                running = [r["resource"] for r in dump[t]["resources"]]
                self.assertEqual(sorted(running, key=lambda r: r["name"]), published,
                                 "%s %s: /config_dump vs sluicectl get" % (g, t))

    # -- the default group ----------------------------------------------------------------------

    def test_group_without_config_gets_default_until_it_has_its_own(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]))
        canary = self.start_dp(cp, "canary-1", "canary")
        plain = self.start_dp(cp, "default-1")  # no node.cluster: the "default" group
        assert_served(canary.listener_port(), "/x", routed_to("A"))
        assert_served(plain.listener_port(), "/x", routed_to("A"))
        g = cp.group("canary")
        self.assertIsNotNone(g, "status lists the group of a connected node")
        self.assertEqual(g["source"], "default group")
        self.assertEqual(g["version"], cp.group_version("default"))
        self.assertEqual(cp.wait_in_sync("default-1")["group"], "default")
        cp.wait_in_sync("canary-1")

        # A change to the default group reaches the group that has none of its own.
        self.apply_and_time(cp, "default", config({"a": A, "b": B}, [("/x", "b")]),
                            [(canary, "/x", routed_to("B")), (plain, "/x", routed_to("B"))],
                            "default -> group without config")
        # Its own config takes over...
        self.apply_and_time(cp, "canary", config({"c": C}, [("/x", "c")]),
                            [(canary, "/x", routed_to("C"))], "group's own config replaces default")
        self.assertTrue(cp.group("canary")["source"].startswith("sluicectl apply"),
                        cp.group("canary"))
        assert_served(plain.listener_port(), "/x", routed_to("B"))
        # ...and later default changes no longer touch it.
        self.apply_and_time(cp, "default", config({"a": A}, [("/x", "a")]),
                            [(plain, "/x", routed_to("A"))], "default again")
        assert_served(canary.listener_port(), "/x", routed_to("C"))
        cp.wait_in_sync("canary-1")
        cp.wait_in_sync("default-1")

    # -- 2. NACK --------------------------------------------------------------------------------

    def test_nack_is_reported_and_last_good_config_keeps_serving(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        good = config({"a": A, "b": B}, [("/x", "a")])
        v_good = cp.apply(good).stdout.split()[-1]
        dp = self.start_dp(cp, "n1", concurrency=2)
        port = dp.listener_port()
        assert_served(port, "/x", routed_to("A"))

        # A port this test holds: sluice-cp cannot know, the data plane cannot bind it.
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        held_port = held.getsockname()[1]
        bad = config({"a": A, "b": B}, [("/x", "a")])
        bad["listeners"].append({"name": "second", "route_table": "main",
                                 "address": {"host": "127.0.0.1", "port": held_port}})
        v_bad = cp.apply(bad).stdout.split()[-1]
        self.assertNotEqual(v_bad, v_good)

        def nacked():
            n = cp.node("n1")
            t = {t["type"]: t for t in n["types"]}
            return n if t["Listener"].get("nacked_version") == v_bad else None
        node = wait_until(nacked, timeout=5, message="status to show the Listener NACK")
        types = {t["type"]: t for t in node["types"]}
        self.assertIn("127.0.0.1:%d" % held_port, types["Listener"]["nack_reason"])
        self.assertIn("second", types["Listener"]["nack_reason"])
        self.assertTrue(types["Listener"].get("nack_time"), types["Listener"])
        self.assertEqual(types["Listener"]["acked_version"], v_good)
        self.assertFalse(node["in_sync"])
        self.assertTrue(node["connected"])
        for t in ("Cluster", "RouteTable"):
            self.assertFalse(types[t].get("nacked_version"), types[t])
        text = cp.ctl("status").stdout
        self.assertIn("NACKS", text)
        self.assertRegex(text, r"n1\s+Listener\s+%s\s.*127\.0\.0\.1:%d" % (v_bad, held_port))

        # The data plane says the same and keeps its last good listeners.
        lst = dp.admin_json("/config_dump")["dynamic_resources"]["Listener"]
        self.assertEqual(lst["version_info"], v_good)
        self.assertEqual(lst["last_rejected"]["version_info"], v_bad)
        self.assertIn("127.0.0.1:%d" % held_port, lst["last_rejected"]["error"])
        self.assertEqual([r["name"] for r in lst["resources"]], ["public"])
        self.assertEqual(dp.stat("control_plane.Listener.update_rejected"), 1)
        self.assertEqual(sorted(dp.listeners()), ["public"])
        for _ in range(10):
            assert_served(port, "/x", routed_to("A"), msg="(while NACKing)")
        self.assertEqual(dp.admin("GET", "/ready")[0], 200)

        # A later good apply clears it.
        self.apply_and_time(cp, "default", config({"a": A, "b": B}, [("/x", "b")]),
                            [(dp, "/x", routed_to("B"))], "good apply after a NACK")
        node = cp.wait_in_sync("n1")
        for t in node["types"]:
            self.assertFalse(t.get("nacked_version") or t.get("nack_reason"), t)
        self.assertNotIn("NACKS", cp.ctl("status").stdout)

        # Once the port is free, the same listener is accepted and serves on it.
        held.close()
        cp.apply(bad)
        cp.wait_in_sync("n1")
        wait_served(held_port, "/x", routed_to("A"), since=time.monotonic(), limit=2.0)
        self.assertEqual(sorted(dp.listeners()), ["public", "second"])

    # -- 3. sluice-cp killed and restarted; data planes restarted -------------------------------

    def kill_control_plane_and_check_serving(self, cp, dps, path, expect):
        """SIGKILLs sluice-cp; the data planes notice, keep serving and stay ready."""
        cp.kill()
        for dp in dps:
            dp.wait_stat("control_plane.connected", lambda v: v == 0, timeout=5)
        # Nothing the data planes run depends on sluice-cp being up.
        for dp in dps:
            for _ in range(5):
                assert_served(dp.listener_port(), path, expect, msg="(sluice-cp down)")
            self.assertEqual(dp.admin("GET", "/ready")[0], 200, "/ready with sluice-cp down")
            self.assertFalse(dp.admin_json("/config_dump")["control_plane"]["connected"])

    def test_control_plane_killed_data_planes_serve_then_resync(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        v1 = cp.apply(config({"a": A, "b": B}, [("/x", "a")])).stdout.split()[-1]
        dps = [self.start_dp(cp, "n%d" % i, "edge") for i in (1, 2)]
        for dp in dps:
            self.assertEqual(dp.stat("control_plane.connected"), 1)
        self.kill_control_plane_and_check_serving(cp, dps, "/x", routed_to("A"))

        t0 = time.monotonic()
        cp.start()  # same port, same state dir
        for i in (1, 2):
            n = cp.wait_in_sync("n%d" % i)
            self.assertEqual(n["group"], "edge")
        TIMINGS.append((self.API, "in sync again after sluice-cp restart",
                        time.monotonic() - t0, time.monotonic() - t0))
        self.assertEqual(cp.group_version("default"), v1, "version kept across the restart")
        v2 = self.apply_and_time(cp, "default", config({"a": A, "b": B}, [("/x", "b")]),
                                 [(dp, "/x", routed_to("B")) for dp in dps],
                                 "first apply after sluice-cp restart")
        self.assertGreater(int(v2), int(v1))
        for dp in dps:
            self.assertEqual(dp.stat("control_plane.connected"), 1)
            cd = dp.admin_json("/config_dump")["control_plane"]
            self.assertTrue(cd["connected"])
            self.assertGreaterEqual(cd["reconnects"], 1)
        cp.wait_in_sync("n1")
        cp.wait_in_sync("n2")

    def test_connected_again_after_control_plane_restart_without_changes(self):
        """The stream is re-established and sluice-cp lists the node as connected and in sync,
        so the data plane's control_plane.connected must be 1 again as well, even when nothing
        changed meanwhile (then sluice-cp has nothing to send on a resumed SotW stream)."""
        A = self.ups["A"]
        cp = self.start_cp()
        cp.apply(config({"a": A}, [("/x", "a")]))
        dps = [self.start_dp(cp, "n%d" % i) for i in (1, 2)]
        self.kill_control_plane_and_check_serving(cp, dps, "/x", routed_to("A"))
        t0 = time.monotonic()
        cp.start()
        for i in (1, 2):
            n = cp.wait_in_sync("n%d" % i)
            self.assertTrue(n["connected"])
        for dp in dps:
            dp.wait_stat("control_plane.connected", lambda v: v == 1, timeout=5)
            self.assertTrue(dp.admin_json("/config_dump")["control_plane"]["connected"])
        TIMINGS.append((self.API, "connected gauge 1 after sluice-cp restart",
                        time.monotonic() - t0, time.monotonic() - t0))
        for dp in dps:
            assert_served(dp.listener_port(), "/x", routed_to("A"))

    def test_data_plane_restart_gets_current_config(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]))
        dp = self.start_dp(cp, "n1")
        assert_served(dp.listener_port(), "/x", routed_to("A"))
        cp.wait_in_sync("n1")
        dp.stop()
        wait_until(lambda: cp.node("n1") and not cp.node("n1")["connected"], timeout=5,
                   message="status to show n1 disconnected")
        self.assertFalse(cp.node("n1")["in_sync"])
        # Changed while it was down: the new process must come up with the new config.
        cp.apply(config({"a": A, "b": B}, [("/x", "b"), ("/y", "a")]))
        dp2 = self.start_dp(cp, "n1")
        port = dp2.listener_port()
        # /ready was 200, so the config is there: no waiting.
        assert_served(port, "/x", routed_to("B"), msg="(right after /ready)")
        assert_served(port, "/y", routed_to("A"), msg="(right after /ready)")
        n = cp.wait_in_sync("n1")
        self.assertTrue(n["connected"])
        self.assertEqual([x["id"] for x in cp.status()["nodes"]].count("n1"), 1,
                         "one status entry per node id")

    def test_data_plane_started_before_control_plane_waits_then_serves(self):
        A = self.ups["A"]
        cp = self.start_cp()
        cp.apply(config({"a": A}, [("/x", "a")]))
        cp.stop()
        dp = self.start_dp(cp, "early", wait_ready=False)
        status = wait_until(lambda: admin_ready(dp), timeout=10, message="admin /ready")
        self.assertEqual(status[0], 503, status)
        self.assertIn(b"INITIALIZING", status[1])
        t0 = time.monotonic()
        cp.start()
        dp.wait_ready(timeout=10)
        TIMINGS.append((self.API, "ready after sluice-cp came up", time.monotonic() - t0,
                        time.monotonic() - t0))
        assert_served(dp.listener_port(), "/x", routed_to("A"))
        cp.wait_in_sync("early")

    def test_data_plane_waits_until_there_is_any_config(self):
        """No config for its group and none for default: requests wait (INITIALIZING) and are
        answered as soon as the default group gets one."""
        A = self.ups["A"]
        cp = self.start_cp()
        dp = self.start_dp(cp, "waiting", "edge", wait_ready=False)
        n = wait_until(lambda: cp.node("waiting"), timeout=10, message="node in status")
        self.assertTrue(n["connected"])
        self.assertFalse(n["in_sync"])
        self.assertEqual(cp.group("edge")["source"], "no config")
        status = admin_ready(dp)
        self.assertEqual(status[0], 503, status)
        self.assertIn(b"INITIALIZING", status[1])
        t0 = time.monotonic()
        cp.apply(config({"a": A}, [("/x", "a")]))
        dp.wait_ready(timeout=5)
        TIMINGS.append((self.API, "ready after the first apply", time.monotonic() - t0,
                        time.monotonic() - t0))
        assert_served(dp.listener_port(), "/x", routed_to("A"))
        self.assertEqual(cp.wait_in_sync("waiting")["group"], "edge")


def print_timings():
    if TIMINGS:
        print("\napply -> served (s)          from apply returned / from apply started")
        for api, label, took, total in TIMINGS:
            print("  %-5s %-50s %.3f / %.3f" % (api, label, took, total))


if __name__ == "__main__":
    import atexit
    atexit.register(print_timings)
    harness.main()
