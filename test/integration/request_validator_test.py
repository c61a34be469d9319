"""The `request_validator` filter (OpenAPI 3.0 request validation) through the real binary, in
front of the harness's echo upstream.

  * parameters: query (scalars and exploded arrays), path (named captures of a regex route),
    header; required, type, enum, pattern, minimum/maximum, min/maxLength; 400
    BAD_REQUEST_PARAMETERS naming the parameter and what is wrong, nothing sent upstream;
  * JSON bodies against a schema with $ref'd definitions: 400 BAD_REQUEST_BODY naming the field,
    invalid JSON, a required body missing, 413 over max_body_bytes, 415 for a media type the
    operation doesn't take; a valid body reaches the upstream byte for byte (chunked too);
  * the listener's gateway_responses reshaping the refusals;
  * config errors (a broken schema) at their field (`sluice --validate`).

Run by hand: SLUICE_BIN=$PWD/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/request_validator_test.py
"""

import json

from harness import (Conn, SluiceTestCase, bootstrap, chunked, cluster, echo, listener, main,
                     route, route_table, run_validate, vhost)

PET_SCHEMA = {
    "type": "object",
    "required": ["name", "kind"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "kind": {"$ref": "#/definitions/kind"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "owner": {"type": "object", "nullable": True,
                  "properties": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}}},
    },
    "additionalProperties": False,
    "definitions": {"kind": {"type": "string", "enum": ["cat", "dog"]}},
}

OPERATIONS = {
    "list": {"parameters": [
        {"name": "limit", "in": "QUERY", "schema": {"type": "integer", "minimum": 1,
                                                     "maximum": 100}},
        {"name": "sort", "in": "QUERY", "schema": {"type": "string", "enum": ["name", "age"]}},
        {"name": "ids", "in": "QUERY", "schema": {"type": "array", "items": {"type": "integer"},
                                                   "maxItems": 3}},
        {"name": "X-Tenant", "in": "HEADER", "required": True,
         "schema": {"type": "string", "pattern": "^[a-z]+$"}},
        {"name": "verbose", "in": "QUERY", "schema": {"type": "boolean"}},
    ]},
    "get": {"parameters": [
        {"name": "petId", "in": "PATH", "schema": {"type": "integer", "minimum": 1}},
    ]},
    "create": {"body": {"required": True, "schema": PET_SCHEMA,
                        "content_types": ["application/json"]}},
}


class RequestValidatorTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        routes = [
            route(path="/pets", cluster="up", name="list", methods=["GET"],
                  filter_config={"request_validator": OPERATIONS["list"]}),
            route(path="/pets", cluster="up", name="create", methods=["POST"],
                  filter_config={"request_validator": OPERATIONS["create"]}),
            route(regex=r"/pets/(?P<petId>[^/]+)", cluster="up", name="get",
                  filter_config={"request_validator": OPERATIONS["get"]}),
            route(prefix="/", cluster="up", name="other"),
        ]
        b = bootstrap(
            [listener(http_filters=[{"name": "request_validator",
                                     "config": {"max_body_bytes": 4096}},
                                    {"name": "router"}],
                      gateway_responses={"BAD_REQUEST_BODY": {
                          "status_code": 422,
                          "body": '{"error": "$message"}',
                          "content_type": "application/json"}})],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("up", [cls.up])])
        cls.sluice = cls.start_class_sluice(b)
        cls.port = cls.sluice.listener_port()

    def setUp(self):
        self.up.reset()

    def send(self, method, path, headers=(), body=None):
        with Conn(self.port) as c:
            return c.request(method, path, headers=list(headers), body=body)

    def refused(self, resp, status, message):
        body = self.assertLocalReply(resp, status, message)
        self.assertEqual(self.up.request_count(), 0, "a refused request reached the upstream")
        return body

    # -- parameters -------------------------------------------------------------------------

    def test_valid_parameters_pass(self):
        r = self.send("GET", "/pets?limit=10&sort=name&ids=1&ids=2&verbose=true",
                      [("X-Tenant", "acme")])
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["path"], "/pets?limit=10&sort=name&ids=1&ids=2&verbose=true")

    def test_parameter_refusals(self):
        tenant = [("X-Tenant", "acme")]
        cases = [
            ("/pets", [], 'header parameter "X-Tenant" is required'),
            ("/pets", [("X-Tenant", "ACME")],
             'header parameter "X-Tenant": must match the pattern ^[a-z]+$'),
            ("/pets?limit=abc", tenant, 'query parameter "limit": must be an integer'),
            ("/pets?limit=1.5", tenant, 'query parameter "limit": must be an integer'),
            ("/pets?limit=0", tenant, 'query parameter "limit": must be >= 1'),
            ("/pets?limit=101", tenant, 'query parameter "limit": must be <= 100'),
            ("/pets?sort=size", tenant,
             'query parameter "sort": must be one of the allowed values'),
            ("/pets?ids=1&ids=x", tenant, 'query parameter "ids": item 1: must be an integer'),
            ("/pets?ids=1&ids=2&ids=3&ids=4", tenant,
             'query parameter "ids": must have at most 3 items'),
            ("/pets?verbose=yes", tenant, 'query parameter "verbose": must be true or false'),
            ("/pets/abc", [], 'path parameter "petId": must be an integer'),
            ("/pets/0", [], 'path parameter "petId": must be >= 1'),
        ]
        for path, headers, message in cases:
            with self.subTest(path=path, headers=headers):
                r = self.send("GET", path, headers)
                body = self.refused(r, 400, message)
                self.assertEqual(body["message"], message)

    def test_percent_encoded_values_are_decoded(self):
        r = self.send("GET", "/pets?sort=%6Eame", [("X-Tenant", "acme")])
        self.assertStatus(r, 200)
        self.assertStatus(self.send("GET", "/pets/4%32"), 200)

    def test_routes_without_a_config_pass(self):
        self.assertStatus(self.send("GET", "/elsewhere?limit=abc"), 200)

    # -- bodies -----------------------------------------------------------------------------

    def pet(self, **fields):
        doc = {"name": "Rex", "kind": "dog"}
        doc.update(fields)
        return json.dumps(doc).encode()

    def test_valid_body_reaches_the_upstream_unchanged(self):
        body = self.pet(age=3, tags=["a", "b"], owner=None)
        r = self.send("POST", "/pets", [("Content-Type", "application/json")], body)
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body"], body.decode())
        # Chunked, with a content type parameter.
        r = self.send("POST", "/pets", [("Content-Type", "application/json; charset=utf-8"),
                                         ("Transfer-Encoding", "chunked")],
                      chunked(body[:10], body[10:]))
        self.assertStatus(r, 200)
        self.assertEqual(echo(r)["body"], body.decode())

    def test_body_refusals(self):
        ct = [("Content-Type", "application/json")]
        cases = [
            (self.pet(kind="fish"), "body.kind: must be one of the allowed values"),
            (self.pet(age=-1), "body.age: must be >= 0"),
            (self.pet(age="3"), "body.age: must be an integer"),
            (self.pet(tags=["a", "a"]), "body.tags: items 0 and 1 must not be equal"),
            (self.pet(owner={"email": "nope"}),
             "body.owner.email: must match the pattern ^[^@]+@[^@]+$"),
            (self.pet(extra=1), 'body: property "extra" is not allowed'),
            (json.dumps({"name": "Rex"}).encode(), 'body: missing required property "kind"'),
            (b'{"name": "Rex",', "request body is not valid JSON"),
        ]
        for body, message in cases:
            with self.subTest(body=body):
                r = self.send("POST", "/pets", ct, body)
                # The listener's gateway response for BAD_REQUEST_BODY reshapes the reply.
                self.assertStatus(r, 422)
                self.assertIn(message, r.json()["error"])
                self.assertEqual(self.up.request_count(), 0)

    def test_missing_body_too_large_and_wrong_type(self):
        r = self.send("POST", "/pets", [("Content-Type", "application/json"),
                                         ("Content-Length", "0")])
        self.assertStatus(r, 422)
        self.assertIn("request body is required", r.json()["error"])
        r = self.send("POST", "/pets", [("Content-Type", "application/json")],
                      self.pet(name="x" * 5000))
        self.refused(r, 413, "request body too large")
        r = self.send("POST", "/pets", [("Content-Type", "text/plain")], b"hello")
        self.refused(r, 415, 'content type "text/plain" is not accepted')

    def test_config_errors(self):
        def check(op, field, message):
            b = bootstrap([listener(http_filters=[{"name": "request_validator"},
                                                  {"name": "router"}])],
                          [route_table("main", [vhost("all", ["*"], [
                              route(prefix="/", cluster="up", name="r",
                                    filter_config={"request_validator": op})])])],
                          [cluster("up", [self.up])])
            res = run_validate(b)
            out = res.stdout + res.stderr
            self.assertNotEqual(res.returncode, 0, out)
            self.assertIn("routes[0].filter_config.request_validator.%s: %s" % (field, message),
                          out)
        check({"body": {"schema": {"type": "text"}}}, "body.schema",
              '#/type: unknown type "text"')
        check({"body": {"schema": {"$ref": "#/definitions/none"}}}, "body.schema",
              '#/$ref: $ref "#/definitions/none" points to nothing')
        check({"parameters": [{"name": "a", "schema": {"pattern": "(?<=x)"}}]},
              "parameters[0].schema", "#/pattern: invalid regex")
        check({"parameters": [{"in": "HEADER", "name": "bad header"}]}, "parameters[0].name",
              "is not a header name")
        check({"body": {"content_types": ["json"]}}, "body.content_types[0]",
              "must be a media type")


if __name__ == "__main__":
    main()
