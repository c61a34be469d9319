#!/usr/bin/python3
"""The http_log filter (Kong's http-log) with the real sluice and a collector process
(http_log_collector.py): the fields of each entry and the secrets they never carry (nor the
access log), Basic auth from the endpoint's user info, batching by queue_size and
flush_timeout, an https:// collector with a test CA, the collector killed and restarted under
load (no proxied request fails; what arrives + what was dropped = every request), retries with
backoff on 500, the drain on SIGTERM, per-route configs, config errors."""

import base64
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (SluiceTestCase, Conn, bootstrap, cluster, listener, route, route_table,  # noqa: E402
                     run_validate, scaled, vhost, wait_until, report)
from http_log_collector import Collector  # noqa: E402
import tls_certs  # noqa: E402

SECRET_KEY = "alice-SECRET-key"
SECRET_BEARER = "SECRET-bearer-token"
SECRET_COOKIE = "SECRET-cookie"


class HttpLogTestCase(SluiceTestCase):
    def collector(self, name="collector", **kw):
        c = Collector(self.tempdir(), name, **kw)
        self.addCleanup(c.close)
        return c

    def proxy(self, log_config, routes=None, policies=None, filters=None, access_log=None,
              concurrency=1, upstream=None):
        upstream = upstream or self.start_upstream("backend")
        routes = routes or [route(prefix="/", cluster="backend", name="default")]
        chain = filters or [{"name": "http_log", "config": log_config}, {"name": "router"}]
        cfg = bootstrap([listener("public", "main", http_filters=chain, access_log=access_log)],
                        [route_table("main", [vhost("all", ["*"], routes)])],
                        [cluster("backend", [upstream.endpoint()])])
        if policies:
            cfg["static_resources"]["auth_policies"] = policies
        s = self.start_sluice(cfg, concurrency=concurrency)
        return s, s.listener_port("public")

    @staticmethod
    def stat_name(collector, stat):
        return "http_log.127.0.0.1:%d/logs.%s" % (collector.port, stat)

    def wait_entries(self, collector, n, timeout=10.0):
        wait_until(lambda: len(collector.entries()) >= n, timeout,
                   message="%d entries at the collector (have %d)"
                   % (n, len(collector.entries())))
        return collector.entries()


