"""The `cors` filter through the real binary, in front of the harness's echo upstream.

  * preflights (OPTIONS + Origin + Access-Control-Request-Method) answered by the gateway with
    200 and every header checked (Allow-Origin, Vary, Allow-Headers echoed or configured,
    Allow-Methods, Max-Age, Allow-Credentials, Allow-Private-Network), over HTTP/1.1 and h2c;
    `preflight_continue` hands them to the upstream;
  * actual requests: Allow-Origin / -Credentials / -Expose-Headers on the upstream's response
    (replacing its own), and on local replies of later filters (auth 401, router 404 and 502);
  * origins: exact with default-port normalisation, regexes (whole origin or host), `*` with
    credentials (the origin echoed, never `*`); a refused origin gets no CORS headers at all
    (preflight answered, actual request still proxied);
  * `Vary: Origin` merged into the upstream's Vary, once; requests without Origin untouched but
    for `Vary: Origin` when the policy's answer depends on it;
  * per-route and per-virtual-host policies replace the listener's; `disabled: true`;
  * config errors at their field (`sluice --validate`).
Each answer is also run through the browser's side of the Fetch standard's CORS protocol
(`browser_allows`, `browser_preflight_ok`): what the gateway answers must let a browser in
exactly when the policy allows the origin.

Run by hand: SLUICE_BIN=/work/wt-cors/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/cors_test.py
"""

import os
import shutil
import subprocess

from harness import (Conn, SluiceTestCase, bootstrap, cluster, echo, listener, main, route,
                     route_table, run_validate, scaled, vhost)

APP = "https://app.example"
ALL_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"

LISTENER_CORS = {
    "origins": [
        APP,
        "http://local.example:8080",
        "https://default-port.example:443",
        r"https://.*\.partner\.example",    # has ':': matched against the whole origin
        r"[a-z]+\.internal\.example",       # no ':': matched against the host alone
    ],
    "exposed_headers": ["X-Total", "X-Request-Id"],
    "max_age": 600,
    "private_network": True,
}


