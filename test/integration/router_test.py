"""Router: virtual host selection by Host, route matching (prefix/path/regex, methods,
headers, query parameters, case sensitivity), and actions (cluster, prefix_rewrite,
host_rewrite, direct_response, redirect). One proxy serves every test in this file.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/router_test.py
"""

import urllib.parse

import harness
from harness import bootstrap, cluster, echo, listener, route_table, vhost


def direct(name, body, status=200, **match):
    m = dict(match)
    return {"name": name, "match": m, "direct_response": {"status": status, "body": body}}


def redirect(name, prefix, **redir):
    return {"name": name, "match": {"prefix": prefix}, "redirect": redir}


def to_cluster(name, cluster_name="echo", **kw):
    action = {"cluster": cluster_name}
    for k in ("prefix_rewrite", "host_rewrite", "timeout"):
        if k in kw:
            action[k] = kw.pop(k)
    return {"name": name, "match": kw, "route": action}


def router_config(echo_up, echo2_up):
    any_routes = [
        direct("path-exact", "path-exact", path="/exact"),
        direct("api-write", "api-write", prefix="/api/", methods=["POST", "PUT"]),
        direct("api-v2", "api-v2", prefix="/api/", headers=[{"name": "x-version", "exact": "2"}]),
        to_cluster("api", prefix="/api/", prefix_rewrite="/v1/"),
        direct("items", "item", regex="/items/[0-9]+"),
        direct("q-debug", "q-debug", prefix="/q",
               query_parameters=[{"name": "debug", "exact": "1"}]),
        direct("q-id", "q-id", prefix="/q", query_parameters=[{"name": "id", "regex": "[0-9]+"}]),
        direct("q-flag", "q-flag", prefix="/q", query_parameters=[{"name": "flag"}]),
        direct("q-flag2", "q-flag2", prefix="/q",
               query_parameters=[{"name": "flag2", "present": True}]),
        direct("q", "q-default", prefix="/q"),
        direct("h-prefix", "h-prefix", prefix="/hm", headers=[{"name": "x-pre", "prefix": "abc"}]),
        direct("h-regex", "h-regex", prefix="/hm", headers=[{"name": "x-re", "regex": "v[0-9]+"}]),
        direct("h-present", "h-present", prefix="/hm", headers=[{"name": "x-present"}]),
        direct("h-present-flag", "h-present-flag", prefix="/hm",
               headers=[{"name": "X-Present-Flag", "present": True}]),
        direct("h-all", "h-all", prefix="/hm",
               headers=[{"name": "x-a", "exact": "1"}, {"name": "x-b", "exact": "2"}]),
        direct("h", "h-default", prefix="/hm"),
        direct("inv", "inv", prefix="/inv",
               headers=[{"name": "x-inv", "exact": "no", "invert": True}]),
        direct("inv-fallback", "inv-fallback", prefix="/inv"),
        direct("case", "case-sensitive", prefix="/CaseSensitive"),
        direct("nocase", "no-case", prefix="/NoCase", case_sensitive=False),
        {"name": "teapot", "match": {"path": "/teapot"},
         "direct_response": {"status": 418, "body": "short and stout",
                             "content_type": "text/x-tea"}},
        {"name": "empty", "match": {"path": "/empty"}, "direct_response": {"status": 200}},
        {"name": "default-ct", "match": {"path": "/default-ct"},
         "direct_response": {"status": 200, "body": "x"}},
        {"name": "err", "match": {"path": "/err"},
         "direct_response": {"status": 503, "body": "down for maintenance"}},
        redirect("r-https", "/r/https", scheme_redirect="https"),
        redirect("r-host", "/r/host", host_redirect="other.example.org", response_code=302),
        redirect("r-port", "/r/port", port_redirect=8443),
        redirect("r-path", "/r/path", path_redirect="/new/path", response_code=307),
        redirect("r-prefix", "/r/prefix/", prefix_rewrite="/moved/", response_code=308),
        redirect("r-strip", "/r/strip", host_redirect="h.example", strip_query=True,
                 response_code=303),
        redirect("r-default", "/r/default", path_redirect="/d"),
        to_cluster("svc", prefix="/svc/", prefix_rewrite="/"),
        to_cluster("old", path="/old", prefix_rewrite="/new"),
        to_cluster("rx", regex="/rx/[a-z]+", prefix_rewrite="/rewritten"),
        to_cluster("hr", prefix="/hr", host_rewrite="internal.svc"),
        to_cluster("echo", prefix="/echo"),
        to_cluster("other", "echo2", prefix="/other"),
    ]
    main = route_table("main", [
        vhost("exact", ["api.example.com"], [direct("vh-exact", "vh:exact", prefix="/")]),
        vhost("suffix", ["*.example.com"], [direct("vh-suffix", "vh:suffix", prefix="/")]),
        vhost("longer", ["*.foo.example.com"], [direct("vh-longer", "vh:longer", prefix="/")]),
        vhost("multi", ["one.test", "two.test"], [direct("vh-multi", "vh:multi", prefix="/")]),
        vhost("any", ["*"], any_routes),
    ])
    strict = route_table("strict", [
        vhost("only", ["only.example.com"], [direct("strict-only", "strict:only", prefix="/")]),
    ])
    return bootstrap(
        [listener("public", "main"), listener("strict", "strict")],
        [main, strict],
        [cluster("echo", [echo_up]), cluster("echo2", [echo2_up])])


