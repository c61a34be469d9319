#!/usr/bin/python3
"""Kong declarative files through sluicectl and sluice-cp into a real data plane, exercised with
real requests (docs/imports.md):

- the seed-like file (test/config_import/testdata/seed.kong.yml, its hosts pointed at local
  upstreams): refused by `sluicectl convert` / `apply` in strict mode with each problem named,
  applied with --lenient; then strip_path and preserve_host as the upstream sees them, key-auth
  401 vs 200, acl 403, jwt with a consumer's HS256 secret, a CORS preflight, rate-limit headers
  and 429;
- a file of this test: regex_priority order across services, a per-route rate limit.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time

import harness
from cp_harness import CpTestCase, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "..", "config_import", "testdata", "seed.kong.yml")
FULL = os.path.join(HERE, "..", "config_import", "testdata", "full.kong.yml")


def jwt_hs256(claims, secret):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (header, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (header, body, b64(sig))


def echoed(resp):
    """The echo upstream's view of the request: (path, {header: value})."""
    data = resp.json()
    return data["path"], {k.lower(): v for k, v in data["headers"]}


class KongImportTest(CpTestCase):

    def write(self, cp, text, name):
        path = os.path.join(cp.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def wait_routed(self, port, path, host, status=200, headers=None):
        def check():
            try:
                r = harness.request(port, "GET", path, host=host, headers=headers or {})
            except OSError:
                return None
            return r if r.status == status else None
        return harness.wait_until(check, timeout=15, interval=0.1,
                                  message="GET %s (Host %s) -> %d" % (path, host, status))

    def seed_text(self, users, orders1, orders2, catalog):
        with open(SEED) as f:
            text = f.read()
        return (text.replace("users.internal:8080", users.address)
                .replace("10.0.0.21:8080", orders1.address)
                .replace("10.0.0.22:8080", orders2.address)
                .replace("10.0.0.30:8081", catalog.address)
                .replace("logs.internal:9000", "127.0.0.1:%d" % free_port()))

    def test_seed_file(self):
        users = self.start_upstream("users")
        orders1 = self.start_upstream("orders1")
        orders2 = self.start_upstream("orders2")
        catalog = self.start_upstream("catalog")
        cp = self.start_cp()
        kong = self.write(cp, self.seed_text(users, orders1, orders2, catalog), "seed.kong.yml")
        port = free_port()
        listen = "127.0.0.1:%d" % port

        # Strict: refused, each problem with its line and path.
        r = cp.ctl("convert", "kong", "-f", kong, "--listen", listen, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr, r"seed\.kong\.yml:\d+: error: upstreams\[0\]\.healthchecks\."
                         r"active\.unhealthy\.successes: Kong has no such field \(it takes "
                         r"http_failures, tcp_failures, timeouts, interval, http_statuses\)")
        self.assertRegex(r.stderr, r"seed\.kong\.yml:\d+: error: services\[0\]\.plugins\[1\]"
                         r"\.config\.policy: cluster: ")
        r = cp.ctl("apply", "-f", kong, "--group", "edge", "--listen", listen, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIsNone(cp.group_version("edge"))

        # Lenient: converted (warnings), applied, served.
        r = cp.ctl("convert", "kong", "-f", kong, "--listen", listen, "--lenient")
        self.assertIn("warning: upstreams[0].healthchecks.active.unhealthy.successes", r.stderr)
        self.assertIn("listeners:", r.stdout)
        cp.ctl("apply", "-f", kong, "--group", "edge", "--listen", listen, "--lenient")
        self.start_dp(cp, "kong-dp", group="edge")
        cp.wait_in_sync("kong-dp")

        alice = {"apikey": "alice-secret-key"}
        bob = {"apikey": "bob-secret-key"}
        # key-auth: 401 without a key or with a wrong one, 200 with one.
        ok = self.wait_routed(port, "/users/42?x=1", "gw.example", headers=alice)
        path, headers = echoed(ok)
        # strip_path: /users is stripped and the service path /api prepended; preserve_host
        # false: the service's host; hide_credentials: the key is not sent.
        self.assertEqual(path, "/api/42?x=1")
        self.assertEqual(headers["host"], users.address)
        self.assertNotIn("apikey", headers)
        self.assertEqual(headers.get("x-consumer-username"), "alice")
        # alice's own rate-limiting plugin (consumer scope); the service's (cluster) was skipped.
        self.assertEqual(ok.header("x-ratelimit-limit-minute"), "1000")
        self.assertEqual(harness.request(port, "GET", "/users/42", host="gw.example").status, 401)
        self.assertEqual(harness.request(port, "GET", "/users/42", host="gw.example",
                                         headers={"apikey": "nope"}).status, 401)
        # methods: [GET, POST] only.
        r = harness.request(port, "DELETE", "/users/42", host="gw.example", headers=alice)
        self.assertEqual(r.status, 404, r.text)
        # users-admin: strip_path false keeps the path (after the service path), preserve_host
        # true keeps the client's Host; acl allow [admins]: alice yes, bob 403.
        r = harness.request(port, "GET", "/admin/users/7", host="gw.example", headers=alice)
        self.assertEqual(r.status, 200, r)
        path, headers = echoed(r)
        self.assertEqual(path, "/api/admin/users/7")
        self.assertEqual(headers["host"], "gw.example")
        self.assertEqual(headers.get("x-consumer-groups"), "admins")
        r = harness.request(port, "GET", "/admin/users/7", host="gw.example", headers=bob)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json(), {"message": "You cannot consume this service"})
        self.assertIsNone(r.header("x-ratelimit-limit-minute"))  # bob: no limit here

        # jwt on orders: bob's HS256 secret, selected by iss.
        token = jwt_hs256({"iss": "bob-issuer", "exp": int(time.time()) + 600}, "bob-hmac-secret")
        r = harness.request(port, "GET", "/orders/17", host="gw.example",
                            headers={"authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        path, headers = echoed(r)
        self.assertEqual(path, "/orders/17")
        self.assertEqual(headers.get("x-consumer-username"), "bob")
        self.assertIn(r.header("x-upstream"), ("orders1", "orders2"))
        self.assertEqual(harness.request(port, "GET", "/orders/17", host="gw.example").status,
                         401)
        forged = jwt_hs256({"iss": "bob-issuer", "exp": int(time.time()) + 600}, "guess")
        self.assertEqual(harness.request(port, "GET", "/orders/17", host="gw.example",
                                         headers={"authorization": "Bearer " + forged}).status,
                         401)

        # CORS preflight (the global cors plugin), answered before key-auth and acl.
        r = harness.request(port, "OPTIONS", "/admin/users/1", host="gw.example",
                            headers={"origin": "https://app.example.com",
                                     "access-control-request-method": "POST"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("access-control-allow-origin"), "https://app.example.com")
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header("access-control-max-age"), "3600")
        r = harness.request(port, "OPTIONS", "/admin/users/1", host="gw.example",
                            headers={"origin": "https://evil.example",
                                     "access-control-request-method": "POST"})
        self.assertIsNone(r.header("access-control-allow-origin"))
        # As in Kong, a route with `methods` but not OPTIONS gets no preflight: no route
        # matches, Kong's 404.
        r = harness.request(port, "OPTIONS", "/users/1", host="gw.example",
                            headers={"origin": "https://app.example.com",
                                     "access-control-request-method": "POST"})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json(), {"message": "no Route matched with those values"})

        # catalog (Host catalog.example.com): 10 a second by IP, Kong's headers, then 429.
        statuses = []
        with harness.Conn(port) as c:
            for _ in range(25):
                r = c.request("GET", "/anything", host="catalog.example.com")
                statuses.append(r.status)
                if r.status == 200:
                    self.assertEqual(r.header("x-ratelimit-limit-second"), "10")
                    self.assertEqual(r.header("x-ratelimit-limit-minute"), "300")
                    self.assertIsNotNone(r.header("ratelimit-remaining"))
                    path, headers = echoed(r)
                    self.assertEqual(path, "/anything")
                if r.status == 429:
                    break
        self.assertEqual(statuses[-1], 429, statuses)
        self.assertEqual(catalog.last_request().path, "/anything")

    def test_own_file_regex_priority_and_rate_limit(self):
        a = self.start_upstream("A")
        b = self.start_upstream("B")
        cp = self.start_cp()
        port = free_port()
        text = """_format_version: "3.0"
services:
- name: items
  url: http://%s
  routes:
  - {name: item, paths: ["~/items/\\\\d+"], regex_priority: 1}
  - name: limited
    paths: [/limited]
    plugins:
    - {name: rate-limiting, config: {minute: 3, limit_by: ip, policy: local}}
  - name: keyed
    paths: [/keyed]
    plugins:
    - {name: key-auth}
- name: special
  url: http://%s/special-base
  routes:
  - {name: special, paths: ["~/items/[0-9]+/special"], strip_path: false, regex_priority: 5}
  - {name: plain, paths: [/items/special-prefix], strip_path: true}
  - {name: stripped-regex, paths: ["~/zz"]}
consumers:
- username: carol
  keyauth_credentials: [{key: carol-key}]
""" % (a.address, b.address)
        kong = self.write(cp, text, "own.kong.yml")
        r = cp.ctl("apply", "-f", kong, "--group", "own", "--listen", "127.0.0.1:%d" % port,
                   check=False)
        # strip_path on a regex path to a service with a path can't be expressed: refused.
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("services[1].routes[2].paths[0]", r.stderr)
        self.assertIn("strip_path with a regex path to service", r.stderr)
        text = text.replace('  - {name: stripped-regex, paths: ["~/zz"]}\n', "")
        kong = self.write(cp, text, "own.kong.yml")
        cp.ctl("apply", "-f", kong, "--group", "own", "--listen", "127.0.0.1:%d" % port)
        self.start_dp(cp, "own-dp", group="own")
        cp.wait_in_sync("own-dp")
        # regex_priority 5 beats 1: /items/7/special matches both regexes.
        r = self.wait_routed(port, "/items/7/special?q=1", "h")
        self.assertEqual(r.header("x-upstream"), "B")
        # strip_path false, service path /special-base: Kong joins them.
        self.assertEqual(echoed(r)[0], "/special-base/items/7/special?q=1")
        # strip_path (Kong's default) on a regex path: what the regex matched is stripped.
        r = harness.request(port, "GET", "/items/7", host="h")
        self.assertEqual((r.header("x-upstream"), echoed(r)[0]), ("A", "/"))
        r = harness.request(port, "GET", "/items/7/x/y?z=1", host="h")
        self.assertEqual((r.header("x-upstream"), echoed(r)[0]), ("A", "/x/y?z=1"))
        # Regex routes come before prefix routes: /items/12/... is the regex's, while the
        # longer plain prefix still wins for its own paths (no regex matches them).
        r = harness.request(port, "GET", "/items/special-prefix/x", host="h")
        self.assertEqual((r.header("x-upstream"), echoed(r)[0]), ("B", "/special-base/x"))
        # 3 a minute by IP on /limited: the 4th is refused with Kong's headers.
        seen = []
        for _ in range(4):
            r = harness.request(port, "GET", "/limited", host="h")
            seen.append(r.status)
        self.assertEqual(seen[:3], [200, 200, 200], seen)
        self.assertEqual(seen[3], 429)
        self.assertEqual(r.header("x-ratelimit-limit-minute"), "3")
        self.assertEqual(r.header("x-ratelimit-remaining-minute"), "0")
        self.assertIsNotNone(r.header("retry-after"))
        # Kong's bodies (the listener's gateway_responses): a file whose only auth plugin is
        # key-auth answers a missing key and a wrong one as Kong's key-auth does.
        self.assertEqual(r.json(), {"message": "API rate limit exceeded"})
        r = harness.request(port, "GET", "/keyed", host="h")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), {"message": "No API key found in request"})
        self.assertEqual(r.header("www-authenticate"), 'Key realm="kong"')
        r = harness.request(port, "GET", "/keyed", host="h", headers={"apikey": "nope"})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), {"message": "Invalid authentication credentials"})
        r = harness.request(port, "GET", "/keyed", host="h", headers={"apikey": "carol-key"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(echoed(r)[1].get("x-consumer-username"), "carol")

    def test_full_file(self):
        """test/config_import/testdata/full.kong.yml (every mapped field), its local service
        pointed at an upstream: accepted strictly by sluice-cp and served."""
        up = self.start_upstream("profiles")
        cp = self.start_cp()
        port = free_port()
        with open(FULL) as f:
            text = f.read().replace("port: 9001", "port: %d" % up.port)
        kong = self.write(cp, text, "full.kong.yml")
        r = cp.ctl("apply", "-f", kong, "--group", "full", "--listen", "127.0.0.1:%d" % port,
                   "--oauth2-jwks", "http://127.0.0.1:%d/jwks.json" % free_port(), check=False)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("warning:", r.stderr)
        self.start_dp(cp, "full-dp", group="full")
        cp.wait_in_sync("full-dp")
        # profiles: preserve_host; the service's request-transformer (method, uri, headers),
        # correlation-id's header, the response-transformer, the global rate limit (by IP).
        r = self.wait_routed(port, "/profiles/abc?debug=1&keep=2", "client.example",
                             headers={"x-internal": "secret", "x-user": "u1"})
        data = r.json()
        headers = {k.lower(): v for k, v in data["headers"]}
        self.assertEqual(data["method"], "POST")
        self.assertEqual(data["path"].split("?")[0], "/svc/replaced")
        self.assertNotIn("debug=", data["path"])
        self.assertEqual(headers["host"], "client.example")
        self.assertEqual(headers["x-added"], "yes")
        self.assertEqual(headers["x-customer"], "u1")
        self.assertNotIn("x-internal", headers)
        self.assertRegex(headers["x-correlation-id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(r.header("x-api"), "v1")
        self.assertEqual(r.header("x-ratelimit-limit-hour"), "5000")
        # profiles-raw: matched by its headers (case-insensitive value, a ~* regex), with its
        # own rate limit (by x-tenant) instead of the global one.
        r = harness.request(port, "GET", "/raw/x", host="h",
                            headers={"x-version": "V1", "x-client": "Mobile-7",
                                     "x-tenant": "t1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-ratelimit-limit-minute"), "60")
        self.assertIsNone(r.header("x-ratelimit-limit-hour"))
        r = harness.request(port, "GET", "/raw/x", host="h", headers={"x-version": "v3"})
        self.assertEqual(r.status, 404, r)
        # The https-only routes of a cleartext listener: Kong's 426, or its redirect.
        r = harness.request(port, "GET", "/tls-only", host="h")
        self.assertEqual(r.status, 426, r)
        r = harness.request(port, "GET", "/secure/x", host="api.example.com")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("location"), "https://api.example.com/secure/x")

    def test_config_dir_kong_file_strict(self):
        """sluice-cp's config dir: <group>.kong.yml converted strictly; the seed's problems are
        logged and the group is not applied."""
        cp = self.start_cp()
        users = self.start_upstream("users")
        text = self.seed_text(users, users, users, users)
        cp.write_group_file("seed", text, ext="kong.yml")
        cp.wait_log(r"unhealthy\.successes", timeout=10)
        self.assertIsNone(cp.group_version("seed"))


if __name__ == "__main__":
    harness.main()
