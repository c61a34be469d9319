#!/usr/bin/python3
"""sluice-cp from another language: Python's grpcio (Debian's python3-grpcio) with stubs that
grpc_stubs.py generates from api/ at test time.

ADS, state of the world: a fake node subscribes, gets Cluster ... Listener in make-before-break
order, ACKs and NACKs, and ControlService.Status (also called from Python) reports it; a later
change is pushed in the same order. ADS, delta: a node that comes back with
initial_resource_versions gets only what changed (and the names removed).

Hostile input: unknown type URLs, garbage and stale nonces, streams that send nothing, many
streams opened and dropped, bytes that are not HTTP/2: sluice-cp keeps serving Status and keeps
pushing changes to a real data plane.
"""

import queue
import socket
import threading
import time

import grpc

import grpc_stubs
import harness
from harness import scaled, wait_until
from cp_harness import CpTestCase, assert_served, declared, routed_to, wait_served

STUBS = grpc_stubs.load()
ads_pb2 = STUBS.ads_pb2
ads_grpc = STUBS.ads_pb2_grpc
control_pb2 = STUBS.control_pb2
control_grpc = STUBS.control_pb2_grpc
Node = STUBS.bootstrap_pb2.Node
RpcStatus = STUBS.status_pb2.Status

PREFIX = "type.googleapis.com/sluice.config.v1."
# The order a data plane subscribes in and sluice-cp pushes in (make before break: what is
# referred to comes before what refers to it).
TYPES = ["Cluster", "ClusterEndpoints", "AuthPolicy", "RateLimitPolicy", "RouteTable",
         "Listener"]
MESSAGES = {
    "Cluster": STUBS.cluster_pb2.Cluster,
    "ClusterEndpoints": STUBS.cluster_pb2.ClusterEndpoints,
    "AuthPolicy": STUBS.policy_pb2.AuthPolicy,
    "RateLimitPolicy": STUBS.policy_pb2.RateLimitPolicy,
    "RouteTable": STUBS.route_pb2.RouteTable,
    "Listener": STUBS.listener_pb2.Listener,
}


def url(short):
    return PREFIX + short


def short(type_url):
    return type_url[len(PREFIX):] if type_url.startswith(PREFIX) else type_url


def unpack(any_msg, short_type):
    if any_msg.type_url != url(short_type):
        raise AssertionError("Any of type %r in a %s response" % (any_msg.type_url, short_type))
    return MESSAGES[short_type].FromString(any_msg.value)


def config(clusters, routes, **extra):
    return declared({name: [u] for name, u in clusters.items()}, routes=routes, **extra)


class AdsStream:
    """One ADS stream (SotW or delta) driven from the test: send() queues a request; a reader
    thread collects responses for recv()."""

    def __init__(self, channel, delta=False):
        self.delta = delta
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        stub = ads_grpc.AggregatedDiscoveryServiceStub(channel)
        method = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        self.call = method(self._outgoing())
        self.error = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _outgoing(self):
        while True:
            r = self.requests.get()
            if r is None:
                return
            yield r

    def _read(self):
        try:
            for r in self.call:
                self.responses.put(r)
        except grpc.RpcError as e:
            self.error = e
        self.responses.put(None)

    def send(self, request):
        self.requests.put(request)

    def recv(self, timeout=5.0):
        try:
            r = self.responses.get(timeout=scaled(timeout))
        except queue.Empty:
            raise AssertionError("no response within %.1fs" % scaled(timeout))
        if r is None:
            self.responses.put(None)
            raise AssertionError("stream ended: %r" % (self.error,))
        return r

    def recv_types(self, n, timeout=5.0):
        return [self.recv(timeout) for _ in range(n)]

    def half_close(self):
        self.requests.put(None)

    def cancel(self):
        self.requests.put(None)
        self.call.cancel()


