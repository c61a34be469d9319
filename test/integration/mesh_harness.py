#!/usr/bin/python3
"""Proxyless gRPC under sluice-cp (docs/mesh.md): Debian's python3-grpcio on both sides.

Pieces:
  * GreeterServer(name) - a gRPC server on 127.0.0.1:<free port> serving the unary method
                          /greeter.Greeter/SayHello with generic handlers (no codegen): the
                          reply is the server's name; counts the calls it got. stop()/start().
  * mesh_bootstrap()    - a gRPC xDS bootstrap (GRPC_XDS_BOOTSTRAP) pointing at a ControlPlane,
                          `server_features: ["xds_v3"]`, the node's group in its metadata or
                          cluster.
  * MeshClient          - a separate python3 process (this file run as `client`) holding ONE
                          channel to `xds:///TARGET` for its whole life: gRPC's xDS client is
                          per process and reads the bootstrap once. calls(n, metadata) makes n
                          calls and returns {server name: count} and the errors by status code;
                          the channel is never recreated (a config change must reach it live).
  * mesh_config()       - a declared config: clusters of GreeterServers (with weights), a route
                          table whose virtual host has the target as its domain.

The client process prints one JSON line per command it reads from stdin (one JSON line each).
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc

METHOD = "/greeter.Greeter/SayHello"


class GreeterServer:
    """A gRPC server whose SayHello answers its own name (bytes in, bytes out)."""

    def __init__(self, name, port=0):
        self.name = name
        self.calls = 0
        self.metadata_seen = []
        self._lock = threading.Lock()
        self.port = port
        self.server = None
        self.start()

    def _say_hello(self, request, context):
        with self._lock:
            self.calls += 1
        return self.name.encode()

    def start(self):
        handler = grpc.method_handlers_generic_handler(
            "greeter.Greeter", {"SayHello": grpc.unary_unary_rpc_method_handler(self._say_hello)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  handlers=[handler])
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        self.server.start()

    def stop(self):
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None

    def endpoint(self, weight=None):
        e = {"address": "127.0.0.1", "port": self.port}
        if weight is not None:
            e["weight"] = weight
        return e


def mesh_bootstrap(cp_address, node_id, group=None, via_metadata=False):
    node = {"id": node_id, "locality": {}}
    if group is not None:
        if via_metadata:
            node["cluster"] = "ignored-cluster"
            node["metadata"] = {"sluice_group": group}
        else:
            node["cluster"] = group
    return {
        "xds_servers": [{
            "server_uri": cp_address,
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": node,
    }


def mesh_config(clusters, target="greeter", routes=None, extra_vhost_domains=(),
                **cluster_opts):
    """clusters: {name: [(GreeterServer, weight) or GreeterServer, ...]}; routes: list of
    Sluice route dicts (default: everything to the first cluster)."""
    cl = []
    for name, servers in clusters.items():
        eps = []
        for s in servers:
            if isinstance(s, tuple):
                eps.append(s[0].endpoint(s[1]))
            else:
                eps.append(s.endpoint())
        c = {"name": name, "endpoints": eps, "protocol": "HTTP2"}
        c.update(cluster_opts.get(name, {}))
        cl.append(c)
    if routes is None:
        routes = [{"name": "all", "match": {"prefix": "/"},
                   "route": {"cluster": next(iter(clusters))}}]
    return {
        "clusters": cl,
        "route_tables": [{"name": "mesh", "virtual_hosts": [
            {"name": "greeter", "domains": [target] + list(extra_vhost_domains),
             "routes": routes}]}],
    }


class MeshClient:
    """A client process with one xds:/// channel, driven over stdin/stdout."""

    def __init__(self, bootstrap, target="greeter"):
        fd, self.bootstrap_path = tempfile.mkstemp(prefix="grpc-xds-bootstrap-", suffix=".json",
                                                   dir=os.environ.get("TEST_TMPDIR"))
        with os.fdopen(fd, "w") as f:
            json.dump(bootstrap, f)
        env = dict(os.environ)
        env["GRPC_XDS_BOOTSTRAP"] = self.bootstrap_path
        env.pop("GRPC_XDS_BOOTSTRAP_CONFIG", None)
        self.stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.abspath(__file__), "client", "xds:///" + target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file, env=env,
            text=True, bufsize=1)
        self._lock = threading.Lock()

    def command(self, cmd, timeout=60):
        with self._lock:
            if self.proc.poll() is not None:
                raise AssertionError("mesh client exited: " + self.stderr())
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("mesh client died: " + self.stderr())
            return json.loads(line)

    def calls(self, n, metadata=None, timeout=2.0, wait_for_ready=False):
        """n calls, one after the other: ({server: count}, {status code name: count})."""
        r = self.command({"n": n, "metadata": metadata or [], "timeout": timeout,
                          "wait_for_ready": wait_for_ready})
        return collections.Counter(r["ok"]), collections.Counter(r["errors"])

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")[-5000:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.bootstrap_path)
        except OSError:
            pass


def _client_main(target):
    channel = grpc.insecure_channel(target)
    say_hello = channel.unary_unary(METHOD)
    for line in sys.stdin:
        cmd = json.loads(line)
        ok = collections.Counter()
        errors = collections.Counter()
        last_error = ""
        for _ in range(cmd["n"]):
            try:
                reply = say_hello(b"hi", timeout=cmd["timeout"],
                                  metadata=[tuple(m) for m in cmd["metadata"]] or None,
                                  wait_for_ready=cmd.get("wait_for_ready", False))
                ok[reply.decode()] += 1
            except grpc.RpcError as e:
                errors[e.code().name] += 1
                last_error = e.details() or ""
        sys.stdout.write(json.dumps({"ok": ok, "errors": errors, "last_error": last_error})
                         + "\n")
        sys.stdout.flush()
    channel.close()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "client":
    _client_main(sys.argv[2])