class EntryTest(HttpLogTestCase):
    def test_fields_of_an_entry(self):
        c = self.collector()
        policies = [{"name": "keys", "key_auth": {"key_names": ["apikey", "X-Custom-Key"],
                                                  "hide_credentials": False},
                     "consumers": [{"username": "alice",
                                    "keyauth_credentials": [{"key": SECRET_KEY}]}]}]
        routes = [route(prefix="/api", cluster="backend", name="users-api", auth="keys"),
                  route(prefix="/open", cluster="backend", name="open")]
        log_path = os.path.join(self.tempdir(), "access.log")
        s, port = self.proxy({"http_endpoint": c.url}, routes=routes, policies=policies,
                             filters=[{"name": "http_log", "config": {"http_endpoint": c.url}},
                                      {"name": "auth"}, {"name": "router"}],
                             access_log=log_path)
        before = time.time()
        with Conn(port) as conn:
            resp = conn.request("GET", "/api/users?apikey=%s&q=1&q=two&flag&x=a%%20b" % SECRET_KEY,
                                headers={"Authorization": "Bearer " + SECRET_BEARER,
                                         "Cookie": "session=" + SECRET_COOKIE,
                                         "X-API-Key": "SECRET-x-api-key",
                                         "Proxy-Authorization": "Basic SECRET-proxy",
                                         "X-Custom-Key": SECRET_KEY,
                                         "X-Sleep-Ms": "120",
                                         "X-Resp-Header": "Set-Cookie: id=SECRET-set-cookie",
                                         "User-Agent": "http-log-test/1"},
                                host="api.example.com:8443")
        self.assertStatus(resp, 200)
        after = time.time()
        (e,) = self.wait_entries(c, 1)
        raw = c.requests()[0]["body"]
        # (The set-cookie value is in the request's x-resp-header, which is no secret.)
        for secret in (SECRET_KEY, SECRET_BEARER, SECRET_COOKIE, "SECRET-x-api-key",
                       "SECRET-proxy"):
            self.assertNotIn(secret, raw)
        req = e["request"]
        self.assertEqual(req["method"], "GET")
        self.assertEqual(req["uri"], "/api/users?apikey=REDACTED&q=1&q=two&flag&x=a%20b")
        self.assertEqual(req["url"], "http://api.example.com:8443" + req["uri"])
        self.assertEqual(req["querystring"],
                         {"apikey": "REDACTED", "q": ["1", "two"], "flag": True, "x": "a b"})
        h = req["headers"]
        for name in ("authorization", "cookie", "x-api-key", "proxy-authorization",
                     "x-custom-key"):
            self.assertEqual(h[name], "REDACTED", name)
        self.assertEqual(h["user-agent"], "http-log-test/1")
        self.assertEqual(h["host"], "api.example.com:8443")
        self.assertGreater(req["size"], 300)  # request line + headers
        self.assertEqual(e["upstream_uri"], "/api/users?apikey=REDACTED&q=1&q=two&flag&x=a%20b")
        rs = e["response"]
        self.assertEqual(rs["status"], 200)
        self.assertEqual(rs["headers"]["set-cookie"], "REDACTED")
        self.assertEqual(rs["headers"]["x-upstream"], "backend")
        self.assertEqual(rs["headers"]["x-request-id"], resp.header("x-request-id"))
        self.assertGreater(rs["size"], len(resp.body))
        lat = e["latencies"]
        self.assertGreaterEqual(lat["proxy"], 120)  # the upstream slept 120 ms
        self.assertLess(lat["proxy"], (after - before) * 1000 + 1)
        self.assertEqual(lat["request"], lat["kong"] + lat["proxy"])
        self.assertLess(lat["kong"], 100)
        self.assertEqual(e["route"], {"name": "users-api"})
        self.assertEqual(e["service"], {"name": "backend"})
        self.assertEqual(e["consumer"], {"username": "alice"})
        self.assertTrue(e["authenticated_entity"]["id"].startswith("key:"))
        self.assertEqual(e["client_ip"], "127.0.0.1")
        self.assertGreaterEqual(e["started_at"], int(before * 1000) - 1)
        self.assertLessEqual(e["started_at"], int(after * 1000) + 1)
        self.assertEqual(e["request_id"], resp.header("x-request-id"))
        self.assertNotIn("trace_id", e)  # no tracing on this listener
        # The access log has the same secrets out of its path.
        def access_log():
            if not os.path.exists(log_path):
                return ""
            with open(log_path) as f:
                return f.read().strip()
        line = wait_until(access_log, 5, message="access log line")
        self.assertIn("apikey=REDACTED", line)
        self.assertNotIn("SECRET", line)

    def test_local_replies_are_logged(self):
        c = self.collector()
        policies = [{"name": "keys", "key_auth": {}, "consumers": [
            {"username": "alice", "keyauth_credentials": [{"key": SECRET_KEY}]}]}]
        routes = [route(prefix="/api", cluster="backend", name="api", auth="keys")]
        s, port = self.proxy(None, routes=routes, policies=policies,
                             filters=[{"name": "http_log", "config": {"http_endpoint": c.url}},
                                      {"name": "auth"}, {"name": "router"}])
        with Conn(port) as conn:
            self.assertStatus(conn.request("GET", "/nowhere"), 404)
            self.assertStatus(conn.request("GET", "/api/x?apikey=wrong-SECRET"), 401)
        entries = self.wait_entries(c, 2)
        by_uri = {e["request"]["uri"]: e for e in entries}
        nf = by_uri["/nowhere"]
        self.assertEqual(nf["response"]["status"], 404)
        self.assertEqual(nf["latencies"]["proxy"], -1)
        self.assertEqual(nf["latencies"]["kong"], nf["latencies"]["request"])
        self.assertNotIn("route", nf)
        self.assertNotIn("service", nf)
        denied = by_uri["/api/x?apikey=REDACTED"]
        self.assertEqual(denied["response"]["status"], 401)
        self.assertEqual(denied["route"], {"name": "api"})
        self.assertNotIn("consumer", denied)
        self.assertNotIn("SECRET", json.dumps(entries))

    def test_basic_auth_from_user_info_method_and_headers(self):
        c = self.collector()
        endpoint = c.url.replace("http://", "http://log%40user:p%3Ass@")
        s, port = self.proxy({"http_endpoint": endpoint, "method": "PUT",
                              "headers": {"X-Collector-Token": "tok"}})
        with Conn(port) as conn:
            self.assertStatus(conn.request("GET", "/a"), 200)
        self.wait_entries(c, 1)
        r = c.requests()[0]
        self.assertEqual(r["method"], "PUT")
        self.assertEqual(r["path"], "/logs")
        self.assertEqual(r["headers"]["authorization"],
                         "Basic " + base64.b64encode(b"log@user:p:ss").decode())
        self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(r["headers"]["x-collector-token"], "tok")
        self.assertIsInstance(json.loads(r["body"]), dict)  # queue_size 1: the object alone
        # The password is in no stat name and no log line.
        self.assertNotIn("p:ss", s.admin("GET", "/stats")[2].decode())
        self.assertNotIn("p:ss", s.admin("GET", "/stats/prometheus")[2].decode())
        self.assertNotIn("p%3Ass", s.stderr())
        # Nor in /config_dump: the user info's password and the endpoint's headers are
        # redacted there (filter configs are untyped; secrets are found by name).
        dump = s.admin("GET", "/config_dump")[2].decode()
        self.assertNotIn("p%3Ass", dump)
        self.assertNotIn('"tok"', dump)
        self.assertIn("log%40user:[redacted sha256:", dump)


