"""The cache filter (Kong's proxy-cache, RFC 9111) through the real binary, in front of an origin
that counts its requests (CacheOrigin: per-path bodies, headers, statuses, delays, validators
and 304s) and the harness's upstream (large streamed bodies, trailers):

  * hits and misses, X-Cache-Status (Miss, Hit, Refresh, Bypass), X-Cache-Key, Age, HEAD from a
    GET's entry (and a HEAD never storing one), query normalisation, vary_query_params,
    vary_headers, a response's Vary (and Vary: *), ignore_uri_case;
  * consumer isolation behind the auth filter with two key-auth consumers;
  * every Cache-Control case with cache_control on (no-store, private, no-cache, max-age,
    s-maxage, Expires, Age, Set-Cookie, Authorization, public; request no-cache, no-store,
    max-age, min-fresh, max-stale, only-if-cached) and cache_control off (Kong: cache_ttl);
  * conditionals answered from the cache (If-None-Match, If-Modified-Since -> 304), a client's
    conditionals on a miss, revalidation of a stale entry with its validators (the origin's 304
    refreshes it);
  * 50 concurrent misses collapsed into one origin request (across two workers);
  * stale-if-error (origin answering 503, origin killed) and stale-while-revalidate;
  * LRU eviction at max_bytes, purge (DELETE /cache, DELETE /cache?key=), the stats;
  * a 256 MiB response over max_object_bytes streaming through uncached with the proxy's RSS
    flat (content-length and chunked); responses with trailers not stored;
  * HTTP/2 downstream (h2c);
  * config errors at their field.

Run by hand: SLUICE_BIN=/work/wt-cache/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/cache_test.py
"""

import http.server
import json
import os
import re
import socket
import socketserver
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import h2_harness as H
from harness import (MIB, PatternChecker, SluiceTestCase, bootstrap, cluster, report, request,
                     route, route_table, run_validate, scaled, vhost, wait_until)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


class CacheOrigin:
    """A threaded HTTP/1.1 origin that counts requests per target and answers each path as the
    test set it (`set(path, ...)`); unset paths answer 200 text/plain "<target> #<n> for
    <consumer>". With an etag / last_modified, conditional requests get a 304 (when
    `conditional` is true, the default)."""

    def __init__(self, name="origin", port=0):
        self.name = name
        self.lock = threading.Lock()
        self.routes = {}
        self.counts = {}
        self.requests = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                # A body (a GET may carry one) is read, so the next request starts clean.
                self.rfile.read(int(self.headers.get("content-length") or 0))
                origin._handle(self)

            do_HEAD = do_GET
            do_POST = do_GET

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # a client (the proxy) that went away before the answer: not a failure

            def get_request(self):
                conn, addr = super().get_request()
                with origin.lock:
                    origin.conns.add(conn)
                return conn, addr

        self.conns = set()
        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self):
        return {"address": "127.0.0.1", "port": self.port}

    def set(self, path, body=None, status=200, headers=(), content_type="text/plain",
            delay=0.0, etag=None, last_modified=None, conditional=True, chunked=False):
        with self.lock:
            self.routes[path] = dict(body=body, status=status, headers=list(headers),
                                     content_type=content_type, delay=delay, etag=etag,
                                     last_modified=last_modified, conditional=conditional,
                                     chunked=chunked)

    def count(self, target):
        with self.lock:
            return self.counts.get(target, 0)

    def last(self, target):
        with self.lock:
            for r in reversed(self.requests):
                if r["target"] == target:
                    return r
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _handle(self, h):
        target = h.path
        path = target.split("?", 1)[0]
        with self.lock:
            n = self.counts.get(target, 0) + 1
            self.counts[target] = n
            self.requests.append({"method": h.command, "target": target,
                                  "headers": {k.lower(): v for k, v in h.headers.items()}})
            cfg = dict(self.routes.get(path) or {})
        if cfg.get("delay"):
            time.sleep(cfg["delay"])
        status = cfg.get("status", 200)
        body = cfg.get("body")
        if body is None:
            body = "%s #%d for %s" % (target, n, h.headers.get("x-consumer-username", "-"))
        elif callable(body):
            body = body(n)
        if isinstance(body, str):
            body = body.encode()
        headers = [("X-Origin", self.name)]
        if cfg.get("content_type", "text/plain"):
            headers.append(("Content-Type", cfg.get("content_type", "text/plain")))
        headers += cfg.get("headers", [])
        etag, lm = cfg.get("etag"), cfg.get("last_modified")
        if etag:
            headers.append(("ETag", etag))
        if lm:
            headers.append(("Last-Modified", lm))
        if cfg.get("conditional", True) and status == 200:
            inm = h.headers.get("if-none-match")
            ims = h.headers.get("if-modified-since")
            if (inm is not None and etag and etag in [t.strip() for t in inm.split(",")]) or \
                    (inm is None and ims is not None and lm and ims == lm):
                status, body = 304, b""
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        no_body = h.command == "HEAD" or status in (204, 304)
        if cfg.get("chunked") and not no_body:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            h.wfile.write(b"0\r\n\r\n")
        else:
            if status != 304:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not no_body:
                h.wfile.write(body)
        h.wfile.flush()


def cache(**config):
    return {"cache": config}


# Route configs of the main listener (its own config: the listener's, below).
LISTENER = {"expose_cache_key": True}
ROUTES = [
    ("/ttl/", {"cache_ttl": "1s", "expose_cache_key": True}),
    ("/cc/", {"cache_control": True, "expose_cache_key": True}),
    ("/kong/", {"cache_control": False, "cache_ttl": "60s"}),
    ("/vary/", {"vary_headers": ["X-Tenant"], "vary_query_params": ["page"]}),
    ("/case/", {"ignore_uri_case": True}),
    ("/types/", {"content_type": ["text/*", "application/json; charset=utf-8"],
                 "response_code": [200, 203]}),
    ("/swr/", {"cache_ttl": "1s", "stale_while_revalidate": "60s"}),
    ("/off/", {"disabled": True}),
    ("/get-only/", {"request_method": ["GET"]}),
]


class CacheTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = CacheOrigin("origin")
        cls.addClassCleanup(cls.origin.close)
        cls.up = cls.start_class_upstream("up", default_action="fixed")
        routes = [route(prefix=p, cluster="origin", filter_config=cache(**c)) for p, c in ROUTES]
        routes += [route(prefix="/big/", cluster="up"), route(prefix="/trailers/", cluster="up"),
                   route(prefix="/", cluster="origin")]
        auth_routes = [route(prefix="/", cluster="origin")]
        policy = {"name": "keys", "key_auth": {"key_names": ["apikey"]},
                  "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "a-key"}]},
                                {"username": "bob", "keyauth_credentials": [{"key": "b-key"}]}]}
        cls.config = bootstrap(
            [H.h2_listener("public", "main", http_filters=[
                {"name": "cache", "config": LISTENER}, {"name": "router"}]),
             H.h2_listener("authed", "authed", http_filters=[
                 {"name": "auth", "config": {"policy": "keys"}},
                 {"name": "cache", "config": {"expose_cache_key": True}},
                 {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)]),
             route_table("authed", [vhost("all", ["*"], auth_routes)])],
            [cluster("origin", [cls.origin.endpoint()]), cluster("up", [cls.up])])
        cls.config["static_resources"]["auth_policies"] = [policy]
        cls.sluice = cls.start_class_sluice(cls.config, concurrency=2)
        cls.port = cls.sluice.listener_port("public")
        cls.auth_port = cls.sluice.listener_port("authed")

    # -- helpers --------------------------------------------------------------------------------

    def get(self, path, headers=None, method="GET", port=None, sink=None):
        return request(port or self.port, method, path, headers=headers, sink=sink)

    def assertCache(self, r, status, body=None):
        self.assertEqual(r.header("x-cache-status"), status, r)
        if body is not None:
            self.assertEqual(r.body, body.encode() if isinstance(body, str) else body, r)

    def stat(self, name):
        return self.sluice.stats().get("cache." + name, 0)

    # -- hits, misses, statuses -----------------------------------------------------------------

    def test_miss_then_hit(self):
        self.origin.set("/hit/a", headers=[("X-Extra", "kept")])
        hits = self.stat("hits")
        r1 = self.get("/hit/a")
        self.assertEqual(r1.status, 200, r1)
        self.assertCache(r1, "Miss", "/hit/a #1 for -")
        self.assertRegex(r1.header("x-cache-key"), HEX64)
        r2 = self.get("/hit/a")
        self.assertCache(r2, "Hit", "/hit/a #1 for -")
        self.assertEqual(self.origin.count("/hit/a"), 1)
        # The stored response as the origin sent it, with its length, an Age, the same key and
        # a request id of its own.
        self.assertEqual(r2.header("x-extra"), "kept")
        self.assertEqual(r2.header("x-origin"), "origin")
        self.assertEqual(r2.header("content-type"), "text/plain")
        self.assertEqual(r2.header("content-length"), str(len(r2.body)))
        self.assertIn(r2.header("age"), ("0", "1"))
        self.assertEqual(r2.header("x-cache-key"), r1.header("x-cache-key"))
        self.assertIsNotNone(r2.header("date"))
        self.assertNotEqual(r2.header("x-request-id"), r1.header("x-request-id"))
        wait_until(lambda: self.stat("hits") >= hits + 1, message="hits counted")

    def test_age_grows(self):
        self.origin.set("/age/a")
        self.assertCache(self.get("/age/a"), "Miss")
        time.sleep(1.2)
        r = self.get("/age/a")
        self.assertCache(r, "Hit")
        self.assertGreaterEqual(int(r.header("age")), 1, r)

    def test_bypass_refresh_and_disabled(self):
        # A method that is not cached.
        r = self.get("/status/post", method="POST")
        self.assertCache(r, "Bypass")
        # A response that is not cacheable: its status, its content type.
        self.origin.set("/status/500", status=500)
        self.assertCache(self.get("/status/500"), "Bypass")
        self.assertCache(self.get("/status/500"), "Bypass")
        self.assertEqual(self.origin.count("/status/500"), 2)
        self.origin.set("/status/html", content_type="text/html")
        self.assertCache(self.get("/status/html"), "Bypass")
        self.assertCache(self.get("/status/html"), "Bypass")
        self.assertEqual(self.origin.count("/status/html"), 2)
        self.origin.set("/status/404", status=404)
        self.assertCache(self.get("/status/404"), "Miss")
        self.assertCache(self.get("/status/404"), "Hit")
        # Stale (cache_ttl 1s): found, but fetched again.
        self.assertCache(self.get("/ttl/refresh"), "Miss", "/ttl/refresh #1 for -")
        time.sleep(1.2)
        self.assertCache(self.get("/ttl/refresh"), "Refresh", "/ttl/refresh #2 for -")
        self.assertCache(self.get("/ttl/refresh"), "Hit", "/ttl/refresh #2 for -")
        # Disabled on a route: no header, nothing stored.
        r = self.get("/off/x")
        self.assertIsNone(r.header("x-cache-status"), r)
        self.get("/off/x")
        self.assertEqual(self.origin.count("/off/x"), 2)
        # HEAD not in request_method.
        self.assertCache(self.get("/get-only/x", method="HEAD"), "Bypass")
        # A request with a body, a Range.
        r = request(self.port, "GET", "/status/body", body=b"x")
        self.assertCache(r, "Bypass")
        self.assertCache(self.get("/status/range", {"Range": "bytes=0-3"}), "Bypass")

    def test_content_types_and_codes(self):
        # text/* matches any text type, parameters of the response ignored; a configured
        # parameter must be there.
        self.origin.set("/types/csv", content_type="text/csv; charset=latin1")
        self.assertCache(self.get("/types/csv"), "Miss")
        self.assertCache(self.get("/types/csv"), "Hit")
        self.origin.set("/types/json", content_type="application/json")
        self.assertCache(self.get("/types/json"), "Bypass")
        self.origin.set("/types/json8", content_type="application/JSON;charset=UTF-8")
        self.assertCache(self.get("/types/json8"), "Miss")
        self.assertCache(self.get("/types/json8"), "Hit")
        self.origin.set("/types/203", status=203)
        self.assertCache(self.get("/types/203"), "Miss")
        self.assertCache(self.get("/types/203"), "Hit")
        self.origin.set("/types/404", status=404)
        self.assertCache(self.get("/types/404"), "Bypass")
        # The listener's defaults: application/json with a charset counts as application/json.
        self.origin.set("/types-default/json", content_type="application/json; charset=utf-8")
        self.assertCache(self.get("/types-default/json"), "Miss")
        self.assertCache(self.get("/types-default/json"), "Hit")
        self.origin.set("/types-default/none", content_type="")
        self.assertCache(self.get("/types-default/none"), "Bypass")

    def test_head_served_from_get_entry(self):
        self.origin.set("/head/a", body="the body")
        self.assertCache(self.get("/head/a"), "Miss")
        r = self.get("/head/a", method="HEAD")
        self.assertCache(r, "Hit", b"")
        self.assertEqual(r.header("content-length"), "8")
        self.assertEqual(self.origin.count("/head/a"), 1)
        # A HEAD miss goes upstream as a HEAD and stores nothing: a GET after it is a miss.
        self.origin.set("/head/b", body="b body")
        r = self.get("/head/b", method="HEAD")
        self.assertCache(r, "Miss", b"")
        self.assertEqual(self.origin.last("/head/b")["method"], "HEAD")
        r = self.get("/head/b")
        self.assertCache(r, "Miss", "b body")
        self.assertCache(self.get("/head/b"), "Hit", "b body")

    def test_query_normalised(self):
        self.assertCache(self.get("/q/a?x=1&y=2"), "Miss")
        self.assertCache(self.get("/q/a?y=2&x=1"), "Hit", "/q/a?x=1&y=2 #1 for -")
        self.assertCache(self.get("/q/a?y=2&x=1&"), "Hit")
        self.assertCache(self.get("/q/a?x=1&y=3"), "Miss")
        self.assertCache(self.get("/q/a"), "Miss")
        # vary_query_params: only `page` counts.
        self.assertCache(self.get("/vary/p?page=1&utm=a"), "Miss")
        self.assertCache(self.get("/vary/p?utm=b&page=1"), "Hit")
        self.assertCache(self.get("/vary/p?page=2&utm=a"), "Miss")

    def test_vary_headers_config(self):
        self.assertCache(self.get("/vary/h", {"X-Tenant": "a"}), "Miss")
        self.assertCache(self.get("/vary/h", {"X-Tenant": "b"}), "Miss")
        self.assertCache(self.get("/vary/h"), "Miss")
        r = self.get("/vary/h", {"x-tenant": "a"})
        self.assertCache(r, "Hit", "/vary/h #1 for -")
        self.assertCache(self.get("/vary/h", {"X-Tenant": "b"}), "Hit", "/vary/h #2 for -")
        self.assertCache(self.get("/vary/h"), "Hit", "/vary/h #3 for -")

    def test_response_vary(self):
        self.origin.set("/cc/vary", headers=[("Cache-Control", "max-age=60"),
                                             ("Vary", "Accept-Language")])
        en, fr = {"Accept-Language": "en"}, {"Accept-Language": "fr"}
        r1 = self.get("/cc/vary", en)
        self.assertCache(r1, "Miss", "/cc/vary #1 for -")
        self.assertCache(self.get("/cc/vary", fr), "Miss", "/cc/vary #2 for -")
        self.assertCache(self.get("/cc/vary", en), "Hit", "/cc/vary #1 for -")
        r = self.get("/cc/vary", fr)
        self.assertCache(r, "Hit", "/cc/vary #2 for -")
        self.assertEqual(r.header("vary"), "Accept-Language")
        self.assertEqual(r.header("x-cache-key"), r1.header("x-cache-key"))
        self.assertEqual(self.origin.count("/cc/vary"), 2)
        # Vary: * is never stored, with or without cache_control.
        self.origin.set("/cc/star", headers=[("Cache-Control", "max-age=60"), ("Vary", "*")])
        self.assertCache(self.get("/cc/star"), "Bypass")
        self.assertCache(self.get("/cc/star"), "Bypass")
        self.origin.set("/star", headers=[("Vary", "*")])
        self.assertCache(self.get("/star"), "Bypass")
        # The listener's config (cache_control off) honours Vary too.
        self.origin.set("/vary-off", headers=[("Vary", "accept-language")])
        self.assertCache(self.get("/vary-off", en), "Miss", "/vary-off #1 for -")
        self.assertCache(self.get("/vary-off", fr), "Miss", "/vary-off #2 for -")
        self.assertCache(self.get("/vary-off", en), "Hit", "/vary-off #1 for -")

    def test_ignore_uri_case(self):
        self.assertCache(self.get("/case/MiXeD"), "Miss")
        self.assertCache(self.get("/case/mixed"), "Hit", "/case/MiXeD #1 for -")
        # Without it, case matters.
        self.assertCache(self.get("/nocase/MiXeD"), "Miss")
        self.assertCache(self.get("/nocase/mixed"), "Miss")

    # -- consumers ------------------------------------------------------------------------------

    def test_consumer_isolation(self):
        alice, bob = {"apikey": "a-key"}, {"apikey": "b-key"}
        r = self.get("/acct", alice, port=self.auth_port)
        self.assertCache(r, "Miss", "/acct #1 for alice")
        r = self.get("/acct", bob, port=self.auth_port)
        self.assertCache(r, "Miss", "/acct #2 for bob")
        self.assertCache(self.get("/acct", alice, port=self.auth_port), "Hit", "/acct #1 for alice")
        self.assertCache(self.get("/acct", bob, port=self.auth_port), "Hit", "/acct #2 for bob")
        # No key: refused by auth before the cache, never served from it.
        r = self.get("/acct", port=self.auth_port)
        self.assertEqual(r.status, 401, r)
        self.assertIsNone(r.header("x-cache-status"), r)
        self.assertEqual(self.origin.count("/acct"), 2)
        # Each consumer's key is its own.
        a = self.get("/acct", alice, port=self.auth_port).header("x-cache-key")
        b = self.get("/acct", bob, port=self.auth_port).header("x-cache-key")
        self.assertNotEqual(a, b)

    # -- Cache-Control (cache_control: true) ------------------------------------------------------

    def cc(self, path, cache_control=None, headers=(), req=None, expect_stored=True, **kw):
        hs = list(headers)
        if cache_control is not None:
            hs.append(("Cache-Control", cache_control))
        self.origin.set(path, headers=hs, **kw)
        first = self.get(path, req)
        second = self.get(path, req)
        if expect_stored:
            self.assertCache(first, "Miss")
            self.assertCache(second, "Hit")
            self.assertEqual(self.origin.count(path), 1)
        else:
            self.assertCache(first, "Bypass")
            self.assertCache(second, "Bypass")
            self.assertEqual(self.origin.count(path), 2)
        return first, second

    def test_response_cache_control(self):
        self.cc("/cc/no-store", "no-store, max-age=60", expect_stored=False)
        self.cc("/cc/private", "private, max-age=60", expect_stored=False)
        self.cc("/cc/private-field", 'private="x-a", max-age=60', expect_stored=False)
        self.cc("/cc/no-cache", "no-cache, max-age=60", expect_stored=False)
        self.cc("/cc/max-age", "max-age=60")
        self.cc("/cc/quoted", 'max-age="60"')
        self.cc("/cc/zero", "max-age=0", expect_stored=False)
        self.cc("/cc/bad", "max-age=abc", expect_stored=False)
        self.cc("/cc/s-maxage", "max-age=0, s-maxage=60")
        self.cc("/cc/none", None, expect_stored=False)  # no explicit lifetime (as Kong)
        now = time.time()
        self.cc("/cc/expires", None, headers=[("Date", http_date(now)),
                                              ("Expires", http_date(now + 60))])
        self.cc("/cc/expired", None, headers=[("Date", http_date(now)),
                                              ("Expires", http_date(now - 60))],
                expect_stored=False)
        self.cc("/cc/expires-bad", None, headers=[("Expires", "0")], expect_stored=False)
        # Age: a response already 30 s old is served with its age; one older than its lifetime
        # is not stored.
        _, hit = self.cc("/cc/aged", "max-age=60", headers=[("Age", "30")])
        self.assertGreaterEqual(int(hit.header("age")), 30, hit)
        self.assertLess(int(hit.header("age")), 40, hit)
        self.cc("/cc/too-old", "max-age=5", headers=[("Age", "10")], expect_stored=False)
        # Set-Cookie: stored only when public, and never given to another client.
        self.cc("/cc/cookie", "max-age=60", headers=[("Set-Cookie", "s=1")], expect_stored=False)
        first, hit = self.cc("/cc/cookie-public", "public, max-age=60",
                             headers=[("Set-Cookie", "s=1")])
        self.assertEqual(first.header("set-cookie"), "s=1")
        self.assertIsNone(hit.header("set-cookie"), hit)
        # Authorization (RFC 9111 3.5): only public / s-maxage / must-revalidate responses.
        auth = {"Authorization": "Bearer x"}
        self.cc("/cc/auth", "max-age=60", req=auth, expect_stored=False)
        self.cc("/cc/auth-public", "public, max-age=60", req=auth)
        self.cc("/cc/auth-smaxage", "s-maxage=60", req=auth)

    def test_cache_control_off_is_kong(self):
        # cache_ttl for everything the other fields accept; Cache-Control ignored.
        self.cc("/kong/no-store", "no-store, private")
        self.cc("/kong/none", None)
        r = self.get("/kong/none", {"Cache-Control": "no-cache"})
        self.assertCache(r, "Hit")

    def test_request_cache_control(self):
        self.origin.set("/cc/req", headers=[("Cache-Control", "max-age=60")])
        self.assertCache(self.get("/cc/req"), "Miss", "/cc/req #1 for -")
        self.assertCache(self.get("/cc/req"), "Hit", "/cc/req #1 for -")
        # no-cache: fetched again (Refresh), and the new response is stored.
        r = self.get("/cc/req", {"Cache-Control": "no-cache"})
        self.assertCache(r, "Refresh", "/cc/req #2 for -")
        self.assertCache(self.get("/cc/req"), "Hit", "/cc/req #2 for -")
        self.assertCache(self.get("/cc/req", {"Pragma": "no-cache"}), "Refresh",
                         "/cc/req #3 for -")
        # no-store: neither answered from nor stored into the cache.
        self.assertCache(self.get("/cc/req", {"Cache-Control": "no-store"}), "Bypass",
                         "/cc/req #4 for -")
        self.assertCache(self.get("/cc/req"), "Hit", "/cc/req #3 for -")
        # max-age: the entry is too old for this client.
        time.sleep(1.1)
        self.assertCache(self.get("/cc/req", {"Cache-Control": "max-age=0"}), "Refresh",
                         "/cc/req #5 for -")
        self.assertCache(self.get("/cc/req", {"Cache-Control": "max-age=30"}), "Hit",
                         "/cc/req #5 for -")
        # min-fresh: it must stay fresh longer than it will.
        self.assertCache(self.get("/cc/req", {"Cache-Control": "min-fresh=120"}), "Refresh")
        # only-if-cached: 504 when it is not there.
        r = self.get("/cc/absent", {"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 504, r)
        self.assertEqual(self.origin.count("/cc/absent"), 0)
        self.assertCache(self.get("/cc/req", {"Cache-Control": "only-if-cached"}), "Hit")
        # max-stale: a stale response is fine for this client.
        self.origin.set("/cc/short", headers=[("Cache-Control", "max-age=1")])
        self.assertCache(self.get("/cc/short"), "Miss")
        time.sleep(2.1)
        self.assertCache(self.get("/cc/short", {"Cache-Control": "max-stale=60"}), "Hit",
                         "/cc/short #1 for -")
        self.assertCache(self.get("/cc/short", {"Cache-Control": "max-stale"}), "Hit")
        self.assertCache(self.get("/cc/short"), "Refresh", "/cc/short #2 for -")
        # must-revalidate: never stale, whatever the client accepts.
        self.origin.set("/cc/must", headers=[("Cache-Control", "max-age=1, must-revalidate")])
        self.assertCache(self.get("/cc/must"), "Miss")
        time.sleep(2.1)
        self.assertCache(self.get("/cc/must", {"Cache-Control": "max-stale"}), "Refresh")

    def test_hostile_cache_control_headers(self):
        # Never a crash, never a stored response that should not be.
        values = ['max-age="60', "max-age=99999999999999999999999", "=,=,=", '"' * 500,
                  'max-age=60, no-store="\\"', ",,,,max-age=60,,", "max-age=-1", "MAX-AGE=60",
                  "no-cache\t", "a" * 8000, "max-age=60, max-age=0", "\\" * 100]
        stored = {0: True, 1: True, 2: False, 3: False, 4: False, 5: True, 6: False, 7: True,
                  8: False, 9: False, 10: False, 11: False}
        for i, v in enumerate(values):
            path = "/cc/hostile%d" % i
            self.origin.set(path, headers=[("Cache-Control", v)])
            self.assertEqual(self.get(path, {"Cache-Control": v}).status, 200)
            r = self.get(path)
            self.assertEqual(r.status, 200, r)
            if stored[i]:
                self.assertIn(r.header("x-cache-status"), ("Hit", "Refresh"), (v, r))
            else:
                self.assertEqual(r.header("x-cache-status"), "Bypass", (v, r))
        self.assertTrue(self.sluice.running())

    # -- conditionals and revalidation ------------------------------------------------------------

    def test_conditionals_from_cache(self):
        lm = http_date(time.time() - 3600)
        self.origin.set("/cond/a", etag='"v1"', last_modified=lm)
        self.assertCache(self.get("/cond/a"), "Miss")
        r = self.get("/cond/a", {"If-None-Match": '"v1"'})
        self.assertEqual(r.status, 304, r)
        self.assertCache(r, "Hit", b"")
        self.assertEqual(r.header("etag"), '"v1"')
        self.assertIsNone(r.header("content-type"), r)
        self.assertEqual(self.get("/cond/a", {"If-None-Match": 'W/"x", W/"v1"'}).status, 304)
        self.assertEqual(self.get("/cond/a", {"If-None-Match": '*'}).status, 304)
        r = self.get("/cond/a", {"If-None-Match": '"v0"'})
        self.assertEqual(r.status, 200, r)
        self.assertCache(r, "Hit")
        self.assertEqual(self.get("/cond/a", {"If-Modified-Since": lm}).status, 304)
        self.assertEqual(self.get("/cond/a", {"If-Modified-Since":
                                              http_date(time.time() - 7200)}).status, 200)
        # If-None-Match wins over If-Modified-Since.
        self.assertEqual(self.get("/cond/a", {"If-None-Match": '"v0"',
                                              "If-Modified-Since": lm}).status, 200)
        self.assertEqual(self.get("/cond/a", {"If-None-Match": '"v1"'}, method="HEAD").status,
                         304)
        self.assertEqual(self.origin.count("/cond/a"), 1)

    def test_client_conditional_on_a_miss(self):
        # The origin is asked for the whole response (to store it); the client still gets its
        # 304.
        self.origin.set("/cond/miss", etag='"m1"')
        r = self.get("/cond/miss", {"If-None-Match": '"m1"'})
        self.assertEqual(r.status, 304, r)
        self.assertCache(r, "Miss", b"")
        self.assertIsNone(self.origin.last("/cond/miss")["headers"].get("if-none-match"))
        r = self.get("/cond/miss")
        self.assertEqual(r.status, 200, r)
        self.assertCache(r, "Hit", "/cond/miss #1 for -")
        r = self.get("/cond/miss2", {"If-None-Match": '"zzz"'})
        self.assertEqual(r.status, 200, r)

    def test_revalidation_with_etag(self):
        self.origin.set("/ttl/etag", etag='"e1"')
        self.assertCache(self.get("/ttl/etag"), "Miss", "/ttl/etag #1 for -")
        time.sleep(1.2)
        r = self.get("/ttl/etag")
        # The origin answered 304 to our If-None-Match: the stored body, refreshed.
        self.assertEqual(r.status, 200, r)
        self.assertCache(r, "Refresh", "/ttl/etag #1 for -")
        self.assertEqual(self.origin.last("/ttl/etag")["headers"].get("if-none-match"), '"e1"')
        self.assertEqual(self.origin.count("/ttl/etag"), 2)
        self.assertCache(self.get("/ttl/etag"), "Hit", "/ttl/etag #1 for -")
        self.assertEqual(self.origin.count("/ttl/etag"), 2)
        # A client's own conditional gets its 304 from the refreshed entry.
        time.sleep(1.2)
        r = self.get("/ttl/etag", {"If-None-Match": '"e1"'})
        self.assertEqual(r.status, 304, r)
        self.assertCache(r, "Refresh")
        # A changed resource: the new response replaces the entry.
        self.origin.set("/ttl/etag", etag='"e2"', body="changed")
        time.sleep(1.2)
        self.assertCache(self.get("/ttl/etag"), "Refresh", "changed")
        self.assertCache(self.get("/ttl/etag"), "Hit", "changed")
        wait_until(lambda: self.stat("revalidated") >= 2, message="revalidations counted")

    def test_revalidation_with_last_modified(self):
        lm = http_date(time.time() - 60)
        self.origin.set("/ttl/lm", last_modified=lm)
        self.assertCache(self.get("/ttl/lm"), "Miss", "/ttl/lm #1 for -")
        time.sleep(1.2)
        self.assertCache(self.get("/ttl/lm"), "Refresh", "/ttl/lm #1 for -")
        self.assertEqual(self.origin.last("/ttl/lm")["headers"].get("if-modified-since"), lm)
        self.assertCache(self.get("/ttl/lm"), "Hit", "/ttl/lm #1 for -")

    # -- collapsing, stale --------------------------------------------------------------------

    def test_fifty_concurrent_misses_one_upstream_request(self):
        self.origin.set("/collapse/a", delay=1.0)
        waits = self.stat("collapsed_waits")

        def one(_):
            return request(self.port, "GET", "/collapse/a", timeout=20)
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(one, range(50)))
        self.assertEqual(self.origin.count("/collapse/a"), 1)
        for r in results:
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"/collapse/a #1 for -", r)
        statuses = sorted(r.header("x-cache-status") for r in results)
        self.assertEqual(statuses.count("Miss"), 1, statuses)
        self.assertEqual(statuses.count("Hit"), 49, statuses)
        wait_until(lambda: self.stat("collapsed_waits") >= waits + 1,
                   message="collapsed waits counted")
        report("collapse: 50 concurrent misses -> %d origin request(s); %d collapsed waits",
               self.origin.count("/collapse/a"), self.stat("collapsed_waits") - waits)

    def test_collapsed_waiters_go_upstream_when_not_cacheable(self):
        self.origin.set("/collapse/nc", delay=0.5, status=500)
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda _: request(self.port, "GET", "/collapse/nc",
                                                      timeout=20), range(10)))
        for r in results:
            self.assertEqual(r.status, 500, r)
        self.assertEqual(self.origin.count("/collapse/nc"), 10)

    def test_stale_while_revalidate(self):
        self.origin.set("/swr/a", body=lambda n: "v%d" % n)
        self.assertCache(self.get("/swr/a"), "Miss", "v1")
        time.sleep(1.2)
        self.origin.set("/swr/a", body=lambda n: "v%d" % n, delay=1.5)
        with ThreadPoolExecutor(2) as pool:
            leader = pool.submit(request, self.port, "GET", "/swr/a", None, None, "example.com",
                                 "HTTP/1.1", 20)
            wait_until(lambda: self.origin.count("/swr/a") == 2, message="refresh started")
            t0 = time.monotonic()
            stale = self.get("/swr/a")
            took = time.monotonic() - t0
            lead = leader.result()
        # The one refreshing waited for the origin; the other got the stale entry at once.
        self.assertCache(stale, "Hit", "v1")
        self.assertLess(took, 1.0)
        self.assertCache(lead, "Refresh", "v2")
        self.assertCache(self.get("/swr/a"), "Hit", "v2")
        self.assertEqual(self.origin.count("/swr/a"), 2)
        report("stale-while-revalidate: stale answer in %.1f ms while the refresh ran", took * 1e3)


