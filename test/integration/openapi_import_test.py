"""OpenAPI 3 + AWS API Gateway extensions, imported (docs/imports.md) and served by the real
binaries, exercised with real requests against harness upstreams:

  * path templates ({userId}) and greedy {proxy+} paths, rewritten to the integration's path
    with the parameters substituted, as the upstream sees them; httpMethod changing the method;
  * requestParameters mappings (path parameter -> header, header -> query parameter, static
    values), and HTTP APIs' append/overwrite/remove mappings and overwrite:path, seen by the
    upstream; HTTP APIs' $default route;
  * mock integrations answered by the gateway itself (a CORS preflight mock with its headers);
  * a Cognito user pool authorizer (issuer from the pool ARN; the JWKS URL overridden to a local
    JWKS server), with bare and Bearer tokens, another issuer refused; an HTTP API jwt
    authorizer with required scopes (403 without them); an API key;
  * gateway responses from both spellings: status, headers and body templates;
  * request validation refusals naming the field (path parameter, header, JSON body);
  * the seed-like spec with a duplicate key: refused with its line, --lenient converts it.

Every test runs twice: the spec converted by `sluicectl convert openapi` (--listen, --jwks-uri)
and served by `sluice` from a static bootstrap (OpenApiImportTest), and the spec dropped in
sluice-cp's --config-dir as <group>.openapi.yaml (sluice-cp --jwks-uri; the listener from the
spec's x-sluice-listen) and pushed to a data plane over ADS (OpenApiConfigDirTest). sluicectl
validate/diff/apply take the spec too (OpenApiCtlTest).

Tokens are made by PyJWT (python3-jwt), as in auth_test.py.

Run by hand: SLUICE_BIN=$PWD/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/openapi_import_test.py
"""

import json
import os
import subprocess
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_test import JwksServer, public_jwk
from cp_harness import ControlPlane, CpTestCase, ctl_binary, dp_bootstrap
from harness import SluiceTestCase, echo, main, make_tempdir, request

POOL_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test"
PARTNER_ISSUER = "https://partners.example"

SPEC = """\
openapi: 3.0.3
info: {title: it, version: '1'}
x-amazon-apigateway-request-validators:
  all: {validateRequestBody: true, validateRequestParameters: true}
x-amazon-api-gateway:
  authorizers:
    pool:
      type: cognito_user_pools
      providerARNs: [arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Test]
  gateway-responses:
    UNAUTHORIZED:
      statusCode: 401
      responseParameters:
        gatewayresponse.header.WWW-Authenticate: "'Bearer realm=\\"it\\"'"
      responseTemplates:
        application/json: '{"message":$context.error.messageString,"type":"$context.error.responseType"}'
x-amazon-apigateway-gateway-responses:
  BAD_REQUEST_BODY:
    statusCode: 422
    responseTemplates:
      application/json: '{"error":$context.error.validationErrorString}'
  RESOURCE_NOT_FOUND:
    responseParameters:
      gatewayresponse.header.x-gw: "'not-found'"
    responseTemplates:
      application/json: '{"message":"no such route","id":"$context.requestId"}'
components:
  securitySchemes:
    pool:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
    key:
      type: apiKey
      name: x-api-key
      in: header
      x-sluice-consumers: [{username: mobile, keys: [k-123]}]
    partners:
      type: oauth2
      flows: {}
      x-amazon-apigateway-authorizer:
        type: jwt
        jwtConfiguration: {issuer: 'https://partners.example', audience: [it]}
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        age: {type: integer, minimum: 0}
security:
- pool: []
paths:
  /health:
    get:
      security: []
      x-amazon-apigateway-integration:
        type: mock
        responses:
          default:
            statusCode: '200'
            responseTemplates: {application/json: '{"ok":true}'}
  /users/{userId}:
    options:
      security: []
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 200}'}
        responses:
          default:
            statusCode: '204'
            responseParameters:
              method.response.header.Access-Control-Allow-Origin: "'https://app.example'"
              method.response.header.Access-Control-Allow-Methods: "'GET,OPTIONS'"
    get:
      operationId: getUser
      parameters: [{name: userId, in: path, required: true, schema: {type: integer}}]
      x-amazon-apigateway-request-validator: all
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://127.0.0.1:UP1/internal/users/{id}
        timeoutInMillis: 5000
        requestParameters:
          integration.request.path.id: method.request.path.userId
          integration.request.header.x-user-id: method.request.path.userId
          integration.request.header.x-via: "'sluice'"
          integration.request.querystring.src: method.request.header.x-client
  /pets:
    get:
      security: []
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://127.0.0.1:UP1/v2/pets
        responses:
          default:
            statusCode: '200'
            responseParameters:
              method.response.header.Access-Control-Allow-Origin: "'*'"
    post:
      operationId: createPet
      security: [{key: []}]
      x-amazon-apigateway-request-validator: all
      parameters: [{name: X-Tenant, in: header, required: true}]
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/Pet'}}}
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: PUT
        uri: http://127.0.0.1:UP1/v2/pets
  /scoped:
    get:
      security: [{partners: [pets/write]}]
      x-amazon-apigateway-integration: {type: http_proxy, uri: 'http://127.0.0.1:UP1/scoped'}
  /legacy/{item}:
    get:
      security: []
      x-amazon-apigateway-integration:
        type: HTTP_PROXY
        payloadFormatVersion: '1.0'
        uri: http://127.0.0.1:UP2/unused
        requestParameters:
          overwrite:path: /v1/items/${request.path.item}
          append:header.x-trace: $context.requestId
          overwrite:header.x-item: item-$request.path.item
          remove:querystring.debug: "''"
  /files/{proxy+}:
    x-amazon-apigateway-any-method:
      security: []
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: ANY
        uri: http://127.0.0.1:UP2/assets/{proxy}
        requestParameters: {integration.request.path.proxy: method.request.path.proxy}
"""


