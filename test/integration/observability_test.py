"""Metrics and tracing through the real binary, in front of the harness's echo upstream.

  * per-route counters by status class, bytes in and out, and the request / upstream /
    gateway-time histograms; per-cluster request and gateway-time histograms; all of them in
    /stats and /stats/prometheus with their labels;
  * `metrics.per_consumer`: requests per route and consumer (key-auth consumers), the cap on
    distinct consumers (the rest count as consumer="other"), anonymous requests not counted;
  * W3C Trace Context: a valid traceparent continued (trace id and sampled flag kept, Sluice's
    span id as the upstream's parent), invalid or repeated ones replaced by a new trace (and
    their tracestate dropped), `sample_rate` 0 and 1, the trace id in the access log; without
    `tracing` a client's traceparent passes through untouched;
  * spans exported over OTLP/HTTP JSON to a collector written here: ids, parent, name,
    attributes, error status, batching; the collector down or failing never fails a request;
  * config errors at their field (`sluice --validate`).

Run by hand: SLUICE_BIN=$PWD/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/observability_test.py
"""

import json
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import (Conn, SluiceTestCase, bootstrap, cluster, echo, listener, main,
                     make_tempdir, parse_prometheus, route, route_table, run_validate, scaled,
                     vhost, wait_until)

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def key_auth_policy():
    return {"name": "keys", "key_auth": {},
            "consumers": [{"username": u, "keyauth_credentials": [{"key": u + "-key"}]}
                          for u in ("alice", "bob", "carol")]}