def sotw_request(type_short, node=None, version="", nonce="", error=None):
    r = ads_pb2.DiscoveryRequest(type_url=url(type_short), version_info=version,
                                 response_nonce=nonce)
    if node is not None:
        r.node.CopyFrom(node)
    if error is not None:
        r.error_detail.CopyFrom(RpcStatus(code=3, message=error))
    return r


def delta_request(type_short, node=None, initial=None, nonce="", error=None):
    r = ads_pb2.DeltaDiscoveryRequest(type_url=url(type_short), response_nonce=nonce)
    if node is not None:
        r.node.CopyFrom(node)
    for name, version in (initial or {}).items():
        r.initial_resource_versions[name] = version
    if error is not None:
        r.error_detail.CopyFrom(RpcStatus(code=3, message=error))
    return r


class GrpcTestCase(CpTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = {n: cls.start_class_upstream(n) for n in ("A", "B", "C")}

    def channel(self, cp):
        ch = grpc.insecure_channel(cp.address)
        self.addCleanup(ch.close)
        return ch

    def stream(self, channel, delta=False):
        s = AdsStream(channel, delta)
        self.addCleanup(s.cancel)
        return s

    def status(self, channel, timeout=5.0):
        stub = control_grpc.ControlServiceStub(channel)
        return stub.Status(control_pb2.StatusRequest(), timeout=scaled(timeout))

    def node_status(self, channel, node_id):
        for n in self.status(channel).nodes:
            if n.id == node_id:
                return n
        return None

    def wait_node(self, channel, node_id, predicate, message):
        def check():
            n = self.node_status(channel, node_id)
            return n if n is not None and predicate(n) else None
        return wait_until(check, timeout=5, interval=0.02, message=message)

    def group_version(self, channel, group):
        for g in self.status(channel).groups:
            if g.name == group:
                return g.version
        return None


class PythonAdsClientTest(GrpcTestCase):

    def test_sotw_make_before_break_ack_nack_and_status(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        ch = self.channel(cp)
        control = control_grpc.ControlServiceStub(ch)
        # Applied from Python too: the operator API is as usable as ADS.
        applied = control.Apply(control_pb2.ApplyRequest(
            group="py", source="python test",
            resources=STUBS.bootstrap_pb2.StaticResources(
                clusters=[STUBS.cluster_pb2.Cluster(
                    name=n, endpoints=[STUBS.cluster_pb2.Endpoint(address="127.0.0.1",
                                                                 port=u.port)])
                          for n, u in (("a", A), ("b", B))],
                route_tables=[STUBS.route_pb2.RouteTable(name="main", virtual_hosts=[
                    STUBS.route_pb2.VirtualHost(name="all", domains=["*"], routes=[
                        STUBS.route_pb2.Route(
                            name="x", match=STUBS.route_pb2.RouteMatch(prefix="/x"),
                            route=STUBS.route_pb2.RouteAction(cluster="a"))])])],
                listeners=[STUBS.listener_pb2.Listener(
                    name="public", route_table="main",
                    address=STUBS.listener_pb2.SocketAddress(host="127.0.0.1"))])),
            timeout=scaled(5))
        self.assertTrue(applied.accepted, applied.errors)
        self.assertTrue(applied.changed)
        v1 = applied.version

        s = self.stream(ch)
        node = Node(id="py-sotw", cluster="py")
        for i, t in enumerate(TYPES):
            s.send(sotw_request(t, node=node if i == 0 else None))
        first = s.recv_types(len(TYPES))
        self.assertEqual([short(r.type_url) for r in first], TYPES,
                         "first responses in make-before-break order")
        nonces = [r.nonce for r in first]
        self.assertTrue(all(nonces) and len(set(nonces)) == len(nonces), nonces)
        by_type = {short(r.type_url): r for r in first}
        for r in first:
            self.assertEqual(r.version_info, v1)
        self.assertEqual(sorted(unpack(a, "Cluster").name for a in by_type["Cluster"].resources),
                         ["a", "b"])
        cl = {c.name: c for c in (unpack(a, "Cluster") for a in by_type["Cluster"].resources)}
        self.assertEqual(cl["a"].endpoints[0].port, A.port)
        rt = unpack(by_type["RouteTable"].resources[0], "RouteTable")
        self.assertEqual(rt.virtual_hosts[0].routes[0].route.cluster, "a")
        self.assertEqual([unpack(a, "Listener").name for a in by_type["Listener"].resources],
                         ["public"])
        self.assertEqual(len(by_type["AuthPolicy"].resources), 0)

        # ACK everything but the Listener; NACK that (version_info: the previous one, none).
        for r in first:
            t = short(r.type_url)
            if t == "Listener":
                s.send(sotw_request(t, version="", nonce=r.nonce,
                                    error="python says no: 127.0.0.1:1 in use"))
            else:
                s.send(sotw_request(t, version=r.version_info, nonce=r.nonce))
        n = self.wait_node(ch, "py-sotw", lambda n: any(t.nacked_version for t in n.types),
                           "the NACK in Status")
        self.assertTrue(n.connected)
        self.assertEqual((n.group, n.api), ("py", "sotw"))
        self.assertIn("grpc-python", n.user_agent)
        self.assertFalse(n.in_sync)
        types = {t.type: t for t in n.types}
        self.assertEqual(sorted(types), sorted(TYPES))
        for t in TYPES[:-1]:
            self.assertEqual((types[t].acked_version, types[t].nacked_version), (v1, ""), t)
        self.assertEqual(types["Listener"].acked_version, "")
        self.assertEqual(types["Listener"].nacked_version, v1)
        self.assertEqual(types["Listener"].nack_reason, "python says no: 127.0.0.1:1 in use")
        self.assertGreater(types["Listener"].nack_time.seconds, 0)
        # sluicectl shows the same as Python does.
        self.assertIn("python says no", cp.ctl("status").stdout)

        # A change to a cluster, the route table and the listener: pushed in the same order,
        # and only the types that changed.
        r = cp.apply(config({"a": A, "b": B, "c": C}, [("/x", "c")],
                            listener_name="public2"), group="py")
        v2 = r.stdout.split()[-1]
        pushed = s.recv_types(3)
        self.assertEqual([short(p.type_url) for p in pushed],
                         ["Cluster", "RouteTable", "Listener"])
        for p in pushed:
            self.assertEqual(p.version_info, v2)
            s.send(sotw_request(short(p.type_url), version=v2, nonce=p.nonce))
        self.assertEqual(sorted(unpack(a, "Cluster").name for a in pushed[0].resources),
                         ["a", "b", "c"])
        self.assertEqual([unpack(a, "Listener").name for a in pushed[2].resources],
                         ["public2"], "SotW: the whole set; public is gone by being absent")
        n = self.wait_node(ch, "py-sotw", lambda n: n.in_sync, "py-sotw in sync")
        self.assertFalse(any(t.nacked_version or t.nack_reason for t in n.types))

        # A stale nonce (the first Listener response's) with an error is ignored.
        s.send(sotw_request("Listener", version="", nonce=by_type["Listener"].nonce,
                            error="late NACK of an old response"))
        # Barrier: the next push is the RouteTable alone, so nothing else came in between.
        cp.apply(config({"a": A, "b": B, "c": C}, [("/x", "b")], listener_name="public2"),
                 group="py")
        p = s.recv()
        self.assertEqual(short(p.type_url), "RouteTable")
        s.send(sotw_request("RouteTable", version=p.version_info, nonce=p.nonce))
        n = self.wait_node(ch, "py-sotw", lambda n: n.in_sync, "py-sotw in sync")
        self.assertFalse(any(t.nack_reason for t in n.types), n)

        # Half-close: the server finishes the stream, Status shows the node disconnected.
        s.half_close()
        wait_until(lambda: s.responses.qsize() and s.responses.queue[-1] is None, timeout=5,
                   message="the server to end the stream after a half-close")
        self.assertIsNone(s.error, "a half-close ends the stream with OK")
        self.wait_node(ch, "py-sotw", lambda n: not n.connected, "py-sotw disconnected")

    def test_sotw_resume_with_current_versions_is_answered_by_nothing_but_is_up(self):
        """A node that resumes with the versions it has gets no response (xDS: nothing
        changed), yet the stream must show it is up: the data plane's control_plane.connected
        (since 6865d3f) waits for the server's initial metadata."""
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        ch = self.channel(cp)
        v1 = cp.apply(config({"a": A, "b": B}, [("/x", "a")])).stdout.split()[-1]
        s = self.stream(ch)
        for i, t in enumerate(TYPES):
            s.send(sotw_request(t, node=Node(id="py-resume") if i == 0 else None, version=v1))
        metadata = {}

        def read_metadata():
            metadata["md"] = s.call.initial_metadata()
        reader = threading.Thread(target=read_metadata, daemon=True)
        reader.start()
        n = self.wait_node(ch, "py-resume", lambda n: n.in_sync, "py-resume in sync")
        self.assertTrue(n.connected)
        reader.join(scaled(2.0))
        metadata_before_any_response = "md" in metadata
        # Barrier: a RouteTable-only change is the first response: nothing was sent for the
        # types the node already had.
        cp.apply(config({"a": A, "b": B}, [("/x", "b")]))
        p = s.recv()
        self.assertEqual(short(p.type_url), "RouteTable")
        self.assertTrue(metadata_before_any_response,
                        "sluice-cp sent no initial metadata on a resumed stream before its first"
                        " response (2 s): a data plane cannot tell the stream is up")

    def test_named_subscription_is_served_as_wildcard(self):
        A, B = self.ups["A"], self.ups["B"]
        cp = self.start_cp()
        ch = self.channel(cp)
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]))
        s = self.stream(ch)
        r = sotw_request("Cluster", node=Node(id="py-named"))
        r.resource_names.append("a")
        s.send(r)
        got = s.recv()
        self.assertEqual(sorted(unpack(a, "Cluster").name for a in got.resources), ["a", "b"])
        d = self.stream(ch, delta=True)
        r = delta_request("Cluster", node=Node(id="py-named-d"))
        r.resource_names_subscribe.append("b")
        d.send(r)
        self.assertEqual(sorted(x.name for x in d.recv().resources), ["a", "b"])
        cp.wait_log(r"py-named.*names resources; every resource is sent")

    def test_same_node_id_twice_newest_stream_is_shown(self):
        A = self.ups["A"]
        cp = self.start_cp()
        ch = self.channel(cp)
        cp.apply(config({"a": A}, [("/x", "a")]))
        streams = []
        for _ in range(2):
            s = self.stream(ch)
            for i, t in enumerate(TYPES):
                s.send(sotw_request(t, node=Node(id="py-dup", cluster="dups") if i == 0
                                    else None))
            for r in s.recv_types(len(TYPES)):
                s.send(sotw_request(short(r.type_url), version=r.version_info, nonce=r.nonce))
            streams.append(s)
        self.wait_node(ch, "py-dup", lambda n: n.in_sync, "py-dup in sync")
        # The older stream going away does not make the node disconnected.
        streams[0].cancel()
        cp.wait_log(r"node \"py-dup\" disconnected")
        n = self.node_status(ch, "py-dup")
        self.assertTrue(n.connected and n.in_sync, n)
        self.assertEqual([x.id for x in self.status(ch).nodes].count("py-dup"), 1)
        streams[1].cancel()
        self.wait_node(ch, "py-dup", lambda n: not n.connected, "py-dup disconnected")

    def test_status_lists_nodes_by_group_then_id(self):
        A = self.ups["A"]
        cp = self.start_cp()
        ch = self.channel(cp)
        cp.apply(config({"a": A}, [("/x", "a")]))
        ids = [("zeta", "b-node"), ("alpha", "z-node"), ("alpha", "a-node"), ("mid", "m")]
        for group, node_id in ids:
            s = self.stream(ch)
            s.send(sotw_request("Cluster", node=Node(id=node_id, cluster=group)))
            s.recv()
        st = self.status(ch)
        self.assertEqual([(n.group, n.id) for n in st.nodes], sorted(ids))
        self.assertEqual([g.name for g in st.groups], ["alpha", "default", "mid", "zeta"])
        self.assertEqual({g.source for g in st.groups if g.name != "default"},
                         {"default group"})

    def test_delta_resume_with_initial_versions_gets_only_changes(self):
        A, B, C = (self.ups[n] for n in "ABC")
        cp = self.start_cp()
        ch = self.channel(cp)
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]))
        node = Node(id="py-delta")

        s = self.stream(ch, delta=True)
        for i, t in enumerate(TYPES):
            s.send(delta_request(t, node=node if i == 0 else None))
        first = s.recv_types(len(TYPES))
        self.assertEqual([short(r.type_url) for r in first], TYPES)
        known = {}
        for r in first:
            t = short(r.type_url)
            self.assertEqual(list(r.removed_resources), [])
            known[t] = {}
            for res in r.resources:
                self.assertTrue(res.version, "%s %s without a version" % (t, res.name))
                self.assertEqual(unpack(res.resource, t).name, res.name)
                known[t][res.name] = res.version
            s.send(delta_request(t, nonce=r.nonce))
        self.assertEqual(sorted(known["Cluster"]), ["a", "b"])
        self.assertEqual(sorted(known["RouteTable"]), ["main"])
        n = self.wait_node(ch, "py-delta", lambda n: n.in_sync, "py-delta in sync")
        self.assertEqual((n.api, n.group), ("delta", "default"))
        s.cancel()
        self.wait_node(ch, "py-delta", lambda n: not n.connected, "py-delta disconnected")

        # While it is away: b changes, c is added, a and everything else stay.
        cp.apply(config({"a": A, "b": C, "c": C}, [("/x", "a")]))
        s2 = self.stream(ch, delta=True)
        initial = dict(known)
        initial["Cluster"] = dict(known["Cluster"], zombie="0123")  # one it should not have
        for i, t in enumerate(TYPES):
            s2.send(delta_request(t, node=node if i == 0 else None, initial=initial[t]))
        resumed = {short(r.type_url): r for r in s2.recv_types(len(TYPES))}
        self.assertEqual(sorted(resumed), sorted(TYPES))
        cluster = resumed["Cluster"]
        self.assertEqual(sorted(r.name for r in cluster.resources), ["b", "c"],
                         "only the changed and the new cluster")
        got = {r.name: r.version for r in cluster.resources}
        self.assertNotEqual(got["b"], known["Cluster"]["b"])
        self.assertEqual(list(cluster.removed_resources), ["zombie"])
        self.assertEqual(unpack([r for r in cluster.resources if r.name == "b"][0].resource,
                                "Cluster").endpoints[0].port, C.port)
        for t in TYPES:
            if t != "Cluster":
                self.assertEqual((len(resumed[t].resources), len(resumed[t].removed_resources)),
                                 (0, 0), "%s did not change: nothing to send" % t)
        for t in TYPES:
            s2.send(delta_request(t, nonce=resumed[t].nonce))
        self.wait_node(ch, "py-delta", lambda n: n.in_sync and n.connected,
                       "py-delta in sync after resuming")

        # A removal is pushed as a name.
        cp.apply(config({"a": A, "b": C}, [("/x", "a")]))
        p = s2.recv()
        self.assertEqual(short(p.type_url), "Cluster")
        self.assertEqual((list(p.removed_resources), len(p.resources)), (["c"], 0))