class RouterTest(harness.SluiceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("echo")
        cls.up2 = cls.start_class_upstream("echo2")
        cls.sluice = cls.start_class_sluice(router_config(cls.up, cls.up2))
        cls.port = cls.sluice.listener_port("public")
        cls.strict_port = cls.sluice.listener_port("strict")

    def get(self, path, host="example.com", method="GET", headers=None, port=None, body=None):
        return harness.request(port or self.port, method, path, headers=headers, host=host,
                               body=body)

    def assertRoutedTo(self, body, path, host="example.com", method="GET", headers=None,
                       port=None):
        r = self.get(path, host, method, headers, port,
                     body=b"" if method in ("POST", "PUT") else None)
        self.assertEqual((r.status, r.body.decode("latin-1")), (200, body),
                         "%s %s (Host: %s, headers %r) should hit %r: %r"
                         % (method, path, host, headers, body, r))

    def assertNoRoute(self, path, host="example.com", method="GET", headers=None, port=None):
        r = self.get(path, host, method, headers, port)
        body = self.assertLocalReply(r, 404)
        self.assertEqual(body["message"], "no route matched", r)

    # -- virtual hosts ------------------------------------------------------------------------

    def test_exact_domain(self):
        self.assertRoutedTo("vh:exact", "/", host="api.example.com")

    def test_exact_domain_ignores_port(self):
        self.assertRoutedTo("vh:exact", "/", host="api.example.com:8080")

    def test_exact_beats_suffix(self):
        self.assertRoutedTo("vh:exact", "/anything", host="api.example.com")
        self.assertRoutedTo("vh:suffix", "/anything", host="www.example.com")

    def test_suffix_domain(self):
        for host in ("www.example.com", "a.b.example.com", "x.example.com:9000"):
            self.assertRoutedTo("vh:suffix", "/", host=host)

    def test_longest_suffix_wins(self):
        self.assertRoutedTo("vh:longer", "/", host="x.foo.example.com")
        self.assertRoutedTo("vh:longer", "/", host="a.b.foo.example.com")

    def test_suffix_needs_a_label(self):
        # "*.example.com" does not match the bare "example.com": it falls to "*".
        self.assertRoutedTo("path-exact", "/exact", host="example.com")

    def test_wildcard_domain(self):
        for host in ("unknown.org", "localhost", "127.0.0.1:8080"):
            self.assertRoutedTo("path-exact", "/exact", host=host)

    def test_multiple_domains(self):
        self.assertRoutedTo("vh:multi", "/", host="one.test")
        self.assertRoutedTo("vh:multi", "/", host="two.test")

    def test_no_virtual_host_is_404(self):
        self.assertRoutedTo("strict:only", "/", host="only.example.com", port=self.strict_port)
        self.assertNoRoute("/", host="other.example.com", port=self.strict_port)

    # -- path matching ------------------------------------------------------------------------

    def test_path_exact(self):
        self.assertRoutedTo("path-exact", "/exact")
        self.assertRoutedTo("path-exact", "/exact?with=query")
        self.assertNoRoute("/exact/")
        self.assertNoRoute("/exactly")

    def test_no_route_is_404(self):
        self.assertNoRoute("/nothing-here")

    def test_prefix_does_not_match_shorter(self):
        self.assertNoRoute("/api")
        self.assertNoRoute("/apix/y")

    def test_regex_is_full_match(self):
        self.assertRoutedTo("item", "/items/123")
        self.assertRoutedTo("item", "/items/7?x=/items/abc")
        self.assertNoRoute("/items/123/more")
        self.assertNoRoute("/items/abc")
        self.assertNoRoute("/x/items/1")

    def test_case_sensitive_by_default(self):
        self.assertRoutedTo("case-sensitive", "/CaseSensitive/x")
        self.assertNoRoute("/casesensitive/x")

    def test_case_insensitive(self):
        for p in ("/NoCase/a", "/nocase/a", "/NOCASE"):
            self.assertRoutedTo("no-case", p)

    # -- methods / headers / query parameters ---------------------------------------------------

    def test_methods(self):
        self.assertRoutedTo("api-write", "/api/x", method="POST")
        self.assertRoutedTo("api-write", "/api/x", method="PUT")
        r = self.get("/api/x", method="DELETE")
        self.assertEqual(echo(r)["path"], "/v1/x", "DELETE falls through to the cluster route")

    def test_header_exact(self):
        self.assertRoutedTo("api-v2", "/api/x", headers={"X-Version": "2"})
        r = self.get("/api/x", headers={"X-Version": "3"})
        self.assertEqual(echo(r)["path"], "/v1/x")

    def test_header_prefix_regex_present(self):
        self.assertRoutedTo("h-prefix", "/hm", headers={"x-pre": "abcdef"})
        self.assertRoutedTo("h-default", "/hm", headers={"x-pre": "xabc"})
        self.assertRoutedTo("h-regex", "/hm", headers={"x-re": "v12"})
        self.assertRoutedTo("h-present", "/hm", headers={"X-Present": "anything"})
        self.assertRoutedTo("h-present", "/hm", headers={"x-present": ""})
        self.assertRoutedTo("h-present-flag", "/hm", headers={"x-present-flag": "1"})
        self.assertRoutedTo("h-default", "/hm")

    def test_header_regex_is_full_match(self):
        self.assertRoutedTo("h-default", "/hm", headers={"x-re": "v12x"})
        self.assertRoutedTo("h-default", "/hm", headers={"x-re": "av1"})

    def test_all_headers_must_match(self):
        self.assertRoutedTo("h-all", "/hm", headers={"x-a": "1", "x-b": "2"})
        self.assertRoutedTo("h-default", "/hm", headers={"x-a": "1"})
        self.assertRoutedTo("h-default", "/hm", headers={"x-a": "1", "x-b": "3"})

    def test_header_invert(self):
        self.assertRoutedTo("inv", "/inv", headers={"x-inv": "yes"})
        self.assertRoutedTo("inv-fallback", "/inv", headers={"x-inv": "no"})

    def test_query_parameters(self):
        cases = [
            ("/q?debug=1", "q-debug"),
            ("/q?a=b&debug=1", "q-debug"),
            ("/q?debug=0", "q-default"),
            ("/q?id=42", "q-id"),
            ("/q?id=4x", "q-default"),
            ("/q?flag", "q-flag"),
            ("/q?flag=", "q-flag"),
            ("/q?flag=anything", "q-flag"),
            ("/q?flag2=yes", "q-flag2"),
            ("/q", "q-default"),
            ("/q?other=1", "q-default"),
        ]
        for path, want in cases:
            with self.subTest(path=path):
                self.assertRoutedTo(want, path)

    # -- direct responses -----------------------------------------------------------------------

    def test_direct_response(self):
        r = self.get("/teapot")
        self.assertEqual(r.status, 418, r)
        self.assertEqual(r.body, b"short and stout")
        self.assertEqual(r.header("content-type"), "text/x-tea")
        self.assertEqual(r.header("content-length"), str(len(b"short and stout")))
        self.assertIsNotNone(r.header("x-request-id"), "every response carries x-request-id")

    def test_direct_response_default_content_type(self):
        r = self.get("/default-ct")
        self.assertEqual((r.status, r.body), (200, b"x"))
        self.assertTrue((r.header("content-type") or "").startswith("text/plain"), r)

    def test_direct_response_empty_body(self):
        c = self.conn(self.port)
        r = c.request("GET", "/empty")
        self.assertEqual((r.status, r.body), (200, b""), r)
        r = c.request("GET", "/exact")
        self.assertEqual(r.body, b"path-exact", "connection usable after an empty direct reply")

    def test_direct_response_error_status_is_not_a_local_reply(self):
        r = self.get("/err")
        self.assertEqual((r.status, r.body), (503, b"down for maintenance"))

    def test_direct_response_consumes_request_body(self):
        c = self.conn(self.port)
        r = c.request("POST", "/exact", body=b"ignored body")
        self.assertEqual(r.body, b"path-exact")
        r = c.request("GET", "/teapot")
        self.assertEqual(r.status, 418, "request body must not be parsed as the next request")

    # -- redirects ------------------------------------------------------------------------------

    def assertRedirect(self, path, code, location, host="example.com"):
        r = self.get(path, host=host)
        self.assertEqual(r.status, code, r)
        loc = r.header("location")
        self.assertIsNotNone(loc, "redirect without location: %r" % r)
        self.assertEqual(urllib.parse.urlsplit(loc), urllib.parse.urlsplit(location),
                         "Location for %s: got %r want %r" % (path, loc, location))

    def test_redirect_scheme(self):
        self.assertRedirect("/r/https/x?y=1", 301, "https://example.com/r/https/x?y=1")

    def test_redirect_host(self):
        self.assertRedirect("/r/host/a", 302, "http://other.example.org/r/host/a")

    def test_redirect_port(self):
        self.assertRedirect("/r/port/a", 301, "http://example.com:8443/r/port/a")

    def test_redirect_path(self):
        self.assertRedirect("/r/path/x?q=1", 307, "http://example.com/new/path")

    def test_redirect_prefix_rewrite(self):
        self.assertRedirect("/r/prefix/a/b?z=1", 308, "http://example.com/moved/a/b?z=1")

    def test_redirect_strip_query(self):
        self.assertRedirect("/r/strip/x?secret=1", 303, "http://h.example/r/strip/x")

    def test_redirect_default_code_is_301(self):
        self.assertRedirect("/r/default", 301, "http://example.com/d")

    def test_redirect_does_not_reach_upstream(self):
        before = self.up.request_count()
        self.get("/r/host/a")
        self.assertEqual(self.up.request_count(), before)

    # -- cluster actions ------------------------------------------------------------------------

    def test_cluster_route(self):
        r = self.get("/echo/x?k=v")
        self.assertEqual(r.header("x-upstream"), "echo")
        self.assertEqual(echo(r)["path"], "/echo/x?k=v")
        r = self.get("/other/y")
        self.assertEqual(r.header("x-upstream"), "echo2")

    def test_prefix_rewrite(self):
        r = self.get("/svc/a/b?x=1")
        self.assertEqual(echo(r)["path"], "/a/b?x=1", "prefix /svc/ -> / keeps the query")
        r = self.get("/api/users/7")
        self.assertEqual(echo(r)["path"], "/v1/users/7")

    def test_prefix_rewrite_on_path_and_regex_routes(self):
        self.assertEqual(echo(self.get("/old"))["path"], "/new")
        self.assertEqual(echo(self.get("/old?x=1"))["path"], "/new?x=1")
        self.assertEqual(echo(self.get("/rx/abc"))["path"], "/rewritten")

    def test_host_rewrite(self):
        r = self.get("/hr/z", host="public.example.net")
        e = echo(r)
        self.assertEqual(e["hdr"].get("host"), "internal.svc")
        self.assertEqual(e["all"]("host"), ["internal.svc"])
        self.assertEqual(e["hdr"].get("x-forwarded-host"), "public.example.net",
                         "x-forwarded-host keeps the original Host")

    def test_host_preserved_without_rewrite(self):
        e = echo(self.get("/echo", host="keep.example.net"))
        self.assertEqual(e["hdr"].get("host"), "keep.example.net")


if __name__ == "__main__":
    harness.main()
