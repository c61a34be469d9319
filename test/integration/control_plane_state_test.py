#!/usr/bin/python3
"""sluice-cp's state dir and config dir: applied config and versions survive restarts (SIGTERM
and SIGKILL); <config-dir>/<group>.yaml is applied when written while running, refused (and
logged) when invalid while the last good config keeps serving, applied once fixed, and a file
changed while sluice-cp was down is applied when it starts (an unchanged one is not).
"""

import json
import os
import signal
import time

import harness
from harness import wait_until
from cp_harness import CpTestCase, assert_served, declared, routed_to, wait_served

# From a config file written to the change being served: the poll interval (100ms) plus
# SERVE_LIMIT (scaled).
FILE_LIMIT = 1.5

TIMINGS = []


def config(clusters, routes):
    return declared({name: [u] for name, u in clusters.items()}, routes=routes)


class ControlPlaneStateTest(CpTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = {n: cls.start_class_upstream(n) for n in ("A", "B", "C")}

    def snapshot(self, cp, group):
        """What sluicectl shows of a group: its status entry and every type's resources."""
        g = cp.group(group)
        self.assertIsNotNone(g, "group %s in status" % group)
        out = {"version": g["version"], "source": g["source"],
               "applied_at": g.get("applied_at")}
        for t in ("Listener", "RouteTable", "Cluster"):
            out[t] = json.loads(cp.ctl("get", t, "--group", group, "-o", "json").stdout)
        out["yaml"] = cp.ctl("get", "route_table", "main", "--group", group).stdout
        return out

    def wait_file_served(self, dp, path, expect, since, label):
        took = wait_served(dp.listener_port(), path, expect, since=since, limit=FILE_LIMIT)
        TIMINGS.append((label, took))
        return took

    # -- the state dir --------------------------------------------------------------------------

    def test_applied_config_and_versions_survive_restarts(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cp.apply(config({"a": A}, [("/x", "a")]))
        cp.apply(config({"a": A, "b": B}, [("/x", "b")]), group="edge")
        dp = self.start_dp(cp, "edge-1", "edge")
        assert_served(dp.listener_port(), "/x", routed_to("B"))
        before = {g: self.snapshot(cp, g) for g in ("default", "edge")}
        self.assertEqual(before["edge"]["version"], "2")

        cp.restart()  # SIGTERM
        self.assertEqual({g: self.snapshot(cp, g) for g in ("default", "edge")}, before,
                         "after a SIGTERM restart")
        cp.kill()
        cp.start()
        self.assertEqual({g: self.snapshot(cp, g) for g in ("default", "edge")}, before,
                         "after a SIGKILL restart")
        cp.wait_in_sync("edge-1")

        # An apply is durable once sluicectl says so, even if sluice-cp dies right after.
        v3 = cp.apply(config({"a": A, "c": C}, [("/x", "c")]), group="edge").stdout.split()[-1]
        cp.kill()
        cp.start()
        self.assertEqual(cp.group_version("edge"), v3)
        self.assertEqual([c["name"] for c in
                          json.loads(cp.ctl("get", "cluster", "--group", "edge",
                                            "-o", "json").stdout)], ["a", "c"])
        # Versions keep counting up after restarts: never one a data plane already has.
        self.assertGreater(int(v3), int(before["edge"]["version"]))
        t0 = time.monotonic()
        v4 = cp.apply(config({"a": A}, [("/x", "a")]), group="edge").stdout.split()[-1]
        self.assertGreater(int(v4), int(v3))
        wait_served(dp.listener_port(), "/x", routed_to("A"), since=t0, limit=1.0)
        self.assertEqual(cp.wait_in_sync("edge-1")["group"], "edge")

    # -- the config dir -------------------------------------------------------------------------

    def test_config_file_written_while_running_is_served(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cp.apply(config({"a": A}, [("/x", "a")]))
        dp = self.start_dp(cp, "edge-1", "edge")
        assert_served(dp.listener_port(), "/x", routed_to("A"), msg="(default group's config)")

        t0 = time.monotonic()
        path = cp.write_group_file("edge", config({"b": B}, [("/x", "b")]))  # rename over
        self.wait_file_served(dp, "/x", routed_to("B"), t0, "new file (rename)")
        g = cp.group("edge")
        self.assertEqual(g["source"], "file " + path)
        cp.wait_in_sync("edge-1")
        v1 = g["version"]

        t0 = time.monotonic()
        cp.write_group_file("edge", config({"c": C}, [("/x", "c")]), atomic=False)
        self.wait_file_served(dp, "/x", routed_to("C"), t0, "file rewritten in place")
        self.assertGreater(int(cp.group_version("edge")), int(v1))
        # Other groups are untouched.
        self.assertEqual(cp.group("default")["source"].split()[0], "sluicectl")
        # A JSON file works the same (here for a new group).
        other = self.start_dp(cp, "other-1", "other")
        t0 = time.monotonic()
        cp.write_group_file("other", json.dumps(config({"b": B}, [("/x", "b")])), ext="json")
        self.wait_file_served(other, "/x", routed_to("B"), t0, "new .json file")
        cp.wait_in_sync("other-1")

    def test_invalid_config_file_is_refused_and_logged_until_fixed(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        path = cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        wait_until(lambda: cp.group("edge"), timeout=3, message="edge.yaml applied")
        dp = self.start_dp(cp, "edge-1", "edge")
        port = dp.listener_port()
        assert_served(port, "/x", routed_to("A"))
        v1 = cp.group_version("edge")

        # Valid YAML, invalid config: refused with the error naming the field.
        since = len(cp.stderr())
        cp.write_group_file("edge", config({"a": A}, [("/x", "nope")]))
        cp.wait_log(r"%s.*\n?.*routes\[0\]\.route\.cluster: unknown cluster \"nope\""
                    % path.replace(".", r"\."), since=since)
        # Not YAML at all.
        since = len(cp.stderr())
        cp.write_group_file("edge", "clusters: [\n  - name: a\n bad", atomic=False)
        cp.wait_log(r"config file %s: not applied: invalid YAML" % path.replace(".", r"\."),
                    since=since)
        self.assertEqual(cp.group_version("edge"), v1)
        for _ in range(5):
            assert_served(port, "/x", routed_to("A"), msg="(invalid file in the config dir)")
        self.assertTrue(cp.wait_in_sync("edge-1")["in_sync"])

        # Fixed: applied.
        t0 = time.monotonic()
        cp.write_group_file("edge", config({"a": A, "b": B}, [("/x", "b")]))
        self.wait_file_served(dp, "/x", routed_to("B"), t0, "fixed file")
        self.assertGreater(int(cp.group_version("edge")), int(v1))
        cp.wait_in_sync("edge-1")

        # Removed: logged, the group keeps what it has.
        v2 = cp.group_version("edge")
        since = len(cp.stderr())
        os.unlink(path)
        cp.wait_log(r"config file %s removed" % path.replace(".", r"\."), since=since)
        self.assertEqual(cp.group_version("edge"), v2)
        assert_served(port, "/x", routed_to("B"))

    def test_empty_config_file_does_not_wipe_the_group(self):
        """An empty file is what a poll sees between an in-place rewrite's truncate and its
        write. sluicectl refuses an empty document ("to remove every resource, write {}") so that
        a mistake never wipes a group; a config file must not either."""
        A = self.ups["A"]
        cp = self.start_cp()
        path = cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        wait_until(lambda: cp.group("edge"), timeout=3, message="edge.yaml applied")
        dp = self.start_dp(cp, "edge-1", "edge")
        port = dp.listener_port()
        v1 = cp.group_version("edge")
        # sluicectl's rule, for comparison.
        empty = os.path.join(cp.tmpdir, "empty.yaml")
        open(empty, "w").close()
        r = cp.ctl("apply", "-f", empty, "--group", "edge", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("no config in it", r.stderr)

        since = len(cp.stderr())
        with open(path, "w") as f:
            f.write("# being rewritten\n")  # a comment only: an empty document as well
        # Barrier: a file written after it; one poll reads the whole dir, so once this group
        # exists, sluice-cp has seen the empty edge.yaml too.
        cp.write_group_file("barrier", config({"a": A}, [("/x", "a")]))
        wait_until(lambda: cp.group("barrier"), timeout=3, message="barrier.yaml applied")
        cp.wait_in_sync("edge-1")
        self.assertEqual(cp.group_version("edge"), v1,
                         "an empty config file was applied:\n%s" % cp.stderr()[since:])
        self.assertEqual(sorted(dp.listeners()), ["public"],
                         "the data plane lost its listeners to an empty config file")
        assert_served(port, "/x", routed_to("A"))

    def test_file_changed_while_down_is_applied_at_start(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        wait_until(lambda: cp.group("edge"), timeout=3, message="edge.yaml applied")
        dp = self.start_dp(cp, "edge-1", "edge")
        assert_served(dp.listener_port(), "/x", routed_to("A"))
        v1 = cp.group_version("edge")
        applied_at = cp.group("edge")["applied_at"]

        # Unchanged file: not applied again at start (same version, same applied_at).
        cp.restart()
        g = cp.group("edge")
        self.assertEqual((g["version"], g["applied_at"]), (v1, applied_at))
        cp.wait_in_sync("edge-1")

        # Changed while down: applied at start, and served once the data plane is back.
        cp.stop()
        cp.write_group_file("edge", config({"a": A, "b": B}, [("/x", "b")]), atomic=False)
        t0 = time.monotonic()
        cp.start()
        v2 = cp.group_version("edge")  # at once: applied before sluice-cp listens
        self.assertGreater(int(v2), int(v1))
        self.wait_file_served(dp, "/x", routed_to("B"), t0,
                              "file changed while down (from sluice-cp start)")
        cp.wait_in_sync("edge-1")

        # Made invalid while down: refused at start, the persisted config keeps serving.
        cp.stop()
        path = cp.write_group_file("edge", config({"a": A}, [("/x", "nope")]))
        cp.start()
        cp.wait_log(r"unknown cluster \"nope\"")
        self.assertEqual(cp.group_version("edge"), v2)
        cp.wait_in_sync("edge-1")
        assert_served(dp.listener_port(), "/x", routed_to("B"))
        self.assertEqual(cp.group("edge")["source"], "file " + path)

    def test_sighup_checks_the_config_dir_at_once(self):
        A = self.ups["A"]
        cp = self.start_cp(poll_interval="1h")
        dp = self.start_dp(cp, "edge-1", "edge", wait_ready=False)
        t0 = time.monotonic()
        cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        cp.proc.send_signal(signal.SIGHUP)
        dp.wait_ready(timeout=3)
        self.wait_file_served(dp, "/x", routed_to("A"), t0, "file + SIGHUP (poll 1h)")
        self.assertTrue(cp.running())

    def test_later_of_file_and_apply_wins_across_restarts(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        wait_until(lambda: cp.group("edge"), timeout=3, message="edge.yaml applied")
        dp = self.start_dp(cp, "edge-1", "edge")
        assert_served(dp.listener_port(), "/x", routed_to("A"))
        # An apply after the file wins, and an unchanged file does not undo it at start.
        cp.apply(config({"b": B}, [("/x", "b")]), group="edge")
        assert_served(dp.listener_port(), "/x", routed_to("B"))
        v = cp.group_version("edge")
        cp.restart()
        self.assertEqual(cp.group_version("edge"), v)
        self.assertTrue(cp.group("edge")["source"].startswith("sluicectl apply"))
        cp.wait_in_sync("edge-1")
        assert_served(dp.listener_port(), "/x", routed_to("B"))
        # A file changed after the apply wins again.
        t0 = time.monotonic()
        cp.write_group_file("edge", config({"c": C}, [("/x", "c")]))
        self.wait_file_served(dp, "/x", routed_to("C"), t0, "file after an apply")

    def test_yaml_wins_over_json_for_one_group(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp(poll_interval="1h")
        cp.write_group_file("edge", json.dumps(config({"b": B}, [("/x", "b")])), ext="json")
        yaml_path = cp.write_group_file("edge", config({"a": A}, [("/x", "a")]))
        since = len(cp.stderr())
        cp.proc.send_signal(signal.SIGHUP)
        cp.wait_log(r"group \"edge\" has 2 files; using %s" % yaml_path.replace(".", r"\."),
                    since=since)
        self.assertEqual(cp.group("edge")["source"], "file " + yaml_path)
        dp = self.start_dp(cp, "edge-1", "edge")
        assert_served(dp.listener_port(), "/x", routed_to("A"))


if __name__ == "__main__":
    import atexit

    def print_timings():
        if TIMINGS:
            print("\nconfig file -> served (s)")
            for label, took in TIMINGS:
                print("  %-50s %.3f" % (label, took))
    atexit.register(print_timings)
    harness.main()