class HostileInputTest(GrpcTestCase):

    def setUp(self):
        A, B = self.ups["A"], self.ups["B"]
        self.cp = cp = self.start_cp()
        cp.apply(config({"a": A, "b": B}, [("/x", "a")]))
        # A real data plane, to show sluice-cp still does its job afterwards.
        self.dp = self.start_dp(cp, "real-1")
        self.ch = self.channel(cp)

    def assert_still_serving(self, label):
        """Status answers, and a change reaches the real data plane within 1 s."""
        self.assertTrue(self.cp.running(), "sluice-cp exited after %s:\n%s"
                        % (label, self.cp.stderr()[-4000:]))
        st = self.status(self.ch)
        self.assertIn("real-1", [n.id for n in st.nodes])
        current = assert_served(self.dp.listener_port(), "/x", lambda r: r.status == 200)
        target = "B" if current.header("x-upstream") == "A" else "A"
        t0 = time.monotonic()
        self.cp.apply(config({"a": self.ups["A"], "b": self.ups["B"]},
                             [("/x", target.lower())]))
        wait_served(self.dp.listener_port(), "/x", routed_to(target), since=t0, limit=1.5)
        self.cp.wait_in_sync("real-1")

    def test_unknown_type_url_is_ignored_and_the_stream_keeps_working(self):
        s = self.stream(self.ch)
        s.send(ads_pb2.DiscoveryRequest(type_url="type.googleapis.com/sluice.config.v1.Widget",
                                        node=Node(id="py-odd")))
        s.send(ads_pb2.DiscoveryRequest(type_url=""))
        s.send(ads_pb2.DiscoveryRequest(type_url="not a url at all \x00\u00e9"))
        s.send(sotw_request("Cluster"))
        r = s.recv()
        self.assertEqual(short(r.type_url), "Cluster", "the first answer is for Cluster")
        self.cp.wait_log(r"unknown type \"type\.googleapis\.com/sluice\.config\.v1\.Widget\"")
        # Delta too.
        d = self.stream(self.ch, delta=True)
        d.send(ads_pb2.DeltaDiscoveryRequest(type_url=url("Nope"), node=Node(id="py-odd-d")))
        d.send(delta_request("Listener"))
        self.assertEqual(short(d.recv().type_url), "Listener")
        self.assert_still_serving("unknown type URLs")

    def test_garbage_and_stale_nonces_change_nothing(self):
        s = self.stream(self.ch)
        node = Node(id="py-nonce", cluster="default")
        for i, t in enumerate(TYPES):
            s.send(sotw_request(t, node=node if i == 0 else None))
        first = s.recv_types(len(TYPES))
        for r in first:
            s.send(sotw_request(short(r.type_url), version=r.version_info, nonce=r.nonce))
        n = self.wait_node(self.ch, "py-nonce", lambda n: n.in_sync, "py-nonce in sync")
        before = {t.type: (t.acked_version, t.nacked_version) for t in n.types}
        garbage = ["garbage", "0", "-1", "x" * 100000, "\u2603" * 1000, " ", first[0].nonce + "0"]
        for g in garbage:
            for t in TYPES:
                s.send(sotw_request(t, version="999999", nonce=g, error="bogus NACK"))
                s.send(sotw_request(t, version="42", nonce=g))
        # Nonces from another stream are garbage on this one.
        other = self.stream(self.ch)
        other.send(sotw_request("Listener", node=Node(id="py-other")))
        foreign = other.recv().nonce
        s.send(sotw_request("Listener", version="", nonce=foreign, error="foreign nonce"))
        s.send(sotw_request("UnknownType", nonce="zzz", error="nack of an unknown type"))
        # Barrier: a real change, answered on the same stream after all of the above.
        self.cp.apply(config({"a": self.ups["A"], "b": self.ups["B"]}, [("/x", "b")]))
        p = s.recv()
        self.assertEqual(short(p.type_url), "RouteTable")
        n = self.node_status(self.ch, "py-nonce")
        after = {t.type: (t.acked_version, t.nacked_version) for t in n.types}
        self.assertEqual(after, before, "garbage nonces moved the node's state")
        self.assertFalse(any(t.nack_reason for t in n.types), n)
        self.assertTrue(n.connected)
        self.assert_still_serving("garbage nonces")

    def test_silent_and_dropped_streams(self):
        # Streams that send nothing: cancelled, half-closed, or left to the channel's close.
        for i in range(20):
            s = AdsStream(self.ch, delta=bool(i % 2))
            if i % 3 == 0:
                s.half_close()
            else:
                s.cancel()
        ch2 = grpc.insecure_channel(self.cp.address)
        for i in range(10):
            AdsStream(ch2, delta=bool(i % 2))
        ch2.close()
        self.assertEqual(len(self.status(self.ch).nodes), 1, "nodes that never said who they are")

        # Many streams opened and dropped, from several threads, each identifying itself (some
        # right after their first request, some mid-responses, some after ACKing).
        errors = []
        answered = set()  # ids of the streams that got a response: sluice-cp knows them

        def flood(k):
            try:
                ch = grpc.insecure_channel(self.cp.address)
                for i in range(25):
                    s = AdsStream(ch, delta=bool((k + i) % 2))
                    node = Node(id="flood-%d-%d" % (k, i), cluster="flood")
                    if s.delta:
                        s.send(delta_request("Cluster", node=node))
                        s.send(delta_request("Listener"))
                    else:
                        s.send(sotw_request("Cluster", node=node))
                        s.send(sotw_request("Listener"))
                    if i % 3 == 1:
                        s.recv()
                        answered.add(node.id)
                    elif i % 3 == 2:
                        r = s.recv()
                        answered.add(node.id)
                        s.send(sotw_request("Cluster", version=r.version_info, nonce=r.nonce)
                               if not s.delta else delta_request("Cluster", nonce=r.nonce))
                    s.cancel()
                ch.close()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=flood, args=(k,)) for k in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(60))
        self.assertEqual(errors, [])
        flood_s = time.monotonic() - t0

        self.assertEqual(len(answered), 8 * 16)  # i % 3 != 0 of 25 per thread
        seen = {}

        def all_gone():
            nodes = [n for n in self.status(self.ch).nodes if n.id.startswith("flood-")]
            seen["listed"] = len(nodes)
            seen["missing"] = sorted(answered - {n.id for n in nodes})
            seen["connected"] = sorted(n.id for n in nodes if n.connected)
            return not seen["connected"] and not seen["missing"]
        try:
            wait_until(all_gone, timeout=10, interval=0.1,
                       message="every answered flood node listed, none still connected")
        except AssertionError as e:
            raise AssertionError("%s: %d listed, missing %s, still connected %s"
                                 % (e, seen["listed"], seen["missing"], seen["connected"]))
        for n in self.status(self.ch).nodes:
            if n.id.startswith("flood-"):
                self.assertEqual(n.group, "flood")
        print("\n  200 streams opened and dropped in %.2fs" % flood_s)
        self.assert_still_serving("200 streams opened and dropped")

    def test_bytes_that_are_not_grpc(self):
        port = int(self.cp.address.rsplit(":", 1)[1])
        payloads = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x00" * 64,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 1000,  # preface, then junk frames
            b"PRI * HTTP/2.0\r\n\r\n",  # a truncated preface
            b"",
        ]
        for data in payloads:
            with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as sock:
                if data:
                    sock.sendall(data)
                try:
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(scaled(5))
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass
        # And a connection that is opened and left idle while others work.
        idle = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        self.addCleanup(idle.close)
        self.assert_still_serving("non-gRPC bytes")


if __name__ == "__main__":
    harness.main()
