"""Integration tests of the `auth` filter through the real binary.

Tokens are made by an independent implementation: PyJWT and python3-cryptography (Debian's
python3-jwt and python3-cryptography). Hostile tokens are built by hand. Remote JWKS comes from a
real HTTP server in this process (http.server) whose keys the tests rotate and which they stop.
"""

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from harness import (Conn, SluiceTestCase, bootstrap, cluster, echo, listener, main, route,
                     route_table, run_validate, vhost, wait_until)

ISSUER = "https://issuer.example"
BEARER_INVALID = 'Bearer realm="sluice", error="invalid_token"'


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key, kid, alg=None):
    pub = private_key.public_key()
    if isinstance(private_key, rsa.RSAPrivateKey):
        d = json.loads(RSAAlgorithm.to_jwk(pub))
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        d = json.loads(ECAlgorithm.to_jwk(pub))
        # RFC 7518 6.2.1.2: x and y are the full coordinate length. Debian's PyJWT drops
        # leading zero bytes (1 key in ~64), which Sluice rightly refuses.
        size = (pub.curve.key_size + 7) // 8
        n = pub.public_numbers()
        d["x"] = b64(n.x.to_bytes(size, "big"))
        d["y"] = b64(n.y.to_bytes(size, "big"))
    else:
        d = json.loads(OKPAlgorithm.to_jwk(pub))
    d["kid"] = kid
    if alg:
        d["alg"] = alg
    return d