def config(upstream):
    routes = [
        route(prefix="/api", cluster="up", name="api"),
        route(prefix="/secure", cluster="up", name="secure", auth="keys"),
        route(prefix="/off", cluster="up", name="off", filter_config={"cors": {"disabled": True}}),
        route(prefix="/override", cluster="up", name="override", filter_config={"cors": {
            "origins": ["https://other.example"], "methods": ["GET", "POST"],
            "headers": ["Authorization", "Content-Type"]}}),
    ]
    b = bootstrap(
        [listener(http_filters=[{"name": "cors", "config": LISTENER_CORS},
                                {"name": "auth"}, {"name": "router"}])],
        [route_table("main", [
            {"name": "creds", "domains": ["creds.example"],
             "filter_config": {"cors": {"origins": ["*"], "credentials": True,
                                        "headers": ["X-Api-Key"]}},
             "routes": [route(prefix="/", cluster="up")]},
            {"name": "any", "domains": ["any.example"],
             "filter_config": {"cors": {"origins": ["*"]}},
             "routes": [route(prefix="/", cluster="up")]},
            {"name": "continue", "domains": ["continue.example"],
             "filter_config": {"cors": {"origins": [APP], "preflight_continue": True}},
             "routes": [route(prefix="/", cluster="up")]},
            vhost("all", ["*"], routes),
        ])],
        [cluster("up", [upstream])])
    b["static_resources"]["auth_policies"] = [
        {"name": "keys", "key_auth": {},
         "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]}]
    return b


def cors_headers(resp):
    """{name: value} of the response's access-control-* headers (names lower-cased)."""
    return {k.lower(): v for k, v in resp.headers if k.lower().startswith("access-control-")}


# --- The browser's side of the CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol)

SAFELISTED_METHODS = {"GET", "HEAD", "POST"}


def _single(resp, name):
    values = resp.header_all(name)
    return values[0] if len(values) == 1 else None  # several values fail the check


def browser_allows(resp, origin, credentials=False):
    """Fetch's CORS check: may a script from `origin` read this response?"""
    allow_origin = _single(resp, "access-control-allow-origin")
    if allow_origin is None:
        return False
    if not credentials and allow_origin == "*":
        return True
    if allow_origin != origin:
        return False
    return not credentials or _single(resp, "access-control-allow-credentials") == "true"


def _list(resp, name):
    out = []
    for v in resp.header_all(name):
        out.extend(t.strip() for t in v.split(",") if t.strip())
    return out


def browser_preflight_ok(resp, origin, method, headers=(), credentials=False,
                         private_network=False):
    """Fetch's CORS-preflight fetch: may the browser send the actual request?"""
    if not 200 <= resp.status <= 299 or not browser_allows(resp, origin, credentials):
        return False
    methods = _list(resp, "access-control-allow-methods")
    if (method not in methods and method not in SAFELISTED_METHODS
            and (credentials or "*" not in methods)):
        return False
    allowed = {h.lower() for h in _list(resp, "access-control-allow-headers")}
    for h in headers:
        wildcard = not credentials and "*" in allowed and h.lower() != "authorization"
        if h.lower() not in allowed and not wildcard:
            return False
    if private_network and resp.header("access-control-allow-private-network") != "true":
        return False
    return True


class CorsTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        cls.sluice = cls.start_class_sluice(config(cls.up))
        cls.port = cls.sluice.listener_port()

    def setUp(self):
        self.up.reset()

    def request(self, method, path, headers=(), host="api.example", body=None):
        with Conn(self.port) as c:
            return c.request(method, path, headers=list(headers), host=host, body=body)

    def preflight(self, path, origin, method="PUT", request_headers=None, host="api.example",
                  extra=()):
        self.before = self.up.request_count()
        h = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if request_headers is not None:
            h.append(("Access-Control-Request-Headers", request_headers))
        return self.request("OPTIONS", path, h + list(extra), host=host)

    def assertAnsweredByGateway(self, resp):
        self.assertStatus(resp, 200)
        self.assertEqual(resp.body, b"")
        self.assertEqual(resp.header("content-length"), "0")
        self.assertIsNone(resp.header("x-upstream"))
        self.assertEqual(self.up.request_count(), self.before, "the upstream saw the preflight")

    # -- preflights -------------------------------------------------------------------------

    def test_preflight_answered_by_the_gateway(self):
        r = self.preflight("/api/items", APP, "PUT", "X-Custom, Content-Type")
        self.assertAnsweredByGateway(r)
        self.assertEqual(cors_headers(r), {
            "access-control-allow-origin": APP,
            # Not configured: the requested headers, echoed (Kong).
            "access-control-allow-headers": "X-Custom, Content-Type",
            "access-control-allow-methods": ALL_METHODS,
            "access-control-max-age": "600",
        })
        self.assertEqual(r.header_all("vary"), ["Origin"])
        self.assertIsNotNone(r.header("x-request-id"))
        self.assertIsNotNone(r.header("date"))
        self.assertTrue(browser_preflight_ok(r, APP, "PUT", ["X-Custom", "Content-Type"]))
        # The same preflight without requested headers: no Allow-Headers at all.
        r = self.preflight("/api/items", APP, "DELETE")
        self.assertNotIn("access-control-allow-headers", cors_headers(r))
        self.assertTrue(browser_preflight_ok(r, APP, "DELETE"))

    def test_preflight_skips_later_filters_and_routes(self):
        # auth would answer 401 (no key), and /nowhere has no route: the preflight is answered
        # before either, so a browser may go on and read the real 401 / 404.
        for path in ("/secure/x", "/nowhere"):
            r = self.preflight(path, APP, "GET", "Authorization")
            self.assertAnsweredByGateway(r)
            self.assertEqual(r.header("access-control-allow-origin"), APP)
            self.assertTrue(browser_preflight_ok(r, APP, "GET", ["Authorization"]))

    def test_preflight_private_network(self):
        pna = [("Access-Control-Request-Private-Network", "true")]
        r = self.preflight("/api", APP, extra=pna)
        self.assertEqual(r.header("access-control-allow-private-network"), "true")
        self.assertTrue(browser_preflight_ok(r, APP, "PUT", private_network=True))
        # Only when asked for.
        for extra in ([], [("Access-Control-Request-Private-Network", "false")]):
            r = self.preflight("/api", APP, extra=extra)
            self.assertNotIn("access-control-allow-private-network", cors_headers(r))
        # Not configured: never (the virtual host's policy replaces the listener's).
        r = self.preflight("/", "https://x.example", host="any.example", extra=pna)
        self.assertNotIn("access-control-allow-private-network", cors_headers(r))
        self.assertFalse(browser_preflight_ok(r, "https://x.example", "PUT",
                                              private_network=True))

    def test_preflight_continue_reaches_the_upstream(self):
        r = self.preflight("/things", APP, "PUT", "X-Custom", host="continue.example")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("x-upstream"), "up")
        got = echo(r)
        self.assertEqual(got["method"], "OPTIONS")
        self.assertEqual(got["hdr"]["origin"], APP)
        self.assertEqual(got["hdr"]["access-control-request-method"], "PUT")
        # The upstream's answer is its own: nothing added.
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), [])
        # Actual requests on that host still get the headers.
        r = self.request("GET", "/things", [("Origin", APP)], host="continue.example")
        self.assertEqual(r.header("access-control-allow-origin"), APP)

    def test_preflight_over_h2c(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl not installed")
        p = subprocess.run(
            [curl, "-sS", "--http2-prior-knowledge", "-X", "OPTIONS", "-D", "-", "-o",
             os.devnull, "-H", "Host: api.example", "-H", "Origin: " + APP,
             "-H", "Access-Control-Request-Method: PATCH",
             "http://127.0.0.1:%d/api/x" % self.port],
            capture_output=True, text=True, timeout=scaled(30))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(lines[0].strip(), "HTTP/2 200")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.assertEqual(headers.get("access-control-allow-origin"), APP)
        self.assertEqual(headers.get("access-control-allow-methods"), ALL_METHODS)
        self.assertEqual(headers.get("vary"), "Origin")
        self.assertEqual(self.up.request_count(), 0)

    def test_preflight_with_a_body_keeps_the_connection_usable(self):
        # The body arrives with the head, or after the answer: either way it is read and
        # dropped, and the next request on the connection is served.
        self.before = self.up.request_count()
        with Conn(self.port) as c:
            r = c.request("OPTIONS", "/api", headers=[
                ("Origin", APP), ("Access-Control-Request-Method", "PUT")],
                host="api.example", body=b"0123456789")
            self.assertAnsweredByGateway(r)
            r = c.request("GET", "/api/next", headers=[("Origin", APP)], host="api.example")
            self.assertEqual(echo(r)["path"], "/api/next")
            self.assertEqual(r.header("access-control-allow-origin"), APP)
        self.before = self.up.request_count()
        with Conn(self.port) as c:
            c.send(b"OPTIONS /api HTTP/1.1\r\nHost: api.example\r\nOrigin: " + APP.encode()
                   + b"\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: 10\r\n\r\n")
            self.assertAnsweredByGateway(c.read_response("OPTIONS"))
            c.send(b"0123456789GET /api/after HTTP/1.1\r\nHost: api.example\r\n\r\n")
            r = c.read_response()
            self.assertEqual(echo(r)["path"], "/api/after")
            self.assertEqual(echo(r)["body_len"], 0)

    # -- origins ----------------------------------------------------------------------------

    def test_refused_origin_gets_no_cors_headers(self):
        evil = "https://evil.example"
        # A preflight is still answered (200), with nothing a browser could use.
        r = self.preflight("/api", evil, "PUT", "X-Custom", extra=[
            ("Access-Control-Request-Private-Network", "true")])
        self.assertAnsweredByGateway(r)
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), ["Origin"])
        self.assertFalse(browser_preflight_ok(r, evil, "PUT", ["X-Custom"]))
        # An actual request is proxied; the upstream's own CORS headers are removed.
        r = self.request("GET", "/api/data", [
            ("Origin", evil),
            ("x-resp-header", "Access-Control-Allow-Origin: https://evil.example"),
            ("x-resp-header", "Access-Control-Allow-Credentials: true"),
            ("x-resp-header", "Access-Control-Expose-Headers: X-Secret")])
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/api/data")
        self.assertEqual(self.up.request_count(), 1)
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), ["Origin"])
        self.assertFalse(browser_allows(r, evil))

    def test_exact_origins_normalise_default_ports(self):
        cases = [
            (APP, APP),
            ("https://app.example:443", APP),        # default port dropped
            ("https://default-port.example", "https://default-port.example"),  # config has :443
            ("http://local.example:8080", "http://local.example:8080"),
            ("http://local.example", None),          # another port
            ("https://app.example:8443", None),
            ("http://app.example", None),            # another scheme
            ("https://app.example.evil", None),
            ("null", None),
        ]
        for origin, expected in cases:
            r = self.request("GET", "/api", [("Origin", origin)])
            self.assertStatus(r, 200)
            self.assertEqual(r.header("access-control-allow-origin"), expected, origin)
            self.assertEqual(r.header_all("vary"), ["Origin"], origin)
            if expected == origin:
                self.assertTrue(browser_allows(r, origin), origin)

    def test_regex_origins(self):
        cases = [
            ("https://a.partner.example", "https://a.partner.example"),
            ("https://b.c.partner.example:443", "https://b.c.partner.example"),
            ("http://a.partner.example", None),            # the regex names https
            ("https://a.partner.example.evil", None),      # anchored at the end
            ("https://a.partner.example:8443", None),
            ("http://ops.internal.example:9000", "http://ops.internal.example:9000"),  # host
            ("https://ops.internal.example", "https://ops.internal.example"),
            ("https://ops.internal.example.evil", None),
            ("https://ops-1.internal.example", None),
        ]
        for origin, expected in cases:
            r = self.request("GET", "/api", [("Origin", origin)])
            self.assertEqual(r.header("access-control-allow-origin"), expected, origin)
            p = self.preflight("/api", origin)
            self.assertEqual(p.header("access-control-allow-origin"), expected, origin)
            self.assertEqual(browser_preflight_ok(p, origin, "PUT"), expected == origin, origin)

    def test_credentials_with_every_origin_echo_the_origin(self):
        origin = "https://anyone.example"
        r = self.request("GET", "/x", [("Origin", origin)], host="creds.example")
        self.assertEqual(r.header("access-control-allow-origin"), origin)
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header_all("vary"), ["Origin"])
        self.assertTrue(browser_allows(r, origin, credentials=True))
        p = self.preflight("/x", origin, "PUT", "X-Api-Key", host="creds.example")
        self.assertAnsweredByGateway(p)
        self.assertEqual(cors_headers(p), {
            "access-control-allow-origin": origin,
            "access-control-allow-credentials": "true",
            "access-control-allow-headers": "X-Api-Key",
            "access-control-allow-methods": ALL_METHODS,
        })
        self.assertTrue(browser_preflight_ok(p, origin, "PUT", ["X-Api-Key"], credentials=True))
        # A header the policy does not list: the browser stops there.
        self.assertFalse(browser_preflight_ok(p, origin, "PUT", ["X-Other"], credentials=True))

    def test_every_origin_without_credentials_is_a_star(self):
        r = self.request("GET", "/x", [
            ("Origin", "https://anyone.example"),
            ("x-resp-header", "Access-Control-Allow-Credentials: true")], host="any.example")
        self.assertEqual(cors_headers(r), {"access-control-allow-origin": "*"})
        self.assertEqual(r.header_all("vary"), [], "the answer does not depend on the Origin")
        self.assertTrue(browser_allows(r, "https://anyone.example"))
        self.assertFalse(browser_allows(r, "https://anyone.example", credentials=True))

    def test_expose_headers_replace_the_upstreams(self):
        r = self.request("GET", "/api", [
            ("Origin", APP),
            ("x-resp-header", "Access-Control-Allow-Origin: *"),
            ("x-resp-header", "Access-Control-Expose-Headers: X-Upstream-Only")])
        self.assertEqual(cors_headers(r), {
            "access-control-allow-origin": APP,
            "access-control-expose-headers": "X-Total,X-Request-Id",
        })
        self.assertEqual(len(r.header_all("access-control-allow-origin")), 1)
        self.assertEqual(len(r.header_all("access-control-expose-headers")), 1)
        self.assertTrue(browser_allows(r, APP))

    def test_vary_merges_with_the_upstreams(self):
        cases = [
            (["Accept-Encoding"], ["Accept-Encoding, Origin"]),
            (["Origin"], ["Origin"]),
            (["accept, origin"], ["accept, origin"]),
            (["*"], ["*"]),
            (["Accept", "Accept-Language"], ["Accept", "Accept-Language, Origin"]),
        ]
        for upstream_vary, expected in cases:
            h = [("Origin", APP)] + [("x-resp-header", "Vary: " + v) for v in upstream_vary]
            r = self.request("GET", "/api", h)
            self.assertEqual(r.header_all("vary"), expected, upstream_vary)
            self.assertEqual(r.header("access-control-allow-origin"), APP)

    def test_request_without_origin_is_untouched_but_for_vary(self):
        r = self.request("GET", "/api", [
            ("x-resp-header", "Access-Control-Allow-Origin: https://up.example"),
            ("x-resp-header", "Vary: Accept")])
        self.assertEqual(cors_headers(r), {
            "access-control-allow-origin": "https://up.example"})
        # The policy lists origins: a cache must key this response on the Origin too (Fetch
        # 3.2.5), or it would serve it, without CORS headers, to a browser's CORS request.
        self.assertEqual(r.header_all("vary"), ["Accept, Origin"])
        # Without Origin an OPTIONS is no preflight: it goes upstream.
        r = self.request("OPTIONS", "/api", [("Access-Control-Request-Method", "PUT")])
        self.assertEqual(echo(r)["method"], "OPTIONS")
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), ["Origin"])
        # Every origin without credentials: the answer never depends on it, no Vary.
        r = self.request("GET", "/x", host="any.example")
        self.assertEqual(r.header_all("vary"), [])
        # With an Origin but no Access-Control-Request-Method, it is an actual request.
        r = self.request("OPTIONS", "/api", [("Origin", APP)])
        self.assertEqual(echo(r)["method"], "OPTIONS")
        self.assertEqual(cors_headers(r), {
            "access-control-allow-origin": APP,
            "access-control-expose-headers": "X-Total,X-Request-Id"})

    # -- per route --------------------------------------------------------------------------

    def test_route_policy_replaces_the_listeners(self):
        other = "https://other.example"
        p = self.preflight("/override", other, "POST", "Authorization, X-Not-Listed")
        self.assertAnsweredByGateway(p)
        # Nothing of the listener's policy (max_age, exposed headers) is merged in.
        self.assertEqual(cors_headers(p), {
            "access-control-allow-origin": other,
            "access-control-allow-headers": "Authorization,Content-Type",
            "access-control-allow-methods": "GET,POST",
        })
        self.assertTrue(browser_preflight_ok(p, other, "POST", ["Authorization"]))
        self.assertFalse(browser_preflight_ok(p, other, "PUT"))
        self.assertFalse(browser_preflight_ok(p, other, "POST", ["X-Not-Listed"]))
        r = self.request("GET", "/override", [("Origin", other)])
        self.assertEqual(cors_headers(r), {"access-control-allow-origin": other})
        # The listener's origins don't apply here.
        r = self.request("GET", "/override", [("Origin", APP)])
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), ["Origin"])

    def test_disabled_route_is_left_to_the_upstream(self):
        p = self.preflight("/off", APP, "PUT")
        self.assertEqual(echo(p)["method"], "OPTIONS")
        self.assertEqual(cors_headers(p), {})
        r = self.request("GET", "/off", [("Origin", APP)])
        self.assertEqual(cors_headers(r), {})
        self.assertEqual(r.header_all("vary"), [])

    # -- local replies ----------------------------------------------------------------------

    def test_local_replies_of_later_filters_carry_the_headers(self):
        # auth (after cors in the chain): 401 readable by the allowed origin.
        r = self.request("GET", "/secure/x", [("Origin", APP)])
        self.assertLocalReply(r, 401)
        self.assertEqual(cors_headers(r), {
            "access-control-allow-origin": APP,
            "access-control-expose-headers": "X-Total,X-Request-Id"})
        self.assertEqual(r.header_all("vary"), ["Origin"])
        self.assertTrue(browser_allows(r, APP))
        # With the key, the upstream answers.
        r = self.request("GET", "/secure/x", [("Origin", APP), ("apikey", "alice-key")])
        self.assertEqual(echo(r)["hdr"]["x-consumer-username"], "alice")
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        # router: no route (404) and an upstream that closes without answering (502).
        r = self.request("GET", "/nowhere", [("Origin", APP)])
        self.assertLocalReply(r, 404, "no route matched")
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        r = self.request("GET", "/api", [("Origin", APP), ("x-action", "close")])
        self.assertLocalReply(r, 502)
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        self.assertEqual(r.header_all("vary"), ["Origin"])
        # A refused origin gets none on a local reply either.
        r = self.request("GET", "/secure/x", [("Origin", "https://evil.example")])
        self.assertLocalReply(r, 401)
        self.assertEqual(cors_headers(r), {})