class BatchingTest(HttpLogTestCase):
    def test_queue_size_and_flush_timeout(self):
        c = self.collector()
        s, port = self.proxy({"http_endpoint": c.url, "queue_size": 5, "flush_timeout": "1s"})
        with Conn(port) as conn:
            for i in range(12):
                self.assertStatus(conn.request("GET", "/n/%d" % i), 200)
        last_request = time.time()
        wait_until(lambda: len(c.requests()) >= 2, 5, message="two full batches")
        reqs = c.requests()
        self.assertLess(reqs[1]["t"] - last_request, 0.8)  # full: sent without waiting
        for r in reqs[:2]:
            self.assertEqual(len(json.loads(r["body"])), 5)
        wait_until(lambda: len(c.requests()) >= 3, 5, message="the partial batch")
        third = c.requests()[2]
        waited = third["t"] - last_request
        report("partial batch sent %.3f s after the last request (flush_timeout 1 s)", waited)
        self.assertGreater(waited, 0.85)
        self.assertLess(waited, scaled(2.5))
        tail = json.loads(third["body"])
        self.assertEqual([e["request"]["uri"] for e in tail], ["/n/10", "/n/11"])
        uris = [e["request"]["uri"] for e in c.entries()]
        self.assertEqual(uris, ["/n/%d" % i for i in range(12)])  # one worker: in order
        self.assertEqual(1, len({r["headers"].get("host") for r in c.requests()}))
        s.wait_stat(self.stat_name(c, "batches_sent"), lambda v: v == 3)
        self.assertEqual(s.stat(self.stat_name(c, "entries_sent")), 12)