def convert(tmpdir, text, *args):
    """`sluicectl convert openapi` of `text`; the CompletedProcess (stdout: the YAML)."""
    path = os.path.join(tmpdir, "api.yaml")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.run([ctl_binary(), "convert", "openapi", "-f", path, *args],
                          capture_output=True, text=True, timeout=30)


def spec_for(up1, up2):
    return SPEC.replace("UP1", str(up1.port)).replace("UP2", str(up2.port))


class OpenApiImportTest(CpTestCase):
    """sluicectl convert -> a static bootstrap."""

    @classmethod
    def setUpClass(cls):
        cls.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.jwks = JwksServer([public_jwk(cls.key, "k1")])
        cls.addClassCleanup(cls.jwks.stop)
        cls.up1 = cls.start_class_upstream("users")
        cls.up2 = cls.start_class_upstream("files")
        cls.port = cls.deploy(spec_for(cls.up1, cls.up2))

    @classmethod
    def deploy(cls, text):
        res = convert(make_tempdir("openapi-it-"), text, "--listen", "127.0.0.1:0",
                      "--jwks-uri", cls.jwks.uri)
        if res.returncode != 0:
            raise AssertionError("conversion failed:\n" + res.stderr)
        body = "".join("  " + line + "\n" for line in res.stdout.splitlines())
        cls.sluice = cls.start_class_sluice("static_resources:\n" + body)
        return cls.sluice.listener_port("openapi")

    def token(self, issuer=POOL_ISSUER, scope=None, aud=None, kid="k1"):
        claims = {"iss": issuer, "sub": "user-1", "exp": int(time.time()) + 600}
        if scope:
            claims["scope"] = scope
        if aud:
            claims["aud"] = aud
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid})

    def get(self, path, method="GET", headers=None, body=None):
        return request(self.port, method, path, headers=headers, body=body)

    # -- integrations ---------------------------------------------------------------------------

    def test_mock_integration_is_answered_by_the_gateway(self):
        before = self.up1.request_count() + self.up2.request_count()
        resp = self.get("/health")
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json(), {"ok": True})
        self.assertEqual(resp.header("content-type"), "application/json")
        self.assertEqual(self.up1.request_count() + self.up2.request_count(), before)

    def test_cors_preflight_mock_carries_its_headers(self):
        before = self.up1.request_count()
        resp = self.get("/users/42", method="OPTIONS",
                        headers={"Origin": "https://app.example",
                                 "Access-Control-Request-Method": "GET"})
        self.assertStatus(resp, 204)
        self.assertEqual(resp.header("access-control-allow-origin"), "https://app.example")
        self.assertEqual(resp.header("access-control-allow-methods"), "GET,OPTIONS")
        self.assertEqual(self.up1.request_count(), before)

    def test_http_integration_default_response_headers(self):
        resp = self.get("/pets")
        self.assertStatus(resp, 200)
        self.assertEqual(echo(resp)["path"], "/v2/pets")
        self.assertEqual(resp.header("access-control-allow-origin"), "*")

    def test_path_template_and_request_parameters_seen_upstream(self):
        # A Cognito authorizer takes the bare token as well as "Bearer <token>".
        for auth in (self.token(), "Bearer " + self.token()):
            resp = self.get("/users/42?debug=1",
                            headers={"Authorization": auth, "x-client": "ios"})
            self.assertStatus(resp, 200)
            e = echo(resp)
            self.assertEqual(e["upstream"], "users")
            self.assertEqual(e["method"], "GET")
            path, _, query = e["path"].partition("?")
            self.assertEqual(path, "/internal/users/42")
            self.assertIn("src=ios", query.split("&"))
            self.assertIn("debug=1", query.split("&"))
            self.assertEqual(e["hdr"]["x-user-id"], "42")
            self.assertEqual(e["hdr"]["x-via"], "sluice")
            self.assertEqual(e["hdr"]["host"], "127.0.0.1:%d" % self.up1.port)

    def test_greedy_proxy_path_and_any_method(self):
        for method in ("GET", "DELETE", "PATCH"):
            resp = self.get("/files/img/2024/cat.png?size=s", method=method)
            self.assertStatus(resp, 200)
            e = echo(resp)
            self.assertEqual(e["upstream"], "files")
            self.assertEqual(e["method"], method)
            self.assertEqual(e["path"], "/assets/img/2024/cat.png?size=s")
        # {proxy+} needs at least one segment: /files/ alone is no route.
        self.assertStatus(self.get("/files/"), 404)

    def test_http_api_parameter_mappings(self):
        resp = self.get("/legacy/7?debug=1&keep=2", headers={"x-item": "client"})
        self.assertStatus(resp, 200)
        e = echo(resp)
        self.assertEqual(e["upstream"], "files")
        self.assertEqual(e["path"], "/v1/items/7?keep=2")
        self.assertEqual(e["hdr"]["x-item"], "item-7")
        self.assertEqual(e["hdr"]["x-trace"], resp.header("x-request-id"))

    def test_http_method_changed_and_api_key(self):
        body = json.dumps({"name": "Rex", "age": 3}).encode()
        headers = {"x-api-key": "k-123", "X-Tenant": "acme",
                   "content-type": "application/json"}
        resp = self.get("/pets", method="POST", headers=headers, body=body)
        self.assertStatus(resp, 200)
        e = echo(resp)
        self.assertEqual(e["method"], "PUT")
        self.assertEqual(e["path"], "/v2/pets")
        self.assertEqual(e["body"], body.decode())
        self.assertEqual(e["hdr"].get("x-consumer-username"), "mobile")
        self.assertNotIn("x-api-key", e["hdr"])  # hidden from the upstream
        # No key, a wrong key.
        no_key = dict(headers)
        del no_key["x-api-key"]
        self.assertStatus(self.get("/pets", method="POST", headers=no_key, body=body), 401)
        bad = dict(headers, **{"x-api-key": "nope"})
        self.assertStatus(self.get("/pets", method="POST", headers=bad, body=body), 401)

    # -- authorizers and gateway responses ------------------------------------------------------

    def test_cognito_refusals_use_the_gateway_response(self):
        count = self.up1.request_count()
        for headers in ({}, {"Authorization": self.token(issuer="https://evil.example")},
                        {"Authorization": "Bearer not.a.token"}):
            resp = self.get("/users/42", headers=headers)
            self.assertStatus(resp, 401)
            self.assertEqual(resp.header("www-authenticate"), 'Bearer realm="it"')
            data = resp.json()
            self.assertEqual(data["type"], "UNAUTHORIZED")
            self.assertTrue(data["message"])
        self.assertEqual(self.up1.request_count(), count)

    def test_jwt_authorizer_scopes(self):
        ok = self.token(issuer=PARTNER_ISSUER, scope="pets/read pets/write", aud="it")
        resp = self.get("/scoped", headers={"Authorization": "Bearer " + ok})
        self.assertStatus(resp, 200)
        self.assertEqual(echo(resp)["path"], "/scoped")
        no_scope = self.token(issuer=PARTNER_ISSUER, scope="pets/read", aud="it")
        self.assertStatus(self.get("/scoped", headers={"Authorization": "Bearer " + no_scope}),
                          403)
        other_aud = self.token(issuer=PARTNER_ISSUER, scope="pets/write", aud="else")
        self.assertStatus(self.get("/scoped", headers={"Authorization": "Bearer " + other_aud}),
                          401)
        # A pool token is not a partner token.
        self.assertStatus(self.get("/scoped", headers={"Authorization": "Bearer " +
                                                       self.token(scope="pets/write")}), 401)

    def test_not_found_gateway_response(self):
        resp = self.get("/nowhere")
        self.assertStatus(resp, 404)
        self.assertEqual(resp.header("x-gw"), "not-found")
        data = resp.json()
        self.assertEqual(data["message"], "no such route")
        self.assertEqual(data["id"], resp.header("x-request-id"))

    # -- request validation ---------------------------------------------------------------------

    def test_validation_refusals_name_the_field(self):
        count = self.up1.request_count()
        resp = self.get("/users/abc", headers={"Authorization": self.token()})
        self.assertStatus(resp, 400)
        self.assertEqual(resp.json()["message"], 'path parameter "userId": must be an integer')
        headers = {"x-api-key": "k-123", "content-type": "application/json"}
        resp = self.get("/pets", method="POST", headers=headers, body=b'{"name":"Rex"}')
        self.assertStatus(resp, 400)
        self.assertEqual(resp.json()["message"], 'header parameter "X-Tenant" is required')
        headers["X-Tenant"] = "acme"
        resp = self.get("/pets", method="POST", headers=headers, body=b'{"name":"Rex","age":-1}')
        self.assertStatus(resp, 422)  # BAD_REQUEST_BODY reshaped
        self.assertIn("body.age", resp.json()["error"])
        resp = self.get("/pets", method="POST", headers=headers, body=b'{"age":1}')
        self.assertStatus(resp, 422)
        self.assertIn('missing required property "name"', resp.json()["error"])
        self.assertEqual(self.up1.request_count(), count)


