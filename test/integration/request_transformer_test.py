"""The request_transformer filter (Kong's request-transformer) through the real binary, against
the harness's echo upstream, which reports the method, path, headers and body it received:
every rule kind on headers, query string and JSON / form bodies in Kong's order and meaning,
templates, nested JSON paths, method changes, chunked, oversize, malformed and encoded bodies,
per-route configs and config errors.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/request_transformer_test.py
"""

import json
import shutil
import subprocess
import unittest

from harness import (Conn, SluiceTestCase, bootstrap, chunked, cluster, listener, route,
                     route_table, run_validate, vhost)

HEADERS = {
    "remove": {"headers": ["x-remove", "x-both"]},
    "rename": {"headers": ["x-old:x-new"]},
    "replace": {"headers": ["x-rep:replaced", "x-absent-rep:never"]},
    "add": {"headers": ["x-both:added", "x-present:not-added", "x-new-add:v"]},
    "append": {"headers": ["x-app:two", "x-both:appended"]},
}

QUERY = {
    "remove": {"querystring": ["drop"]},
    "rename": {"querystring": ["old:new", "missing:victim"]},
    "replace": {"querystring": ["rep:replaced", "absent:never"]},
    "add": {"querystring": ["rep:not-added", "added:a b"]},
    "append": {"querystring": ["multi:2", "flag:v"]},
}

BODY = {
    "remove": {"body": ["secret", "meta.internal"]},
    "rename": {"body": ["old:new", "meta.a:top"]},
    "replace": {"body": ["status:replaced", "absent:never", "meta.api_version:v1",
                         "off:replaced"]},
    "add": {"body": ["status:not-added", "extra:$(headers.x-extra)", "deep.x.y:1",
                     "off:added"]},
    "append": {"body": ["tags:b", "name:y"]},
    "max_body_bytes": 32768,
}

TEMPLATES = {
    "add": {"headers": ["x-from-header:$(headers.x-in)", "x-underscore:$(headers.x_in)",
                        "x-bracket:$(headers[\"x-in\"])", "x-from-query:$(query_params.q)",
                        "x-cap:$(uri_captures.id)", "x-rid:$request_id", "x-scheme:$scheme",
                        "x-host:$host", "x-ip:$client_ip", "x-consumer:$consumer",
                        "x-missing:[$(headers.nope)]", "x-dollar:$5 and $hostname"]},
    "replace": {"uri": "/v2/items/$(uri_captures.id)"},
}


