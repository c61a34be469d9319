"""Admin API (/ready, /listeners, /stats in text/JSON/Prometheus form, /config_dump,
/clusters, /quitquitquit method handling, 404) and the JSON-lines access log.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/admin_test.py
"""

import json
import os
import re
import socket
import time

import harness
from harness import (Conn, bootstrap, cluster, listener, parse_prometheus, proxy_config,
                     route_table, vhost)


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def field(obj, name, default=None):
    """Reads a proto-JSON field under its proto name or its lowerCamelCase JSON name."""
    if name in obj:
        return obj[name]
    return obj.get(camel(name), default)




def family_of(name, types):
    """The metric family a sample belongs to (histogram suffixes; a counter's `_total`
    may be declared with or without the suffix)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    if name not in types and name.endswith("_total") and name[:-6] in types:
        return name[:-6]
    return name


class AdminTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")
        self.dead = self.dead_port()
        cfg = bootstrap(
            [listener("public", "main"), listener("second", "main")],
            [route_table("main", [vhost("all", ["*"], [
                {"name": "r-ok", "match": {"prefix": "/ok"}, "route": {"cluster": "good"}},
                {"name": "r-dead", "match": {"prefix": "/dead"}, "route": {"cluster": "bad"}},
                {"match": {"prefix": "/unnamed"}, "direct_response": {"status": 200}},
            ])])],
            [cluster("good", [(self.up, 7)]), cluster("bad", [self.dead], lb_policy="RANDOM")])
        self.sluice = self.start_sluice(cfg)
        self.port = self.sluice.listener_port("public")

    def traffic(self, ok=5, not_found=2, dead=1):
        c = Conn(self.port)
        try:
            for i in range(ok):
                self.assertStatus(c.request("GET", "/ok/%d" % i), 200)
            for _ in range(not_found):
                self.assertStatus(c.request("GET", "/missing"), 404)
            for _ in range(dead):
                self.assertStatus(c.request("GET", "/dead"), 503)
        finally:
            c.close()

    # -- /ready /listeners /404 /405 --------------------------------------------------------

    def test_ready(self):
        status, headers, body = self.sluice.admin_get("/ready")
        self.assertEqual((status, body), (200, b"LIVE\n"))

    def test_admin_url(self):
        self.assertRegex(self.sluice.admin_url, r"^http://127\.0\.0\.1:\d+$")

    def test_listeners(self):
        data = self.sluice.admin_json("/listeners")
        names = [ln["name"] for ln in data["listeners"]]
        self.assertEqual(sorted(names), ["public", "second"])
        for ln in data["listeners"]:
            host, port = ln["address"].rsplit(":", 1)
            self.assertEqual(host, "127.0.0.1")
            self.assertNotEqual(int(port), 0, "the real bound port, not 0: %r" % ln)
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
                pass
        self.assertNotEqual(self.sluice.listener_port("public"),
                            self.sluice.listener_port("second"))
        r = harness.request(self.sluice.listener_port("second"), "GET", "/ok")
        self.assertStatus(r, 200)

    def test_unknown_path_is_404(self):
        status, _, _ = self.sluice.admin_get("/no/such/endpoint")
        self.assertEqual(status, 404)

    def test_quitquitquit_other_methods_are_405(self):
        for m in ("GET", "PUT", "DELETE"):
            status, _, _ = self.sluice.admin(m, "/quitquitquit")
            self.assertEqual(status, 405, "%s /quitquitquit" % m)
        self.assertTrue(self.sluice.running(), "a refused quitquitquit must not stop sluice")
        self.assertEqual(self.sluice.admin_get("/ready")[0], 200)

    # -- /stats --------------------------------------------------------------------------------

    def test_stats_json_counters(self):
        self.traffic(ok=5, not_found=2, dead=1)
        s = self.sluice
        s.wait_stat("downstream_rq_total", lambda v: v == 8)
        stats = s.stats()
        want = {
            "downstream_cx_total": 1,
            "downstream_rq_2xx": 5,
            "downstream_rq_4xx": 2,
            "downstream_rq_5xx": 1,
            "downstream_rq_1xx": 0,
            "downstream_rq_3xx": 0,
            "cluster.good.upstream_rq_total": 5,
            "cluster.good.upstream_rq_2xx": 5,
            "cluster.good.upstream_cx_total": 1,
            "route.r-ok.rq_total": 5,
            "route.r-dead.rq_total": 1,
        }
        got = {k: stats.get(k) for k in want}
        self.assertEqual(got, want, "stats after 5x200, 2x404, 1x503")
        self.assertGreaterEqual(stats.get("cluster.bad.upstream_cx_connect_fail", 0), 1)
        for name in ("downstream_cx_active", "downstream_rq_active",
                     "downstream_rq_protocol_error", "downstream_cx_header_timeout",
                     "downstream_cx_idle_timeout", "cluster.good.upstream_cx_active",
                     "cluster.good.upstream_cx_connect_timeout",
                     "cluster.good.upstream_rq_timeout"):
            self.assertIn(name, stats, "missing stat %s" % name)

    def test_stats_gauges(self):
        s = self.sluice
        conns = [Conn(self.port) for _ in range(3)]
        try:
            s.wait_stat("downstream_cx_active", lambda v: v == 3)
            held = conns[0]
            # x-action hold: the upstream sends the head and a first chunk, then waits for
            # the gate, so exactly one request is in flight.
            held.send_request("GET", "/ok/held", headers={"x-action": "hold"})
            self.up.wait_for_requests(1)
            s.wait_stat("downstream_rq_active", lambda v: v == 1)
            s.wait_stat("cluster.good.upstream_cx_active", lambda v: v == 1)
            harness.wait_until(
                lambda: {c["name"]: c for c in s.admin_json("/clusters")["clusters"]}
                ["good"]["endpoints"][0]["active_requests"] == 1,
                message="/clusters active_requests == 1")
            self.up.gate.set()
            r = held.read_response()
            self.assertEqual(r.body, b"first-partsecond-part")
            s.wait_stat("downstream_rq_active", lambda v: v == 0)
        finally:
            for c in conns:
                c.close()
        s.wait_stat("downstream_cx_active", lambda v: v == 0)
        s.wait_stat("cluster.good.upstream_cx_active", lambda v: v == 1)  # pooled, idle

    def test_stats_histograms(self):
        self.traffic(ok=4, not_found=0, dead=0)
        s = self.sluice
        harness.wait_until(
            lambda: s.histograms().get("cluster.good.upstream_rq_time", {}).get("count") == 4,
            message="upstream_rq_time count == 4")
        hists = s.histograms()
        for name in ("cluster.good.upstream_rq_time", "route.r-ok.rq_time"):
            h = hists.get(name)
            self.assertIsNotNone(h, "missing histogram %s in %r" % (name, sorted(hists)))
            self.assertEqual(h["count"], 4, h)
            self.assertIsInstance(h["sum"], (int, float))
            self.assertGreaterEqual(h["sum"], 0)
            self.assertIsInstance(h["buckets"], list)

    def test_stats_text(self):
        self.traffic(ok=3, not_found=1, dead=0)
        self.sluice.wait_stat("downstream_rq_total", lambda v: v == 4)
        status, headers, body = self.sluice.admin_get("/stats")
        self.assertEqual(status, 200)
        values = {}
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            # Counters/gauges are "name: 123"; histogram lines may carry a longer summary.
            m = re.match(r"^(\S+): (\S.*)$", line)
            self.assertIsNotNone(m, "stats text line not 'name: value': %r" % line)
            values[m.group(1)] = m.group(2)
        self.assertEqual(values.get("downstream_rq_total"), "4")
        self.assertEqual(values.get("downstream_rq_2xx"), "3")
        self.assertEqual(values.get("cluster.good.upstream_rq_total"), "3")
        json_stats = self.sluice.stats()
        for k in ("downstream_rq_total", "cluster.good.upstream_rq_2xx", "route.r-ok.rq_total"):
            self.assertEqual(values.get(k), str(json_stats.get(k)), "text and JSON disagree on %s"
                             % k)

    def test_default_route_name_in_stats(self):
        self.assertStatus(harness.request(self.port, "GET", "/unnamed"), 200)
        # Default route name is "<virtual host>/<index>" (index counted from 0).
        self.sluice.wait_stat("route.all/2.rq_total", lambda v: v == 1)

    def test_stats_prometheus(self):
        self.traffic(ok=5, not_found=2, dead=1)
        self.sluice.wait_stat("downstream_rq_total", lambda v: v == 8)
        status, headers, body = self.sluice.admin_get("/stats/prometheus")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers.get("content-type", ""))
        text = body.decode()
        types, samples = parse_prometheus(text)
        self.assertTrue(samples, "no samples")
        for name, labels, _ in samples:
            self.assertTrue(name.startswith("sluice_"), "metric %r not prefixed sluice_" % name)
            self.assertIn(family_of(name, types), types, "no # TYPE for %r" % name)

        def value(name, **labels):
            for n, ls, v in samples:
                if n == name and all(ls.get(k) == val for k, val in labels.items()):
                    return v
            raise AssertionError("no sample %s%r in:\n%s" % (name, labels, text[:4000]))

        self.assertEqual(value("sluice_downstream_rq_xx_total", code_class="2xx"), 5)
        self.assertEqual(value("sluice_downstream_rq_xx_total", code_class="4xx"), 2)
        self.assertEqual(value("sluice_downstream_rq_xx_total", code_class="5xx"), 1)
        self.assertEqual(value("sluice_cluster_upstream_rq_total", cluster="good"), 5)
        self.assertEqual(types.get("sluice_route_rq_time_ms"), "histogram")
        inf = value("sluice_route_rq_time_ms_bucket", route="r-ok", le="+Inf")
        self.assertEqual(inf, 5)
        self.assertEqual(value("sluice_route_rq_time_ms_count", route="r-ok"), 5)
        value("sluice_route_rq_time_ms_sum", route="r-ok")
        buckets = sorted((float(ls["le"]), v) for n, ls, v in samples
                         if n == "sluice_route_rq_time_ms_bucket" and ls.get("route") == "r-ok")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "histogram buckets must be cumulative")

    # -- /config_dump /clusters ------------------------------------------------------------------

    def test_config_dump(self):
        data = self.sluice.admin_json("/config_dump")
        self.assertIn("bootstrap", data)
        b = data["bootstrap"]
        sr = field(b, "static_resources")
        self.assertIsNotNone(sr, "config_dump without static_resources: %r" % b)
        self.assertEqual(sorted(ln["name"] for ln in sr["listeners"]), ["public", "second"])
        self.assertEqual(sorted(c["name"] for c in sr["clusters"]), ["bad", "good"])
        self.assertEqual([rt["name"] for rt in field(sr, "route_tables")], ["main"])
        good = [c for c in sr["clusters"] if c["name"] == "good"][0]
        eps = good["endpoints"]
        self.assertEqual(int(eps[0]["port"]), self.up.port)
        self.assertEqual(int(eps[0]["weight"]), 7)
        bad = [c for c in sr["clusters"] if c["name"] == "bad"][0]
        self.assertEqual(field(bad, "lb_policy"), "RANDOM")

    def test_clusters(self):
        self.traffic(ok=6, not_found=0, dead=2)
        s = self.sluice

        def clusters():
            return {c["name"]: c for c in s.admin_json("/clusters")["clusters"]}
        harness.wait_until(
            lambda: clusters()["good"]["endpoints"][0]["requests_total"] == 6,
            message="/clusters requests_total == 6")
        cl = clusters()
        self.assertEqual(sorted(cl), ["bad", "good"])
        self.assertEqual(cl["good"]["lb_policy"], "ROUND_ROBIN")
        self.assertEqual(cl["bad"]["lb_policy"], "RANDOM")
        ep = cl["good"]["endpoints"][0]
        self.assertEqual(ep["address"], self.up.address)
        self.assertEqual(ep["weight"], 7)
        self.assertEqual(ep["active_requests"], 0)
        self.assertEqual(ep["connect_failures"], 0)
        bad = cl["bad"]["endpoints"][0]
        self.assertEqual(bad["address"], "127.0.0.1:%d" % self.dead.port)
        self.assertGreaterEqual(bad["connect_failures"], 2)
        self.assertEqual(bad["weight"], 1, "default endpoint weight is 1")


class AccessLogTest(harness.SluiceTestCase):

    KEYS = {"start_time", "method", "path", "protocol", "status", "bytes_received", "bytes_sent",
            "duration_ms", "upstream_host", "upstream_cluster", "route", "request_id",
            "response_flags", "client_ip", "user_agent"}

    def setUp(self):
        self.up = self.start_upstream("u1")
        self.dead = self.dead_port()
        self.dir = self.tempdir()
        self.log_path = os.path.join(self.dir, "access.log")
        cfg = bootstrap(
            [listener("public", "main", access_log=self.log_path)],
            [route_table("main", [vhost("all", ["*"], [
                {"name": "r-ok", "match": {"prefix": "/ok"},
                 "route": {"cluster": "good", "timeout": "300ms"}},
                {"name": "r-dead", "match": {"prefix": "/dead"}, "route": {"cluster": "bad"}},
            ])])],
            [cluster("good", [self.up]), cluster("bad", [self.dead])])
        self.sluice = self.start_sluice(cfg)
        self.port = self.sluice.listener_port("public")

    def lines(self):
        try:
            with open(self.log_path) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # partially written line
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError("access log line is not JSON: %r" % line)
        return out

    def entry(self, pred, timeout=2.0, what="access log entry"):
        return wait_for_entry(self.lines, pred, timeout, what)

    def test_entry_fields(self):
        r = harness.request(self.port, "POST", "/ok/x?y=1", body=b"12345",
                            headers={"User-Agent": "test-agent/1.0", "X-Request-Id": "req-abc-1"})
        self.assertStatus(r, 200)
        t_done = time.monotonic()
        e = self.entry(lambda e: e.get("request_id") == "req-abc-1", timeout=1.5,
                       what="entry flushed within ~100ms")
        self.assertLess(time.monotonic() - t_done, harness.scaled(1.5))
        missing = self.KEYS - set(e)
        self.assertFalse(missing, "access log entry lacks %r: %r" % (missing, e))
        self.assertEqual(e["method"], "POST")
        self.assertTrue(e["path"].startswith("/ok/x"), e)
        self.assertEqual(e["protocol"], "HTTP/1.1")
        self.assertEqual(e["status"], 200)
        self.assertGreaterEqual(e["bytes_received"], 5)
        self.assertGreaterEqual(e["bytes_sent"], len(r.body))
        self.assertIsInstance(e["duration_ms"], (int, float))
        self.assertGreaterEqual(e["duration_ms"], 0)
        self.assertEqual(e["upstream_host"], self.up.address)
        self.assertEqual(e["upstream_cluster"], "good")
        self.assertEqual(e["route"], "r-ok")
        self.assertEqual(e["response_flags"], "-")
        self.assertEqual(e["client_ip"], "127.0.0.1")
        self.assertEqual(e["user_agent"], "test-agent/1.0")
        self.assertIsInstance(e["start_time"], str)
        self.assertRegex(e["start_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
                         "start_time should be an ISO-8601 timestamp")

    def test_one_line_per_request(self):
        c = self.conn(self.port)
        for i in range(10):
            c.request("GET", "/ok/%d" % i, headers={"X-Request-Id": "multi-%d" % i})
        harness.wait_until(lambda: len([e for e in self.lines()
                                        if e.get("request_id", "").startswith("multi-")]) == 10,
                           2.0, message="10 access log lines")
        ids = [e["request_id"] for e in self.lines() if e["request_id"].startswith("multi-")]
        self.assertEqual(ids, ["multi-%d" % i for i in range(10)])

    def test_flag_no_route(self):
        r = harness.request(self.port, "GET", "/nowhere", headers={"X-Request-Id": "nr-1"})
        self.assertStatus(r, 404)
        e = self.entry(lambda e: e.get("request_id") == "nr-1")
        self.assertEqual((e["status"], e["response_flags"]), (404, "NR"))

    def test_flag_upstream_connect_failure(self):
        r = harness.request(self.port, "GET", "/dead", headers={"X-Request-Id": "uf-1"})
        self.assertStatus(r, 503)
        e = self.entry(lambda e: e.get("request_id") == "uf-1")
        self.assertEqual((e["status"], e["response_flags"]), (503, "UF"))
        self.assertEqual(e["upstream_cluster"], "bad")

    def test_flag_upstream_timeout(self):
        r = harness.request(self.port, "GET", "/ok/slow",
                            headers={"X-Request-Id": "ut-1", "x-sleep-ms": "2000"})
        self.assertStatus(r, 504)
        e = self.entry(lambda e: e.get("request_id") == "ut-1")
        self.assertEqual((e["status"], e["response_flags"]), (504, "UT"))

    def test_flag_upstream_connection_termination(self):
        r = harness.request(self.port, "GET", "/ok/close",
                            headers={"X-Request-Id": "uc-1", "x-action": "close"})
        self.assertStatus(r, 502)
        e = self.entry(lambda e: e.get("request_id") == "uc-1")
        self.assertEqual((e["status"], e["response_flags"]), (502, "UC"))

    def test_flag_upstream_protocol_error(self):
        r = harness.request(self.port, "GET", "/ok/garbage",
                            headers={"X-Request-Id": "upe-1", "x-action": "garbage"})
        self.assertStatus(r, 502)
        e = self.entry(lambda e: e.get("request_id") == "upe-1")
        self.assertEqual((e["status"], e["response_flags"]), (502, "UPE"))

    def test_flag_downstream_disconnect(self):
        c = Conn(self.port)
        c.send_request("GET", "/ok/dc", headers={"X-Request-Id": "dc-1", "x-sleep-ms": "250"})
        self.up.wait_for_requests(1)
        c.close()
        e = self.entry(lambda e: e.get("request_id") == "dc-1", timeout=3.0)
        self.assertEqual(e["response_flags"], "DC", e)

    def test_flag_downstream_protocol_error(self):
        c = self.conn(self.port)
        c.send(b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        self.assertStatus(c.read_response(), 400)
        e = self.entry(lambda e: e.get("response_flags") == "DPE")
        self.assertEqual(e["status"], 400)

    def test_log_to_stdout(self):
        cfg = proxy_config([self.up], access_log="-")
        s = self.start_sluice(cfg)
        harness.request(s.listener_port("public"), "GET", "/stdout",
                        headers={"X-Request-Id": "stdout-1"})

        def lines():
            out = []
            for line in s.stdout().splitlines(keepends=True):
                if line.endswith("\n") and line.startswith("{"):
                    out.append(json.loads(line))
            return out
        e = wait_for_entry(lines, lambda e: e.get("request_id") == "stdout-1", 2.0,
                           "access log line on stdout")
        self.assertEqual(e["path"], "/stdout")


def wait_for_entry(get_lines, pred, timeout, what):
    found = {}

    def check():
        for e in get_lines():
            if pred(e):
                found["e"] = e
                return True
        return False
    try:
        harness.wait_until(check, timeout, 0.02, what)
    except AssertionError as err:
        raise AssertionError("%s; log has: %r" % (err, get_lines()[-5:]))
    return found["e"]


if __name__ == "__main__":
    harness.main()