def public_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class JwksServer:
    """A real HTTP JWKS endpoint on 127.0.0.1:<free port>; `keys` can be swapped at any time."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.requests += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self):
        return "http://127.0.0.1:%d/.well-known/jwks.json" % self.port

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class AuthTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.rsa3 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.p256 = ec.generate_private_key(ec.SECP256R1())
        cls.p384 = ec.generate_private_key(ec.SECP384R1())
        cls.ed = ed25519.Ed25519PrivateKey.generate()
        cls.upstream = cls.start_class_upstream("backend")
        cls.jwks_server = JwksServer([public_jwk(cls.rsa1, "remote-1")])
        cls.addClassCleanup(cls.jwks_server.stop)
        local_jwks = json.dumps({"keys": [
            public_jwk(cls.rsa1, "rsa1"), public_jwk(cls.p256, "ec1"),
            public_jwk(cls.p384, "ec384"), public_jwk(cls.ed, "ed1")]})
        provider = {"name": "local", "issuer": ISSUER, "audiences": ["api"],
                    "local_jwks": {"inline": local_jwks},
                    "claim_to_headers": [{"claim": "sub", "header": "x-user-id"},
                                         {"claim": "tenant.id", "header": "x-tenant"}]}
        policies = [
            {"name": "jwt-local", "jwt": {"providers": [provider]}},
            {"name": "scoped", "jwt": {"providers": [provider]}, "required_scopes": ["orders"]},
            {"name": "forwarding", "jwt": {"providers": [dict(provider, forward=True)]}},
            {"name": "nocache", "jwt": {"providers": [provider]}, "token_cache_entries": 0},
            {"name": "jwt-remote", "jwt": {"providers": [{
                "issuer": ISSUER, "from_params": ["access_token"],
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "remote_jwks": {"uri": cls.jwks_server.uri, "cache_duration": "300s",
                                "min_refetch_interval": "1s", "timeout": "1s"}}]}},
            {"name": "keys", "key_auth": {"key_names": ["apikey", "X-API-Key"]},
             "required_scopes": [],
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}],
                            "scopes": ["orders"]},
                           {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]}]},
            {"name": "keys-visible", "key_auth": {"hide_credentials": False},
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]},
            {"name": "anon", "key_auth": {}, "allow_anonymous": True,
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]},
            {"name": "kong", "jwt": {"consumer_credentials": {"key_claim_name": "iss"}},
             "key_auth": {},
             "consumers": [
                 {"username": "carol", "keyauth_credentials": [{"key": "carol-key"}],
                  "jwt_credentials": [{"key": "carol-iss", "algorithm": "HS256",
                                       "secret": "s3cr3t"}]},
                 {"username": "dave", "jwt_credentials": [{
                     "key": "dave-iss", "algorithm": "RS256",
                     "rsa_public_key": public_pem(cls.rsa3)}]}]},
        ]
        routes = [route(prefix="/open", cluster="backend")]
        for p in policies:
            routes.append(route(prefix="/" + p["name"] + "/", cluster="backend", auth=p["name"],
                                name=p["name"]))
        cfg = bootstrap(
            [listener("public", "main", http_filters=[{"name": "auth"}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("backend", [cls.upstream])])
        cfg["static_resources"]["auth_policies"] = policies
        cls.sluice = cls.start_class_sluice(cfg, concurrency=2)
        cls.port = cls.sluice.listener_port("public")
        wait_until(lambda: cls.sluice.stat("auth.jwt-remote.jwks_fetch") >= 1, 10,
                   message="first JWKS fetch")

    # -- helpers --------------------------------------------------------------------------------

    def token(self, key, alg, kid, **claims):
        payload = {"iss": ISSUER, "aud": "api", "sub": "user-1", "exp": int(time.time()) + 600}
        payload.update(claims)
        for k in [k for k, v in payload.items() if v is None]:
            del payload[k]
        headers = {"kid": kid} if kid else {}
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    def get(self, path, headers=None):
        with Conn(self.port) as c:
            return c.request("GET", path, headers=headers or {})

    def bearer(self, path, token, extra=None):
        h = {"Authorization": "Bearer " + token}
        h.update(extra or {})
        return self.get(path, h)

    def assertDenied(self, resp, status=401, challenge=BEARER_INVALID, message=None):
        self.assertLocalReply(resp, status, message)
        self.assertEqual(resp.header_all("www-authenticate"),
                         [challenge] if isinstance(challenge, str) else challenge, resp)

    def stat(self, name):
        return self.sluice.stat(name)

    # -- JWT ------------------------------------------------------------------------------------

    def test_valid_tokens_every_algorithm(self):
        cases = [(self.rsa1, "RS256", "rsa1"), (self.rsa1, "RS384", "rsa1"),
                 (self.rsa1, "RS512", "rsa1"), (self.rsa1, "PS256", "rsa1"),
                 (self.rsa1, "PS512", "rsa1"), (self.p256, "ES256", "ec1"),
                 (self.p384, "ES384", "ec384"), (self.ed, "EdDSA", "ed1"),
                 (self.rsa1, "RS256", None)]  # no kid: every key of the right type is tried
        for key, alg, kid in cases:
            with self.subTest(alg=alg, kid=kid):
                t = self.token(key, alg, kid, scope="orders read", tenant={"id": "t-9"})
                r = self.bearer("/jwt-local/x", t)
                self.assertEqual(r.status, 200, r)
                e = echo(r)
                self.assertNotIn("authorization", e["hdr"])  # forward: false by default
                self.assertEqual(e["hdr"]["x-user-id"], "user-1")
                self.assertEqual(e["hdr"]["x-tenant"], "t-9")
                self.assertEqual(e["hdr"]["x-authenticated-scope"], "orders read")
                self.assertNotIn("x-consumer-username", e["hdr"])

    def test_client_copies_of_identity_headers_are_removed(self):
        t = self.token(self.rsa1, "RS256", "rsa1", scope="read")
        r = self.bearer("/jwt-local/x", t, {"X-Consumer-Username": "admin",
                                            "X-Authenticated-Scope": "admin orders",
                                            "X-User-Id": "root"})
        e = echo(r)
        self.assertEqual(e["all"]("x-consumer-username"), [])
        self.assertEqual(e["all"]("x-authenticated-scope"), ["read"])
        self.assertEqual(e["all"]("x-user-id"), ["user-1"])
        # A route without a policy on the same listener: no client copy reaches the upstream
        # either (the README promises they can't be spoofed), whatever the case or spelling.
        e = echo(self.get("/open", {"X-Consumer-Username": "admin", "x-authenticated-scope": "a",
                                    "X-User-Id": "root", "X-Tenant": "t"}))
        for h in ("x-consumer-username", "x-authenticated-scope", "x-user-id", "x-tenant"):
            self.assertNotIn(h, e["hdr"], e)

    def test_forward_true_keeps_the_token(self):
        t = self.token(self.rsa1, "RS256", "rsa1")
        e = echo(self.bearer("/forwarding/x", t))
        self.assertEqual(e["hdr"]["authorization"], "Bearer " + t)

    def test_missing_credentials(self):
        before = self.stat("auth.jwt-local.denied_missing")
        r = self.get("/jwt-local/x")
        self.assertDenied(r, 401, 'Bearer realm="sluice"', "no credentials")
        self.assertDenied(self.get("/jwt-local/x", {"Authorization": "Basic YTpi"}), 401,
                          'Bearer realm="sluice"')
        self.assertEqual(self.stat("auth.jwt-local.denied_missing"), before + 2)

    def test_hostile_tokens(self):
        good = self.token(self.rsa1, "RS256", "rsa1")
        h, p, s = good.split(".")
        now = int(time.time())
        hs_confusion_input = b64(json.dumps({"alg": "HS256", "kid": "rsa1"})) + "." + p
        hs_confusion = hs_confusion_input + "." + b64(hmac.new(
            public_pem(self.rsa1).encode(), hs_confusion_input.encode(), hashlib.sha256).digest())
        other_sig = self.token(self.rsa1, "RS256", "rsa1", sub="user-2").split(".")[2]
        huge = self.token(self.rsa1, "RS256", "rsa1", pad="x" * 9000)
        deep = b64('{"alg":"RS256","kid":"rsa1","x":' + "[" * 200 + "]" * 200 + "}")
        cases = [
            ("alg none", b64('{"alg":"none"}') + "." + p + ".", "bad_algorithm"),
            ("alg none with signature", b64('{"alg":"none"}') + "." + p + "." + s,
             "bad_algorithm"),
            ("HS256 signed with the RSA public key", hs_confusion, "bad_algorithm"),
            ("ES256 header on an RSA kid",
             self.token(self.p256, "ES256", "rsa1"), "bad_algorithm"),
            ("truncated", good[:-10], "bad_signature"),
            ("two segments", h + "." + p, "malformed"),
            ("four segments", good + "." + s, "malformed"),
            ("padding", good + "==", "malformed"),
            ("standard base64 characters", h + "." + p.replace("-", "+").replace("_", "/")
             + "+/" + "." + s, "malformed"),
            ("header not JSON", b64("{not json") + "." + p + "." + s, "malformed"),
            ("nested too deeply", deep + "." + p + "." + s, "malformed"),
            ("duplicate alg", b64('{"alg":"HS256","alg":"RS256","kid":"rsa1"}') + "." + p + "."
             + s, "malformed"),
            ("huge claims", huge, "malformed"),
            ("signature of another token", h + "." + p + "." + other_sig, "bad_signature"),
            ("unknown kid", self.token(self.rsa2, "RS256", "nope"), "unknown_key"),
            ("expired", self.token(self.rsa1, "RS256", "rsa1", exp=now - 60), "expired"),
            ("not yet valid", self.token(self.rsa1, "RS256", "rsa1", nbf=now + 120),
             "not_yet_valid"),
            ("no exp", self.token(self.rsa1, "RS256", "rsa1", exp=None), "missing_expiration"),
            ("exp not a number", self.token(self.rsa1, "RS256", "rsa1", exp="tomorrow"),
             "bad_claims"),
            ("exp huge", self.token(self.rsa1, "RS256", "rsa1", exp=10 ** 30), "bad_claims"),
            ("wrong audience", self.token(self.rsa1, "RS256", "rsa1", aud=["web", "mobile"]),
             "bad_audience"),
            ("wrong issuer", self.token(self.rsa1, "RS256", "rsa1", iss="https://evil.example"),
             "bad_issuer"),
        ]
        for name, tok, reason in cases:
            with self.subTest(name):
                stat = "auth.nocache.denied_" + reason
                before = self.stat(stat)
                r = self.bearer("/nocache/x", tok)
                self.assertDenied(r)
                self.assertEqual(self.stat(stat), before + 1, (name, r.json()))
        self.assertTrue(self.sluice.running())

    def test_clock_skew_allows_just_expired(self):
        t = self.token(self.rsa1, "RS256", "rsa1", exp=int(time.time()) - 10)
        self.assertEqual(self.bearer("/jwt-local/x", t).status, 200)
        t = self.token(self.rsa1, "RS256", "rsa1", nbf=int(time.time()) + 10)
        self.assertEqual(self.bearer("/jwt-local/x", t).status, 200)

    def test_audience_array(self):
        t = self.token(self.rsa1, "RS256", "rsa1", aud=["web", "api"])
        self.assertEqual(self.bearer("/jwt-local/x", t).status, 200)

    def test_scopes(self):
        ok = self.token(self.rsa1, "RS256", "rsa1", scope="read orders")
        self.assertEqual(self.bearer("/scoped/x", ok).status, 200)
        scp = self.token(self.rsa1, "RS256", "rsa1", scp=["orders"])
        self.assertEqual(self.bearer("/scoped/x", scp).status, 200)
        before = self.stat("auth.scoped.denied_insufficient_scope")
        r = self.bearer("/scoped/x", self.token(self.rsa1, "RS256", "rsa1", scope="read"))
        self.assertDenied(r, 403, 'Bearer realm="sluice", error="insufficient_scope", '
                          'scope="orders"', "insufficient scope")
        self.assertEqual(self.stat("auth.scoped.denied_insufficient_scope"), before + 1)

    def test_token_cache(self):
        t = self.token(self.rsa1, "RS256", "rsa1")
        hits = self.stat("auth.jwt-local.token_cache_hit")
        allowed = self.stat("auth.jwt-local.allowed")
        with Conn(self.port) as c:  # one connection: one worker
            for _ in range(5):
                r = c.request("GET", "/jwt-local/x", headers={"Authorization": "Bearer " + t})
                self.assertEqual(echo(r)["hdr"]["x-user-id"], "user-1")
        self.assertGreaterEqual(self.stat("auth.jwt-local.token_cache_hit"), hits + 4)
        self.assertEqual(self.stat("auth.jwt-local.allowed"), allowed + 5)

    # -- remote JWKS ----------------------------------------------------------------------------

    def test_remote_jwks_rotation_and_outage(self):
        srv = self.jwks_server
        t1 = self.token(self.rsa1, "RS256", "remote-1")
        self.assertEqual(self.bearer("/jwt-remote/x", t1).status, 200)
        # Query parameter, removed before proxying.
        r = self.get("/jwt-remote/x?a=1&access_token=" + t1 + "&b=2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(echo(r)["path"], "/jwt-remote/x?a=1&b=2")

        # Rotation: the server now publishes remote-2 only. A token with the new kid makes the
        # request wait for a refetch, which brings the new key.
        time.sleep(1.1)  # min_refetch_interval is 1s; a lower bound, not a wait for state
        fetches = self.stat("auth.jwt-remote.jwks_fetch")
        srv.keys = [public_jwk(self.rsa2, "remote-2")]
        t2 = self.token(self.rsa2, "RS256", "remote-2")
        r = self.bearer("/jwt-remote/x", t2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stat("auth.jwt-remote.jwks_fetch"), fetches + 1)
        # The old key is gone from the set: its tokens fail (unknown kid; the refetch is
        # rate-limited so it does not hit the server again).
        self.assertDenied(self.bearer("/jwt-remote/x", t1))
        self.assertEqual(self.stat("auth.jwt-remote.jwks_fetch"), fetches + 1)

        # Outage: the server goes away. Cached keys keep working; an unknown kid waits for a
        # refetch that fails, then gets 401.
        srv.stop()
        time.sleep(1.1)
        failed = self.stat("auth.jwt-remote.jwks_fetch_failed")
        for _ in range(3):
            self.assertEqual(self.bearer("/jwt-remote/x", t2).status, 200)
        t3 = self.token(self.rsa3, "RS256", "remote-3")
        started = time.monotonic()
        self.assertDenied(self.bearer("/jwt-remote/x", t3))
        self.assertLess(time.monotonic() - started, 5)
        wait_until(lambda: self.stat("auth.jwt-remote.jwks_fetch_failed") > failed, 5,
                   message="failed fetch counted")
        self.assertEqual(self.bearer("/jwt-remote/x", t2).status, 200)
        self.assertTrue(self.sluice.running())

    # -- key-auth -------------------------------------------------------------------------------

    def test_key_auth_header_and_query(self):
        e = echo(self.get("/keys/x", {"X-API-Key": "alice-key", "X-Consumer-Username": "bob"}))
        self.assertEqual(e["all"]("x-consumer-username"), ["alice"])
        self.assertEqual(e["hdr"]["x-authenticated-scope"], "orders")
        self.assertNotIn("x-api-key", e["hdr"])
        e = echo(self.get("/keys/x?q=1&apikey=bob-key&z=2"))
        self.assertEqual(e["hdr"]["x-consumer-username"], "bob")
        self.assertEqual(e["path"], "/keys/x?q=1&z=2")
        before = self.stat("auth.keys.denied_bad_key")
        self.assertDenied(self.get("/keys/x", {"apikey": "alice-kez"}), 401, 'Key realm="sluice"',
                          "invalid API key")
        self.assertDenied(self.get("/keys/x?apikey=nope"), 401, 'Key realm="sluice"')
        self.assertEqual(self.stat("auth.keys.denied_bad_key"), before + 2)
        self.assertDenied(self.get("/keys/x"), 401, 'Key realm="sluice"')

    def test_key_auth_visible_when_not_hidden(self):
        e = echo(self.get("/keys-visible/x", {"apikey": "alice-key"}))
        self.assertEqual(e["hdr"]["apikey"], "alice-key")
        self.assertEqual(e["hdr"]["x-consumer-username"], "alice")

    def test_anonymous(self):
        e = echo(self.get("/anon/x", {"X-Consumer-Username": "alice"}))
        self.assertEqual(e["all"]("x-consumer-username"), ["anonymous"])
        e = echo(self.get("/anon/x", {"apikey": "alice-key"}))
        self.assertEqual(e["hdr"]["x-consumer-username"], "alice")
        self.assertDenied(self.get("/anon/x", {"apikey": "wrong"}), 401, 'Key realm="sluice"')

    def test_consumer_jwt_credentials(self):
        exp = int(time.time()) + 300
        t = jwt.encode({"iss": "carol-iss", "exp": exp}, "s3cr3t", algorithm="HS256")
        e = echo(self.bearer("/kong/x", t))
        self.assertEqual(e["hdr"]["x-consumer-username"], "carol")
        t = jwt.encode({"iss": "dave-iss", "exp": exp}, self.rsa3, algorithm="RS256")
        self.assertEqual(echo(self.bearer("/kong/x", t))["hdr"]["x-consumer-username"], "dave")
        # The credential's algorithm is pinned: HS512 with the right secret fails.
        t = jwt.encode({"iss": "carol-iss", "exp": exp}, "s3cr3t", algorithm="HS512")
        self.assertDenied(self.bearer("/kong/x", t))
        t = jwt.encode({"iss": "carol-iss", "exp": exp}, "guess", algorithm="HS256")
        self.assertDenied(self.bearer("/kong/x", t))
        # Either credential is accepted on a policy with both.
        self.assertEqual(echo(self.get("/kong/x", {"apikey": "carol-key"}))["hdr"][
            "x-consumer-username"], "carol")
        self.assertDenied(self.get("/kong/x"), 401, ['Bearer realm="sluice"', 'Key realm="sluice"'])


class AuthValidationTest(SluiceTestCase):
    def config(self, filters, policy):
        cfg = bootstrap(
            [listener("public", "main", http_filters=filters)],
            [route_table("main", [vhost("all", ["*"], [
                route(prefix="/", cluster="backend", auth="p", name="users")])])],
            [cluster("backend", [9])])
        cfg["static_resources"]["auth_policies"] = [policy]
        return cfg

    def test_route_with_policy_on_listener_without_auth_filter(self):
        res = run_validate(self.config([{"name": "router"}], {"name": "p", "key_auth": {}}))
        self.assertEqual(res.returncode, 1, res)
        self.assertIn('static_resources.listeners[0].http_filters: route "users" '
                      '(static_resources.route_tables[0].virtual_hosts[0].routes[0]) requires auth '
                      'policy "p" but listener "public" has no auth filter', res.stderr)

    def test_bad_policies_name_their_fields(self):
        res = run_validate(self.config(
            [{"name": "auth"}, {"name": "router"}],
            {"name": "p", "jwt": {"providers": [
                {"local_jwks": {"inline": '{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}'}},
                {"remote_jwks": {"uri": "http://idp_example/jwks"}}]},
             "consumers": [{"username": "u", "jwt_credentials": [
                 {"key": "k", "algorithm": "none", "secret": "x"}]}]}))
        self.assertEqual(res.returncode, 1, res)
        p = "static_resources.auth_policies[0]"
        self.assertIn(p + ".jwt.providers[0].local_jwks.inline: keys[0].", res.stderr)
        self.assertIn(p + '.jwt.providers[1].remote_jwks.uri: host "idp_example" is not an IP '
                      'address or a valid host name', res.stderr)
        self.assertIn(p + '.consumers[0].jwt_credentials[0].algorithm: unknown algorithm "none"',
                      res.stderr)


if __name__ == "__main__":
    main()