def echoed(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


def header_values(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name]


class RequestTransformerTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        routes = [
            route(prefix="/headers", cluster="up", filter_config={"request_transformer": HEADERS}),
            route(prefix="/query", cluster="up", filter_config={"request_transformer": QUERY}),
            route(prefix="/body", cluster="up", filter_config={"request_transformer": BODY}),
            route(regex="/users/(?P<id>[0-9]+)", cluster="up", auth="keys",
                  filter_config={"request_transformer": TEMPLATES}),
            route(prefix="/tpl", cluster="up", filter_config={"request_transformer": {
                "add": {"headers": ["x-q:$(query_params.q)"]},
                "replace": {"uri": "/x/$(headers.x-path)"}}}),
            # The route's prefix_rewrite gives way to replace.uri (the path sent upstream); without
            # a uri rule it applies as usual.
            route(prefix="/rewritten-only", route={"prefix_rewrite": "/api/v1"}, cluster="up",
                  filter_config={"request_transformer": {"add": {"headers": ["x-a:1"]}}}),
            route(prefix="/rewritten", route={"prefix_rewrite": "/api/v1"}, cluster="up",
                  filter_config={"request_transformer": {"replace": {"uri": "/set/$(headers.x-p)"}}}),
            route(prefix="/static-json", cluster="up", filter_config={"request_transformer": {
                "remove": {"body": ["drop"]}, "add": {"body": ["meta.k:v"]}}}),
            route(prefix="/host", cluster="up", filter_config={"request_transformer": {
                "replace": {"headers": ["host:$(headers.x-new-host)"]},
                "add": {"headers": ["host:never"]}}}),
            route(prefix="/form-get", cluster="up", filter_config={"request_transformer": {
                "http_method": "get", "add": {"querystring": ["k:v"]}}}),
            route(prefix="/form", cluster="up", filter_config={"request_transformer": {
                "remove": {"body": ["drop"]}, "rename": {"body": ["old:new"]},
                "replace": {"body": ["rep:r v"]}, "add": {"body": ["added:a&b", "rep:no"]},
                "append": {"body": ["multi:2"]}}}),
            # The listener's config (a header rule only): bodies stream untouched.
            route(prefix="/", cluster="up"),
        ]
        cfg = bootstrap(
            [listener("public", "main", http_filters=[
                {"name": "auth"},
                {"name": "request_transformer", "config": {"add": {"headers": ["x-listener:1"]}}},
                {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("up", [cls.up])])
        cfg["static_resources"]["auth_policies"] = [
            {"name": "keys", "key_auth": {},
             "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "k1"}]}]}]
        cls.sluice = cls.start_class_sluice(cfg)
        cls.port = cls.sluice.listener_port("public")

    def request(self, method, path, headers=None, body=None):
        with Conn(self.port) as c:
            return c.request(method, path, headers=headers, body=body)

    # -- headers ---------------------------------------------------------------------------------

    def test_header_rules_in_kongs_order_and_meaning(self):
        e = echoed(self.request("GET", "/headers", headers=[
            ("X-Remove", "1"), ("X-Both", "orig"), ("X-Old", "o"), ("X-Rep", "r"),
            ("X-Present", "p"), ("X-App", "one")]))
        self.assertEqual(header_values(e, "x-remove"), [])
        # remove, then add (absent now), then append: both values.
        self.assertEqual(header_values(e, "x-both"), ["added", "appended"])
        self.assertEqual(header_values(e, "x-old"), [])
        self.assertEqual(header_values(e, "x-new"), ["o"])
        self.assertEqual(header_values(e, "x-rep"), ["replaced"])
        self.assertEqual(header_values(e, "x-absent-rep"), [])  # replace only when present
        self.assertEqual(header_values(e, "x-present"), ["p"])  # add only when absent
        self.assertEqual(header_values(e, "x-new-add"), ["v"])
        self.assertEqual(header_values(e, "x-app"), ["one", "two"])  # append always
        # The route's config replaced the listener's.
        self.assertEqual(header_values(e, "x-listener"), [])

    def test_listener_config_applies_without_a_route_config(self):
        e = echoed(self.request("GET", "/plain"))
        self.assertEqual(header_values(e, "x-listener"), ["1"])

    # -- query string ----------------------------------------------------------------------------

    def test_query_rules(self):
        e = echoed(self.request(
            "GET", "/query?drop=1&old=o&rep=r&keep=%2Fk&multi=1&flag&victim=v"))
        path, _, query = e["path"].partition("?")
        self.assertEqual(path, "/query")
        # Untouched pairs keep their encoding; a missing rename source removes its target (Kong).
        self.assertEqual(query.split("&"), [
            "new=o", "rep=replaced", "keep=%2Fk", "multi=1", "added=a%20b", "multi=2", "flag=v"])

    # -- templates -------------------------------------------------------------------------------

    def test_templates(self):
        e = echoed(self.request("GET", "/users/42?q=hello&apikey=k1", headers={
            "X-In": "from-client", "X-Request-Id": "rid-123"}))
        # (auth took its key out of the query before the transformer ran)
        self.assertEqual(e["path"], "/v2/items/42?q=hello")
        h = lambda n: header_values(e, n)  # noqa: E731
        self.assertEqual(h("x-from-header"), ["from-client"])
        self.assertEqual(h("x-underscore"), ["from-client"])
        self.assertEqual(h("x-bracket"), ["from-client"])
        self.assertEqual(h("x-from-query"), ["hello"])
        self.assertEqual(h("x-cap"), ["42"])
        self.assertEqual(h("x-rid"), ["rid-123"])
        self.assertEqual(h("x-scheme"), ["http"])
        self.assertEqual(h("x-host"), ["example.com"])
        self.assertEqual(h("x-ip"), ["127.0.0.1"])
        self.assertEqual(h("x-consumer"), ["alice"])
        self.assertEqual(h("x-missing"), ["[]"])
        self.assertEqual(h("x-dollar"), ["$5 and $hostname"])

    def test_template_cannot_inject_a_header_line(self):
        before = self.up.request_count()
        r = self.request("GET", "/tpl?q=a%0d%0aX-Injected:%201", headers={"X-Path": "ok"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("invalid header value", r.json()["message"])
        self.assertEqual(self.up.request_count(), before)

    def test_replaced_uri_is_not_rewritten_again_by_the_route(self):
        e = echoed(self.request("GET", "/rewritten/x?k=v", headers={"X-P": "abc"}))
        self.assertEqual(e["path"], "/set/abc?k=v")
        e = echoed(self.request("GET", "/rewritten-only/x?k=v"))
        self.assertEqual(e["path"], "/api/v1/x?k=v")

    def test_template_cannot_climb_out_of_the_path(self):
        before = self.up.request_count()
        for bad in ("..", "%2e%2E", "a/../../admin"):
            r = self.request("GET", "/tpl", headers={"X-Path": bad})
            self.assertEqual(r.status, 400, (bad, r))
        self.assertEqual(self.up.request_count(), before)
        e = echoed(self.request("GET", "/tpl?z=1", headers={"X-Path": "a b/c"}))
        self.assertEqual(e["path"], "/x/a%20b/c?z=1")

    def test_host_is_replaced_only_with_a_valid_authority(self):
        e = echoed(self.request("GET", "/host", headers={"X-New-Host": "backend.internal:8080"}))
        self.assertEqual(header_values(e, "host"), ["backend.internal:8080"])
        before = self.up.request_count()
        for bad in ("evil.com/x", "a b", "u@evil.com"):
            r = self.request("GET", "/host", headers={"X-New-Host": bad})
            self.assertEqual(r.status, 400, (bad, r))
        self.assertEqual(self.up.request_count(), before)

    # -- JSON bodies -----------------------------------------------------------------------------

    def test_json_body_rules(self):
        body = json.dumps({"old": 1, "status": "ok", "secret": "s", "tags": ["a"], "name": "x",
                           "off": False, "meta": {"api_version": "v0", "internal": 1, "a": 2}})
        e = echoed(self.request("POST", "/body", headers={
            "Content-Type": "application/json", "X-Extra": "from-header"}, body=body.encode()))
        got = json.loads(e["body"])
        self.assertEqual(got, {
            "status": "replaced", "tags": ["a", "b"], "name": ["x", "y"],
            "off": "added",  # false counts as absent: not replaced, added (Lua)
            "meta": {"api_version": "v1"}, "new": 1, "top": 2,
            "extra": "from-header", "deep": {"x": {"y": "1"}}})
        self.assertEqual(int(dict((k.lower(), v) for k, v in e["headers"])["content-length"]),
                         len(e["body"].encode()))

    def test_json_body_over_h2c(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl not installed")
        # Two DATA frames' worth, no content-length: the body is held, rewritten and sent with
        # its length.
        body = json.dumps({"status": "ok", "pad": "p" * 20000})
        p = subprocess.run(
            [curl, "-sS", "--http2-prior-knowledge", "-H", "content-type: application/json",
             "-H", "transfer-encoding:", "--data-binary", "@-",
             "http://127.0.0.1:%d/body?x=1" % self.port],
            input=body.encode(), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        e = json.loads(p.stdout)
        got = json.loads(e["body"])
        self.assertEqual(got["status"], "replaced")
        self.assertEqual(len(got["pad"]), 20000)
        self.assertEqual(int(dict((k.lower(), v) for k, v in e["headers"])["content-length"]),
                         len(e["body"].encode()))

    def test_json_body_rules_without_templates(self):
        e = echoed(self.request("POST", "/static-json", headers={
            "Content-Type": "application/json"}, body=b'{"drop":1,"keep":2}'))
        self.assertEqual(json.loads(e["body"]), {"keep": 2, "meta": {"k": "v"}})

    def test_chunked_json_body_gets_a_content_length(self):
        with Conn(self.port) as c:
            c.send_request("POST", "/body", headers={
                "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                body=chunked(b'{"status":', b'"ok"}'))
            e = echoed(c.read_response())
        self.assertEqual(json.loads(e["body"])["status"], "replaced")
        names = [k.lower() for k, _ in e["headers"]]
        self.assertIn("content-length", names)
        self.assertNotIn("transfer-encoding", names)

    def test_chunked_json_body_with_trailers(self):
        with Conn(self.port) as c:
            c.send_request("POST", "/body", headers={
                "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                body=chunked(b'{"status":"ok"}', trailers=[("x-t", "1")]))
            e = echoed(c.read_response())
        self.assertEqual(json.loads(e["body"])["status"], "replaced")

    def test_malformed_json_is_400(self):
        before = self.up.request_count()
        r = self.request("POST", "/body", headers={"Content-Type": "application/json"},
                         body=b'{"a":')
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertIn("request body is not valid JSON", r.json()["message"])
        self.assertEqual(self.up.request_count(), before)

    def test_oversize_body_is_413(self):
        big = json.dumps({"k": "x" * 40000}).encode()
        r = self.request("POST", "/body", headers={"Content-Type": "application/json"}, body=big)
        self.assertEqual(r.status, 413)
        with Conn(self.port) as c:
            c.send_request("POST", "/body", headers={
                "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                body=chunked(big[:30000], big[30000:]))
            self.assertEqual(c.read_response().status, 413)

    def test_encoded_body_is_415(self):
        r = self.request("POST", "/body", headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"}, body=b"\x1f\x8b")
        self.assertEqual(r.status, 415)
        self.assertEqual(r.header("accept-encoding"), "identity")

    def test_other_content_types_and_no_body_rules_stream_untouched(self):
        e = echoed(self.request("POST", "/body", headers={"Content-Type": "text/plain"},
                                body=b'{"status":"ok"}'))
        self.assertEqual(e["body"], '{"status":"ok"}')
        big = b'{"k":"' + b"x" * 200000 + b'"}'  # above max_body_bytes: no body rule here
        e = echoed(self.request("POST", "/plain", headers={"Content-Type": "application/json"},
                                body=big))
        self.assertEqual(e["body_len"], len(big))

    def test_expect_continue_with_a_body_rule(self):
        with Conn(self.port) as c:
            c.send(b"POST /body HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json"
                   b"\r\nContent-Length: 15\r\nExpect: 100-continue\r\n\r\n")
            interim = c.read_response(interim=True)
            self.assertEqual(interim.status, 100)
            c.send(b'{"status":"ok"}')
            e = echoed(c.read_response())
        self.assertEqual(json.loads(e["body"])["status"], "replaced")

    # -- form bodies -----------------------------------------------------------------------------

    def test_form_body_rules(self):
        e = echoed(self.request(
            "POST", "/form", headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=b"drop=1&old=o&rep=r&keep=a+b&multi=1"))
        self.assertEqual(e["body"].split("&"), [
            "new=o", "rep=r%20v", "keep=a+b", "multi=1", "added=a%26b", "multi=2"])
        self.assertEqual(int(dict((k.lower(), v) for k, v in e["headers"])["content-length"]),
                         len(e["body"]))

    def test_method_change_to_get_moves_the_form_into_the_query(self):
        e = echoed(self.request(
            "POST", "/form-get?a=1", headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=b"x=1&y=two"))
        self.assertEqual(e["method"], "GET")
        self.assertEqual(e["path"], "/form-get?a=1&x=1&y=two&k=v")


class RequestTransformerConfigTest(SluiceTestCase):
    def test_config_errors_name_the_field(self):
        rt = {"add": {"headers": ["content-length:5", "bad name:v", ":v"],
                      "body": ["a..b:1"], "querystring": ["novalue"]},
              "rename": {"headers": ["x-a:transfer-encoding"]},
              "replace": {"uri": "no-slash"},
              "append": {"headers": ["x-t:$(cookies.x)"]}}
        b = bootstrap(
            [listener("public", "main", http_filters=[
                {"name": "request_transformer", "config": rt}, {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], [route(prefix="/", cluster="up",
             filter_config={"request_transformer": {"add": {"headers": ["x-b"]}}})])])],
            [cluster("up", [self.dead_port()])])
        p = run_validate(b)
        self.assertEqual(p.returncode, 1, p.stderr)
        f = "static_resources.listeners[0].http_filters[0].config"
        self.assertIn(f + '.add.headers[0]: "content-length" is managed by the gateway', p.stderr)
        self.assertIn(f + '.add.headers[1]: "bad name" is not a valid header name', p.stderr)
        self.assertIn(f + ".add.headers[2]:", p.stderr)
        self.assertIn(f + '.add.body[0]: "a..b": empty key', p.stderr)
        self.assertIn(f + '.add.querystring[0]: "novalue": expected "name:value"', p.stderr)
        self.assertIn(f + '.rename.headers[0]: "transfer-encoding" is managed', p.stderr)
        self.assertIn(f + '.replace.uri: must start with "/"', p.stderr)
        self.assertIn(f + '.append.headers[0]: unknown template "$(cookies.x)"', p.stderr)
        self.assertIn("routes[0].filter_config.request_transformer.add.headers[0]: "
                      '"x-b": expected "name:value"', p.stderr)


if __name__ == "__main__":
    unittest.main()
