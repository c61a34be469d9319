"""The `ip_restriction` and `acl` filters (Kong's ip-restriction and acl plugins) through the
real binary, in front of the harness's echo upstream.

  * ip_restriction: allow and deny lists of IPs and CIDRs, deny checked first, the client's
    TCP address (never X-Forwarded-For), status and message, per-route and per-virtual-host
    restrictions replacing the listener's, `disabled`, IPv6 clients;
  * acl: key-auth consumers with groups, allow and deny lists, 401 without a consumer,
    X-Consumer-Groups sent upstream (a client's own never passes) unless hide_groups_header,
    per-route ACLs;
  * config errors at their field (`sluice --validate`).

Run by hand: SLUICE_BIN=$PWD/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/access_control_test.py
"""

import socket

from harness import (Conn, SluiceTestCase, bootstrap, cluster, echo, listener, main, route,
                     route_table, run_validate, vhost)


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class IpRestrictionTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        restricted = [
            route(prefix="/open", cluster="up", name="open",
                  filter_config={"ip_restriction": {"disabled": True}}),
            route(prefix="/deny-local", cluster="up", name="deny-local",
                  filter_config={"ip_restriction": {"deny": ["127.0.0.0/8"]}}),
            route(prefix="/allow-other", cluster="up", name="allow-other",
                  filter_config={"ip_restriction": {"allow": ["10.0.0.0/8", "2001:db8::/32"],
                                                    "status": 401, "message": "go away"}}),
            route(prefix="/deny-wins", cluster="up", name="deny-wins",
                  filter_config={"ip_restriction": {"allow": ["127.0.0.1"],
                                                    "deny": ["127.0.0.1/32"]}}),
            route(prefix="/", cluster="up", name="default"),
        ]
        listeners = [listener(http_filters=[
            {"name": "ip_restriction", "config": {"allow": ["127.0.0.1", "::1"]}},
            {"name": "router"}])]
        cls.v6 = ipv6_loopback()
        if cls.v6:
            listeners.append(listener(name="v6", address={"host": "::1", "port": 0},
                                      http_filters=[
                                          {"name": "ip_restriction",
                                           "config": {"deny": ["::1/128"]}},
                                          {"name": "router"}]))
        b = bootstrap(
            listeners,
            [route_table("main", [
                {"name": "strict", "domains": ["strict.example"],
                 "filter_config": {"ip_restriction": {"allow": ["192.0.2.0/24"]}},
                 "routes": [route(prefix="/", cluster="up")]},
                vhost("all", ["*"], restricted)])],
            [cluster("up", [cls.up])])
        cls.sluice = cls.start_class_sluice(b)
        cls.port = cls.sluice.listener_port()

    def get(self, path, host="api.example", headers=(), port=None, addr="127.0.0.1"):
        with Conn(port or self.port, host=addr) as c:
            return c.request("GET", path, host=host, headers=list(headers))

    def test_listener_allow_list(self):
        before = self.up.request_count()
        r = self.get("/x")
        self.assertStatus(r, 200)
        self.assertEqual(self.up.request_count(), before + 1)

    def test_refusals(self):
        before = self.up.request_count()
        r = self.get("/deny-local/x")
        self.assertLocalReply(r, 403, "Your IP address is not allowed")
        # X-Forwarded-For is the client's to write: never trusted.
        r = self.get("/allow-other/x", headers=[("X-Forwarded-For", "10.1.1.1")])
        self.assertLocalReply(r, 401, "go away")
        # deny is checked first.
        self.assertLocalReply(self.get("/deny-wins/x"), 403)
        # A virtual host's restriction replaces the listener's.
        self.assertLocalReply(self.get("/x", host="strict.example"), 403)
        self.assertEqual(self.up.request_count(), before, "a refused request reached upstream")

    def test_disabled_on_a_route(self):
        self.assertStatus(self.get("/open/x"), 200)

    def test_ipv6_client(self):
        if not self.v6:
            self.skipTest("no IPv6 loopback")
        r = self.get("/x", port=self.sluice.listener_port("v6"), addr="::1")
        self.assertLocalReply(r, 403, "Your IP address is not allowed")

    def test_config_errors(self):
        def check(config, field, message, per_route=False):
            fc = [{"name": "ip_restriction", "config": config}, {"name": "router"}]
            routes = [route(prefix="/", cluster="up")]
            if per_route:
                fc = [{"name": "ip_restriction", "config": {"deny": ["10.0.0.0/8"]}},
                      {"name": "router"}]
                routes = [route(prefix="/", cluster="up", name="r",
                                filter_config={"ip_restriction": config})]
            b = bootstrap([listener(http_filters=fc)],
                          [route_table("main", [vhost("all", ["*"], routes)])],
                          [cluster("up", [self.up])])
            res = run_validate(b)
            out = res.stdout + res.stderr
            self.assertNotEqual(res.returncode, 0, out)
            self.assertIn("%s: %s" % (field, message), out)
        fpath = "static_resources.listeners[0].http_filters[0].config"
        check({"allow": ["10.0.0.0/33"]}, fpath + ".allow[0]",
              '"10.0.0.0/33": prefix length 33 is over 32')
        check({"deny": ["example.com"]}, fpath + ".deny[0]",
              '"example.com" is not an IP address or CIDR')
        check({}, fpath, "at least one of allow and deny is required")
        check({"deny": ["::1"], "status": 99}, fpath + ".status", "must be 100..599")
        check({"disabled": True, "deny": ["::1"]},
              "routes[0].filter_config.ip_restriction.disabled",
              "no other field may be set with disabled: true", per_route=True)


