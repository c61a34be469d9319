"""Python gRPC stubs for every proto under api/, generated at first use.

Tests that talk to sluice-cp from Python (proving the protocol is usable from another language)
call load() and use the modules it returns:

    import grpc
    import grpc_stubs

    stubs = grpc_stubs.load()
    control = stubs.control_pb2_grpc.ControlServiceStub(grpc.insecure_channel(address))
    status = control.Status(stubs.control_pb2.StatusRequest())

load() runs Debian's protoc with grpc_python_plugin over api/ once per process, into a temp dir
(removed at exit) that it puts first on sys.path; the modules keep their proto package paths
(sluice.config.v1.bootstrap_pb2, ...), so generated imports between them resolve.

Where api/ is found:
  SLUICE_API_DIR         explicit override
  $TEST_SRCDIR/sluice/api under `bazel test`: list the protos as data, all of them since they
                         import each other, e.g. "//api:sluice/service/control/v1/control.proto"
  <repo>/api             by hand
Needs python3-grpcio and python3-protobuf (tools/setup.sh installs them).
"""

import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import types

PROTOC = "/usr/bin/protoc"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
SYSTEM_INCLUDE = "/usr/include"  # google/protobuf/*.proto

_lock = threading.Lock()
_stubs = None


def api_dir():
    """The proto root: SLUICE_API_DIR, else the runfiles' api/, else the repository's."""
    explicit = os.environ.get("SLUICE_API_DIR")
    if explicit:
        return explicit
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir and os.path.isdir(os.path.join(srcdir, "sluice", "api")):
        return os.path.join(srcdir, "sluice", "api")
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "api")


def _protos(root):
    found = []
    for dirpath, _, files in os.walk(root, followlinks=True):
        for name in files:
            if name.endswith(".proto"):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def _generate(root, out):
    protos = _protos(root)
    if not protos:
        raise RuntimeError("grpc_stubs: no .proto files under %s (under bazel test, list the "
                           "api protos as data)" % root)
    cmd = [PROTOC, "-I" + root, "-I" + SYSTEM_INCLUDE, "--python_out=" + out,
           "--grpc_python_out=" + out, "--plugin=protoc-gen-grpc_python=" + GRPC_PYTHON_PLUGIN]
    r = subprocess.run(cmd + protos, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("grpc_stubs: %s failed (exit %d):\n%s\n(under bazel test, every api "
                           "proto that one imports must be listed as data too)"
                           % (" ".join(cmd), r.returncode, r.stderr))
    return protos


def load():
    """Generates (once per process) and imports the stubs of every proto under api_dir().

    Returns a namespace with one attribute per module by its short name (control_pb2,
    control_pb2_grpc, ads_pb2, bootstrap_pb2, status_pb2, ...; *_pb2_grpc only for files with
    services; a short name two protos share is left out), plus `modules` (dotted name -> module), `out_dir` and `api_dir`."""
    global _stubs
    with _lock:
        if _stubs is not None:
            return _stubs
        root = api_dir()
        out = tempfile.mkdtemp(prefix="sluice-pystubs-", dir=os.environ.get("TEST_TMPDIR"))
        if os.environ.get("SLUICE_KEEP_TMP") != "1":
            atexit.register(shutil.rmtree, out, True)
        protos = _generate(root, out)
        sys.path.insert(0, out)
        importlib.invalidate_caches()
        stubs = types.SimpleNamespace(modules={}, out_dir=out, api_dir=root)
        for proto in protos:
            dotted = proto[:-len(".proto")].replace(os.sep, ".")
            pb2 = importlib.import_module(dotted + "_pb2")
            stubs.modules[pb2.__name__] = pb2
            if pb2.DESCRIPTOR.services_by_name:
                grpc_module = importlib.import_module(dotted + "_pb2_grpc")
                stubs.modules[grpc_module.__name__] = grpc_module
        short = [name.rsplit(".", 1)[1] for name in stubs.modules]
        for name, module in stubs.modules.items():
            if short.count(name.rsplit(".", 1)[1]) == 1:  # ambiguous ones only by full name
                setattr(stubs, name.rsplit(".", 1)[1], module)
        _stubs = stubs
        return stubs
