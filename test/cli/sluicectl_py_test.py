#!/usr/bin/python3
"""The sluicectl binary against a ControlService written in Python.

The service uses stubs that test/integration/grpc_stubs.py generates from api/, so this checks
the helper, that the control protocol works from another language, and sluicectl as a process
(exit codes, stdout/stderr, stdin, $SLUICECTL_SERVER). Needs no sluice-cp.

  bazel test //test/cli:sluicectl_py_test
  /usr/bin/python3 test/cli/sluicectl_py_test.py      # by hand, after building sluicectl
"""

import sys

sys.dont_write_bytecode = True  # never write __pycache__ next to (symlinked) sources

import json
import os
import subprocess
import threading
import unittest
from concurrent import futures

if os.environ.get("TEST_SRCDIR"):
    RUNFILES = os.path.join(os.environ["TEST_SRCDIR"], "sluice")
    SLUICECTL = os.path.join(RUNFILES, "source", "cli", "sluicectl")
    sys.path.insert(0, os.path.join(RUNFILES, "test", "integration"))
else:
    REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    SLUICECTL = os.environ.get("SLUICECTL_BIN") or os.path.join(
        REPO, "bazel-bin", "source", "cli", "sluicectl")
    sys.path.insert(0, os.path.join(REPO, "test", "integration"))

import grpc  # noqa: E402
import grpc_stubs  # noqa: E402
from google.protobuf import json_format  # noqa: E402

stubs = grpc_stubs.load()
pb = stubs.control_pb2


class FakeControl(stubs.control_pb2_grpc.ControlServiceServicer):
    """Keeps one published config per group; Apply refuses clusters without endpoints."""

    def __init__(self):
        self.lock = threading.Lock()
        self.groups = {}  # name -> (version, StaticResources, source)
        self.requests = []

    @staticmethod
    def _canonical(resources):
        """Resources in name order (as a control plane publishes them)."""
        out = stubs.bootstrap_pb2.StaticResources()
        out.clusters.extend(sorted(resources.clusters, key=lambda c: c.name))
        return out

    def _errors(self, resources):
        return ["clusters[%d].endpoints: at least one endpoint" % i
                for i, c in enumerate(resources.clusters) if not c.endpoints]

    def Validate(self, request, context):
        with self.lock:
            self.requests.append(request)
        errors = self._errors(request.resources)
        return pb.ValidateResponse(valid=not errors, errors=errors)

    def Apply(self, request, context):
        with self.lock:
            self.requests.append(request)
            version, current, _ = self.groups.get(request.group, (0, None, ""))
            errors = self._errors(request.resources)
            if errors:
                return pb.ApplyResponse(accepted=False, version=str(version), errors=errors)
            resources = self._canonical(request.resources)
            if current == resources:
                return pb.ApplyResponse(accepted=True, version=str(version), changed=False)
            self.groups[request.group] = (version + 1, resources, request.source)
            return pb.ApplyResponse(accepted=True, version=str(version + 1), changed=True)

    def Diff(self, request, context):
        with self.lock:
            _, current, _ = self.groups.get(request.group, (0, None, ""))
        before = {c.name: c for c in current.clusters} if current else {}
        after = {c.name: c for c in request.resources.clusters}
        changes = []
        for name in sorted(set(before) | set(after)):
            b = json_format.MessageToJson(before[name], preserving_proto_field_name=True) \
                if name in before else ""
            a = json_format.MessageToJson(after[name], preserving_proto_field_name=True) \
                if name in after else ""
            if b == a:
                continue
            kind = (pb.ResourceChange.ADDED if not b else
                    pb.ResourceChange.REMOVED if not a else pb.ResourceChange.CHANGED)
            changes.append(pb.ResourceChange(kind=kind, type="Cluster", name=name,
                                             before_json=b, after_json=a))
        return pb.DiffResponse(changes=changes, errors=self._errors(request.resources))

    def Status(self, request, context):
        with self.lock:
            groups = [pb.GroupStatus(name=name, version=str(v), source=src,
                                     resources={"Cluster": len(r.clusters)})
                      for name, (v, r, src) in sorted(self.groups.items())]
        node = pb.NodeStatus(id="edge-1", group="default", connected=True, api="sotw",
                             types=[pb.TypeStatus(type="Cluster", sent_version="2",
                                                  acked_version="1", nacked_version="2",
                                                  nack_reason="clusters[0]: bad")])
        return pb.StatusResponse(groups=groups, nodes=[node])

    def Get(self, request, context):
        with self.lock:
            entry = self.groups.get(request.group)
        if entry is None:
            context.abort(grpc.StatusCode.NOT_FOUND, 'no group "%s"' % request.group)
        if request.type.lower() not in ("cluster", "clusters"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'unknown type "%s"' % request.type)
        version, resources, _ = entry
        return pb.GetResponse(
            version=str(version),
            resources_json=[json_format.MessageToJson(c, preserving_proto_field_name=True,
                                                      indent=None)
                            for c in resources.clusters if not request.name or c.name == request.name])


CONFIG = """
clusters:
- name: users
  connect_timeout: 250ms
  lb_policy: ROUND_ROBIN
  endpoints: [{address: 10.0.0.11, port: 9001, weight: 100}]
- name: "true"
  endpoints: [{address: "::1", port: 9002}]
"""


class SluicectlPyTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeControl()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        stubs.control_pb2_grpc.add_ControlServiceServicer_to_server(self.fake, self.server)
        self.address = "127.0.0.1:%d" % self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.addCleanup(self.server.stop, None)

    def ctl(self, *args, input=None, env=None):
        environ = dict(os.environ)
        environ.pop("SLUICECTL_SERVER", None)
        environ.update(env or {})
        if not env or "SLUICECTL_SERVER" not in env:
            args = ("--server", self.address) + args
        return subprocess.run([SLUICECTL] + list(args), input=input, capture_output=True,
                              text=True, timeout=30, env=environ)

    def test_stubs_cover_every_api_proto(self):
        for name in ("control_pb2_grpc", "ads_pb2_grpc", "bootstrap_pb2", "status_pb2"):
            self.assertTrue(hasattr(stubs, name), name)
        self.assertIn("sluice.service.discovery.v1.ads_pb2_grpc", stubs.modules)

    def test_validate(self):
        r = self.ctl("validate", "-f", "-", input=CONFIG)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "valid\n", ""))
        sent = self.fake.requests[-1].resources
        self.assertEqual(sent.clusters[0].connect_timeout.nanos, 250000000)
        self.assertEqual(sent.clusters[1].name, "true")

        r = self.ctl("validate", "-f", "-", input="clusters: [{name: a}, {name: b}]")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "clusters[0].endpoints: at least one endpoint\n"
                                   "clusters[1].endpoints: at least one endpoint\n")

    def test_apply_diff_get_round_trip(self):
        r = self.ctl("diff", "-f", "-", "--group", "edge", input=CONFIG)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "+ Cluster true\n+ Cluster users\n"
                                   "2 changes: 2 added, 0 removed, 0 changed\n")

        r = self.ctl("apply", "-f", "-", "--group", "edge", input=CONFIG)
        self.assertEqual((r.returncode, r.stdout), (0, 'applied group "edge": version 1\n'))
        self.assertEqual(self.fake.groups["edge"][2], "sluicectl apply -f - --group edge")

        r = self.ctl("diff", "-f", "-", "--group", "edge", input=CONFIG)
        self.assertEqual((r.returncode, r.stdout), (0, "no changes\n"))

        # What get prints applies again unchanged, as YAML and as JSON.
        listed = self.ctl("get", "clusters", "--group", "edge")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn('- name: "true"\n', listed.stdout)
        r = self.ctl("apply", "-f", "-", "--group", "edge", input="clusters:\n" + listed.stdout)
        self.assertEqual(r.stdout, 'unchanged: group "edge" is already at version 1\n')
        as_json = self.ctl("get", "Cluster", "--group", "edge", "-o", "json")
        self.assertEqual([c["name"] for c in json.loads(as_json.stdout)], ["true", "users"])
        r = self.ctl("apply", "-f", "-", "--group", "edge",
                     input=json.dumps({"clusters": json.loads(as_json.stdout)}))
        self.assertEqual(r.stdout, 'unchanged: group "edge" is already at version 1\n')

        one = self.ctl("get", "Cluster", "users", "--group", "edge")
        self.assertTrue(one.stdout.startswith("name: users\n"), one.stdout)  # a mapping
        self.assertIn("\nconnect_timeout: 0.250s\n", one.stdout)

        changed = CONFIG.replace("weight: 100", "weight: 50")
        r = self.ctl("diff", "-f", "-", "--group", "edge", input=changed)
        self.assertEqual(r.returncode, 1)
        self.assertIn("~ Cluster users\n", r.stdout)
        self.assertIn('\n    -      "weight": 100\n    +      "weight": 50\n', r.stdout)

    def test_apply_refused(self):
        r = self.ctl("apply", "-f", "-", input="clusters: [{name: a}]")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, 'sluicectl: refused, nothing changed (group "default" stays '
                                   'at version 0):\nclusters[0].endpoints: at least one endpoint\n')

    def test_status(self):
        self.ctl("apply", "-f", "-", input=CONFIG)
        r = self.ctl("status", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        status = json_format.Parse(r.stdout, pb.StatusResponse())
        self.assertEqual(status.groups[0].resources["Cluster"], 2)
        self.assertEqual(json.loads(r.stdout)["nodes"][0]["in_sync"], False)
        text = self.ctl("status").stdout
        self.assertIn("\nedge-1  default  yes        sotw  no       1 (nack 2)\n", text)
        self.assertIn("\nNACKS\n", text)
        self.assertIn("clusters[0]: bad", text)

    def test_server_errors(self):
        r = self.ctl("get", "Cluster", "--group", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, 'sluicectl: sluice-cp at %s: NOT_FOUND: no group "nope"\n'
                         % self.address)
        # $SLUICECTL_SERVER when there is no --server.
        r = self.ctl("get", "Cluster", "--group", "nope", env={"SLUICECTL_SERVER": self.address})
        self.assertIn("NOT_FOUND", r.stderr)

        self.server.stop(None).wait()
        r = self.ctl("status")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("sluicectl: cannot reach sluice-cp at %s: "
                                            % self.address), r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)

    def test_usage(self):
        r = self.ctl("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith('sluicectl: unknown command "frobnicate"\n'))
        r = self.ctl("--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: sluicectl"))


if __name__ == "__main__":
    unittest.main()
