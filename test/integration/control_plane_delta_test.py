#!/usr/bin/python3
"""control_plane_test.py's tests over the delta (incremental) protocol (data planes with
control_plane.api_type DELTA), plus what only delta has: per-resource versions in /config_dump,
and changes that touch only the resources that changed.
"""

import time

import control_plane_test
import harness
from control_plane_test import TIMINGS, config
from cp_harness import assert_served, not_routed, routed_to


class DeltaControlPlaneTest(control_plane_test.ControlPlaneTest):
    API = "DELTA"

    def dump(self, dp):
        """{type: {name: version}} and {type: version_info} from /config_dump."""
        dyn = dp.admin_json("/config_dump")["dynamic_resources"]
        versions = {t: {r["name"]: r.get("version") for r in d["resources"]}
                    for t, d in dyn.items()}
        return versions, {t: d["version_info"] for t, d in dyn.items()}

    def test_config_dump_has_per_resource_versions_and_only_changes_move(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cp.apply(config({"a": A, "b": B}, [("/a", "a"), ("/b", "b")]))
        dp = self.start_dp(cp, "d1", concurrency=2)
        self.assertEqual(dp.admin_json("/config_dump")["control_plane"]["api"], "delta")
        self.assertEqual(cp.wait_in_sync("d1")["api"], "delta")
        v0, _ = self.dump(dp)
        for t, names in (("Cluster", ["a", "b"]), ("RouteTable", ["main"]),
                         ("Listener", ["public"])):
            self.assertEqual(sorted(v0[t]), names, t)
            for name, version in v0[t].items():
                self.assertTrue(version, "%s %s has no version in /config_dump" % (t, name))
        self.assertNotEqual(v0["Cluster"]["a"], v0["Cluster"]["b"])
        accepted = {t: dp.stat("control_plane.%s.update_accepted" % t)
                    for t in ("Cluster", "RouteTable", "Listener")}

        # Change one cluster only: its version moves, nothing else does.
        self.apply_and_time(cp, "default", config({"a": A, "b": C}, [("/a", "a"), ("/b", "b")]),
                            [(dp, "/b", routed_to("C"))], "delta: one cluster changed")
        assert_served(dp.listener_port(), "/a", routed_to("A"))
        v1, _ = self.dump(dp)
        self.assertNotEqual(v1["Cluster"]["b"], v0["Cluster"]["b"])
        self.assertEqual(v1["Cluster"]["a"], v0["Cluster"]["a"])
        self.assertEqual(v1["RouteTable"], v0["RouteTable"])
        self.assertEqual(v1["Listener"], v0["Listener"])
        self.assertEqual(dp.stat("control_plane.Cluster.update_accepted"),
                         accepted["Cluster"] + 1)
        for t in ("RouteTable", "Listener"):
            self.assertEqual(dp.stat("control_plane.%s.update_accepted" % t), accepted[t],
                             "%s got an update although it did not change" % t)

        # Remove a cluster (and its route): gone by name, the rest keeps its versions.
        self.apply_and_time(cp, "default", config({"a": A}, [("/a", "a")]),
                            [(dp, "/b", not_routed)], "delta: cluster and route removed")
        v2, _ = self.dump(dp)
        self.assertEqual(v2["Cluster"], {"a": v0["Cluster"]["a"]})
        self.assertNotEqual(v2["RouteTable"]["main"], v0["RouteTable"]["main"])
        self.assertEqual(v2["Listener"], v0["Listener"])
        self.assertEqual(sorted(c["name"] for c in dp.admin_json("/clusters")["clusters"]),
                         ["a"])
        # Re-adding the same content gives the same content version (a hash, not a counter).
        self.apply_and_time(cp, "default", config({"a": A, "b": C}, [("/a", "a"), ("/b", "b")]),
                            [(dp, "/b", routed_to("C"))], "delta: cluster re-added")
        v3, _ = self.dump(dp)
        self.assertEqual(v3["Cluster"], v1["Cluster"])
        self.assertEqual(v3["RouteTable"], v1["RouteTable"])
        cp.wait_in_sync("d1")

    def test_sotw_and_delta_nodes_of_one_group_serve_the_same(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]), group="mixed")
        sotw = self.start_dp(cp, "s1", "mixed", delta=False)
        delta = self.start_dp(cp, "d1", "mixed", delta=True)
        self.apply_and_time(cp, "mixed", config({"a": A, "b": B}, [("/x", "b")]),
                            [(sotw, "/x", routed_to("B")), (delta, "/x", routed_to("B"))],
                            "mixed group: sotw and delta")
        apis = {n: cp.wait_in_sync(n)["api"] for n in ("s1", "d1")}
        self.assertEqual(apis, {"s1": "sotw", "d1": "delta"})
        _, vi_sotw = self.dump(sotw)
        _, vi_delta = self.dump(delta)
        self.assertEqual(vi_sotw, vi_delta, "both at the same version of every type")


# Only the delta class runs here (the SotW one runs in control_plane_test).
del control_plane_test

if __name__ == "__main__":
    import atexit
    from control_plane_test import print_timings
    atexit.register(print_timings)
    harness.main()
