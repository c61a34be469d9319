"""Per-route filter config and shared request state through the real binary.

  * the listener's `http_filters[].config` sets a filter's default for every route (auth
    `policy`), a virtual host's `filter_config` overrides it for its routes, a route's own
    `filter_config` (or the `auth:` / `rate_limit:` shorthands) overrides both, and
    `{disabled: true}` switches a filter off on one route;
  * the consumer auth identifies reaches rate_limit through the stream's filter state:
    limit_by CONSUMER counts each consumer apart;
  * a listener that serves a route configuring a filter it lacks is refused, for any filter.
"""

from harness import (Conn, SluiceTestCase, bootstrap, cluster, echo, listener, main, route,
                     route_table, run_validate, vhost)


def config(upstream):
    b = bootstrap(
        [listener(http_filters=[{"name": "auth", "config": {"policy": "keys"}},
                                {"name": "rate_limit"}, {"name": "router"}])],
        [route_table("main", [
            {"name": "open", "domains": ["open.example"], "filter_config": {
                "auth": {"disabled": True}},
             "routes": [route(prefix="/", cluster="up", name="open-all")]},
            {"name": "api", "domains": ["*"],
             "filter_config": {"rate_limit": {"policy": "two-per-consumer"}},
             "routes": [
                 route(prefix="/public", cluster="up", name="public",
                       filter_config={"auth": {"disabled": True},
                                      "rate_limit": {"disabled": True}}),
                 route(prefix="/strict", cluster="up", name="strict", auth="admins",
                       rate_limit="one-per-consumer"),
                 route(prefix="/", cluster="up", name="default"),
             ]},
        ])],
        [cluster("up", [upstream])])
    b["static_resources"]["auth_policies"] = [
        {"name": "keys", "key_auth": {},
         "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]},
                       {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]}]},
        {"name": "admins", "key_auth": {},
         "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]},
    ]
    b["static_resources"]["rate_limit_policies"] = [
        {"name": "two-per-consumer", "minute": 2, "limit_by": "CONSUMER"},
        {"name": "one-per-consumer", "minute": 1, "limit_by": "CONSUMER"},
    ]
    return b


class FilterConfigTest(SluiceTestCase):
    def setUp(self):
        self.up = self.start_upstream()
        self.sluice = self.start_sluice(config(self.up))
        self.port = self.sluice.listener_port()

    def get(self, path, key=None, host=None):
        headers = {"apikey": key} if key else {}
        with Conn(self.port) as c:
            if host:
                return c.request("GET", path, headers=headers, host=host)
            return c.request("GET", path, headers=headers)

    def test_most_specific_config_wins(self):
        # The listener's default policy: no key, no entry.
        self.assertEqual(self.get("/x").status, 401)
        self.assertEqual(echo(self.get("/x", "alice-key"))["hdr"]["x-consumer-username"], "alice")
        # A virtual host switches auth off for its routes.
        self.assertEqual(self.get("/x", host="open.example").status, 200)
        # A route switches both filters off: no key, no limit.
        for _ in range(5):
            self.assertEqual(self.get("/public/x").status, 200)
        # A route's shorthand names another policy (bob is not an admin).
        self.assertEqual(self.get("/strict/x", "bob-key").status, 401)
        self.assertEqual(self.get("/strict/x", "alice-key").status, 200)

    def test_consumer_reaches_rate_limit_through_filter_state(self):
        # The virtual host's policy: 2 a minute per consumer, counted apart.
        self.assertEqual(self.get("/a", "alice-key").status, 200)
        self.assertEqual(self.get("/a", "alice-key").status, 200)
        limited = self.get("/a", "alice-key")
        self.assertEqual(limited.status, 429)
        self.assertEqual(self.get("/a", "bob-key").status, 200)
        # The route's own policy (1 a minute) has counters of its own.
        self.assertEqual(self.get("/strict/a", "alice-key").status, 200)
        self.assertEqual(self.get("/strict/a", "alice-key").status, 429)


class ValidationTest(SluiceTestCase):
    def test_route_filter_needs_the_filter_on_the_listener(self):
        b = config(self.dead_port())
        b["static_resources"]["listeners"][0]["http_filters"] = [
            {"name": "auth", "config": {"policy": "keys"}}, {"name": "router"}]
        p = run_validate(b)
        self.assertEqual(p.returncode, 1)
        self.assertIn('virtual host "api" (static_resources.route_tables[0].virtual_hosts[1]) '
                      'requires rate limit policy "two-per-consumer" but listener "public" has '
                      'no rate_limit filter', p.stderr)
        self.assertIn('route "strict" (static_resources.route_tables[0].virtual_hosts[1].'
                      'routes[1]) requires rate limit policy "one-per-consumer"', p.stderr)

    def test_per_route_config_is_validated_by_its_filter(self):
        b = config(self.dead_port())
        routes = b["static_resources"]["route_tables"][0]["virtual_hosts"][1]["routes"]
        routes[0]["filter_config"] = {"auth": {"policy": "nope", "x": 1},
                                      "rate_limit": {"policy": "nope"}, "nope_filter": {}}
        p = run_validate(b)
        self.assertEqual(p.returncode, 1)
        r = "static_resources.route_tables[0].virtual_hosts[1].routes[0].filter_config"
        self.assertIn(r + ".auth.x: unknown field", p.stderr)
        self.assertIn(r + '.rate_limit.policy: unknown rate limit policy "nope"', p.stderr)
        self.assertIn(r + '.nope_filter: unknown filter "nope_filter"', p.stderr)


if __name__ == "__main__":
    main()