class OpenApiConfigDirTest(OpenApiImportTest):
    """<group>.openapi.yaml in sluice-cp's --config-dir -> a data plane over ADS."""

    @classmethod
    def deploy(cls, text):
        cp = ControlPlane(extra_args=["--jwks-uri", cls.jwks.uri])
        cls.addClassCleanup(cp.cleanup)
        cp.write_group_file("api", "x-sluice-listen: 127.0.0.1:0\n" + text, ext="openapi.yaml")
        cls.sluice = cls.start_class_sluice(dp_bootstrap(cp, "edge-1", "api"))
        cp.wait_in_sync("edge-1")
        cls.cp = cp
        return cls.sluice.listener_port("openapi")


class OpenApiDefaultRouteTest(SluiceTestCase):
    """HTTP APIs' $default route: what no other route takes."""

    def test_default_route_comes_last(self):
        up = self.start_upstream("up")
        text = ("openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n"
                "  $default:\n    x-amazon-apigateway-any-method:\n"
                "      x-amazon-apigateway-integration: {type: http_proxy, "
                "uri: 'http://127.0.0.1:%d/fallback'}\n"
                "  /a/{proxy+}:\n    get:\n"
                "      x-amazon-apigateway-integration: {type: http_proxy, "
                "uri: 'http://127.0.0.1:%d/b/{proxy}'}\n" % (up.port, up.port))
        res = convert(self.tempdir(), text, "--listen", "127.0.0.1:0")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("$default: every request is sent to the path /fallback", res.stderr)
        body = "".join("  " + line + "\n" for line in res.stdout.splitlines())
        port = self.start_sluice("static_resources:\n" + body).listener_port("openapi")
        self.assertEqual(echo(request(port, "GET", "/a/x/y"))["path"], "/b/x/y")
        self.assertEqual(echo(request(port, "POST", "/a/x/y", body=b"z"))["path"], "/fallback")
        self.assertEqual(echo(request(port, "GET", "/other"))["path"], "/fallback")


