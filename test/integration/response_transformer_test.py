"""The response_transformer filter (Kong's response-transformer) through the real binary, in
front of the harness's HTTP/1.1 upstream (bodies and headers chosen per request: `fixed` with
x-body / x-body-b64 / x-content-type / x-resp-header, `stream`, `hold`) and an HTTP/2 upstream
(h2_upstream.H2Upstream, for response trailers):

  * every rule kind on headers and JSON bodies, in Kong's order and meaning, conflicting rules
    (remove + add, replace or add of an absent / present / false / null key, rename, append to
    a string, an array, something else, nothing), json_types, nested dotted paths;
  * framing: chunked upstream bodies leave with a content-length, trailers keep their place,
    HTTP/2 downstreams;
  * what passes unchanged and is counted in /stats: bodies over max_body_bytes (known up front
    or found while holding), invalid JSON, non-objects, content codings (a real gzip body);
    HEAD, 204 and 304 (header rules only), non-JSON types, +json types;
  * per-route and per-virtual-host config replacing the listener's;
  * header-only rules never hold a response: a slow streamed one arrives in pieces.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/response_transformer_test.py
"""

import base64
import gzip
import json
import socket
import unittest

import h2_harness as H
from h2_upstream import H2Upstream
from harness import (MIB, PatternChecker, SluiceTestCase, bootstrap, cluster, route,
                     route_table, run_validate, vhost, wait_until)

# The listener's rules: every route without its own (and its virtual host without any).
LISTENER = {"add": {"headers": ["x-listener:1"], "json": ["from_listener:yes"]}}

# Every rule kind, on headers and on the body (nested paths included).
KONG = {
    "remove": {"headers": ["x-upstream", "X-Remove-Me"], "json": ["secret", "meta.internal"]},
    "rename": {"headers": ["x-old:x-new"], "json": ["id:user_id", "meta.ver:meta.version"]},
    "replace": {"headers": ["x-replace:replaced", "x-absent:never"],
                "json": ["meta.api_version:v1", "status:ok", "missing:never"]},
    "add": {"headers": ["x-added:added", "x-present:not-added"],
            "json": ["added:yes", "name:not-added", "meta.region:eu", "deep.new.key:x",
                     "status.sub:never"]},
    "append": {"headers": ["x-multi:two"],
               "json": ["tags:new", "single:second", "absent_list:first"]},
}

# Rules of different kinds naming the same keys: each kind sees what the ones before it left.
CONFLICT = {
    "remove": {"headers": ["x-a"], "json": ["a", "r"]},
    "rename": {"headers": ["x-b:x-c", "x-nope:x-d"], "json": ["b:c", "nope:d"]},
    "replace": {"headers": ["x-c:replaced", "x-a:not-revived"],
                "json": ["c:replaced", "a:not-revived", "f:not-replaced"]},
    "add": {"headers": ["x-a:re-added", "x-c:not-added"],
            "json": ["a:re-added", "c:not-added", "f:added-over-false", "n:not-added-over-null"]},
    "append": {"headers": ["x-a:appended"], "json": ["a:appended", "s:x", "arr:x", "num:x",
                                                     "obj:x"]},
}

TYPES = {
    "replace": {"json": ["flag:false"], "json_types": ["boolean"]},
    "add": {"json": ["count:42", "ratio:-1.50e3", "ok:true", "no:yes", "str:5",
                     "big:12345678901234567890"],
            "json_types": ["number", "number", "boolean", "boolean", "string", "number"]},
    "append": {"json": ["nums:7", "words:7"], "json_types": ["number"]},
}

SMALL = {"add": {"json": ["a:1"]}, "max_body_bytes": 64}
HEADERS_ONLY = {"add": {"headers": ["x-h:1"]}, "remove": {"headers": ["x-upstream"]}}
VHOST = {"remove": {"headers": ["x-upstream"]}, "add": {"json": ["vhost:1"]}}
VHOST_ROUTE = {"add": {"json": ["vhost_route:1"]}}

COUNTERS = ("json_transformed", "json_skipped_encoded", "json_skipped_too_large",
            "json_skipped_invalid", "json_skipped_not_object")


def rt(config):
    return {"response_transformer": config}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


class ResponseTransformerTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up", default_action="fixed")
        cls.slow = cls.start_class_upstream("slow", default_action="hold")
        cls.h2up = H2Upstream("h2up")
        cls.addClassCleanup(cls.h2up.close)
        routes = [
            route(prefix="/kong", cluster="up", filter_config=rt(KONG)),
            route(prefix="/conflict", cluster="up", filter_config=rt(CONFLICT)),
            route(prefix="/types", cluster="up", filter_config=rt(TYPES)),
            route(prefix="/small", cluster="up", filter_config=rt(SMALL)),
            route(prefix="/headers-only", cluster="slow", filter_config=rt(HEADERS_ONLY)),
            route(prefix="/slow", cluster="slow"),
            route(prefix="/h2up", cluster="h2up"),
            route(prefix="/", cluster="up"),
        ]
        override = {"name": "override", "domains": ["override.example"],
                    "filter_config": rt(VHOST),
                    "routes": [route(prefix="/own", cluster="up", filter_config=rt(VHOST_ROUTE)),
                               route(prefix="/", cluster="up")]}
        cls.config = bootstrap(
            [H.h2_listener("public", "main", http_filters=[
                {"name": "response_transformer", "config": LISTENER}, {"name": "router"}])],
            [route_table("main", [override, vhost("all", ["*"], routes)])],
            [cluster("up", [cls.up]), cluster("slow", [cls.slow]),
             H.h2_cluster("h2up", [cls.h2up])])
        cls.sluice = cls.start_class_sluice(cls.config, concurrency=2)
        cls.port = cls.sluice.listener_port("public")

    def setUp(self):
        self.slow.gate.clear()
        self.addCleanup(self.slow.gate.set)  # never leave the hold upstream waiting
        self.before = self.counters()

    # -- helpers --------------------------------------------------------------------------------

    def counters(self):
        stats = self.sluice.stats()
        return {c: stats.get("response_transformer." + c, 0) for c in COUNTERS}

    def assertCounted(self, **moved):
        """Each response_transformer counter moved by exactly `moved[name]` (default 0) since
        setUp (or the last call)."""
        want = {c: self.before[c] + moved.get(c, 0) for c in COUNTERS}
        holder = {}

        def check():
            holder["now"] = self.counters()
            return holder["now"] == want
        try:
            wait_until(check, 5, message="response_transformer counters")
        except AssertionError:
            self.fail("counters %r, expected %r" % (holder.get("now"), want))
        self.before = holder["now"]

    def fetch(self, path, body=None, content_type="application/json", resp_headers=(),
              method="GET", host=None, chunked=False, extra=(), sink=None, body_b64=None):
        headers = [("X-Content-Type", content_type)]
        if body is not None:
            headers.append(("X-Body", body))
        if body_b64 is not None:
            headers.append(("X-Body-B64", base64.b64encode(body_b64).decode()))
        if chunked:
            headers.append(("X-Chunked", "1"))
        headers += [("X-Resp-Header", h) for h in resp_headers] + list(extra)
        kw = {"host": host} if host else {}
        with self.conn(self.port) as c:
            return c.request(method, path, headers=headers, sink=sink, **kw)

    def assertFramed(self, r):
        """A held body leaves with its exact length and without transfer-encoding."""
        self.assertEqual(r.header("content-length"), str(len(r.body)), r)
        self.assertIsNone(r.header("transfer-encoding"), r)

    # -- every rule kind ------------------------------------------------------------------------

    def test_every_rule_kind_on_headers_and_json(self):
        body = compact({"id": 7, "secret": "s", "name": "alice", "status": "pending",
                        "meta": {"api_version": "v0", "internal": True, "ver": 3},
                        "tags": ["a"], "single": "first"})
        r = self.fetch("/kong/users/7", body, resp_headers=[
            "X-Remove-Me: 1", "X-Old: o1", "X-Old: o2", "X-Replace: orig", "X-Present: orig",
            "X-Multi: one"])
        self.assertEqual(r.status, 200, r)
        # remove, rename (moved to the end), replace, add (nested objects made on the way, not
        # through a string), append; members keep their places otherwise.
        self.assertEqual(r.body.decode(), compact({
            "name": "alice", "status": "ok",
            "meta": {"api_version": "v1", "version": 3, "region": "eu"},
            "tags": ["a", "new"], "single": ["first", "second"], "user_id": 7,
            "added": "yes", "deep": {"new": {"key": "x"}}, "absent_list": ["first"]}))
        self.assertFramed(r)
        self.assertIsNone(r.header("x-upstream"))
        self.assertIsNone(r.header("x-remove-me"))
        self.assertIsNone(r.header("x-old"))
        self.assertEqual(r.header_all("x-new"), ["o1", "o2"])
        self.assertEqual(r.header_all("x-replace"), ["replaced"])
        self.assertIsNone(r.header("x-absent"))
        self.assertEqual(r.header_all("x-added"), ["added"])
        self.assertEqual(r.header_all("x-present"), ["orig"])
        self.assertEqual(r.header_all("x-multi"), ["one", "two"])
        # The route's rules replace the listener's.
        self.assertIsNone(r.header("x-listener"))
        self.assertCounted(json_transformed=1)

    def test_kong_meaning_on_conflicting_rules(self):
        body = compact({"a": 1, "r": 2, "b": "bee", "f": False, "n": None, "s": "str",
                        "arr": [1], "num": 5, "obj": {"k": 1}})
        r = self.fetch("/conflict", body, resp_headers=["X-A: 1", "X-B: bee"])
        # remove a then add a: added (and appended to); a false member counts as absent for
        # replace and add, null as present; append turns a string into [string, value], pushes
        # onto an array and replaces anything else with [value]; a missing `old` renames nothing.
        self.assertEqual(r.body.decode(), compact({
            "f": "added-over-false", "n": None, "s": ["str", "x"], "arr": [1, "x"],
            "num": ["x"], "obj": ["x"], "c": "replaced", "a": ["re-added", "appended"]}))
        self.assertFramed(r)
        # Headers: Kong tests each rule against the headers as the upstream sent them (its
        # header_filter reads them once): x-a was there, so replace revives it and add skips it;
        # x-c was not, so replace skips it and add overwrites what the rename put there.
        self.assertEqual(r.header_all("x-a"), ["not-revived", "appended"])
        self.assertEqual(r.header_all("x-c"), ["not-added"])
        self.assertIsNone(r.header("x-b"))
        self.assertIsNone(r.header("x-d"))
        self.assertCounted(json_transformed=1)

    def test_json_types_and_numbers_as_written(self):
        body = ('{"flag":true,"nums":[1],"exact":1.0E+2,"words":["a"],'
                '"big2":123456789012345678901234567890}')
        r = self.fetch("/types", body)
        self.assertEqual(r.body.decode(), (
            '{"flag":false,"nums":[1,7],"exact":1.0E+2,"words":["a","7"],'
            '"big2":123456789012345678901234567890,"count":42,"ratio":-1.50e3,"ok":true,'
            '"no":false,"str":"5","big":12345678901234567890}'))
        self.assertFramed(r)
        self.assertCounted(json_transformed=1)

    def test_the_replace_meta_api_version_case(self):
        # The nested path of the task: `replace: {json: ["meta.api_version:v1"]}` changes the
        # member inside `meta`, and never adds one where there was none.
        r = self.fetch("/kong", compact({"meta": {"api_version": "v0", "x": 1}}))
        self.assertEqual(r.json()["meta"], {"api_version": "v1", "x": 1, "region": "eu"})
        r = self.fetch("/kong", compact({"meta": {"x": 1}}))
        self.assertEqual(r.json()["meta"], {"x": 1, "region": "eu"})
        r = self.fetch("/kong", compact({"api_version": "top"}))
        self.assertEqual(r.json()["api_version"], "top")
        self.assertCounted(json_transformed=3)

    # -- framing --------------------------------------------------------------------------------

    def test_chunked_upstream_response_leaves_with_a_content_length(self):
        r = self.fetch("/", compact({"k": "v" * 3000}), chunked=True)
        self.assertEqual(r.json(), {"k": "v" * 3000, "from_listener": "yes"})
        self.assertFramed(r)
        self.assertEqual(r.header("x-listener"), "1")
        self.assertCounted(json_transformed=1)

    def test_trailers_follow_the_rewritten_body(self):
        r = self.fetch("/", compact({"k": 1}), chunked=True, extra=[("X-Trailer", "1")])
        self.assertEqual(r.json(), {"k": 1, "from_listener": "yes"})
        # No content-length: HTTP/1.1 carries trailers only in a chunked body.
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(r.trailers, [("x-trailer-field", "t")])
        # A body bigger than the listener's buffer limit (32 KiB) waits for the headers too.
        r = self.fetch("/", compact({"k": "v" * 40000}), chunked=True, extra=[("X-Trailer", "1")])
        self.assertEqual(r.json(), {"k": "v" * 40000, "from_listener": "yes"})
        self.assertEqual(r.trailers, [("x-trailer-field", "t")])
        # From an HTTP/2 upstream (content-length and trailers) to HTTP/1.1.
        r = self.fetch("/h2up/x", extra=[("X-Trailer", "1")])
        self.assertEqual(r.json()["from_listener"], "yes")
        self.assertEqual(r.json()["protocol"], "HTTP/2")
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(dict(r.trailers), {"x-trailer-field": "t", "grpc-status": "0"})
        self.assertCounted(json_transformed=3)

    @unittest.skipUnless(H.H2_ENABLED, "SLUICE_TEST_H2=0")
    def test_http2_downstream(self):
        with H.H2Client(self.port) as c:
            # An HTTP/1.1 chunked upstream body: an h2 response with its length.
            r = c.request("GET", "/kong", headers=[
                ("x-body", compact({"secret": 1, "id": 2})), ("x-content-type", "application/json"),
                ("x-chunked", "1")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {
                "user_id": 2, "added": "yes", "name": "not-added", "meta": {"region": "eu"},
                "deep": {"new": {"key": "x"}}, "status": {"sub": "never"}, "tags": ["new"],
                "single": ["second"], "absent_list": ["first"]})
            self.assertEqual(r.header("content-length"), str(len(r.body)))
            self.assertIsNone(r.header("transfer-encoding"))
            self.assertEqual(r.header_all("x-added"), ["added"])
            # An HTTP/2 upstream with trailers: the body, then the trailers.
            r = c.request("GET", "/h2up/y", headers=[("x-trailer", "1")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["from_listener"], "yes")
            self.assertEqual(r.json()["path"], "/h2up/y")
            self.assertEqual(dict(r.trailers), {"x-trailer-field": "t", "grpc-status": "0"})
            self.assertIn(r.header("content-length"), (None, str(len(r.body))))
        self.assertCounted(json_transformed=2)

    # -- what passes unchanged ------------------------------------------------------------------

    def test_body_over_max_body_bytes_passes_unchanged(self):
        big = compact({"k": "x" * 92})  # 100 bytes; the route's limit is 64
        self.assertEqual(len(big), 100)
        r = self.fetch("/small", big)  # content-length known: never held
        self.assertEqual(r.body.decode(), big)
        self.assertEqual(r.header("content-length"), "100")
        self.assertCounted(json_skipped_too_large=1)
        r = self.fetch("/small", big, chunked=True)  # held up to the limit, then streamed
        self.assertEqual(r.body.decode(), big)
        self.assertCounted(json_skipped_too_large=1)
        fits = compact({"k": "x" * 56})  # 64 bytes: transformed
        self.assertEqual(len(fits), 64)
        r = self.fetch("/small", fits, chunked=True)
        self.assertEqual(r.json(), {"k": "x" * 56, "a": "1"})
        self.assertFramed(r)
        self.assertCounted(json_transformed=1)

    def test_default_limit_is_one_mib(self):
        for chunked, size in ((True, 2 * MIB), (False, MIB + 1)):
            checker = PatternChecker()
            extra = [("X-Action", "stream"), ("X-Bytes", str(size))]
            r = self.fetch("/", resp_headers=["Content-Type: application/json"], chunked=chunked,
                           extra=extra, sink=checker.feed)
            self.assertEqual((r.status, checker.count, checker.ok), (200, size, True), r)
            self.assertEqual(r.header("x-listener"), "1")  # header rules still apply
            self.assertCounted(json_skipped_too_large=1)
        # Just under it: held whole (pattern bytes are no JSON: passed unchanged, with a length).
        checker = PatternChecker()
        r = self.fetch("/", resp_headers=["Content-Type: application/json"], chunked=True,
                       extra=[("X-Action", "stream"), ("X-Bytes", str(MIB))], sink=checker.feed)
        self.assertEqual((checker.count, checker.ok), (MIB, True))
        self.assertEqual(r.header("content-length"), str(MIB))
        self.assertCounted(json_skipped_invalid=1)

    def test_invalid_json_and_non_objects_pass_unchanged(self):
        for body in ('{"a": 1', "not json", '{"a":1} trailing', '{"a":"\\ud800"}'):
            r = self.fetch("/", body, chunked=True)
            self.assertEqual(r.body.decode(), body)
            self.assertFramed(r)
            self.assertEqual(r.header("x-listener"), "1")
        self.assertCounted(json_skipped_invalid=4)
        for body in ("[1,2]", '"text"', "42"):
            r = self.fetch("/", body)
            self.assertEqual(r.body.decode(), body)
        self.assertCounted(json_skipped_not_object=3)

    def test_content_coded_body_passes_unchanged(self):
        payload = gzip.compress(b'{"secret":1,"id":2}')
        r = self.fetch("/kong", body_b64=payload, resp_headers=["Content-Encoding: gzip"])
        self.assertEqual(r.body, payload)  # never decompressed
        self.assertEqual(r.header("content-length"), str(len(payload)))
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(r.header("x-added"), "added")  # header rules still apply
        self.assertCounted(json_skipped_encoded=1)
        # Even a readable body is left alone when it says it is encoded.
        r = self.fetch("/", '{"a":1}', resp_headers=["Content-Encoding: br"])
        self.assertEqual(r.body, b'{"a":1}')
        self.assertCounted(json_skipped_encoded=1)
        # identity is no coding.
        r = self.fetch("/", '{"a":1}', resp_headers=["Content-Encoding: identity"])
        self.assertEqual(r.json(), {"a": 1, "from_listener": "yes"})
        self.assertCounted(json_transformed=1)

    def test_head_204_304_get_header_rules_only(self):
        body = compact({"a": 1})
        r = self.fetch("/", body, method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), str(len(body)))  # the GET's length
        self.assertEqual(r.header("x-listener"), "1")
        for status in (204, 304):
            r = self.fetch("/", body, extra=[("X-Status", str(status))])
            self.assertEqual(r.status, status)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.header("x-listener"), "1")
        self.assertCounted()  # nothing counted: the JSON rules never looked at them
        # The same connection still works (no stray body bytes after a 304).
        with self.conn(self.port) as c:
            c.request("GET", "/", headers=[("X-Status", "304"), ("X-Body", body)])
            r = c.request("GET", "/", headers=[("X-Body", body),
                                               ("X-Content-Type", "application/json")])
            self.assertEqual(r.json(), {"a": 1, "from_listener": "yes"})

    def test_json_content_types(self):
        for ctype in ("application/problem+json", "application/vnd.api+json; charset=utf-8",
                      "Application/JSON"):
            r = self.fetch("/", '{"a":1}', content_type=ctype)
            self.assertEqual(r.json(), {"a": 1, "from_listener": "yes"}, ctype)
            self.assertEqual(r.header("content-type"), ctype)
        self.assertCounted(json_transformed=3)
        for ctype in ("text/plain", "application/jsonp", "text/json", "", "+json"):
            r = self.fetch("/", '{"a":1}', content_type=ctype)
            self.assertEqual(r.body, b'{"a":1}', ctype)
            self.assertEqual(r.header("x-listener"), "1")
        self.assertCounted()

    # -- per route ------------------------------------------------------------------------------

    def test_route_and_virtual_host_config_replace_the_listeners(self):
        r = self.fetch("/anything", '{"a":1}')
        self.assertEqual(r.json(), {"a": 1, "from_listener": "yes"})
        self.assertEqual((r.header("x-listener"), r.header("x-upstream")), ("1", "up"))
        # The virtual host's rules.
        r = self.fetch("/x", '{"a":1}', host="override.example")
        self.assertEqual(r.json(), {"a": 1, "vhost": "1"})
        self.assertEqual((r.header("x-listener"), r.header("x-upstream")), (None, None))
        # A route of that virtual host with its own: neither the host's nor the listener's.
        r = self.fetch("/own", '{"a":1}', host="override.example")
        self.assertEqual(r.json(), {"a": 1, "vhost_route": "1"})
        self.assertEqual((r.header("x-listener"), r.header("x-upstream")), (None, "up"))
        self.assertCounted(json_transformed=3)

    # -- streaming ------------------------------------------------------------------------------

    def read_some(self, c, got, timeout=0.2):
        c.sock.settimeout(timeout)
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            data = b""
        finally:
            c.sock.settimeout(c.timeout)
        got.extend(data)
        return data

    def test_header_only_rules_never_hold_a_response(self):
        c = self.conn(self.port)
        c.send_request("GET", "/headers-only/x",
                       headers=[("X-Resp-Header", "Content-Type: application/json")])
        got = bytearray()
        wait_until(lambda: self.read_some(c, got) is not None and b"first-part" in got, 10,
                   message="the first piece while the upstream holds the second")
        self.assertFalse(self.slow.gate.is_set())
        head = bytes(got).split(b"\r\n\r\n", 1)[0].decode().lower()
        self.assertIn("\r\nx-h: 1", head)
        self.assertNotIn("x-upstream", head)
        self.assertIn("transfer-encoding: chunked", head)
        self.slow.gate.set()
        wait_until(lambda: self.read_some(c, got) is not None and got.endswith(b"0\r\n\r\n"), 10,
                   message="the rest of the response")
        self.assertIn(b"second-part", got)
        self.assertCounted()

    def test_json_rules_hold_the_same_response_until_it_ends(self):
        # The contrast: with the listener's JSON rules the response waits for the whole body.
        c = self.conn(self.port)
        base = self.slow.bytes_sent
        c.send_request("GET", "/slow/x",
                       headers=[("X-Resp-Header", "Content-Type: application/json")])
        # The upstream sends its head and the first piece, then waits for the gate.
        head = ("HTTP/1.1 200 OK\r\nx-upstream: slow\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        first = b"a\r\nfirst-part\r\n"
        wait_until(lambda: self.slow.bytes_sent >= base + len(head) + len(first), 10,
                   message="the upstream's first piece")
        got = bytearray()
        self.read_some(c, got, timeout=0.3)
        self.assertEqual(bytes(got), b"")  # nothing yet, not even the status line
        self.slow.gate.set()
        r = c.read_response()
        self.assertEqual(r.body, b"first-partsecond-part")  # not JSON: unchanged
        self.assertEqual(r.header("content-length"), "21")
        self.assertEqual(r.header("x-listener"), "1")
        self.assertCounted(json_skipped_invalid=1)

    # -- stats and config -----------------------------------------------------------------------

    def test_counters_in_prometheus(self):
        self.fetch("/", '{"a":1}')
        self.assertCounted(json_transformed=1)
        status, _, body = self.sluice.admin_get("/stats/prometheus")
        self.assertEqual(status, 200)
        text = body.decode()
        for c in COUNTERS:
            self.assertRegex(text, r"(?m)^sluice_response_transformer_%s_total \d+$" % c)

    def test_config_errors_name_the_field(self):
        cfg = json.loads(json.dumps(self.config))
        cfg["static_resources"]["listeners"][0]["http_filters"][0]["config"] = {
            "add": {"json": ["a:1", "b:x"], "json_types": ["number", "number"]},
            "remove": {"json": ["a..b"], "headers": ["bad header"]}}
        cfg["static_resources"]["route_tables"][0]["virtual_hosts"][1]["routes"][0][
            "filter_config"] = rt({"replace": {"json": ["k:v"], "json_types": ["float"]}})
        p = run_validate(cfg)
        self.assertNotEqual(p.returncode, 0, p)
        for expected in (
                'http_filters[0].config.add.json_types[1]: "x" (add.json[1]) is not a JSON number',
                'http_filters[0].config.remove.json[0]: "a..b": empty key in a dotted JSON path',
                'http_filters[0].config.remove.headers[0]: "bad header" is not a valid header',
                'virtual_hosts[1].routes[0].filter_config.response_transformer.replace'
                '.json_types[0]: unknown type "float"'):
            self.assertIn(expected, p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