class HttpsTest(HttpLogTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_certs.class_pki(cls)
        cls.ca = cls.pki.ca("log-ca")
        cls.cert = cls.pki.issue(cls.ca, "collector", ip=["127.0.0.1"])

    def test_https_collector_with_a_test_ca(self):
        c = self.collector(tls=(self.cert.cert_path, self.cert.key_path))
        self.assertTrue(c.url.startswith("https://"))
        s, port = self.proxy({"http_endpoint": c.url, "ca_file": self.ca.cert_path})
        with Conn(port) as conn:
            for i in range(3):
                self.assertStatus(conn.request("GET", "/tls/%d" % i), 200)
        entries = self.wait_entries(c, 3)
        self.assertEqual([e["request"]["uri"] for e in entries], ["/tls/0", "/tls/1", "/tls/2"])

    def test_https_collector_not_trusted(self):
        c = self.collector(tls=(self.cert.cert_path, self.cert.key_path))
        # The system's CAs do not know the test CA: every try fails, nothing is sent.
        s, port = self.proxy({"http_endpoint": c.url, "retry_count": 0})
        with Conn(port) as conn:
            self.assertStatus(conn.request("GET", "/x"), 200)
        s.wait_stat(self.stat_name(c, "entries_dropped"), lambda v: v == 1, timeout=5)
        self.assertEqual(s.stat(self.stat_name(c, "send_failures")), 1)
        self.assertEqual(c.entries(), [])
        self.assertIn("TLS", s.stderr())


class Load:
    """Keep-alive GETs from a few threads until stopped; counts answers by status."""

    def __init__(self, port, threads=4):
        self.port = port
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        conn = None
        try:
            conn = Conn(self.port)
            while not self.stop_event.is_set():
                resp = conn.request("GET", "/load/%d/%d" % (i, n))
                n += 1
                with self.lock:
                    self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
                time.sleep(0.002)
        except Exception as e:  # a failed request is what the test looks for
            with self.lock:
                self.errors.append(repr(e))
        finally:
            if conn is not None:
                conn.close()

    def total(self):
        with self.lock:
            return sum(self.statuses.values())

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(scaled(10))


class OutageTest(HttpLogTestCase):
    def test_collector_killed_and_restarted_under_load(self):
        c = self.collector()
        s, port = self.proxy({"http_endpoint": c.url, "queue_size": 10, "flush_timeout": "200ms",
                              "max_queued_entries": 50, "retry_count": 1000,
                              "initial_retry_delay": "100ms", "max_retry_delay": "300ms"},
                             concurrency=2)
        load = Load(port)
        self.addCleanup(load.stop)
        wait_until(lambda: len(c.entries()) >= 20, 10, message="entries before the kill")
        c.kill()
        killed_at = load.total()
        # Down long enough for far more than max_queued_entries requests.
        failures = self.stat_name(c, "send_failures")
        wait_until(lambda: load.total() >= killed_at + 300 and s.stat(failures) >= 4, 20,
                   message="requests and failed sends while the collector is down")
        self.assertEqual(s.stat(self.stat_name(c, "entries_dropped")) > 0, True)
        c.start()
        restarted_at = load.total()
        wait_until(lambda: load.total() >= restarted_at + 100, 20,
                   message="requests after the restart")
        load.stop()
        total = load.total()
        self.assertEqual(load.errors, [])
        self.assertEqual(load.statuses, {200: total})  # no proxied request failed
        sent = self.stat_name(c, "entries_sent")
        dropped = self.stat_name(c, "entries_dropped")
        wait_until(lambda: s.stat(sent) + s.stat(dropped) == total, 15,
                   message="every entry sent or dropped (%d + %d of %d)"
                   % (s.stat(sent), s.stat(dropped), total))
        ids = [e["request_id"] for e in c.entries()]
        received = len(set(ids))  # a batch answered as the collector died may come twice
        report("%d requests: %d entries received, %d dropped (max_queued_entries 50), "
               "%d failed sends, %d retries", total, received, s.stat(dropped),
               s.stat(self.stat_name(c, "send_failures")), s.stat(self.stat_name(c, "retries")))
        self.assertEqual(received, s.stat(sent))
        self.assertEqual(received + s.stat(dropped), total)
        self.assertGreaterEqual(s.stat(dropped), 300 - 50)
        # What was held while it was down (the newest 50, the retried batch first) arrived.
        self.assertGreater(received, 20 + 50)


class RetryTest(HttpLogTestCase):
    def test_retries_with_backoff_on_500(self):
        c = self.collector(status=500)
        s, port = self.proxy({"http_endpoint": c.url, "initial_retry_delay": "200ms",
                              "max_retry_delay": "5s"})
        with Conn(port) as conn:
            self.assertStatus(conn.request("GET", "/retry-me"), 200)
        wait_until(lambda: len(c.requests()) >= 3, 5, message="three failed tries")
        c.set_status(200)
        wait_until(lambda: len(c.entries()) == 1, 5, message="the entry accepted")
        reqs = c.requests()
        self.assertEqual([r["status"] for r in reqs], [500, 500, 500, 200])
        self.assertEqual(len({r["body"] for r in reqs}), 1)  # the same batch each time
        gaps = [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]
        report("retry gaps: %s s", ", ".join("%.3f" % g for g in gaps))
        for gap, expected in zip(gaps, (0.2, 0.4, 0.8)):
            self.assertGreater(gap, expected * 0.9)
            self.assertLess(gap, expected + scaled(0.5))
        s.wait_stat(self.stat_name(c, "entries_sent"), lambda v: v == 1)
        self.assertEqual(s.stat(self.stat_name(c, "send_failures")), 3)
        self.assertEqual(s.stat(self.stat_name(c, "retries")), 3)
        self.assertEqual(s.stat(self.stat_name(c, "entries_dropped")), 0)


class DrainTest(HttpLogTestCase):
    def test_sigterm_sends_what_is_queued(self):
        c = self.collector()
        s, port = self.proxy({"http_endpoint": c.url, "queue_size": 100,
                              "flush_timeout": "60s"}, concurrency=2)
        with Conn(port) as conn:
            for i in range(30):
                self.assertStatus(conn.request("GET", "/d/%d" % i), 200)
        time.sleep(0.3)
        self.assertEqual(c.requests(), [])  # waiting for 70 more or a minute
        start = time.time()
        self.assertEqual(s.terminate(), 0)
        exited = time.time()
        entries = c.entries()
        self.assertEqual(sorted(e["request"]["uri"] for e in entries),
                         sorted("/d/%d" % i for i in range(30)))
        self.assertTrue(all(r["t"] <= exited for r in c.requests()))
        report("SIGTERM to exit with 30 entries drained: %.3f s", exited - start)

    def test_sigterm_with_the_collector_down_exits_in_bounded_time(self):
        c = self.collector()
        s, port = self.proxy({"http_endpoint": c.url, "queue_size": 10, "flush_timeout": "60s",
                              "retry_count": 1000})
        c.kill()
        with Conn(port) as conn:
            for i in range(5):
                self.assertStatus(conn.request("GET", "/d/%d" % i), 200)
        start = time.time()
        self.assertEqual(s.terminate(timeout=20), 0)
        took = time.time() - start
        report("SIGTERM to exit with the collector down: %.3f s", took)
        # Tried (200 ms apart) for the 5 s the drain allows, then counted as dropped.
        self.assertGreater(took, 4.5)
        self.assertLess(took, scaled(8))
        self.assertIn("1 log sink(s) not drained within 5000 ms", s.stderr())
        self.assertIn("5 entries not sent (stopped)", s.stderr())


class PerRouteTest(HttpLogTestCase):
    def test_route_disabled_and_route_override(self):
        a = self.collector("a")
        b = self.collector("b")
        routes = [route(prefix="/quiet", cluster="backend", name="quiet",
                        filter_config={"http_log": {"disabled": True}}),
                  route(prefix="/other", cluster="backend", name="other",
                        filter_config={"http_log": {"http_endpoint": b.url, "method": "PATCH"}}),
                  route(prefix="/", cluster="backend", name="default")]
        s, port = self.proxy({"http_endpoint": a.url}, routes=routes)
        with Conn(port) as conn:
            for path in ("/x", "/quiet/1", "/other/1", "/y"):
                self.assertStatus(conn.request("GET", path), 200)
        self.wait_entries(a, 2)
        self.wait_entries(b, 1)
        time.sleep(0.3)
        self.assertEqual([e["request"]["uri"] for e in a.entries()], ["/x", "/y"])
        self.assertEqual([e["request"]["uri"] for e in b.entries()], ["/other/1"])
        self.assertEqual(b.requests()[0]["method"], "PATCH")

    def test_listener_disabled_logs_only_routes_with_their_own_config(self):
        a = self.collector("a")
        routes = [route(prefix="/logged", cluster="backend", name="logged",
                        filter_config={"http_log": {"http_endpoint": a.url}}),
                  route(prefix="/", cluster="backend", name="default")]
        s, port = self.proxy({"disabled": True}, routes=routes)
        with Conn(port) as conn:
            for path in ("/x", "/logged/1"):
                self.assertStatus(conn.request("GET", path), 200)
        self.wait_entries(a, 1)
        time.sleep(0.3)
        self.assertEqual([e["request"]["uri"] for e in a.entries()], ["/logged/1"])


class ConfigErrorTest(HttpLogTestCase):
    def validate(self, log_config, route_config=None):
        routes = [route(prefix="/", cluster="backend", name="default",
                        **({"filter_config": {"http_log": route_config}} if route_config else {}))]
        cfg = bootstrap([listener("public", "main", http_filters=[
            {"name": "http_log", "config": log_config}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("backend", [{"address": "127.0.0.1", "port": 1}])])
        return run_validate(cfg)

    def test_errors_name_their_field(self):
        f = "static_resources.listeners[0].http_filters[0].config."
        cases = [
            ({}, f + "http_endpoint: is required"),
            ({"http_endpoint": "ftp://x/"}, f + "http_endpoint: must start with http://"),
            ({"http_endpoint": "http://h/", "method": "GET"}, f + 'method: "GET": POST, PUT'),
            ({"http_endpoint": "http://h/", "content_type": "text/plain"},
             f + 'content_type: "text/plain": only application/json'),
            ({"http_endpoint": "http://h/", "headers": {"Host": "x"}},
             f + 'headers["Host"]: cannot set Host'),
            ({"http_endpoint": "http://u:p@h/", "headers": {"Authorization": "x"}},
             f + "headers: an Authorization header and user info"),
            ({"http_endpoint": "http://h/", "ca_file": "/etc/hosts"},
             f + "ca_file: is for https:// endpoints only"),
            ({"http_endpoint": "http://h/", "queue_size": 20, "max_queued_entries": 10},
             f + "max_queued_entries: must be >= queue_size (20)"),
            ({"http_endpoint": "http://h/", "queue_size": 0}, f + "queue_size: must be >= 1"),
            ({"http_endpoint": "http://h/", "timeout": "0s"}, f + "timeout: must be >= 1ms"),
            ({"disabled": True, "http_endpoint": "http://h/"},
             f + "disabled: a disabled http_log takes no other settings"),
            ({"http_endpoint": "http://h/", "bogus": 1}, "bogus"),
        ]
        for config, expected in cases:
            r = self.validate(config)
            self.assertNotEqual(r.returncode, 0, config)
            self.assertIn(expected, r.stderr + r.stdout, config)
        r = self.validate({"http_endpoint": "http://h/"}, {"method": "DELETE"})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("filter_config.http_log.http_endpoint: is required", r.stderr + r.stdout)
        ok = self.validate({"http_endpoint": "https://collector.example/logs", "queue_size": 10,
                            "flush_timeout": "500ms", "keepalive": "0s"},
                           {"disabled": True})
        self.assertEqual(ok.returncode, 0, ok.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