class OpenApiCtlTest(CpTestCase):
    """sluicectl validate / diff / apply detect an OpenAPI file."""

    def test_apply_an_openapi_spec(self):
        up = self.start_upstream("users")
        cp = self.start_cp()
        path = os.path.join(self.tempdir(), "api.yaml")
        with open(path, "w") as f:
            f.write("openapi: 3.0.1\ninfo: {title: t, version: '1'}\n"
                    "x-sluice-listen: 127.0.0.1:0\npaths:\n  /a/{id}:\n    get:\n"
                    "      x-amazon-apigateway-integration:\n        type: http_proxy\n"
                    "        connectionType: VPC_LINK\n"
                    "        uri: http://127.0.0.1:%d/b/{id}\n" % up.port)
        r = cp.ctl("validate", "-f", path)
        self.assertIn("api.yaml:9: warning: paths./a/{id}.get.x-amazon-apigateway-integration."
                      "connectionType: VPC_LINK", r.stderr)
        r = cp.ctl("diff", "-f", path, "--group", "g", check=False)
        self.assertIn("Listener", r.stdout)
        cp.ctl("apply", "-f", path, "--group", "g")
        dp = self.start_dp(cp, "n1", "g")
        cp.wait_in_sync("n1")
        resp = request(dp.listener_port("openapi"), "GET", "/a/7")
        self.assertStatus(resp, 200)
        self.assertEqual(echo(resp)["path"], "/b/7")
        # A broken spec is refused with its line, nothing applied.
        with open(path, "a") as f:
            f.write("    post: {x-amazon-apigateway-integration: {type: aws_proxy}}\n")
        r = cp.ctl("apply", "-f", path, "--group", "g", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("api.yaml:11: error: paths./a/{id}.post.x-amazon-apigateway-integration.type:"
                      " integration type aws_proxy", r.stderr)


class OpenApiBrokenSpecTest(SluiceTestCase):
    SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config_import",
                        "testdata", "seed.openapi.yaml")

    def seed(self):
        srcdir = os.environ.get("TEST_SRCDIR")
        path = (os.path.join(srcdir, "sluice", "test", "config_import", "testdata",
                             "seed.openapi.yaml") if srcdir else self.SEED)
        with open(path) as f:
            return f.read()

    def test_duplicate_key_refused_with_its_line_and_lenient_converts(self):
        tmp = self.tempdir()
        strict = convert(tmp, self.seed())
        self.assertEqual(strict.returncode, 1, strict.stderr)
        self.assertEqual(strict.stdout, "")
        self.assertIn(':34: error: components.securitySchemes.cognito.type: duplicate key "type" '
                      '(first at line 31)', strict.stderr)
        lenient = convert(tmp, self.seed(), "--lenient")
        self.assertEqual(lenient.returncode, 0, lenient.stderr)
        self.assertIn(":34: warning:", lenient.stderr)
        self.assertIn("the last value is used", lenient.stderr)
        self.assertIn("issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
                      lenient.stdout)

    def test_unsupported_integration_named(self):
        text = ("openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n"
                "      x-amazon-apigateway-integration:\n        type: aws_proxy\n"
                "        uri: arn:aws:lambda:fn\n")
        res = convert(self.tempdir(), text)
        self.assertEqual(res.returncode, 1)
        self.assertIn("api.yaml:7: error: paths./a.get.x-amazon-apigateway-integration.type: "
                      "integration type aws_proxy", res.stderr)


if __name__ == "__main__":
    main()