class CorsValidationTest(SluiceTestCase):
    def validate(self, http_filters, filter_config=None, vhost_filter_config=None):
        r = route(prefix="/", cluster="up", name="r")
        if filter_config is not None:
            r["filter_config"] = filter_config
        v = vhost("v", ["*"], [r])
        if vhost_filter_config is not None:
            v["filter_config"] = vhost_filter_config
        b = bootstrap([listener(http_filters=http_filters)], [route_table("main", [v])],
                      [cluster("up", [self.dead_port()])])
        return run_validate(b)

    def test_errors_name_their_fields(self):
        p = self.validate(
            [{"name": "auth"}, {"name": "grpc_web"},
             {"name": "cors", "config": {
                 "origins": ["https://ok.example", "https://(unclosed", ""],
                 "methods": ["GET", "get", "PROPFIND"],
                 "headers": ["X-Ok", "bad header"],
                 "exposed_headers": ["x:y"]}},
             {"name": "router"}])
        self.assertEqual(p.returncode, 1)
        f = "static_resources.listeners[0].http_filters[2].config"
        self.assertIn(f + ".origins[1]: invalid regex: missing ): https://(unclosed", p.stderr)
        self.assertIn(f + ".origins[2]: must not be empty", p.stderr)
        self.assertIn(f + '.methods[1]: "get" is not one of GET, HEAD, PUT, PATCH, POST, '
                      'DELETE, OPTIONS, TRACE, CONNECT', p.stderr)
        self.assertIn(f + '.methods[2]: "PROPFIND" is not one of', p.stderr)
        self.assertIn(f + '.headers[1]: "bad header" is not a header name', p.stderr)
        self.assertIn(f + '.exposed_headers[0]: "x:y" is not a header name', p.stderr)
        self.assertNotIn("origins[0]", p.stderr)

    def test_schema_errors(self):
        f = "static_resources.listeners[0].http_filters[0].config"
        p = self.validate([{"name": "cors", "config": {"origin": ["x"]}}, {"name": "router"}])
        self.assertEqual(p.returncode, 1)
        self.assertIn(f + ".origin: unknown field", p.stderr)
        p = self.validate([{"name": "cors", "config": {"max_age": -1}}, {"name": "router"}])
        self.assertEqual(p.returncode, 1)
        self.assertIn(f + ": (max_age): invalid value -1", p.stderr)

    def test_per_route_errors(self):
        rpath = "static_resources.route_tables[0].virtual_hosts[0]"
        p = self.validate([{"name": "cors"}, {"name": "router"}],
                          filter_config={"cors": {"disabled": True, "origins": ["*"]}},
                          vhost_filter_config={"cors": {"origins": ["[z-a]"], "x": 1}})
        self.assertEqual(p.returncode, 1)
        self.assertIn(rpath + ".filter_config.cors.x: unknown field", p.stderr)
        p = self.validate([{"name": "cors"}, {"name": "router"}],
                          filter_config={"cors": {"disabled": True, "origins": ["*"]}},
                          vhost_filter_config={"cors": {"origins": ["[z-a]"]}})
        self.assertIn(rpath + ".routes[0].filter_config.cors.disabled: no other field may be "
                      "set with disabled: true", p.stderr)
        self.assertIn(rpath + ".filter_config.cors.origins[0]: invalid regex: invalid character "
                      "class range: z-a", p.stderr)

    def test_route_policy_needs_the_filter_on_the_listener(self):
        p = self.validate([{"name": "router"}], filter_config={"cors": {"origins": ["*"]}})
        self.assertEqual(p.returncode, 1)
        self.assertIn('requires a cors policy but listener "public" has no cors filter',
                      p.stderr)
        # Switching it off asks nothing of the listener.
        p = self.validate([{"name": "router"}], filter_config={"cors": {"disabled": True}})
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_valid_config(self):
        p = self.validate([{"name": "cors", "config": LISTENER_CORS}, {"name": "router"}],
                          filter_config={"cors": {"origins": ["*"], "credentials": True,
                                                  "max_age": 0, "preflight_continue": True}})
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    main()