class Collector:
    """An OTLP/HTTP collector: records each POST's JSON body; answers `status`."""

    def __init__(self):
        self.bodies = []
        self.paths = []
        self.status = 200
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.paths.append((self.path, self.headers.get("content-type")))
                    status = outer.status
                    if status == 200:
                        outer.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        out = []
        with self.lock:
            for b in self.bodies:
                for rs in b["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        out.extend(ss["spans"])
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(span):
    out = {}
    for a in span["attributes"]:
        v = a["value"]
        out[a["key"]] = v["stringValue"] if "stringValue" in v else int(v["intValue"])
    return out


class MetricsTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        b = bootstrap(
            [listener(http_filters=[{"name": "auth"}, {"name": "router"}],
                      metrics={"per_consumer": True, "max_consumers": 2})],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/api", cluster="up", name="api", auth="keys"),
                route(prefix="/plain", cluster="up", name="plain"),
                {"name": "local", "match": {"prefix": "/local"},
                 "direct_response": {"status": 503, "body": "down"}},
            ])])],
            [cluster("up", [cls.up])])
        b["static_resources"]["auth_policies"] = [key_auth_policy()]
        cls.sluice = cls.start_class_sluice(b)
        cls.port = cls.sluice.listener_port()

    def get(self, path, headers=(), body=None):
        with Conn(self.port) as c:
            return c.request("GET" if body is None else "POST", path, headers=list(headers),
                             body=body)

    def test_route_and_cluster_stats(self):
        before = self.sluice.stats()
        hist_before = self.sluice.histograms()
        for _ in range(3):
            self.assertStatus(self.get("/plain/a", [("x-sleep-ms", "30")], b"x" * 50), 200)
        self.assertStatus(self.get("/plain/b", [("x-status", "404")]), 404)
        self.assertStatus(self.get("/local"), 503)

        def delta(name):
            return self.sluice.stat(name) - before.get(name, 0)
        wait_until(lambda: delta("route.plain.rq_total") == 4)
        self.assertEqual(delta("route.plain.rq_2xx"), 3)
        self.assertEqual(delta("route.plain.rq_4xx"), 1)
        self.assertEqual(delta("route.plain.rq_5xx"), 0)
        self.assertEqual(delta("route.local.rq_5xx"), 1)
        self.assertGreater(delta("route.plain.bytes_sent"), 4 * 100)
        self.assertEqual(delta("route.plain.bytes_received"), 3 * 50, "request body bytes")
        h = self.sluice.histograms()

        def count(name):
            return h[name]["count"] - hist_before.get(name, {"count": 0})["count"]
        self.assertEqual(count("route.plain.rq_time"), 4)
        self.assertEqual(count("route.plain.upstream_rq_time"), 4)
        self.assertEqual(count("route.plain.gateway_time"), 4)
        self.assertEqual(count("cluster.up.rq_time"), 4)
        self.assertEqual(count("cluster.up.gateway_time"), 4)
        # A direct response has no upstream time: all of it is the gateway's.
        self.assertEqual(count("route.local.gateway_time"), 1)
        self.assertEqual(h["route.local.upstream_rq_time"]["count"], 0)
        # The 30 ms the upstream slept are upstream time, not gateway time.
        _, _, body = self.sluice.admin_get("/stats/prometheus")
        _, samples = parse_prometheus(body.decode())

        def sample(name, **labels):
            for n, l, v in samples:
                if n == name and all(l.get(k) == val for k, val in labels.items()):
                    return v
            raise AssertionError("no sample %s %r" % (name, labels))
        self.assertEqual(sample("sluice_route_rq_xx_total", route="plain", code_class="2xx"),
                         before.get("route.plain.rq_2xx", 0) + 3)
        up_slow = sample("sluice_route_upstream_rq_time_ms_bucket", route="plain", le="25")
        gw_fast = sample("sluice_route_gateway_time_ms_bucket", route="plain", le="25")
        self.assertEqual(up_slow, hist_before.get("route.plain.upstream_rq_time",
                                                  {"count": 0})["count"] + 1,
                         "only the 404 (no sleep) took under 25 ms upstream")
        self.assertEqual(gw_fast, sample("sluice_route_gateway_time_ms_count", route="plain"),
                         "the gateway's own time stays under 25 ms")
        sample("sluice_cluster_rq_time_ms_count", cluster="up")
        sample("sluice_cluster_gateway_time_ms_count", cluster="up")

    def test_per_consumer_with_cap(self):
        for who, n in (("alice", 2), ("bob", 1), ("carol", 3)):
            for _ in range(n):
                self.assertStatus(self.get("/api/x", [("apikey", who + "-key")]), 200)
        self.assertStatus(self.get("/api/x", [("apikey", "alice-key"), ("x-status", "500")]), 500)
        # No credential: refused before any consumer is known, not counted per consumer.
        self.assertStatus(self.get("/api/x"), 401)
        s = self.sluice.stats()
        self.assertEqual(s.get("route.api.consumer.alice.rq_2xx"), 2)
        self.assertEqual(s.get("route.api.consumer.alice.rq_5xx"), 1)
        self.assertEqual(s.get("route.api.consumer.bob.rq_2xx"), 1)
        # max_consumers 2: the third consumer counts as "other".
        self.assertNotIn("route.api.consumer.carol.rq_2xx", s)
        self.assertEqual(s.get("route.api.consumer.other.rq_2xx"), 3)
        self.assertGreater(s.get("route.api.consumer.alice.bytes_sent", 0), 0)
        self.assertStatus(self.get("/api/x", [("apikey", "alice-key")], b"y" * 7), 200)
        self.assertEqual(self.sluice.stat("route.api.consumer.alice.bytes_received"), 7)
        # A route without auth has no consumers.
        self.assertStatus(self.get("/plain/x", [("apikey", "alice-key")]), 200)
        self.assertFalse([k for k in self.sluice.stats() if k.startswith("route.plain.consumer.")])
        _, _, body = self.sluice.admin_get("/stats/prometheus")
        _, samples = parse_prometheus(body.decode())
        got = {(l["consumer"], l["code_class"]): v for n, l, v in samples
               if n == "sluice_route_consumer_rq_xx_total" and l["route"] == "api"}
        self.assertEqual(got[("alice", "2xx")], 3)
        self.assertEqual(got[("other", "2xx")], 3)


class TracingTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        cls.collector = Collector()
        cls.addClassCleanup(cls.collector.close)
        log_dir = make_tempdir()
        cls.addClassCleanup(shutil.rmtree, log_dir, True)
        cls.log_path = os.path.join(log_dir, "access.log")
        b = bootstrap(
            [listener(name="public", access_log=cls.log_path,
                      tracing={"otlp_endpoint": "http://127.0.0.1:%d/v1/traces" %
                               cls.collector.port, "service_name": "edge",
                               "max_batch_size": 5, "flush_timeout": "200ms"}),
             listener(name="unsampled", tracing={"sample_rate": 0}),
             listener(name="untraced")],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/", cluster="up", name="all")])])],
            [cluster("up", [cls.up])])
        cls.sluice = cls.start_class_sluice(b)
        cls.port = cls.sluice.listener_port()

    def setUp(self):
        self.up.reset()

    def get(self, headers=(), listener="public", path="/x?apikey=secret"):
        with Conn(self.sluice.listener_port(listener)) as c:
            r = c.request("GET", path, headers=list(headers))
        self.assertStatus(r, 200)
        return echo(r)

    def upstream_traceparent(self, e):
        values = e["all"]("traceparent")
        self.assertEqual(len(values), 1, values)
        m = TRACEPARENT.match(values[0])
        self.assertIsNotNone(m, values[0])
        return m.group(1), m.group(2), m.group(3)

    def test_valid_traceparent_is_continued(self):
        for flags in ("01", "00"):
            e = self.get([("traceparent", "00-%s-%s-%s" % (CLIENT_TRACE, CLIENT_SPAN, flags)),
                          ("tracestate", "vendor=opaque")])
            trace, span, got_flags = self.upstream_traceparent(e)
            self.assertEqual(trace, CLIENT_TRACE)
            self.assertNotEqual(span, CLIENT_SPAN, "Sluice's own span is the upstream's parent")
            self.assertEqual(got_flags, flags)
            self.assertEqual(e["hdr"].get("tracestate"), "vendor=opaque")

    def test_a_future_version_is_read(self):
        e = self.get([("traceparent", "cc-%s-%s-01-what-the-future-holds" %
                       (CLIENT_TRACE, CLIENT_SPAN))])
        trace, _, flags = self.upstream_traceparent(e)
        self.assertEqual((trace, flags), (CLIENT_TRACE, "01"))

    def test_invalid_traceparent_starts_a_new_trace(self):
        bad = [
            "00-%s-%s-01" % (CLIENT_TRACE.upper(), CLIENT_SPAN),    # upper case
            "00-%s-%s-01" % ("0" * 32, CLIENT_SPAN),               # zero trace id
            "00-%s-%s-01" % (CLIENT_TRACE, "0" * 16),              # zero parent id
            "ff-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN),           # version ff
            "00-%s-%s-01-extra" % (CLIENT_TRACE, CLIENT_SPAN),     # version 00 with more
            "00-%s-%s-0x" % (CLIENT_TRACE, CLIENT_SPAN),           # flags not hex
            "00-%s-%s" % (CLIENT_TRACE, CLIENT_SPAN),              # short
            "garbage",
        ]
        for value in bad:
            e = self.get([("traceparent", value), ("tracestate", "vendor=opaque")])
            trace, _, flags = self.upstream_traceparent(e)
            self.assertNotEqual(trace, CLIENT_TRACE, value)
            self.assertEqual(flags, "01", "sample_rate defaults to 1")
            self.assertNotIn("tracestate", e["hdr"], "tracestate goes with an invalid parent")
        # Two traceparent headers are invalid too.
        e = self.get([("traceparent", "00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN)),
                      ("traceparent", "00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN))])
        self.assertNotEqual(self.upstream_traceparent(e)[0], CLIENT_TRACE)

    def test_started_traces_are_unique(self):
        seen = set()
        for _ in range(20):
            trace, span, _ = self.upstream_traceparent(self.get())
            seen.add(trace)
            seen.add(span)
        self.assertEqual(len(seen), 40)

    def test_sample_rate_zero(self):
        _, _, flags = self.upstream_traceparent(self.get(listener="unsampled"))
        self.assertEqual(flags, "00")
        # A sampled parent still decides for itself.
        e = self.get([("traceparent", "00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN))],
                     listener="unsampled")
        self.assertEqual(self.upstream_traceparent(e)[2], "01")

    def test_untraced_listener_passes_traceparent_through(self):
        for value in ("00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN), "not-a-traceparent"):
            e = self.get([("traceparent", value), ("tracestate", "a=b")], listener="untraced")
            self.assertEqual(e["all"]("traceparent"), [value])
            self.assertEqual(e["hdr"].get("tracestate"), "a=b")
        self.assertEqual(self.get(listener="untraced")["all"]("traceparent"), [])

    def spans_of(self, trace_id, n=1):
        def found():
            got = [sp for sp in self.collector.spans() if sp["traceId"] == trace_id]
            return got if len(got) >= n else None
        wait_until(lambda: found() is not None, scaled(10), message="spans of " + trace_id)
        return found()

    def test_spans_exported_over_otlp(self):
        trace = "3" * 32  # this test's own: other tests export spans of CLIENT_TRACE
        e = self.get([("traceparent", "00-%s-%s-01" % (trace, CLIENT_SPAN)),
                      ("User-Agent", "otlp-test")])
        _, upstream_parent, _ = self.upstream_traceparent(e)
        span = self.spans_of(trace)[0]
        self.assertEqual(span["spanId"], upstream_parent, "the upstream's parent is our span")
        self.assertEqual(span["parentSpanId"], CLIENT_SPAN)
        self.assertEqual(span["name"], "GET all")
        self.assertEqual(span["kind"], 2)
        self.assertLessEqual(int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"]))
        a = attrs(span)
        self.assertEqual(a["http.request.method"], "GET")
        self.assertEqual(a["url.path"], "/x", "the query (credentials) is never exported")
        self.assertEqual(a["http.response.status_code"], 200)
        self.assertEqual(a["sluice.route"], "all")
        self.assertEqual(a["sluice.upstream.cluster"], "up")
        self.assertEqual(a["user_agent.original"], "otlp-test")
        self.assertNotIn("status", span)
        with self.collector.lock:
            path, ctype = self.collector.paths[-1]
            body = next(b for b in self.collector.bodies if trace in json.dumps(b))
        self.assertEqual(path, "/v1/traces")
        self.assertEqual(ctype, "application/json")
        res = body["resourceSpans"][0]["resource"]["attributes"]
        self.assertIn({"key": "service.name", "value": {"stringValue": "edge"}}, res)
        self.assertNotIn("secret", json.dumps(body))

    def test_started_traces_and_errors_are_exported(self):
        with Conn(self.port) as c:
            r = c.request("GET", "/y", headers=[("x-status", "503")])
        self.assertStatus(r, 503)
        trace, _, _ = self.upstream_traceparent(echo(r))
        span = self.spans_of(trace)[0]
        self.assertNotIn("parentSpanId", span)
        self.assertEqual(span["status"], {"code": 2})

    def test_unsampled_spans_are_not_exported(self):
        unsampled = "1" * 32
        self.get([("traceparent", "00-%s-%s-00" % (unsampled, CLIENT_SPAN))])
        marker = "2" * 32
        self.get([("traceparent", "00-%s-%s-01" % (marker, CLIENT_SPAN))])
        self.spans_of(marker)  # exported after the unsampled one would have been
        self.assertFalse([sp for sp in self.collector.spans() if sp["traceId"] == unsampled])

    def test_a_failing_collector_never_fails_requests(self):
        self.collector.status = 500
        try:
            traces = ["%032x" % (0xabc000 + i) for i in range(5)]
            for t in traces:
                self.get([("traceparent", "00-%s-%s-01" % (t, CLIENT_SPAN))])
            failures = "otlp.127.0.0.1:%d/v1/traces.send_failures" % self.collector.port
            self.sluice.wait_stat(failures, lambda v: v > 0, scaled(10))
        finally:
            self.collector.status = 200
        # Retried with backoff: every span arrives once the collector is back.
        for t in traces:
            self.spans_of(t)

    def test_trace_id_in_access_log(self):
        rid = "trace-log-check-%d" % time.time_ns()
        self.get([("traceparent", "00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN)),
                  ("x-request-id", rid)])

        def logged():
            if not os.path.exists(self.log_path):
                return None
            with open(self.log_path) as f:
                for line in f:
                    entry = json.loads(line)
                    if entry.get("request_id") == rid:
                        return entry
            return None
        wait_until(lambda: logged() is not None, scaled(5))
        self.assertEqual(logged()["trace_id"], CLIENT_TRACE)


class ConfigErrorsTest(SluiceTestCase):
    def check(self, extra, field, message):
        b = bootstrap([listener(**extra)], [route_table("main", [])], [])
        r = run_validate(b)
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("static_resources.listeners[0].%s: %s" % (field, message), out)

    def test_errors(self):
        self.check({"tracing": {"sample_rate": 1.5}}, "tracing.sample_rate",
                   "must be between 0 and 1")
        self.check({"tracing": {"otlp_endpoint": "ftp://x"}}, "tracing.otlp_endpoint",
                   "must start with http:// or https://")
        self.check({"tracing": {"max_batch_size": 10}}, "tracing.otlp_endpoint",
                   "is required by the export settings")
        self.check({"metrics": {"per_consumer": True, "max_consumers": 0}},
                   "metrics.max_consumers", "must be at least 1")
        self.check({"metrics": {"max_consumers": 5}}, "metrics.max_consumers",
                   "only applies with per_consumer: true")


if __name__ == "__main__":
    main()
