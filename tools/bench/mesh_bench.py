#!/usr/bin/env python3
"""sluice-cp pushing to proxyless gRPC streams (Envoy xDS v3) next to Sluice data-plane streams.

  /usr/bin/python3 tools/bench/mesh_bench.py [--streams 200] [--repeats 5] [--routes 100]
                                             [--quick]

For each kind of stream, a fresh sluice-cp with one group (a route table `mesh` of --routes
prefix routes whose virtual host has the domain `greeter`, one cluster `greeter` of three
endpoints, one listener for the data planes):

  * proxyless: --streams Envoy v3 SotW ADS streams subscribing as gRPC's xDS client does:
    Listener ["greeter"] first, then the RouteConfiguration, Cluster and ClusterLoadAssignment
    it names, every response ACKed with the names repeated;
  * sluice: --streams Sluice ADS streams (wildcard requests for every type, every response
    ACKed), as tools/bench/xds_bench.py part 3 opens them.

One Python grpcio asyncio client opens them (one channel and TCP connection per stream), on the
same 2 cores as sluice-cp. Measured: sluice-cp VmRSS with the config applied and no streams,
and with every stream synced (per stream = the difference / streams); then --repeats pushes (a
route added to the table with `sluicectl apply`): the time from just before `sluicectl apply`
until the first, median and last stream received the new route table (RouteConfiguration or
RouteTable). Markdown on stdout.

Binaries: SLUICE_CP_BIN, SLUICECTL_BIN (default <repo>/bazel-bin/...). The Envoy protos for
the client: after `bazel build //source/control_plane:sluice-cp` (bazel-<repo>/external/
envoy_api), or SLUICE_ENVOY_API_DIR.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "test", "integration"))

import grpc  # noqa: E402

import cp_harness  # noqa: E402
import envoy_stubs  # noqa: E402
import grpc_stubs  # noqa: E402

SLUICE_PREFIX = "type.googleapis.com/sluice.config.v1."
SLUICE_TYPES = ["Cluster", "ClusterEndpoints", "AuthPolicy", "RateLimitPolicy", "RouteTable",
                "Listener"]


def log(msg):
    sys.stderr.write("[mesh_bench] %s\n" % msg)
    sys.stderr.flush()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def config(n_routes, version):
    routes = [{"name": "r%d" % i, "match": {"prefix": "/svc%d.S/" % i},
               "route": {"cluster": "greeter"}} for i in range(n_routes + version)]
    routes.append({"name": "all", "match": {"prefix": "/"}, "route": {"cluster": "greeter"}})
    return {
        "clusters": [{"name": "greeter", "protocol": "HTTP2", "endpoints": [
            {"address": "127.0.0.1", "port": 10001 + i} for i in range(3)]}],
        "route_tables": [{"name": "mesh", "virtual_hosts": [
            {"name": "greeter", "domains": ["greeter"], "routes": routes}]}],
        "listeners": [{"name": "edge", "address": {"host": "127.0.0.1", "port": 0},
                       "route_table": "mesh"}],
    }


class Fleet:
    """N ADS streams of one kind on an asyncio loop in a thread."""

    def __init__(self, kind, address, count):
        self.kind, self.address, self.count = kind, address, count
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks, self.channels, self.errors = [], [], []
        self.synced = 0
        self.synced_event = threading.Event()
        self.watch_after = None
        self.watch_times = []
        self.watch_event = threading.Event()
        if kind == "proxyless":
            self.e = envoy_stubs.load()
        else:
            self.s = grpc_stubs.load()

    def start(self):
        self.thread.start()

        async def open_all():
            for i in range(self.count):
                self.tasks.append(self.loop.create_task(self._stream(i)))
        asyncio.run_coroutine_threadsafe(open_all(), self.loop).result(60)

    def watch(self, t0):
        def arm():
            self.watch_times = [None] * self.count
            self.watch_event.clear()
            self.watch_after = t0
        self.loop.call_soon_threadsafe(arm)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(10)

    def _route_seen(self, i):
        now = time.monotonic()
        if self.watch_after is not None and now >= self.watch_after and \
                self.watch_times[i] is None:
            self.watch_times[i] = now
            if all(t is not None for t in self.watch_times):
                self.watch_event.set()

    async def _stream(self, i):
        options = [("grpc.use_local_subchannel_pool", 1), ("mesh_bench.stream", i)]
        ch = grpc.aio.insecure_channel(self.address, options=options)
        self.channels.append(ch)
        try:
            if self.kind == "proxyless":
                await self._proxyless(i, ch)
            else:
                await self._sluice(i, ch)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self.errors.append("stream %d: %r" % (i, e))

    async def _proxyless(self, i, ch):
        e = self.e
        call = e.ads_grpc.AggregatedDiscoveryServiceStub(ch).StreamAggregatedResources()
        names = {e.LISTENER: ["greeter"]}
        first = e.discovery.DiscoveryRequest(type_url=e.LISTENER, resource_names=["greeter"])
        first.node.id = "mesh-%d" % i
        first.node.cluster = "bench"
        first.node.user_agent_name = "mesh_bench"
        await call.write(first)
        have = set()
        synced = False
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise RuntimeError("stream ended")
            new_types = []
            if resp.type_url == e.LISTENER and e.ROUTES not in names:
                lst = e.listener.Listener()
                resp.resources[0].Unpack(lst)
                hcm = e.hcm.HttpConnectionManager()
                lst.api_listener.api_listener.Unpack(hcm)
                names[e.ROUTES] = [hcm.rds.route_config_name]
                new_types.append(e.ROUTES)
            elif resp.type_url == e.ROUTES:
                self._route_seen(i)
                if e.CLUSTER not in names:
                    names[e.CLUSTER] = ["greeter"]
                    new_types.append(e.CLUSTER)
            elif resp.type_url == e.CLUSTER and e.ENDPOINTS not in names:
                names[e.ENDPOINTS] = ["greeter"]
                new_types.append(e.ENDPOINTS)
            have.add(resp.type_url)
            await call.write(e.discovery.DiscoveryRequest(
                type_url=resp.type_url, resource_names=names[resp.type_url],
                version_info=resp.version_info, response_nonce=resp.nonce))
            for t in new_types:
                await call.write(e.discovery.DiscoveryRequest(type_url=t,
                                                              resource_names=names[t]))
            if not synced and len(have) == 4:
                synced = True
                self.synced += 1
                if self.synced == self.count:
                    self.synced_event.set()

    async def _sluice(self, i, ch):
        pb = self.s.ads_pb2
        call = self.s.ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch).StreamAggregatedResources()
        for j, t in enumerate(SLUICE_TYPES):
            req = pb.DiscoveryRequest(type_url=SLUICE_PREFIX + t)
            if j == 0:
                req.node.id = "dp-%d" % i
                req.node.cluster = "bench"
            await call.write(req)
        have = set()
        synced = False
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise RuntimeError("stream ended")
            if resp.type_url == SLUICE_PREFIX + "RouteTable":
                self._route_seen(i)
            have.add(resp.type_url)
            await call.write(pb.DiscoveryRequest(type_url=resp.type_url,
                                                 version_info=resp.version_info,
                                                 response_nonce=resp.nonce))
            if not synced and len(have) == len(SLUICE_TYPES):
                synced = True
                self.synced += 1
                if self.synced == self.count:
                    self.synced_event.set()

    def close(self):
        async def shutdown():
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await asyncio.gather(*(c.close() for c in self.channels), return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def apply(cp, cfg, tmpdir, version):
    path = os.path.join(tmpdir, "mesh-%d.json" % version)
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([cp_harness.ctl_binary(), "--server", cp.address, "apply", "-f", path,
                        "--group", "bench"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("sluicectl apply: %s%s" % (r.stdout, r.stderr))


def run_kind(kind, args, tmpdir):
    log("%s: %d streams" % (kind, args.streams))
    cp = cp_harness.ControlPlane()
    try:
        version = 0
        apply(cp, config(args.routes, version), tmpdir, version)
        time.sleep(0.5)
        rss_idle = rss_kb(cp.proc.pid)
        fleet = Fleet(kind, cp.address, args.streams)
        t0 = time.monotonic()
        fleet.start()
        if not fleet.synced_event.wait(120):
            raise RuntimeError("%s: %d/%d streams synced; errors %s"
                               % (kind, fleet.synced, args.streams, fleet.errors[:3]))
        t_sync = time.monotonic() - t0
        time.sleep(1.0)
        rss_streams = rss_kb(cp.proc.pid)
        pushes = []
        for _ in range(args.repeats):
            version += 1
            cfg = config(args.routes, version)
            t0 = time.monotonic()
            fleet.watch(t0)
            apply(cp, cfg, tmpdir, version)
            if not fleet.watch_event.wait(60):
                raise RuntimeError("%s: push not received by every stream" % kind)
            times = sorted(t - t0 for t in fleet.watch_times)
            pushes.append({"first": times[0], "median": statistics.median(times),
                           "last": times[-1]})
            time.sleep(0.3)
        fleet.close()
        return {"kind": kind, "rss_idle": rss_idle, "rss_streams": rss_streams,
                "t_sync": t_sync, "pushes": pushes, "errors": fleet.errors}
    finally:
        cp.cleanup()


def main(argv):
    p = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1].strip())
    p.add_argument("--streams", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--routes", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="10 streams, 2 pushes")
    a = p.parse_args(argv)
    a.streams = a.streams or (10 if a.quick else 200)
    a.repeats = a.repeats or (2 if a.quick else 5)
    tmpdir = tempfile.mkdtemp(prefix="mesh-bench-")
    results = [run_kind(k, a, tmpdir) for k in ("sluice", "proxyless")]
    ms = lambda s: "%.0f" % (s * 1000)  # noqa: E731
    out = ["## sluice-cp: %d proxyless gRPC streams vs %d Sluice data-plane streams"
           % (a.streams, a.streams), "",
           "Route table of %d routes; each push adds one route (`sluicectl apply`, timed from "
           "just before it). Medians over %d pushes." % (a.routes, a.repeats), "",
           "| streams | initial sync of all (s) | first (ms) | median (ms) | last (ms) | "
           "sluice-cp RSS idle (MiB) | with streams (MiB) | per stream (KiB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ps = r["pushes"]
        med = lambda k: statistics.median([x[k] for x in ps])  # noqa: E731
        out.append("| %d %s | %.2f | %s | %s | %s | %.1f | %.1f | %.1f |" % (
            a.streams, "proxyless (Envoy v3, SotW)" if r["kind"] == "proxyless"
            else "Sluice data plane (SotW)", r["t_sync"], ms(med("first")), ms(med("median")),
            ms(med("last")), r["rss_idle"] / 1024.0, r["rss_streams"] / 1024.0,
            (r["rss_streams"] - r["rss_idle"]) / a.streams))
    for r in results:
        if r["errors"]:
            out.append("")
            out.append("%s stream errors: %s" % (r["kind"], "; ".join(r["errors"][:5])))
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