class CacheStaleIfErrorTest(SluiceTestCase):
    """stale-if-error against an origin that fails, then is killed."""

    def test_stale_if_error(self):
        origin = CacheOrigin("sie")
        self.addCleanup(origin.close)
        config = bootstrap(
            [H.h2_listener("public", "main", http_filters=[
                {"name": "cache", "config": {"cache_ttl": "1s", "stale_if_error": "60s"}},
                {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/short/", cluster="sie", filter_config=cache(
                    cache_ttl="1s", stale_if_error="1s")),
                route(prefix="/", cluster="sie", route={"timeout": "1s"})])])],
            [cluster("sie", [origin.endpoint()], connect_timeout="0.5s")])
        sluice = self.start_sluice(config)
        port = sluice.listener_port("public")
        origin.set("/a", body="good")
        origin.set("/short/a", body="good")
        self.assertEqual(request(port, "GET", "/a").header("x-cache-status"), "Miss")
        self.assertEqual(request(port, "GET", "/short/a").header("x-cache-status"), "Miss")
        time.sleep(1.2)
        # The origin answers 503: the stale response instead.
        origin.set("/a", status=503, body="down")
        r = request(port, "GET", "/a")
        self.assertEqual((r.status, r.body, r.header("x-cache-status")), (200, b"good", "Hit"), r)
        self.assertGreaterEqual(int(r.header("age")), 1)
        # A timeout (the route's 1s): the same.
        origin.set("/a", delay=3.0)
        r = request(port, "GET", "/a", timeout=10)
        self.assertEqual((r.status, r.body), (200, b"good"), r)
        # Past its stale-if-error window, the failure goes to the client.
        time.sleep(1.1)
        origin.set("/short/a", status=503, body="down")
        r = request(port, "GET", "/short/a")
        self.assertEqual(r.status, 503, r)
        # The origin is killed: connections refused.
        origin.close()
        r = request(port, "GET", "/a")
        self.assertEqual((r.status, r.body, r.header("x-cache-status")), (200, b"good", "Hit"), r)
        self.assertGreaterEqual(sluice.stats().get("cache.stale_served", 0), 3)
        # Something never stored still fails.
        r = request(port, "GET", "/never")
        self.assertEqual(r.status, 503, r)


