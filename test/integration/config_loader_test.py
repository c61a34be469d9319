"""The config loader's limits, through the real binaries: `sluice -c FILE --validate` on an
alias bomb, /dev/zero, a directory, a file over the size cap, duplicate keys (YAML and JSON),
anything after a JSON object, a second YAML document, an enum number that names no value and
nesting past 64 levels, each refused quickly with a message naming the line; an access log
path that is a directory; and an alias bomb in sluice-cp's config dir, refused without harm.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    SLUICE_CP_BIN=/work/main/bazel-bin/source/control_plane/sluice-cp \
    /usr/bin/python3 test/integration/config_loader_test.py
"""

import json
import os
import subprocess
import sys
import time
import unittest

import cp_harness
import harness
from harness import make_tempdir, run_validate, scaled

# Peak RSS allowed for refusing a hostile file (the bomb took 3.9 GB before the limits).
MAX_RSS_KB = 400 * 1024

# A "billion laughs": nine levels of nine aliases, 9^9 strings once expanded, in 342 bytes.
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    "%s: &%s [%s]\n" % (c, c, ", ".join(["*" + chr(ord(c) - 1)] * 9)) for c in "bcdefghi")

VALID = """\
static_resources:
  clusters:
  - name: backend
    endpoints: [{address: 127.0.0.1, port: 1}]
"""

