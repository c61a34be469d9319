"""gateway_responses through the real binary: every gateway response type triggered for real
(no route, auth refusals with real key-auth and JWTs from PyJWT, LOCAL rate limits of a second
and of a day, bodies over the limit, a refused path, a dead upstream, an upstream that closes,
an upstream too slow for the route timeout, a failing rate-limit store), the templates
substituted, custom status codes and headers, virtual-host entries over the listener's, the
DEFAULT_4XX / DEFAULT_5XX fallbacks, and what is never reshaped: an upstream's own errors,
gRPC replies, redirects and direct responses; HEAD gets no body. Config errors through
`sluice --validate`.

Run by hand: SLUICE_BIN=/work/wt-gw/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/gateway_responses_test.py
"""

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from harness import (Conn, DeadPort, SluiceTestCase, bootstrap, cluster, listener, main, route,
                     route_table, run_validate, vhost)

ISSUER = "https://issuer.example"

# The specific types the "typed" listener configures (the two defaults aside), each with a body
# naming itself; the "fallback" listener configures only DEFAULT_4XX and DEFAULT_5XX.
TYPES = ["RESOURCE_NOT_FOUND", "UNAUTHORIZED", "ACCESS_DENIED", "EXPIRED_TOKEN",
         "INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "REQUEST_TOO_LARGE",
         "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "UNSUPPORTED_MEDIA_TYPE",
         "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT"]
TEMPLATE = ('{"type":"%s","message":"$message","request_id":"$request_id","status":$status,'
            '"route":"$route"}')


def typed_responses():
    out = {}
    for t in TYPES + ["DEFAULT_4XX", "DEFAULT_5XX"]:
        out[t] = {"body": TEMPLATE % t,
                  "headers": {"X-Gateway-Response": t, "X-Status": "$status",
                              "X-Id": "id=$request_id"}}
    # A custom status: $status is the status the client gets.
    out["QUOTA_EXCEEDED"]["status_code"] = 403
    # Configured headers replace the gateway's of the same name.
    out["THROTTLED"]["headers"]["Retry-After"] = "3600"
    return out


FALLBACK_RESPONSES = {
    "DEFAULT_4XX": {"body": "$status $message (route: $route) [$request_id]",
                    "content_type": "text/plain; charset=utf-8",
                    "headers": {"X-Fallback": "4xx"}},
    # No body: the built-in JSON body, with CORS headers added.
    "DEFAULT_5XX": {"headers": {"Access-Control-Allow-Origin": "*",
                                "Access-Control-Allow-Headers": "authorization, apikey"}},
}

# A virtual host with its own entries (they beat the listener's).
SPECIAL_RESPONSES = {
    "RESOURCE_NOT_FOUND": {"status_code": 410,
                           "body": '{"vhost":"special","message":"$message","route":"$route"}'},
    "INTEGRATION_FAILURE": {"headers": {"X-Vhost": "special"}},
    "DEFAULT_4XX": {"body": "special 4xx $status", "content_type": "text/plain"},
}


def public_jwk(key, kid):
    d = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    d["kid"] = kid
    return d


class GatewayResponsesTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.up = cls.start_class_upstream("backend")
        cls.dead = DeadPort()
        cls.addClassCleanup(cls.dead.close)
        provider = {"name": "local", "issuer": ISSUER, "audiences": ["api"],
                    "local_jwks": {"inline": json.dumps({"keys": [public_jwk(cls.key, "k1")]})}}
        auth_policies = [
            {"name": "keys", "key_auth": {"key_names": ["apikey"]},
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]},
            {"name": "jwt", "jwt": {"providers": [provider]}},
            {"name": "scoped", "jwt": {"providers": [provider]}, "required_scopes": ["admin"]},
        ]
        rate_limit_policies = [
            {"name": "per-second", "second": 1, "limit_by": "HEADER", "header_name": "x-client"},
            {"name": "daily", "day": 1, "limit_by": "HEADER", "header_name": "x-client"},
            # Redis on a port nobody listens on, failing closed: a 503 that is not the
            # integration's.
            {"name": "store-down", "second": 100, "limit_by": "IP", "policy": "REDIS",
             "redis": {"host": "127.0.0.1", "port": cls.dead.port, "timeout": "200ms"},
             "fault_tolerant": False},
        ]
        routes = [
            route(prefix="/keys", cluster="backend", name="keys", auth="keys"),
            route(prefix="/jwt", cluster="backend", name="jwt", auth="jwt"),
            route(prefix="/scoped", cluster="backend", name="scoped", auth="scoped"),
            route(prefix="/limited", cluster="backend", name="limited", rate_limit="per-second"),
            route(prefix="/daily", cluster="backend", name="daily", rate_limit="daily"),
            route(prefix="/store-down", cluster="backend", name="store-down",
                  rate_limit="store-down"),
            route(prefix="/dead", cluster="dead", name="dead"),
            route(prefix="/slow", name="slow", route={"cluster": "backend", "timeout": "300ms"}),
            route(prefix="/redirect", name="redirect", redirect={"path_redirect": "/elsewhere"}),
            route(prefix="/direct404", name="direct404",
                  direct_response={"status": 404, "body": "direct says no"}),
            route(prefix="/transform", cluster="backend", name="transform",
                  filter_config={"request_transformer": {"add": {"body": ["k:v"]}}}),
            route(prefix="/upstream", cluster="backend", name="upstream"),
        ]
        special = vhost("special", ["special.test"], [
            route(prefix="/dead", cluster="dead", name="special-dead"),
            route(prefix="/limited", cluster="backend", name="special-limited",
                  rate_limit="per-second"),
        ])
        special["gateway_responses"] = SPECIAL_RESPONSES
        filters = [{"name": "auth"}, {"name": "rate_limit"}, {"name": "request_transformer"},
                   {"name": "router"}]
        limits = {"max_request_body_bytes": 1000, "max_request_headers_kb": 4}
        cfg = bootstrap(
            [listener("typed", "main", limits=limits, http_filters=filters,
                      gateway_responses=typed_responses()),
             listener("fallback", "main", limits=limits, http_filters=filters,
                      gateway_responses=FALLBACK_RESPONSES),
             listener("plain", "main", limits=limits, http_filters=filters)],
            [route_table("main", [special, vhost("all", ["*"], routes)])],
            [cluster("backend", [cls.up]), cluster("dead", [cls.dead])])
        cfg["static_resources"]["auth_policies"] = auth_policies
        cfg["static_resources"]["rate_limit_policies"] = rate_limit_policies
        cls.sluice = cls.start_class_sluice(cfg, concurrency=2)
        cls.typed = cls.sluice.listener_port("typed")
        cls.fallback = cls.sluice.listener_port("fallback")
        cls.plain = cls.sluice.listener_port("plain")

    # -- helpers ----------------------------------------------------------------------------

    def request(self, port, method="GET", path="/", headers=None, body=None, host="example.com"):
        with Conn(port) as c:
            return c.request(method, path, headers=headers or {}, body=body, host=host)

    def token(self, key=None, **claims):
        payload = {"iss": ISSUER, "aud": "api", "sub": "user-1", "exp": int(time.time()) + 600}
        payload.update(claims)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def client(self):
        """A fresh rate-limit identity (x-client), so tests don't share budgets."""
        return {"x-client": uuid.uuid4().hex}

    def assertTyped(self, resp, type_name, status, message=None, route=""):
        """A reply of the typed listener: its template for `type_name`, substituted."""
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("x-gateway-response"), type_name, resp)
        self.assertEqual(resp.header("content-type"), "application/json", resp)
        self.assertEqual(int(resp.header("content-length")), len(resp.body), resp)
        body = resp.json()
        rid = resp.header("x-request-id")
        self.assertTrue(rid, resp)
        self.assertEqual(body["type"], type_name, resp)
        self.assertEqual(body["request_id"], rid, resp)
        self.assertEqual(resp.header("x-id"), "id=" + rid, resp)
        self.assertEqual(body["status"], status, resp)
        self.assertEqual(resp.header("x-status"), str(status), resp)
        self.assertEqual(body["route"], route, resp)
        if message is not None:
            self.assertIn(message, body["message"], resp)
        return body

    def assertFallback4xx(self, resp, status, message, route=""):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("x-fallback"), "4xx", resp)
        self.assertEqual(resp.header("content-type"), "text/plain; charset=utf-8", resp)
        self.assertEqual(resp.text, "%d %s (route: %s) [%s]"
                         % (status, message, route, resp.header("x-request-id")))

    def assertFallback5xx(self, resp, status, message):
        body = self.assertLocalReply(resp, status, message)  # the built-in body
        self.assertEqual(resp.header("access-control-allow-origin"), "*", resp)
        self.assertEqual(resp.header("access-control-allow-headers"), "authorization, apikey")
        return body

    def slow_send(self, port, head, chunk_count, chunk):
        """Sends a head and then body chunks the proxy may refuse midway; returns the reply."""
        c = self.conn(port)
        c.send(head)
        try:
            for _ in range(chunk_count):
                c.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return c.read_response()

    # -- each type, triggered for real ------------------------------------------------------

    def test_resource_not_found(self):
        r = self.request(self.typed, path="/nothing/here")
        self.assertTyped(r, "RESOURCE_NOT_FOUND", 404, "no route matched")
        self.assertEqual(r.json()["message"], "no route matched")
        self.assertFallback4xx(self.request(self.fallback, path="/nothing"), 404,
                               "no route matched")

    def test_request_id_from_the_client_is_the_template_value(self):
        r = self.request(self.typed, path="/nothing", headers={"X-Request-Id": "client-req-7"})
        self.assertEqual(r.header("x-request-id"), "client-req-7")
        self.assertEqual(self.assertTyped(r, "RESOURCE_NOT_FOUND", 404)["request_id"],
                         "client-req-7")

    def test_missing_and_wrong_api_keys(self):
        missing = self.request(self.typed, path="/keys/x")
        self.assertTyped(missing, "UNAUTHORIZED", 401, "no credentials", route="keys")
        # The gateway's own headers stay unless configured.
        self.assertEqual(missing.header("www-authenticate"), 'Key realm="sluice"')
        wrong = self.request(self.typed, path="/keys/x", headers={"apikey": "mallory-key"})
        self.assertTyped(wrong, "INVALID_API_KEY", 401, "invalid API key", route="keys")
        ok = self.request(self.typed, path="/keys/x", headers={"apikey": "alice-key"})
        self.assertEqual(ok.status, 200, ok)
        self.assertIsNone(ok.header("x-gateway-response"))
        self.assertFallback4xx(self.request(self.fallback, path="/keys/x",
                                            headers={"apikey": "mallory-key"}),
                               401, "invalid API key", route="keys")

    def test_expired_and_invalid_tokens(self):
        expired = self.token(exp=int(time.time()) - 3600)
        r = self.request(self.typed, path="/jwt/x", headers={"Authorization": "Bearer " + expired})
        self.assertTyped(r, "EXPIRED_TOKEN", 401, "token expired", route="jwt")
        # Any other bad token is UNAUTHORIZED.
        forged = self.token(key=self.other_key)
        r = self.request(self.typed, path="/jwt/x", headers={"Authorization": "Bearer " + forged})
        self.assertTyped(r, "UNAUTHORIZED", 401, "signature", route="jwt")
        good = self.request(self.typed, path="/jwt/x",
                            headers={"Authorization": "Bearer " + self.token()})
        self.assertEqual(good.status, 200, good)

    def test_scope_refusal_is_access_denied(self):
        t = self.token(scope="read")
        r = self.request(self.typed, path="/scoped/x", headers={"Authorization": "Bearer " + t})
        self.assertTyped(r, "ACCESS_DENIED", 403, "insufficient scope", route="scoped")
        self.assertIn("insufficient_scope", r.header("www-authenticate"))
        ok = self.request(self.typed, path="/scoped/x",
                          headers={"Authorization": "Bearer " + self.token(scope="read admin")})
        self.assertEqual(ok.status, 200, ok)

    def test_throttled_and_quota_exceeded(self):
        h = self.client()
        self.assertEqual(self.request(self.typed, path="/limited", headers=h).status, 200)
        r = self.request(self.typed, path="/limited", headers=h)
        self.assertTyped(r, "THROTTLED", 429, "rate limit", route="limited")
        self.assertEqual(r.header_all("retry-after"), ["3600"])  # replaced, not added
        self.assertIsNotNone(r.header("ratelimit-policy"))  # the filter's headers stay

        h = self.client()
        self.assertEqual(self.request(self.typed, path="/daily", headers=h).status, 200)
        r = self.request(self.typed, path="/daily", headers=h)
        self.assertTyped(r, "QUOTA_EXCEEDED", 403, "rate limit", route="daily")
        # Not configured for this type: the filter's own Retry-After (the day's).
        self.assertGreater(int(r.header("retry-after")), 3600, r)

        h = self.client()
        self.assertEqual(self.request(self.fallback, path="/daily", headers=h).status, 200)
        self.assertFallback4xx(self.request(self.fallback, path="/daily", headers=h), 429,
                               "API rate limit exceeded", route="daily")

    def test_request_too_large(self):
        # Content-Length over the limit: refused by the codec before a stream exists (only the
        # listener's responses apply: no route).
        c = self.conn(self.typed)
        c.send(b"POST /upstream HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
        r = c.read_response()
        self.assertTyped(r, "REQUEST_TOO_LARGE", 413, "request body too large")
        self.assertClosed(c)
        # A chunked body crossing the limit: answered on the routed stream.
        r = self.slow_send(self.typed, b"POST /upstream HTTP/1.1\r\nHost: a\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n", 4,
                           b"190\r\n" + b"z" * 400 + b"\r\n")
        self.assertTyped(r, "REQUEST_TOO_LARGE", 413, "request body too large", route="upstream")
        c = self.conn(self.fallback)
        c.send(b"POST /upstream HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
        self.assertFallback4xx(c.read_response(), 413, "request body too large")

    def test_bad_path_is_bad_request_parameters(self):
        before = self.up.request_count()
        for path, message in (("/upstream/a%2Fb", "escaped slash"), ("/upstream/%zz", ""),
                              ("/upstream/a\\b", "")):
            with self.subTest(path=path):
                r = self.request(self.typed, path=path)
                self.assertTyped(r, "BAD_REQUEST_PARAMETERS", 400, message)
        self.assertFallback4xx(self.request(self.fallback, path="/upstream/a%2Fb"), 400,
                               "escaped slash (%2F or %5C) in path")
        self.assertEqual(self.up.request_count(), before, "refused paths never go upstream")

    def test_request_transformer_body_refusals(self):
        before = self.up.request_count()
        r = self.request(self.typed, "POST", "/transform",
                         headers={"Content-Type": "application/json"}, body=b'{"a":')
        self.assertTyped(r, "BAD_REQUEST_BODY", 400, "request body is not valid JSON",
                         route="transform")
        r = self.request(self.typed, "POST", "/transform", headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"}, body=b"\x1f\x8b")
        self.assertTyped(r, "UNSUPPORTED_MEDIA_TYPE", 415, "content coding", route="transform")
        self.assertEqual(r.header("accept-encoding"), "identity")
        self.assertFallback4xx(
            self.request(self.fallback, "POST", "/transform",
                         headers={"Content-Type": "application/json"}, body=b"[1,"),
            400, "request body is not valid JSON: unexpected end of JSON", route="transform")
        self.assertEqual(self.up.request_count(), before)

    def test_integration_failure_and_timeout(self):
        r = self.request(self.typed, path="/dead")
        self.assertTyped(r, "INTEGRATION_FAILURE", 503, route="dead")
        r = self.request(self.typed, path="/upstream/x", headers={"x-action": "close"})
        self.assertTyped(r, "INTEGRATION_FAILURE", 502, route="upstream")
        r = self.request(self.typed, path="/slow", headers={"x-sleep-ms": "3000"})
        self.assertTyped(r, "INTEGRATION_TIMEOUT", 504, "timeout", route="slow")
        # The fallback listener: DEFAULT_5XX's CORS headers on the built-in body.
        self.assertFallback5xx(self.request(self.fallback, path="/dead"), 503, None)
        self.assertFallback5xx(self.request(self.fallback, path="/slow",
                                            headers={"x-sleep-ms": "3000"}), 504, "timeout")

    def test_default_types_for_the_rest(self):
        # TRACE (405) and a rate-limit store that is down (503, not the integration's) have no
        # type of their own.
        r = self.request(self.typed, method="TRACE", path="/upstream")
        self.assertTyped(r, "DEFAULT_4XX", 405, "TRACE", route="")
        self.assertIsNotNone(r.header("allow"))
        r = self.request(self.typed, path="/store-down")
        self.assertTyped(r, "DEFAULT_5XX", 503, "rate limit service unavailable",
                         route="store-down")
        self.assertFallback5xx(self.request(self.fallback, path="/store-down"), 503,
                               "rate limit service unavailable")
        # Headers over the limit: a codec error before any stream (the listener's responses).
        c = self.conn(self.typed)
        c.send(b"GET /upstream HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 5000 + b"\r\n\r\n")
        self.assertTyped(c.read_response(), "DEFAULT_4XX", 431)

    # -- lookup order -----------------------------------------------------------------------

    def test_virtual_host_entries_beat_the_listeners(self):
        for port in (self.typed, self.fallback, self.plain):
            with self.subTest(port=port):
                r = self.request(port, path="/nothing", host="special.test")
                self.assertEqual(r.status, 410, r)
                self.assertEqual(r.json(), {"vhost": "special", "message": "no route matched",
                                            "route": ""})
                self.assertIsNone(r.header("x-gateway-response"))
                r = self.request(port, path="/dead", host="special.test")
                self.assertLocalReply(r, 503)  # its entry has no body: the built-in one
                self.assertEqual(r.header("x-vhost"), "special", r)
        # A type the virtual host lacks: the listener's entry for it beats the virtual host's
        # DEFAULT_4XX...
        h = self.client()
        r = self.request(self.typed, path="/limited", headers=h, host="special.test")
        self.assertEqual(r.status, 200, r)
        r = self.request(self.typed, path="/limited", headers=h, host="special.test")
        self.assertTyped(r, "THROTTLED", 429, route="special-limited")
        # ... which beats the listener's DEFAULT_4XX.
        h = self.client()
        r = self.request(self.fallback, path="/limited", headers=h, host="special.test")
        self.assertEqual(r.status, 200, r)
        r = self.request(self.fallback, path="/limited", headers=h, host="special.test")
        self.assertEqual((r.status, r.text), (429, "special 4xx 429"), r)
        # A refused path before routing still finds the host's virtual host.
        r = self.request(self.plain, path="/a%2Fb", host="special.test")
        self.assertEqual((r.status, r.text), (400, "special 4xx 400"), r)

    # -- never reshaped ---------------------------------------------------------------------

    def test_nothing_configured_keeps_the_built_in_reply(self):
        r = self.request(self.plain, path="/nothing")
        body = self.assertLocalReply(r, 404, "no route matched")
        self.assertEqual(set(body), {"message", "request_id"})
        self.assertEqual(r.body, ('{"message":"no route matched","request_id":"%s"}\n'
                                  % r.header("x-request-id")).encode())

    def test_upstream_errors_pass_untouched(self):
        for port in (self.typed, self.fallback):
            for status in (404, 500, 503):
                with self.subTest(port=port, status=status):
                    r = self.request(port, path="/upstream/own",
                                     headers={"x-action": "fixed", "x-status": str(status),
                                              "x-body": "upstream's own"})
                    self.assertEqual((r.status, r.body), (status, b"upstream's own"), r)
                    self.assertEqual(r.header("x-upstream"), "backend")
                    for h in ("x-gateway-response", "x-fallback", "access-control-allow-origin"):
                        self.assertIsNone(r.header(h), r)

    def test_redirects_and_direct_responses_are_untouched(self):
        r = self.request(self.typed, path="/redirect")
        self.assertEqual(r.status, 301, r)
        self.assertIsNone(r.header("x-gateway-response"))
        r = self.request(self.fallback, path="/direct404")
        self.assertEqual((r.status, r.body), (404, b"direct says no"), r)
        self.assertIsNone(r.header("x-fallback"))

    def test_grpc_requests_keep_grpc_status_replies(self):
        frame = b"\x00\x00\x00\x00\x02hi"
        for port in (self.typed, self.fallback):
            for path, grpc_status in (("/nothing.Svc/M", "12"), ("/dead", "14"),
                                      ("/keys/x", "16")):
                with self.subTest(port=port, path=path):
                    r = self.request(port, method="POST", path=path, body=frame,
                                     headers={"Content-Type": "application/grpc",
                                              "TE": "trailers"})
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.header("grpc-status"), grpc_status, r)
                    self.assertEqual(r.header("content-type"), "application/grpc")
                    self.assertEqual(r.body, b"")
                    for h in ("x-gateway-response", "x-fallback", "access-control-allow-origin"):
                        self.assertIsNone(r.header(h), r)

    def test_head_gets_no_body(self):
        with Conn(self.typed) as c:
            head = c.request("HEAD", "/nothing")
            get = c.request("GET", "/nothing")  # same connection: HEAD left no body bytes
        self.assertEqual(head.status, 404, head)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("x-gateway-response"), "RESOURCE_NOT_FOUND")
        self.assertEqual(int(head.header("content-length")), len(get.body))
        self.assertTyped(get, "RESOURCE_NOT_FOUND", 404)

    # -- config errors ----------------------------------------------------------------------

    def test_config_errors_name_the_field(self):
        def cfg(listener_responses=None, vhost_responses=None):
            vh = vhost("all", ["*"], [route(prefix="/", cluster="backend")])
            if vhost_responses is not None:
                vh["gateway_responses"] = vhost_responses
            ln = listener("public", "main")
            if listener_responses is not None:
                ln["gateway_responses"] = listener_responses
            return bootstrap([ln], [route_table("main", [vh])],
                             [cluster("backend", [self.up])])

        ok = run_validate(cfg(typed_responses(), SPECIAL_RESPONSES))
        self.assertEqual(ok.returncode, 0, ok.stderr)
        cases = [
            (cfg({"THROTLED": {"status_code": 503}}),
             "static_resources.listeners[0].gateway_responses.THROTLED: unknown gateway response "
             "type (one of RESOURCE_NOT_FOUND, UNAUTHORIZED,"),
            (cfg({"DEFAULT_5XX": {"status_code": 600}}),
             "static_resources.listeners[0].gateway_responses.DEFAULT_5XX.status_code: must be 0"),
            (cfg({"DEFAULT_4XX": {"headers": {"Bad Name": "x"}}}),
             "static_resources.listeners[0].gateway_responses.DEFAULT_4XX.headers.Bad Name: "
             "invalid header name"),
            (cfg({"DEFAULT_4XX": {"headers": {"x-a": "line\nbreak"}}}),
             "gateway_responses.DEFAULT_4XX.headers.x-a: invalid header value"),
            (cfg({"DEFAULT_4XX": {"headers": {"Content-Length": "1"}}}),
             "gateway_responses.DEFAULT_4XX.headers.Content-Length: can't be set here"),
            (cfg({"DEFAULT_4XX": {"body": "x", "content_type": "nonsense"}}),
             "gateway_responses.DEFAULT_4XX.content_type: invalid media type"),
            (cfg(vhost_responses={"NOPE": {}}),
             "static_resources.route_tables[0].virtual_hosts[0].gateway_responses.NOPE: unknown "
             "gateway response type"),
        ]
        for config, needle in cases:
            with self.subTest(needle=needle):
                p = run_validate(config)
                self.assertEqual(p.returncode, 1, "accepted (or crashed): %s %s"
                                 % (p.stdout, p.stderr))
                self.assertIn(needle, p.stderr)
        # An unknown field inside an entry: the config loader's own error (protobuf names the
        # map entry by position).
        p = run_validate(cfg({"DEFAULT_4XX": {"status": 400}}))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("listeners[0].gateway_responses", p.stderr)
        self.assertIn("status: Cannot find field", p.stderr)


if __name__ == "__main__":
    main()