class CacheStoreTest(SluiceTestCase):
    """LRU eviction at max_bytes, purge, stats; a large streamed response; trailers; HTTP/2."""

    def start(self, listener_config, upstream=None):
        self.origin = CacheOrigin("origin")
        self.addCleanup(self.origin.close)
        clusters = [cluster("origin", [self.origin.endpoint()])]
        routes = [route(prefix="/", cluster="origin")]
        if upstream is not None:
            clusters.append(cluster("up", [upstream]))
            routes.insert(0, route(prefix="/up/", cluster="up"))
        config = bootstrap(
            [H.h2_listener("public", "main", http_filters=[
                {"name": "cache", "config": listener_config}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])], clusters)
        self.sluice = self.start_sluice(config, concurrency=2)
        self.port = self.sluice.listener_port("public")

    def status(self, path, **kw):
        return request(self.port, "GET", path, **kw).header("x-cache-status")

    def test_lru_eviction_at_max_bytes(self):
        self.start({"max_bytes": 100000, "max_object_bytes": 30000})
        for p in "abcde":
            self.origin.set("/lru/" + p, body=p * 20000)
        for p in "abcd":
            self.assertEqual(self.status("/lru/" + p), "Miss")
        self.assertEqual(self.status("/lru/a"), "Hit")  # a is now the most recently used
        self.assertEqual(self.status("/lru/e"), "Miss")  # over max_bytes: b goes
        stats = self.sluice.stats()
        self.assertEqual(stats["cache.evictions"], 1)
        self.assertLessEqual(stats["cache.bytes"], 100000)
        self.assertEqual(stats["cache.entries"], 4)
        self.assertEqual(self.status("/lru/b"), "Miss")  # evicted (and stored again: c goes)
        self.assertEqual(self.status("/lru/a"), "Hit")
        self.assertEqual(self.status("/lru/e"), "Hit")
        self.assertEqual(self.status("/lru/d"), "Hit")
        self.assertEqual(self.status("/lru/c"), "Miss")
        _, _, body = self.sluice.admin("GET", "/cache")
        info = json.loads(body)
        self.assertEqual(info["capacity"], 100000)
        self.assertLessEqual(info["bytes"], 100000)
        # An object larger than max_object_bytes is not stored.
        self.origin.set("/lru/big", body="x" * 40000)
        self.assertEqual(self.status("/lru/big"), "Bypass")

    def test_purge(self):
        self.start({"expose_cache_key": True})
        r = request(self.port, "GET", "/p/a")
        key = r.header("x-cache-key")
        self.assertEqual(self.status("/p/a"), "Hit")
        self.assertEqual(self.status("/p/b"), "Miss")
        status, _, body = self.sluice.admin("DELETE", "/cache?key=" + key)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["purged"], 1)
        self.assertEqual(self.status("/p/a"), "Miss")
        self.assertEqual(self.status("/p/b"), "Hit")  # only that key went
        status, _, body = self.sluice.admin("DELETE", "/cache?key=" + "0" * 64)
        self.assertEqual(status, 404, body)
        status, _, body = self.sluice.admin("DELETE", "/cache?key=nothex")
        self.assertEqual(status, 400, body)
        status, _, body = self.sluice.admin("DELETE", "/cache")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["purged"], 2)
        self.assertEqual(self.status("/p/a"), "Miss")
        self.assertEqual(self.status("/p/b"), "Miss")
        status, _, _ = self.sluice.admin("POST", "/cache")
        self.assertEqual(status, 405)
        stats = self.sluice.stats()
        self.assertEqual(stats["cache.purged"], 3)
        prom = self.sluice.admin("GET", "/stats/prometheus")[2].decode()
        for name in ("sluice_cache_hits_total", "sluice_cache_misses_total",
                     "sluice_cache_bytes", "sluice_cache_entries"):
            self.assertIn(name, prom)
        _, _, index = self.sluice.admin("GET", "/")
        self.assertIn(b"/cache", index)

    def test_large_response_streams_through_uncached(self):
        up = self.start_upstream("up", default_action="stream")
        self.start({"max_object_bytes": 1048576}, upstream=up)
        total = int(os.environ.get("SLUICE_CACHE_STREAM_BYTES", 256 * MIB))
        for chunked in (False, True):
            headers = {"X-Bytes": str(total), "X-Resp-Header": "Content-Type: text/plain"}
            if chunked:
                headers["X-Chunked"] = "1"
            base = self.sluice.rss_kb()
            peak = [base]
            checker = PatternChecker()

            def sink(mv):
                checker.feed(mv)
                if checker.count % (16 * MIB) < len(mv):
                    peak[0] = max(peak[0], self.sluice.rss_kb())
            r = request(self.port, "GET", "/up/big", headers=headers, sink=sink, timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(checker.ok and checker.count == total, checker.count)
            growth = (peak[0] - base) / 1024.0
            report("%s %d MiB response through the cache: RSS %d -> peak %d KiB (+%.1f MiB)",
                   "chunked" if chunked else "content-length", total // MIB, base, peak[0],
                   growth)
            self.assertLess(growth, 32, "RSS grew by %.1f MiB" % growth)
            # Known too large up front: Bypass; found too large while copying: Miss, not stored.
            self.assertEqual(r.header("x-cache-status"), "Miss" if chunked else "Bypass")
        self.assertEqual(self.sluice.stats().get("cache.entries", 0), 0)

    def test_trailers_not_stored(self):
        up = self.start_upstream("up", default_action="echo")
        self.start({"content_type": ["application/json"]}, upstream=up)
        hs = {"X-Chunked": "1", "X-Trailer": "1"}
        r = request(self.port, "GET", "/up/t", headers=hs)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.trailers, [("x-trailer-field", "t")])
        r = request(self.port, "GET", "/up/t", headers=hs)
        self.assertEqual(r.header("x-cache-status"), "Miss", r)
        self.assertEqual(up.request_count(), 2)
        # The same without trailers is stored, chunked or not.
        self.assertEqual(request(self.port, "GET", "/up/c", headers={"X-Chunked": "1"})
                         .header("x-cache-status"), "Miss")
        r = request(self.port, "GET", "/up/c", headers={"X-Chunked": "1"})
        self.assertEqual(r.header("x-cache-status"), "Hit")
        self.assertEqual(r.header("content-length"), str(len(r.body)))
        self.assertEqual(json.loads(r.body)["path"], "/up/c")

    @H.require_h2
    def test_http2_downstream(self):
        self.start({})
        self.origin.set("/h2/a", body="over h2", chunked=True)
        with H.H2Client(self.port) as c:
            r1 = c.request("GET", "/h2/a")
            r2 = c.request("GET", "/h2/a")
            r3 = c.request("HEAD", "/h2/a")
            s1, s2 = c.start("GET", "/h2/a"), c.start("GET", "/h2/a")
            both = c.wait([s1, s2])
        self.assertEqual((r1.status, bytes(r1.body), r1.header("x-cache-status")),
                         (200, b"over h2", "Miss"))
        self.assertEqual((r2.status, bytes(r2.body), r2.header("x-cache-status")),
                         (200, b"over h2", "Hit"))
        self.assertEqual(r2.header("content-length"), "7")
        self.assertEqual((r3.status, bytes(r3.body), r3.header("x-cache-status")),
                         (200, b"", "Hit"))
        for r in both:
            self.assertEqual((r.status, bytes(r.body)), (200, b"over h2"))
        self.assertEqual(self.origin.count("/h2/a"), 1)
        # An HTTP/1.1 client gets the same entry.
        self.assertEqual(request(self.port, "GET", "/h2/a").body, b"over h2")