class AclTest(SluiceTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_class_upstream("up")
        routes = [
            route(prefix="/admin", cluster="up", name="admin", auth="keys",
                  filter_config={"acl": {"allow": ["admins"]}}),
            route(prefix="/partners", cluster="up", name="partners", auth="keys",
                  filter_config={"acl": {"deny": ["blocked"], "hide_groups_header": True}}),
            route(prefix="/noauth", cluster="up", name="noauth"),
            route(prefix="/", cluster="up", name="default", auth="keys"),
        ]
        b = bootstrap(
            [listener(http_filters=[{"name": "auth"},
                                    {"name": "acl", "config": {"deny": ["banned"]}},
                                    {"name": "router"}])],
            [route_table("main", [vhost("all", ["*"], routes)])],
            [cluster("up", [cls.up])])
        b["static_resources"]["auth_policies"] = [{
            "name": "keys", "key_auth": {},
            "consumers": [
                {"username": "root", "groups": ["admins", "staff"],
                 "keyauth_credentials": [{"key": "root-key"}]},
                {"username": "eve", "groups": ["blocked", "staff"],
                 "keyauth_credentials": [{"key": "eve-key"}]},
                {"username": "nobody", "keyauth_credentials": [{"key": "nobody-key"}]},
                {"username": "villain", "groups": ["banned"],
                 "keyauth_credentials": [{"key": "villain-key"}]},
            ]}]
        cls.sluice = cls.start_class_sluice(b)
        cls.port = cls.sluice.listener_port()

    def get(self, path, key=None, headers=()):
        h = list(headers)
        if key:
            h.append(("apikey", key))
        with Conn(self.port) as c:
            return c.request("GET", path, headers=h)

    def test_allow_list(self):
        e = echo(self.get("/admin/x", "root-key", [("X-Consumer-Groups", "admins")]))
        self.assertEqual(e["all"]("x-consumer-groups"), ["admins, staff"])
        for key in ("eve-key", "nobody-key"):
            r = self.get("/admin/x", key, [("X-Consumer-Groups", "admins")])
            self.assertLocalReply(r, 403, "You cannot consume this service")

    def test_deny_list_and_hidden_groups(self):
        e = echo(self.get("/partners/x", "root-key", [("X-Consumer-Groups", "forged")]))
        self.assertEqual(e["all"]("x-consumer-groups"), [], "hidden, and the client's removed")
        self.assertLocalReply(self.get("/partners/x", "eve-key"), 403)
        # A consumer without groups is in no deny list.
        self.assertStatus(self.get("/partners/x", "nobody-key"), 200)

    def test_listener_acl(self):
        self.assertLocalReply(self.get("/x", "villain-key"), 403, "You cannot consume this service")
        e = echo(self.get("/x", "nobody-key", [("X-Consumer-Groups", "admins")]))
        self.assertEqual(e["all"]("x-consumer-groups"), [], "no groups: no header")

    def test_without_a_consumer(self):
        # A route without auth: nobody identified, as Kong answers.
        self.assertLocalReply(self.get("/noauth/x"), 401, "Unauthorized")
        # Auth refuses a missing key before the ACL is consulted.
        self.assertLocalReply(self.get("/x"), 401)

    def test_config_errors(self):
        b = bootstrap([listener(http_filters=[{"name": "acl", "config": {"allow": ["a"],
                                                                          "deny": ["b"]}},
                                              {"name": "router"}])],
                      [route_table("main", [])], [])
        res = run_validate(b)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("static_resources.listeners[0].http_filters[0].config: exactly one of allow "
                      "and deny is required", res.stdout + res.stderr)
        b = bootstrap([listener()], [route_table("main", [])], [])
        b["static_resources"]["auth_policies"] = [{
            "name": "keys", "key_auth": {},
            "consumers": [{"username": "x", "groups": ["a,b"]}]}]
        res = run_validate(b)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("static_resources.auth_policies[0].consumers[0].groups[0]: must be a "
                      "non-empty header value without ','", res.stdout + res.stderr)


if __name__ == "__main__":
    main()
