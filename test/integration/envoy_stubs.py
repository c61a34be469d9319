"""Python stubs of Envoy's xDS v3 protos (the subset sluice-cp compiles, @envoy_api//:protos),
generated at first use with Debian's protoc and grpc_python_plugin, for tests that talk to
sluice-cp's Envoy ADS as a raw client (NACKs, delta, the resources' exact content).

    import envoy_stubs
    e = envoy_stubs.load()
    ads = e.ads_grpc.AggregatedDiscoveryServiceStub(channel)
    req = e.discovery.DiscoveryRequest(type_url=e.LISTENER, resource_names=["greeter"])

Where the protos are found:
  SLUICE_ENVOY_API_DIR   explicit override
  $TEST_SRCDIR/envoy_api under `bazel test` (list "@envoy_api//:protos" as data)
  <repo>/bazel-<repo>/external/envoy_api   by hand, after a build
google/rpc/status.proto comes from api/ (grpc_stubs.api_dir()).
"""

import atexit
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import types

import grpc_stubs

PREFIX = "type.googleapis.com/"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINTS = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTES = PREFIX + "envoy.config.route.v3.RouteConfiguration"

# The files sluice-cp compiles (bazel/envoy_api.bzl's roots); their imports are followed.
ROOTS = [
    "envoy/service/discovery/v3/ads.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
]
_IMPORT = re.compile(r'^import\s+(?:public\s+|weak\s+)?"([^"]+)";', re.M)

_lock = threading.Lock()


def _closure(root, roots):
    """The roots and every file they import that lives under root (not google/*)."""
    seen = []
    todo = list(roots)
    while todo:
        f = todo.pop()
        if f in seen or f.startswith("google/"):
            continue
        path = os.path.join(root, f)
        if not os.path.exists(path):
            raise RuntimeError("envoy_stubs: %s not found under %s" % (f, root))
        seen.append(f)
        with open(path) as fh:
            todo.extend(_IMPORT.findall(fh.read()))
    return sorted(seen)
_stubs = None


def envoy_api_dir():
    explicit = os.environ.get("SLUICE_ENVOY_API_DIR")
    if explicit:
        return explicit
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        for cand in (os.path.join(srcdir, "envoy_api"),
                     os.path.join(srcdir, "sluice", "external", "envoy_api")):
            if os.path.isdir(os.path.join(cand, "envoy")):
                return cand
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(repo, "bazel-" + os.path.basename(repo), "external", "envoy_api")


def load():
    """Generates (once per process) and imports the stubs. Returns a namespace with
    discovery (discovery_pb2), ads_grpc (ads_pb2_grpc), listener, hcm, route, cluster,
    endpoint, router modules and the type URLs."""
    global _stubs
    with _lock:
        if _stubs is not None:
            return _stubs
        root = envoy_api_dir()
        api = grpc_stubs.api_dir()
        protos = _closure(root, ROOTS)
        if not protos:
            raise RuntimeError("envoy_stubs: no protos under %s (build sluice-cp first, or list "
                               "@envoy_api//:protos as data)" % root)
        out = tempfile.mkdtemp(prefix="sluice-envoy-stubs-", dir=os.environ.get("TEST_TMPDIR"))
        if os.environ.get("SLUICE_KEEP_TMP") != "1":
            atexit.register(shutil.rmtree, out, True)
        base = [grpc_stubs.PROTOC, "-I" + root, "-I" + api, "-I" + grpc_stubs.SYSTEM_INCLUDE,
                "--python_out=" + out]
        r = subprocess.run(base + protos + ["google/rpc/status.proto"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError("envoy_stubs: protoc failed:\n" + r.stderr)
        r = subprocess.run(base + ["--grpc_python_out=" + out,
                                   "--plugin=protoc-gen-grpc_python=" +
                                   grpc_stubs.GRPC_PYTHON_PLUGIN,
                                   "envoy/service/discovery/v3/ads.proto"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("envoy_stubs: grpc plugin failed:\n" + r.stderr)
        # Namespace packages: every generated folder needs no __init__.py on Python 3, but a
        # `google` package is already installed (protobuf): extend its path.
        sys.path.insert(0, out)
        import google
        google.__path__.append(os.path.join(out, "google"))
        importlib.invalidate_caches()
        m = importlib.import_module
        s = types.SimpleNamespace(
            discovery=m("envoy.service.discovery.v3.discovery_pb2"),
            ads_grpc=m("envoy.service.discovery.v3.ads_pb2_grpc"),
            listener=m("envoy.config.listener.v3.listener_pb2"),
            hcm=m("envoy.extensions.filters.network.http_connection_manager.v3."
                  "http_connection_manager_pb2"),
            route=m("envoy.config.route.v3.route_pb2"),
            cluster=m("envoy.config.cluster.v3.cluster_pb2"),
            endpoint=m("envoy.config.endpoint.v3.endpoint_pb2"),
            router=m("envoy.extensions.filters.http.router.v3.router_pb2"),
            base=m("envoy.config.core.v3.base_pb2"),
            status=m("google.rpc.status_pb2"),
            CLUSTER=CLUSTER, ENDPOINTS=ENDPOINTS, LISTENER=LISTENER, ROUTES=ROUTES)
        _stubs = s
        return s