class CacheConfigTest(unittest.TestCase):
    def validate(self, config, route_config=None):
        routes = [route(prefix="/", cluster="c")]
        if route_config is not None:
            routes[0]["filter_config"] = {"cache": route_config}
        b = bootstrap([{"name": "l", "address": {"host": "127.0.0.1", "port": 0},
                        "route_table": "t",
                        "http_filters": [{"name": "cache", "config": config},
                                         {"name": "router"}]}],
                      [route_table("t", [vhost("v", ["*"], routes)])],
                      [cluster("c", [{"address": "127.0.0.1", "port": 1}])])
        return run_validate(b)

    def test_errors_at_their_field(self):
        p = "static_resources.listeners[0].http_filters[0].config."
        cases = [
            ({"request_method": ["GET", "POST"]}, p + 'request_method[1]: "POST" is not cached'),
            ({"request_method": ["get"]}, p + 'request_method[0]: unknown method "get"'),
            ({"response_code": [99]}, p + "response_code[0]: 99 is not between 100 and 900"),
            ({"response_code": [304]}, p + "response_code[0]: 304 is no whole response"),
            ({"content_type": ["json"]}, p + 'content_type[0]: "json" is not a media type'),
            ({"cache_ttl": "0s"}, p + "cache_ttl: must be greater than 0"),
            ({"vary_headers": ["bad header"]}, p + 'vary_headers[0]: "bad header" is not'),
            ({"max_bytes": 1000, "max_object_bytes": 2000},
             p + "max_object_bytes: 2000 is more than max_bytes (1000)"),
            ({"max_object_bytes": 2 ** 31}, p + "max_object_bytes: must be <= 1073741824"),
            ({"strategy": "memory"}, "strategy"),
        ]
        for config, expected in cases:
            res = self.validate(config)
            self.assertNotEqual(res.returncode, 0, config)
            self.assertIn(expected, res.stderr, config)
        res = self.validate({}, {"disabled": True, "cache_ttl": "5s"})
        self.assertIn("filter_config.cache.disabled: no other field may be set with disabled",
                      res.stderr)
        res = self.validate({}, {"max_bytes": 5})
        self.assertNotEqual(res.returncode, 0)
        res = self.validate({"cache_ttl": "10s", "content_type": ["text/*", "*/*"],
                             "vary_headers": ["Accept-Language"], "stale_if_error": "1m"},
                            {"cache_control": True, "response_code": [200, 203, 410]})
        self.assertEqual(res.returncode, 0, res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
