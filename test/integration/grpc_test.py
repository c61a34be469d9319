"""Real gRPC through sluice (Debian's python3-grpcio, client and server, raw bytes with generic
handlers: no protoc): unary, server-streaming, client-streaming and bidi calls, errors with
custom trailers, deadlines (the client's and the route's max_grpc_timeout), 10 MiB streamed
each way, trailers-only local replies and grpc_stats, over an h2c listener and a
`protocol: HTTP2` upstream cluster.

SLUICE_TEST_H2=0 skips it. With GRPC_TEST_DIRECT=1 the client
talks to the server directly (checks the test itself; proxy-only tests skip).

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/grpc_test.py
"""

import os
import threading
import time
import unittest
from concurrent import futures

from harness import SluiceTestCase, bootstrap, cluster, listener, route, route_table, vhost

try:
    import grpc
except ImportError:  # python3-grpcio not installed
    grpc = None

H2 = os.environ.get("SLUICE_TEST_H2", "1") == "1"  # SLUICE_TEST_H2=0 skips them
DIRECT = os.environ.get("GRPC_TEST_DIRECT") == "1"
MIB = 1024 * 1024
SERVICE = "test.Echo"


def _pattern(i, n):
    return bytes([(i + k) % 251 for k in range(256)]) * (n // 256) + bytes(n % 256)


class EchoServicer:
    """Raw-bytes handlers of test.Echo."""

    def __init__(self):
        self.metadata = []  # invocation metadata of each call, in order
        self.remaining = []  # the deadline each call arrived with (seconds left, or None)
        self.lock = threading.Lock()

    def _seen(self, context):
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))
            self.remaining.append(context.time_remaining())

    def unary(self, request, context):
        self._seen(context)
        context.send_initial_metadata((("x-initial", "i"),))
        context.set_trailing_metadata((("x-trailer", "t"),))
        return b"echo:" + request

    def server_stream(self, request, context):
        self._seen(context)
        count, size = (int(x) for x in request.decode().split(","))
        for i in range(count):
            yield _pattern(i, size)

    def client_stream(self, request_iterator, context):
        self._seen(context)
        total = 0
        ok = True
        for i, msg in enumerate(request_iterator):
            total += len(msg)
            ok = ok and msg == _pattern(i, len(msg))
        return b"%d,%s" % (total, b"ok" if ok else b"bad")

    def bidi(self, request_iterator, context):
        self._seen(context)
        for msg in request_iterator:
            yield msg[::-1]

    def fail(self, request, context):
        self._seen(context)
        context.set_trailing_metadata((("x-reason", "because"), ("x-detail-bin", b"\x00\xff")))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "precondition failed: " +
                      request.decode())

    def slow(self, request, context):
        self._seen(context)
        delay = float(request.decode() or "5")
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and context.is_active():
            time.sleep(0.01)
        return b"late"

    def handler(self):
        h = grpc.unary_unary_rpc_method_handler
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": h(self.unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "Fail": h(self.fail),
            "Slow": h(self.slow),
            "Capped": h(self.slow),
        })