# Runs a command and prints its exit status and peak RSS (KB): RUSAGE_CHILDREN of a fresh
# interpreter covers that one child only.
MEASURE = """\
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True)
print(json.dumps({"rc": p.returncode, "stderr": p.stderr, "stdout": p.stdout,
                  "seconds": time.monotonic() - t,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def measure(args, timeout=60):
    out = subprocess.run([sys.executable, "-c", MEASURE] + list(args), capture_output=True,
                         text=True, timeout=scaled(timeout), check=True)
    return json.loads(out.stdout)


def validate_path(path, timeout=30):
    return subprocess.run([harness.sluice_binary(), "--validate", "-c", path],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=scaled(timeout))


class ConfigLoaderTest(harness.SluiceTestCase):

    def setUp(self):
        self.dir = make_tempdir("sluice-loader-")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertRefused(self, p, *needles):
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("OK", p.stdout)
        for n in needles:
            self.assertIn(n, p.stderr)

    def test_a_valid_config_passes(self):
        p = run_validate(VALID)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "OK")

    def test_alias_bomb(self):
        path = self.write("bomb.yaml", BOMB)
        r = measure([harness.sluice_binary(), "--validate", "-c", path])
        self.assertEqual(r["rc"], 1, r)
        self.assertIn("config expands to more than 1000000 nodes through YAML aliases", r["stderr"])
        self.assertRegex(r["stderr"], r"the alias \*\w at line \d+")
        self.assertLess(r["seconds"], scaled(5), r)
        self.assertLess(r["maxrss_kb"], MAX_RSS_KB, r)

    def test_dev_zero(self):
        start = time.monotonic()
        p = validate_path("/dev/zero")
        self.assertRefused(p, "config file /dev/zero is a character device")
        self.assertLess(time.monotonic() - start, scaled(5))

    def test_a_directory(self):
        self.assertRefused(validate_path(self.dir), "config file %s is a directory" % self.dir)

    def test_a_file_over_the_size_cap(self):
        path = os.path.join(self.dir, "huge.yaml")
        with open(path, "wb") as f:
            f.truncate(16 * 1024 * 1024 + 1)  # sparse: instant
        start = time.monotonic()
        p = validate_path(path)
        self.assertRefused(p, "is 16777217 bytes, more than the 16 MiB a config may have")
        self.assertLess(time.monotonic() - start, scaled(2))

    def test_access_log_path_that_is_a_directory(self):
        cfg = harness.bootstrap([harness.listener("public", "main", access_log=self.dir)],
                                [harness.route_table("main", [harness.vhost("all", ["*"], [
                                    {"match": {"prefix": "/"},
                                     "direct_response": {"status": 200}}])])], [])
        p = run_validate(cfg)
        self.assertRefused(p, "static_resources.listeners[0].access_log.path: cannot write "
                              "access log \"%s\": is a directory" % self.dir)

    def test_duplicate_yaml_keys(self):
        p = run_validate(VALID + "  - name: other\n"
                                 "    endpoints: [{address: 127.0.0.1, port: 2}]\n"
                                 "    lb_policy: LEAST_REQUEST\n"
                                 "    lb_policy: ROUND_ROBIN\n")
        self.assertRefused(p, "static_resources.clusters[1]: duplicate key \"lb_policy\" at "
                              "line 8 (first at line 7)")
        # The same config without the duplicate passes.
        p = run_validate(VALID + "  - name: other\n"
                                 "    endpoints: [{address: 127.0.0.1, port: 2}]\n"
                                 "    lb_policy: LEAST_REQUEST\n")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_duplicate_json_keys(self):
        text = ('{"static_resources": {"clusters": [\n'
                '  {"name": "a", "endpoints": [{"address": "127.0.0.1", "port": 1}],\n'
                '   "name": "b"}]}}\n')
        p = run_validate(text, suffix=".json")
        self.assertRefused(p, "static_resources.clusters[0]: duplicate key \"name\" at line 3 "
                              "(first at line 2)")

    def test_trailing_json_garbage(self):
        text = json.dumps({"static_resources": {}}) + " xyz\n"
        p = run_validate(text, suffix=".json")
        self.assertRefused(p, "unexpected content after the end of the config at line 1")

    def test_two_yaml_documents(self):
        p = run_validate(VALID + "---\nstatic_resources: {}\n")
        self.assertRefused(p, "more than one YAML document: a second one starts at line 5")

    def test_enum_number_out_of_range(self):
        p = run_validate(VALID + "    lb_policy: 99\n")
        self.assertRefused(p, "static_resources.clusters[0].lb_policy: 99 is not a LbPolicy "
                              "value, at line 5")
        cfg = {"static_resources": {"clusters": [
            {"name": "a", "lb_policy": 99,
             "endpoints": [{"address": "127.0.0.1", "port": 1}]}]}}
        p = run_validate(cfg)
        self.assertRefused(p, "static_resources.clusters[0].lb_policy: 99 is not a LbPolicy "
                              "value")

    def test_nesting_depth_100(self):
        text = "".join("%sa:\n" % ("  " * i) for i in range(100)) + "  " * 100 + "1\n"
        p = run_validate(text)
        self.assertRefused(p, "config nested deeper than 64 levels at line 65")
        p = run_validate("[" * 100 + "]" * 100 + "\n")
        self.assertRefused(p, "config nested deeper than 64 levels at line 1")


class ConfigDirLoaderTest(cp_harness.CpTestCase):
    """sluice-cp's config dir goes through the same loader."""

    def test_alias_bomb_in_the_config_dir(self):
        cp = self.start_cp()
        since = len(cp.stderr())
        path = cp.write_group_file("bomb", BOMB)
        cp.wait_log(r"config file %s: not applied: config expands to more than 1000000 nodes "
                    r"through YAML aliases" % path.replace(".", r"\."), timeout=10, since=since)
        self.assertTrue(cp.running())
        with open("/proc/%d/status" % cp.proc.pid) as f:
            hwm = [ln for ln in f if ln.startswith("VmHWM:")][0]
        self.assertLess(int(hwm.split()[1]), MAX_RSS_KB, hwm)
        self.assertIsNone(cp.group("bomb"))
        # It still applies good files.
        cp.write_group_file("good", cp_harness.declared({"a": [1]}))
        harness.wait_until(lambda: cp.group("good"), timeout=5, message="good.yaml applied")
        # And sluicectl's reader is bounded too.
        r = cp.ctl("validate", "-f", "/dev/zero", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("config file /dev/zero is a character device", r.stderr)


if __name__ == "__main__":
    unittest.main()
