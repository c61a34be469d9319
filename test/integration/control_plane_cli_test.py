#!/usr/bin/python3
"""sluicectl against a real sluice-cp, as an operator uses it: validate, diff, apply (accepted,
unchanged, refused), get (JSON and YAML, by type and name, aliases, errors), status (text),
and exit codes as documented by `sluicectl --help`:
  0 success, 1 failure (invalid config, refused apply, server error), 2 usage error;
  diff: 0 no changes, 1 changes, 2 error.
"""

import json
import os
import re
import shutil
import socket
import subprocess

import harness
from cp_harness import (CpTestCase, assert_served, cp_binary, ctl_binary, declared, free_port,
                        routed_to, to_yaml)


def config(clusters, routes):
    return declared({name: [u] for name, u in clusters.items()}, routes=routes)


class SluicectlTest(CpTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = {n: cls.start_class_upstream(n) for n in ("A", "B", "C")}

    def write(self, cp, content, name="config.yaml"):
        path = os.path.join(cp.tmpdir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else to_yaml(content))
        return path

    def test_help_documents_exit_codes(self):
        r = subprocess.run([ctl_binary(), "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("diff: 0 no changes, 1 changes, 2 error", r.stdout)
        for cmd in ("validate", "diff", "apply", "status", "get"):
            self.assertRegex(r.stdout, r"\n  %s " % cmd)

    def test_validate(self):
        A = self.ups["A"]
        cp = self.start_cp()
        good = self.write(cp, config({"a": A}, [("/x", "a")]))
        r = cp.ctl("validate", "-f", good, check=False)
        self.assertEqual((r.returncode, r.stdout), (0, "valid\n"), r)
        # Same from stdin, as JSON.
        r = cp.ctl("validate", "-f", "-", input=json.dumps(config({"a": A}, [("/x", "a")])),
                   check=False)
        self.assertEqual((r.returncode, r.stdout), (0, "valid\n"), r)

        # Two errors in one file: both listed, one per line, each with its field path.
        bad = config({"a": A}, [("/x", "nope")])
        bad["clusters"][0]["endpoints"][0]["port"] = 0
        r = cp.ctl("validate", "-f", self.write(cp, bad, "bad.yaml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertTrue(any(line.startswith("clusters[0].endpoints[0].port:") for line in lines),
                        r.stdout)
        self.assertTrue(any(line.startswith(
            "route_tables[0].virtual_hosts[0].routes[0].route.cluster:") and "nope" in line
            for line in lines), r.stdout)
        # An unknown field is named too (a parse error, before validation).
        typo = config({"a": A}, [("/x", "a")])
        typo["clusters"][0]["lb_polcy"] = "RANDOM"
        r = cp.ctl("validate", "-f", self.write(cp, typo, "typo.yaml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("lb_polcy", r.stdout + r.stderr)
        # Validating publishes nothing.
        self.assertEqual(cp.status().get("groups", []), [])

    def test_validate_out_of_range_port_blames_only_the_port(self):
        """Port 70000 is one error (the port); the valid address next to it is not an error."""
        A = self.ups["A"]
        cp = self.start_cp()
        bad = config({"a": A}, [("/x", "a")])
        bad["clusters"][0]["endpoints"][0]["port"] = 70000
        r = cp.ctl("validate", "-f", self.write(cp, bad, "bad.yaml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout.strip().splitlines(),
                         ["clusters[0].endpoints[0].port: must be 1-65535"])

    def test_diff(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        v0 = config({"a": A, "b": B}, [("/x", "a"), ("/y", "b")])
        # Nothing published yet: everything is added.
        r = cp.ctl("diff", "-f", self.write(cp, v0), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(sorted(re.findall(r"^\+ (\w+ \w+)$", r.stdout, re.M)),
                         ["Cluster a", "Cluster b", "Listener public", "RouteTable main"])
        version = cp.apply(v0).stdout.split()[-1]

        r = cp.ctl("diff", "-f", self.write(cp, v0), check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "no changes"), r)

        # Cluster c added, b removed, a route changed.
        v1 = config({"a": A, "c": C}, [("/x", "c"), ("/y", "a")])
        r = cp.ctl("diff", "-f", self.write(cp, v1), check=False)
        self.assertEqual(r.returncode, 1, r)
        heads = re.findall(r"^([+~-]) (\w+) (\S+)$", r.stdout, re.M)
        self.assertEqual(sorted(heads), [("+", "Cluster", "c"), ("-", "Cluster", "b"),
                                         ("~", "RouteTable", "main")], r.stdout)
        body = r.stdout.split("~ RouteTable main", 1)[1]
        self.assertRegex(body, r'\n\s*-\s+"cluster": "a"')
        self.assertRegex(body, r'\n\s*\+\s+"cluster": "c"')
        self.assertIn("1 added, 1 removed, 1 changed", r.stdout)
        # A group without its own config is compared with the default group's.
        r = cp.ctl("diff", "-f", self.write(cp, v0), "--group", "edge", check=False)
        self.assertEqual(r.returncode, 0, r)

        # Invalid: exit 2, the errors on stderr (the diff is still shown).
        bad = config({"a": A}, [("/x", "nope")])
        r = cp.ctl("diff", "-f", self.write(cp, bad), check=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn('unknown cluster "nope"', r.stderr)
        self.assertIn("~ RouteTable main", r.stdout)
        # diff publishes nothing.
        self.assertEqual(cp.group_version("default"), version)

    def test_apply_refused_changes_nothing(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        r = cp.ctl("apply", "-f", self.write(cp, config({"a": A, "b": B}, [("/x", "a")])))
        self.assertRegex(r.stdout, r'^applied group "default": version \d+\n$')
        version = r.stdout.split()[-1]
        dp = self.start_dp(cp, "n1")
        cp.wait_in_sync("n1")
        accepted = dp.stat("control_plane.RouteTable.update_accepted")
        published = cp.ctl("get", "route_table", "-o", "json").stdout

        bad = config({"a": A, "b": B}, [("/x", "b"), ("/y", "nope")])
        bad["listeners"][0]["route_table"] = "missing"
        r = cp.ctl("apply", "-f", self.write(cp, bad), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertIn('refused, nothing changed (group "default" stays at version %s)'
                      % version, r.stderr)
        self.assertIn("routes[1].route.cluster", r.stderr)
        self.assertIn("listeners[0].route_table", r.stderr)
        self.assertEqual(cp.group_version("default"), version)
        self.assertEqual(cp.ctl("get", "route_table", "-o", "json").stdout, published)
        cp.wait_in_sync("n1")
        self.assertEqual(dp.stat("control_plane.RouteTable.update_accepted"), accepted)
        assert_served(dp.listener_port(), "/x", routed_to("A"))

        # Re-applying what is published: accepted, nothing pushed.
        r = cp.ctl("apply", "-f", self.write(cp, config({"a": A, "b": B}, [("/x", "a")])))
        self.assertEqual(r.stdout, 'unchanged: group "default" is already at version %s\n'
                         % version)
        # Files that are not a config: refused before anything is sent.
        empty = self.write(cp, "", "empty.yaml")
        r = cp.ctl("apply", "-f", empty, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("no config in it", r.stderr)
        r = cp.ctl("apply", "-f", os.path.join(cp.tmpdir, "missing.yaml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot read", r.stderr)
        self.assertEqual(cp.group_version("default"), version)

    def test_reordered_config_is_no_change(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        cfg = config({"a": A, "b": B, "c": C}, [("/x", "a"), ("/y", "b")])
        version = cp.apply(cfg).stdout.split()[-1]
        cfg["clusters"].reverse()
        r = cp.ctl("diff", "-f", self.write(cp, cfg), check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "no changes"), r)
        r = cp.apply(cfg)
        self.assertTrue(r.stdout.startswith("unchanged"), r.stdout)
        self.assertEqual(cp.group_version("default"), version)

    def test_sluice_cp_command_line(self):
        d = harness.make_tempdir("sluice-cp-cli-")
        self.addCleanup(shutil.rmtree, d, True)

        def run(*args):
            return subprocess.run([cp_binary()] + list(args), capture_output=True, text=True,
                                  timeout=harness.scaled(20), preexec_fn=harness._pdeathsig)
        r = run("--help")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("--state-dir", r.stderr + r.stdout)
        for args, needle in ((["--bogus"], "unknown argument --bogus"),
                             ([], "--state-dir is required"),
                             (["--state-dir", d, "--config-dir", os.path.join(d, "nope")],
                              "is not a directory"),
                             (["--state-dir", d, "--poll-interval", "1ms"], "--poll-interval"),
                             (["--state-dir", d, "--listen", "nocolon"], "HOST:PORT")):
            r = run(*args)
            self.assertEqual(r.returncode, 2, (args, r))
            self.assertIn(needle, r.stderr, args)
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        r = run("--state-dir", d, "--listen", "127.0.0.1:%d" % held.getsockname()[1])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot listen", r.stderr)

    def test_get(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        cfg = config({"b": B, "a": A}, [("/x", "a")])
        cfg["clusters"][1]["lb_policy"] = "RANDOM"  # cluster a
        cp.apply(cfg)

        one = json.loads(cp.ctl("get", "cluster", "a", "-o", "json").stdout)
        self.assertEqual(one, {"name": "a", "lb_policy": "RANDOM", "connect_timeout": "1s",
                               "endpoints": [{"address": "127.0.0.1", "port": A.port}]})
        every = json.loads(cp.ctl("get", "clusters", "-o", "json").stdout)
        self.assertEqual([c["name"] for c in every], ["a", "b"], "in name order")
        self.assertEqual(every[0], one)
        for alias in ("Cluster", "CLUSTERS", "cluster"):
            self.assertEqual(json.loads(cp.ctl("get", alias, "-o", "json").stdout), every)
        rt = json.loads(cp.ctl("get", "route_tables", "main", "-o", "json").stdout)
        self.assertEqual(rt, cfg["route_tables"][0])

        yaml = cp.ctl("get", "cluster", "a").stdout  # YAML by default
        self.assertRegex(yaml, r"(?m)^name: a$")
        self.assertRegex(yaml, r"(?m)^lb_policy: RANDOM$")
        self.assertRegex(yaml, r"(?m)^  - address: 127\.0\.0\.1\n    port: %d$" % A.port)
        yaml_list = cp.ctl("get", "cluster", "-o", "yaml").stdout
        self.assertRegex(yaml_list, r"(?m)^- name: a$")
        self.assertRegex(yaml_list, r"(?m)^- name: b$")

        # What get prints can be applied again: the same config, so no changes.
        again = {"clusters": every,
                 "route_tables": json.loads(cp.ctl("get", "route_table", "-o", "json").stdout),
                 "listeners": json.loads(cp.ctl("get", "listener", "-o", "json").stdout)}
        r = cp.ctl("diff", "-f", self.write(cp, json.dumps(again), "again.json"), check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "no changes"), r)

        # A group without its own config shows the default group's.
        self.assertEqual(json.loads(cp.ctl("get", "cluster", "--group", "edge", "-o",
                                           "json").stdout), every)
        r = cp.ctl("get", "cluster", "zz", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('"zz" not found', r.stderr)
        r = cp.ctl("get", "widgets", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('unknown type "widgets"', r.stderr)
        r = cp.ctl("get", check=False)
        self.assertEqual(r.returncode, 2, r)

    def test_status_text(self):
        A = self.ups["A"]
        cp = self.start_cp()
        version = cp.apply(config({"a": A}, [("/x", "a")]), group="edge").stdout.split()[-1]
        dp = self.start_dp(cp, "edge-1", "edge")
        self.start_dp(cp, "delta-1", "edge", delta=True)
        cp.wait_in_sync("edge-1")
        cp.wait_in_sync("delta-1")
        text = cp.ctl("status").stdout
        self.assertRegex(text, r"(?m)^GROUPS$")
        self.assertRegex(text, r"(?m)^edge\s+%s\s+sluicectl apply -f \S+ --group edge\s" % version)
        self.assertRegex(text, r"(?m)^NODES$")
        self.assertRegex(text, r"(?m)^edge-1\s+edge\s+yes\s+sotw\s+yes\s")
        self.assertRegex(text, r"(?m)^delta-1\s+edge\s+yes\s+delta\s+yes\s")
        self.assertNotIn("NACKS", text)
        dp.stop()
        harness.wait_until(lambda: re.search(r"(?m)^edge-1\s+edge\s+no\s",
                                             cp.ctl("status").stdout),
                           timeout=5, message="edge-1 shown disconnected")
        r = cp.ctl("status", "-o", "xml", check=False)
        self.assertEqual(r.returncode, 2, r)

    def test_errors_and_usage(self):
        dead = "127.0.0.1:%d" % free_port()
        r = subprocess.run([ctl_binary(), "--server", dead, "--timeout", "2s", "status"],
                           capture_output=True, text=True, timeout=harness.scaled(30))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot reach sluice-cp at %s" % dead, r.stderr)
        r = subprocess.run([ctl_binary(), "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn('unknown command "frobnicate"', r.stderr)
        r = subprocess.run([ctl_binary(), "apply"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("-f FILE", r.stderr)


if __name__ == "__main__":
    harness.main()