@unittest.skipUnless(grpc is not None, "python3-grpcio is not installed")
@unittest.skipUnless(H2 or DIRECT, "SLUICE_TEST_H2=0")
class GrpcTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.servicer = EchoServicer()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        cls.server.add_generic_rpc_handlers((cls.servicer.handler(),))
        cls.server_port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.addClassCleanup(cls.server.stop, None)
        if DIRECT:
            cls.sluice = None
            target = "127.0.0.1:%d" % cls.server_port
        else:
            routes = [
                route(prefix="/%s/Capped" % SERVICE, cluster="grpc",
                      route={"timeout": "30s", "max_grpc_timeout": "0.3s"}),
                route(prefix="/%s/" % SERVICE, cluster="grpc", route={"timeout": "60s"}),
            ]
            cfg = bootstrap(
                [listener("public", "main",
                          http_filters=[{"name": "grpc_stats"}, {"name": "router"}])],
                [route_table("main", [vhost("all", ["*"], routes)])],
                [cluster("grpc", [cls.server_port], protocol="HTTP2")])
            cls.sluice = cls.start_class_sluice(cfg, concurrency=2)
            target = "127.0.0.1:%d" % cls.sluice.listener_port("public")
        options = [("grpc.max_receive_message_length", 16 * MIB),
                   ("grpc.max_send_message_length", 16 * MIB)]
        cls.channel = grpc.insecure_channel(target, options=options)
        cls.addClassCleanup(cls.channel.close)
        grpc.channel_ready_future(cls.channel).result(timeout=10)

    def method(self, name, kind="unary_unary"):
        # No serializers: requests and responses are raw bytes.
        return getattr(self.channel, kind)("/%s/%s" % (SERVICE, name))

    def needs_proxy(self):
        if self.sluice is None:
            self.skipTest("talks to the server directly (GRPC_TEST_DIRECT=1)")

    def test_unary(self):
        resp, call = self.method("Unary").with_call(b"hi", metadata=(("x-client", "c"),),
                                                    timeout=10)
        self.assertEqual(resp, b"echo:hi")
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertIn(("x-initial", "i"), tuple(call.initial_metadata()))
        self.assertIn(("x-trailer", "t"), tuple(call.trailing_metadata()))
        seen = self.servicer.metadata[-1]
        self.assertEqual(seen.get("x-client"), "c")

    def test_many_unary_calls_share_connections(self):
        f = self.method("Unary")
        calls = [f.future(b"%d" % i, timeout=10) for i in range(200)]
        self.assertEqual([c.result() for c in calls], [b"echo:%d" % i for i in range(200)])

    def test_server_streaming(self):
        msgs = list(self.method("ServerStream", "unary_stream")(b"20,1000", timeout=10))
        self.assertEqual(len(msgs), 20)
        self.assertEqual(msgs, [_pattern(i, 1000) for i in range(20)])

    def test_client_streaming(self):
        resp = self.method("ClientStream", "stream_unary")(
            iter([_pattern(i, 3000) for i in range(50)]), timeout=10)
        self.assertEqual(resp, b"150000,ok")

    def test_bidi(self):
        # Ping-pong: each reply arrives before the next request is sent.
        cond = threading.Condition()

        def gen():
            for i in range(20):
                with cond:
                    cond.wait_for(lambda: len(replies) >= i, timeout=10)
                yield b"msg-%d" % i

        replies = []
        for r in self.method("Bidi", "stream_stream")(gen(), timeout=20):
            with cond:
                replies.append(r)
                cond.notify_all()
        self.assertEqual(replies, [(b"msg-%d" % i)[::-1] for i in range(20)])

    def test_error_with_custom_trailers(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.method("Fail")(b"why", timeout=10)
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.details(), "precondition failed: why")
        trailers = dict(e.trailing_metadata())
        self.assertEqual(trailers.get("x-reason"), "because")
        self.assertEqual(trailers.get("x-detail-bin"), b"\x00\xff")

    def test_client_deadline(self):
        start = time.monotonic()
        self.method("Unary")(b"x", timeout=10)
        self.assertGreater(self.servicer.remaining[-1], 5)  # the client's deadline, passed on
        with self.assertRaises(grpc.RpcError) as cm:
            self.method("Slow")(b"5", timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - start, 3)

    def test_route_max_grpc_timeout(self):
        self.needs_proxy()
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.method("Capped")(b"5", timeout=20)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # Sluice's timer and the server's own deadline (the 300m it was told) race: either
        # ends the call at 300 ms.
        self.assertIn(cm.exception.details(), ("upstream request timeout", "Deadline Exceeded"))
        self.assertLess(time.monotonic() - start, 3)
        # The server was told the deadline sluice enforces (grpc-timeout rewritten to 300m).
        self.assertIsNotNone(self.servicer.remaining[-1])
        self.assertLessEqual(self.servicer.remaining[-1], 0.3)

    def test_no_route_is_unimplemented(self):
        self.needs_proxy()
        with self.assertRaises(grpc.RpcError) as cm:
            self.channel.unary_unary("/other.Svc/Method")(b"x", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(cm.exception.details(), "no route matched")

    def test_10mib_streamed_down(self):
        total = 0
        for i, msg in enumerate(self.method("ServerStream", "unary_stream")(
                b"10,%d" % MIB, timeout=60)):
            self.assertEqual(msg, _pattern(i, MIB))
            total += len(msg)
        self.assertEqual(total, 10 * MIB)

    def test_10mib_streamed_up(self):
        resp = self.method("ClientStream", "stream_unary")(
            (_pattern(i, MIB) for i in range(10)), timeout=60)
        self.assertEqual(resp, b"%d,ok" % (10 * MIB))

    def test_10mib_bidi(self):
        n = 0
        for i, r in enumerate(self.method("Bidi", "stream_stream")(
                (_pattern(i, MIB) for i in range(10)), timeout=60)):
            self.assertEqual(r, _pattern(i, MIB)[::-1])
            n += 1
        self.assertEqual(n, 10)

    def test_grpc_stats(self):
        self.needs_proxy()
        before = self.sluice.stat("grpc.test.Echo.Unary.total")
        for _ in range(3):
            self.method("Unary")(b"s", timeout=10)
        with self.assertRaises(grpc.RpcError):
            self.method("Fail")(b"s", timeout=10)
        self.assertEqual(self.sluice.stat("grpc.test.Echo.Unary.total") - before, 3)
        self.assertGreaterEqual(self.sluice.stat("grpc.test.Echo.Unary.status.0"), 3)
        self.assertGreaterEqual(self.sluice.stat("grpc.test.Echo.Fail.status.9"), 1)


if __name__ == "__main__":
    unittest.main()
