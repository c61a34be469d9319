"""Config swaps under load: 50 changes pushed through sluice-cp while keep-alive clients send
requests without pause through the data plane. Every request must succeed: no failed request,
no reset, no connection closed under a client (issue 3 §5)."""

import http.client
import threading
import time

import cp_harness
import harness
from harness import SluiceTestCase, scaled, wait_until

CLIENTS = 8


class LoadClient:
    """Keep-alive HTTP/1.1 clients, each looping over `paths` on one connection until stopped.
    Records every outcome; a connection is only re-opened if the proxy closed it gracefully
    (counted separately), never silently after an error."""

    def __init__(self, port, paths, clients=CLIENTS):
        self.port = port
        self.paths = paths
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.bad_status = []
        self.errors = []
        self.graceful_closes = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(scaled(10))

    def total(self):
        with self.lock:
            return self.ok + len(self.bad_status) + len(self.errors)

    def _run(self, index):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(10))
        i = index
        while not self.stop_flag.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                conn.request("GET", path, headers={"host": "example.com"})
                r = conn.getresponse()
                body = r.read()
                closing = (r.getheader("connection") or "").lower() == "close"
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.bad_status.append((path, r.status, body[:200]))
                    if closing:
                        self.graceful_closes += 1
                if closing:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=scaled(10))
            except Exception as e:  # a reset, a timeout, a broken response: all failures
                with self.lock:
                    self.errors.append((path, repr(e)))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(10))
        conn.close()


class ConfigSwapUnderLoadTest(SluiceTestCase):

    def test_fifty_changes_under_keepalive_load(self):
        cp = cp_harness.ControlPlane()
        self.addCleanup(cp.cleanup)
        a = self.start_upstream("a", default_action="fixed")
        b = self.start_upstream("b", default_action="fixed")
        c = self.start_upstream("c", default_action="fixed")

        def config(step):
            """The declared config after `step` changes (cycled through five kinds)."""
            kind_counts = [(step + 4 - k) // 5 for k in range(5)]  # changes of each kind so far
            # Endpoints change (kind 2) and weights change (kind 3) independently.
            endpoint_sets = [[a, b], [a], [b]]
            weight = 1 + kind_counts[3] % 5
            api_eps = [(u, weight if i == 0 else 3)
                       for i, u in enumerate(endpoint_sets[kind_counts[2] % 3])]
            routes = [("/api", "api"), ("/other", "other")]
            if kind_counts[0] > kind_counts[1]:
                routes.insert(0, ("/extra%d" % kind_counts[0], "other"))
            limits = {"max_request_headers_kb": 60 + kind_counts[4] % 2,
                      "idle_timeout": "%ds" % (60 + kind_counts[4])}
            d = cp_harness.declared({"other": [c]}, routes=routes, limits=limits,
                                    clusters=[{"name": "api", "eds": True,
                                               "connect_timeout": "1s"}])
            d["cluster_endpoints"] = [{"cluster_name": "api", "endpoints": [
                    harness.endpoint(u, w) for u, w in api_eps]}]
            return d

        cp.apply(config(0), group="load")
        dp = self.start_sluice(cp_harness.dp_bootstrap(cp, "load-1", group="load"),
                               concurrency=2)
        port = dp.listener_port("public")
        self.assertEqual(harness.request(port, path="/api/x").status, 200)

        load = LoadClient(port, ["/api/x", "/other/y"])
        load.start()
        self.addCleanup(load.stop)
        wait_until(lambda: load.total() >= 200, timeout=20, message="load running")

        start = time.monotonic()
        for step in range(1, 51):
            before = load.total()
            out = cp.apply(config(step), group="load").stdout
            self.assertIn("applied", out, "change %d must change the config" % step)
            cp.wait_in_sync("load-1", timeout=10)
            # Traffic keeps flowing across every swap.
            wait_until(lambda: load.total() > before + 20, timeout=10,
                       message="requests after change %d" % step)
        elapsed = time.monotonic() - start
        load.stop()

        types = ("Cluster", "ClusterEndpoints", "AuthPolicy", "RateLimitPolicy", "RouteTable",
                 "Listener")
        accepted = sum(dp.stat("control_plane.%s.update_accepted" % t) for t in types)
        print("\n50 changes in %.1fs; %d requests: %d ok, %d bad status, %d errors, "
              "%d graceful closes; %d updates accepted"
              % (elapsed, load.total(), load.ok, len(load.bad_status), len(load.errors),
                 load.graceful_closes, accepted))
        self.assertEqual(load.errors, [], "requests failed or were reset during swaps")
        self.assertEqual(load.bad_status, [], "non-200 responses during swaps")
        self.assertEqual(load.graceful_closes, 0,
                         "connections were closed under the clients (listener limits change "
                         "must not drain a listener whose address is unchanged)")
        self.assertGreater(load.ok, 1000)
        self.assertEqual(dp.stat("control_plane.Listener.update_rejected"), 0)
        # Every change reached the data plane (one update each, after the 6 initial ones):
        # 10 listener, 20 route table and 20 endpoint changes.
        self.assertEqual(sum(dp.stat("control_plane.%s.update_rejected" % t) for t in types), 0)
        self.assertEqual(accepted, 6 + 50)
        self.assertEqual(dp.stat("control_plane.Listener.update_accepted"), 1 + 10)
        self.assertEqual(dp.stat("control_plane.RouteTable.update_accepted"), 1 + 20)
        self.assertEqual(dp.stat("control_plane.ClusterEndpoints.update_accepted"), 1 + 20)
        # Every upstream served traffic (endpoint changes were applied).
        for u in (a, b, c):
            self.assertGreater(u.request_count(), 0, u.name)

    def test_endpoint_changes_keep_connections_to_endpoints_that_stay(self):
        # An endpoint-set or weight change rebuilds the cluster on every worker; the idle
        # keep-alive connections to endpoints that stay are taken over, not opened again.
        cp = cp_harness.ControlPlane()
        self.addCleanup(cp.cleanup)
        a = self.start_upstream("a")
        b = self.start_upstream("b")

        def config(endpoints):
            d = cp_harness.declared({}, routes=[("/", "api")],
                                    clusters=[{"name": "api", "eds": True}])
            d["cluster_endpoints"] = [{"cluster_name": "api", "endpoints": [
                harness.endpoint(u, w) for u, w in endpoints]}]
            return d

        cp.apply(config([(a, 1)]), group="keep")
        dp = self.start_sluice(cp_harness.dp_bootstrap(cp, "keep-1", group="keep"),
                               concurrency=1)
        port = dp.listener_port("public")
        conn = self.conn(port)
        for _ in range(3):
            self.assertEqual(harness.echo(conn.request("GET", "/x"))["upstream"], "a")
        self.assertEqual(a.connections_accepted, 1)

        for step, endpoints in enumerate([[(a, 5)], [(a, 5), (b, 1)], [(a, 2)]]):
            cp.apply(config(endpoints), group="keep")
            cp.wait_in_sync("keep-1")
            served_by_a = 0
            for _ in range(12):
                if harness.echo(conn.request("GET", "/x"))["upstream"] == "a":
                    served_by_a += 1
            self.assertGreater(served_by_a, 0)
            self.assertEqual(a.connections_accepted, 1,
                             "change %d opened a new connection to an endpoint that stayed"
                             % step)
        self.assertEqual(dp.stat("control_plane.ClusterEndpoints.update_accepted"), 4)


if __name__ == "__main__":
    harness.main()
