"""Process lifecycle and configuration: `--validate` on good and bad bootstraps, YAML input,
CLI flags, the embedded default config, and graceful drain on SIGTERM / POST /quitquitquit.

Run by hand: SLUICE_BIN=/work/main/bazel-bin/source/exe/sluice \
    /usr/bin/python3 test/integration/lifecycle_test.py
"""

import copy
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import (bootstrap, cluster, connect_refused, echo, listener, proxy_config,
                     route_table, run_validate, vhost)


def good_config():
    return bootstrap(
        [listener("public", "main", limits={"request_headers_timeout": "5s",
                                             "max_request_body_bytes": 1048576})],
        [route_table("main", [vhost("all", ["*"], [
            {"name": "direct", "match": {"path": "/direct"},
             "direct_response": {"status": 200, "body": "hi"}},
            {"name": "r", "match": {"prefix": "/"},
             "route": {"cluster": "backend", "timeout": "2s"}}])])],
        [cluster("backend", [{"address": "127.0.0.1", "port": 9, "weight": 3}],
                 lb_policy="LEAST_REQUEST", connect_timeout="250ms")],
        drain_timeout="3s")


# The page the embedded default configuration answers with (docs/configuration.md).
DEFAULT_PAGE = """\
Sluice is running on its embedded default configuration.

This listener only answers with this text. To proxy traffic, write a bootstrap file
(see docs/configuration.md) and start:  sluice -c bootstrap.yaml

Admin: http://127.0.0.1:9901/  (/ready, /stats, /stats/prometheus, /config_dump, /clusters)
"""


class ValidateBase(harness.SluiceTestCase):

    def assertValid(self, cfg, **kw):
        p = run_validate(cfg, **kw)
        self.assertEqual(p.returncode, 0, "valid config refused:\nstdout: %s\nstderr: %s"
                         % (p.stdout, p.stderr))
        self.assertEqual(p.stdout.strip(), "OK")

    def assertInvalid(self, cfg, *needles, **kw):
        p = run_validate(cfg, **kw)
        self.assertEqual(p.returncode, 1, "invalid config accepted (or crashed):\nexit %s\n"
                         "stdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr))
        self.assertNotEqual(p.stdout.strip(), "OK")
        for n in needles:
            self.assertIn(n, p.stderr, "error message should name %r:\n%s" % (n, p.stderr))
        return p.stderr


class ValidateTest(ValidateBase):
    """`--validate`: OK + exit 0, or errors naming the field on stderr + exit 1."""

    def test_good_json(self):
        self.assertValid(good_config())

    def test_good_yaml(self):
        self.assertValid(YAML_CONFIG % {"port": 9})

    def test_validate_does_not_bind(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["address"]["port"] = busy.getsockname()[1]
        cfg["admin"] = {"address": "127.0.0.1", "port": busy.getsockname()[1]}
        self.assertValid(cfg)

    def test_duplicate_listener_address(self):
        cfg = good_config()
        second = json.loads(json.dumps(cfg["static_resources"]["listeners"][0]))
        second["name"] = "second"
        cfg["static_resources"]["listeners"][0]["address"]["port"] = 18999
        second["address"]["port"] = 18999
        cfg["static_resources"]["listeners"].append(second)
        self.assertInvalid(cfg, "static_resources.listeners[1].address", "same address")

    def test_unwritable_access_log(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["access_log"] = {
            "path": "/nonexistent-dir/sub/access.log"}
        self.assertInvalid(cfg, "static_resources.listeners[0].access_log.path")

    def test_domain_with_port(self):
        cfg = good_config()
        cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["domains"] = [
            "api.example.com:8080"]
        self.assertInvalid(cfg, "domains[0]", "port")

    def test_unknown_top_level_field(self):
        cfg = good_config()
        cfg["bogus_field"] = 1
        self.assertInvalid(cfg, "bogus_field")

    def test_unknown_nested_field(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["endpoints"][0]["wieght"] = 5
        self.assertInvalid(cfg, "wieght")

    def test_unknown_field_in_yaml(self):
        text = YAML_CONFIG % {"port": 9}
        text = text.replace("      lb_policy: ROUND_ROBIN\n",
                            "      lb_policy: ROUND_ROBIN\n      lb_polcy_typo: 1\n")
        self.assertIn("lb_polcy_typo", text)
        self.assertInvalid(text, "lb_polcy_typo")

    def test_dangling_cluster_reference(self):
        cfg = good_config()
        cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"][1]["route"][
            "cluster"] = "nope"
        self.assertInvalid(cfg, "static_resources.route_tables[0].virtual_hosts[0].routes[1]",
                           "cluster", "nope")

    def test_dangling_weighted_cluster_reference(self):
        cfg = good_config()
        cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"][1]["route"] = {
            "weighted_clusters": {"clusters": [{"name": "backend", "weight": 1},
                                               {"name": "ghost", "weight": 1}]}}
        self.assertInvalid(cfg, "ghost")

    def test_dangling_route_table_reference(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["route_table"] = "x"
        self.assertInvalid(cfg, 'static_resources.listeners[0].route_table',
                           'unknown route table "x"')

    def test_all_errors_reported(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["route_table"] = "x"
        cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"][1]["route"][
            "cluster"] = "nope"
        self.assertInvalid(cfg, "route_table", "nope")

    def test_bad_duration(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["connect_timeout"] = "5 parsecs"
        self.assertInvalid(cfg, "connect_timeout")

    def test_bad_enum(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["lb_policy"] = "ROUND_ROBIN_PLEASE"
        self.assertInvalid(cfg, "lb_policy")

    def test_wrong_type(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["endpoints"][0]["port"] = "not-a-port"
        self.assertInvalid(cfg, "port")

    def test_yaml_syntax_error(self):
        self.assertInvalid("static_resources: {listeners: [\n  - broken: [\n")

    def test_missing_file(self):
        p = subprocess.run([harness.sluice_binary(), "--validate", "-c",
                            "/nonexistent/sluice-bootstrap.yaml"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p)
        self.assertNotEqual(p.stdout.strip(), "OK")


class ValidateSemanticsTest(ValidateBase):
    """Constraints stated in the proto comments (required fields, ranges, exclusivity)."""

    def routes(self, cfg):
        return cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"]

    def test_listener_without_route_table(self):
        cfg = good_config()
        del cfg["static_resources"]["listeners"][0]["route_table"]
        self.assertInvalid(cfg, "route_table")

    def test_cluster_without_endpoints(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["endpoints"] = []
        self.assertInvalid(cfg, "endpoints")

    def test_endpoint_weight_out_of_range(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"][0]["endpoints"][0]["weight"] = 10001
        self.assertInvalid(cfg, "weight")

    def test_duplicate_cluster_names(self):
        cfg = good_config()
        cfg["static_resources"]["clusters"].append(
            copy.deepcopy(cfg["static_resources"]["clusters"][0]))
        self.assertInvalid(cfg, "backend")

    def test_duplicate_listener_names(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"].append(
            copy.deepcopy(cfg["static_resources"]["listeners"][0]))
        self.assertInvalid(cfg, "public")

    def test_route_with_two_actions(self):
        cfg = good_config()
        self.routes(cfg)[0]["redirect"] = {"host_redirect": "x"}
        self.assertInvalid(cfg, "routes[0]")

    def test_route_without_action(self):
        cfg = good_config()
        del self.routes(cfg)[0]["direct_response"]
        self.assertInvalid(cfg, "routes[0]")

    def test_match_with_prefix_and_path(self):
        cfg = good_config()
        self.routes(cfg)[0]["match"]["prefix"] = "/x"
        self.assertInvalid(cfg, "routes[0].match")

    def test_invalid_regex(self):
        cfg = good_config()
        self.routes(cfg)[0]["match"] = {"regex": "/items/([0-9]+"}
        self.assertInvalid(cfg, "regex")

    def test_direct_response_status_out_of_range(self):
        cfg = good_config()
        self.routes(cfg)[0]["direct_response"]["status"] = 600
        self.assertInvalid(cfg, "status")

    def test_redirect_bad_code(self):
        cfg = good_config()
        self.routes(cfg)[0] = {"match": {"prefix": "/r"},
                               "redirect": {"host_redirect": "x", "response_code": 200}}
        self.assertInvalid(cfg, "response_code")

    def test_redirect_path_and_prefix_rewrite(self):
        cfg = good_config()
        self.routes(cfg)[0] = {"match": {"prefix": "/r"},
                               "redirect": {"path_redirect": "/a", "prefix_rewrite": "/b"}}
        self.assertInvalid(cfg, "routes[0].redirect")

    def test_weighted_cluster_zero_weight(self):
        cfg = good_config()
        self.routes(cfg)[1]["route"] = {"weighted_clusters": {"clusters": [
            {"name": "backend", "weight": 0}]}}
        self.assertInvalid(cfg, "weight")

    def test_unknown_filter(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["http_filters"] = [{"name": "no_such_filter"}]
        self.assertInvalid(cfg, "http_filters")

    def test_explicit_router_filter_is_valid(self):
        cfg = good_config()
        cfg["static_resources"]["listeners"][0]["http_filters"] = [{"name": "router"}]
        self.assertValid(cfg)


YAML_CONFIG = """\
# Sluice bootstrap, YAML block style.
static_resources:
  listeners:
    - name: public
      address:
        host: 127.0.0.1
        port: 0
      route_table: main
      limits:
        request_headers_timeout: 5s
        max_headers_count: 50
  route_tables:
    - name: main
      virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
            - name: direct
              match: {prefix: /direct}
              direct_response:
                status: 200
                body: "from yaml"
            - match:
                prefix: /
              route:
                cluster: backend
                timeout: 2s
  clusters:
    - name: backend
      lb_policy: ROUND_ROBIN
      connect_timeout: 250ms
      endpoints:
        - address: 127.0.0.1
          port: %(port)d
          weight: 2
drain_timeout: 2s
"""


class LifecycleTest(harness.SluiceTestCase):

    def setUp(self):
        self.up = self.start_upstream("u1")

    def test_yaml_bootstrap(self):
        s = self.start_sluice(YAML_CONFIG % {"port": self.up.port})
        port = s.listener_port("public")
        r = harness.request(port, "GET", "/direct")
        self.assertEqual((r.status, r.body), (200, b"from yaml"))
        r = harness.request(port, "GET", "/proxied")
        self.assertEqual(echo(r)["path"], "/proxied")

    def test_admin_address_path_flag(self):
        cfg = proxy_config([self.up])
        cfg["admin"] = {"address": "127.0.0.1", "port": 0}  # no address_path in the config
        s = self.start_sluice(cfg)
        self.assertIn("--admin-address-path", s.cmd)
        with open(s.address_path) as f:
            self.assertEqual(f.read().strip(), "127.0.0.1:%d" % s.admin_port)

    def _log_lines_at(self, level):
        """Runs sluice at --log-level `level` while it has something to log at every level:
        debug (the control plane is unreachable: "unavailable ... retrying"), info (startup:
        the listener line), warn (an endpoint fails its health check) and error (a SIGHUP
        reload of an invalid file). Waits for each event through the admin API (the log line is
        written on the main thread before the admin server, on that thread too, can show it),
        then returns the levels that appear on stderr."""
        dead = self.dead_port()
        cfg = proxy_config([self.up])
        cfg["static_resources"]["clusters"].append(harness.cluster(
            "checked", [dead.port], health_check={"http_path": "/health", "interval": "50ms",
                                                  "timeout": "50ms"}))
        cfg["control_plane"] = {"address": "127.0.0.1:%d" % dead.port,
                                "retry_interval": "50ms", "max_retry_interval": "100ms",
                                "initial_fetch_timeout": "100ms"}
        s = self.start_sluice(cfg, extra_args=["--log-level", level])
        self.assertStatus(harness.request(s.listener_port("public")), 200)
        s.wait_stat("control_plane.stream_closed", lambda v: v >= 2)

        def unhealthy():
            for c in s.admin_json("/clusters")["clusters"]:
                if c["name"] == "checked":
                    return c["endpoints"][0]["health"] == "unhealthy"
            return False
        harness.wait_until(unhealthy, 10, message="endpoint of cluster checked unhealthy")
        with open(s.config_path, "w") as f:
            f.write("{not a config")
        s.signal(signal.SIGHUP)
        s.wait_stat("server.config_reload_failed", lambda v: v == 1)
        err = s.stderr()
        seen = {lvl for lvl in ("debug", "info", "warning", "error")
                if re.search(r"^\[[^\]]+\] \[%s\] " % lvl, err, re.M)}
        # The lines that show each level really logged its event (not some other line).
        expect = {
            "debug": r"\[debug\] control plane 127\.0\.0\.1:%d: unavailable" % dead.port,
            "info": r"\[info\] listener \"public\" on http://",
            "warning": r"\[warning\] cluster \"checked\" endpoint 127\.0\.0\.1:%d: unhealthy"
                       % dead.port,
            "error": r"\[error\] SIGHUP: config not reloaded",
        }
        for lvl in seen:
            self.assertRegex(err, expect[lvl], "a %s line, but not the expected one" % lvl)
        return seen, err

    def test_log_level_flag(self):
        # spdlog names the levels debug, info, warning, error on each line.
        for level, shown in (("debug", {"debug", "info", "warning", "error"}),
                             ("info", {"info", "warning", "error"}),
                             ("warn", {"warning", "error"}),
                             ("error", {"error"})):
            with self.subTest(level=level):
                seen, err = self._log_lines_at(level)
                self.assertEqual(shown, seen, "--log-level %s; stderr:\n%s"
                                 % (level, err[-4000:]))

    def test_unknown_log_level_exits_2(self):
        p = subprocess.run([harness.sluice_binary(), "--log-level", "verbose"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=harness.scaled(30))
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("sluice: unknown --log-level verbose "
                      "(trace|debug|info|warn|error|off)", p.stderr)

    def test_concurrency_flag(self):
        s = self.start_sluice(proxy_config([self.up]), concurrency=2)
        port = s.listener_port("public")
        errors = []

        def client(i):
            try:
                with harness.Conn(port) as c:
                    for j in range(10):
                        r = c.request("GET", "/c/%d/%d" % (i, j))
                        if r.status != 200 or echo(r)["path"] != "/c/%d/%d" % (i, j):
                            errors.append(r)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(harness.scaled(30))
        self.assertEqual(errors, [])
        s.wait_stat("downstream_rq_total", lambda v: v == 160)

    def test_bad_config_exits_1(self):
        cfg = proxy_config([self.up])
        cfg["static_resources"]["listeners"][0]["route_table"] = "x"
        d = self.tempdir()
        path = os.path.join(d, "bad.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([harness.sluice_binary(), "-c", path], capture_output=True, text=True,
                           timeout=harness.scaled(30))
        self.assertEqual(p.returncode, 1, p)
        self.assertIn('unknown route table "x"', p.stderr)

    def test_port_held_by_another_process_is_an_error(self):
        # SO_REUSEPORT must not let sluice silently share (and split) someone else's port.
        busy = socket.socket()
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        cfg = proxy_config([self.up])
        cfg["static_resources"]["listeners"][0]["address"]["port"] = busy.getsockname()[1]
        d = self.tempdir()
        path = os.path.join(d, "busy.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([harness.sluice_binary(), "-c", path], capture_output=True, text=True,
                           timeout=harness.scaled(30))
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("Address already in use", p.stderr)

    def test_sighup_reloads_config_and_inflight_requests_keep_theirs(self):
        up2 = self.start_upstream("u2")
        s = self.start_sluice(proxy_config([self.up]))
        port = s.listener_port("public")
        # A slow request in flight on the first config.
        slow = harness.Conn(port)
        slow.send_request("GET", "/slow", headers={"x-sleep-ms": "800"})
        self.up.wait_for_requests(1)
        # New config: the cluster points at u2, and a new direct-response route.
        cfg = proxy_config([up2])
        routes = cfg["static_resources"]["route_tables"][0]["virtual_hosts"][0]["routes"]
        routes.insert(0, {"name": "new", "match": {"path": "/new"},
                          "direct_response": {"status": 200, "body": "v2"}})
        cfg["admin"] = s.config["admin"]
        with open(s.config_path, "w") as f:
            json.dump(cfg, f)
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_stat("server.config_reload", lambda v: v == 1)
        r = harness.request(port, "GET", "/new")
        self.assertEqual((r.status, r.body), (200, b"v2"))
        r = harness.request(port, "GET", "/other")
        self.assertEqual(r.header("x-upstream"), "u2", r)
        # The request that started before the reload finishes on the old config (u1).
        r = slow.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-upstream"), "u1", r)
        dump = s.admin_json("/config_dump")
        self.assertEqual(dump["version_info"], "1")

    def test_sighup_with_a_bad_file_keeps_the_running_config(self):
        s = self.start_sluice(proxy_config([self.up]))
        port = s.listener_port("public")
        with open(s.config_path, "w") as f:
            f.write('{"static_resources": {"bogus_field": 1}}')
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_stat("server.config_reload_failed", lambda v: v == 1)
        r = harness.request(port, "GET", "/still-here")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-upstream"), "u1", r)
        self.assertIn("bogus_field", s.stderr())
        self.assertEqual(s.terminate(), 0)

    def test_sigterm_when_idle_exits_0(self):
        s = self.start_sluice(proxy_config([self.up]))
        t0 = time.monotonic()
        self.assertEqual(s.terminate(), 0)
        self.assertLess(time.monotonic() - t0, harness.scaled(3), "idle drain should be quick")

    def _start_inflight(self, port, sleep_ms, path="/slow"):
        result = {}

        def run():
            try:
                result["r"] = harness.request(port, "GET", path,
                                              headers={"x-sleep-ms": str(sleep_ms)}, timeout=30)
            except Exception as e:  # noqa: BLE001
                result["e"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, result

    def test_sigterm_drains_in_flight_requests(self):
        s = self.start_sluice(proxy_config([self.up]))
        port = s.listener_port("public")
        idle = self.conn(port)
        self.assertStatus(idle.request("GET", "/warm"), 200)
        t, result = self._start_inflight(port, 2000)
        self.up.wait_for_requests(2)
        s.signal(signal.SIGTERM)
        t_sig = time.monotonic()
        harness.wait_until(lambda: s.admin_get("/ready")[0] == 503, 2.0,
                           message="/ready to report 503 while draining")
        status, _, body = s.admin_get("/ready")
        if status == 503:
            self.assertEqual(body, b"DRAINING\n")
        harness.wait_until(lambda: connect_refused(port), 2.0,
                           message="listener to refuse new connections after SIGTERM")
        self.assertClosed(idle, timeout=10, msg="idle keep-alive connection during drain")
        t.join(harness.scaled(20))
        self.assertNotIn("e", result, "in-flight request failed during drain: %r"
                         % result.get("e"))
        r = result["r"]
        self.assertStatus(r, 200, "in-flight request must complete during drain")
        self.assertEqual(echo(r)["path"], "/slow")
        rc = s.wait(15)
        self.assertEqual(rc, 0, "exit code after drain")
        self.assertLess(time.monotonic() - t_sig, harness.scaled(8))

    def test_quitquitquit_drains_and_exits(self):
        s = self.start_sluice(proxy_config([self.up]))
        port = s.listener_port("public")
        t, result = self._start_inflight(port, 1000)
        self.up.wait_for_requests(1)
        status, _, body = s.admin("POST", "/quitquitquit")
        self.assertEqual((status, body), (200, b"OK\n"))
        harness.wait_until(lambda: connect_refused(port), 2.0,
                           message="listener to refuse new connections after quitquitquit")
        t.join(harness.scaled(20))
        self.assertIn("r", result, "in-flight request failed during drain: %r" % result)
        self.assertStatus(result["r"], 200, "in-flight request must complete during drain")
        self.assertEqual(s.wait(15), 0)

    def test_drain_timeout_bounds_shutdown(self):
        s = self.start_sluice(proxy_config([self.up], drain_timeout="1s"))
        port = s.listener_port("public")
        t, result = self._start_inflight(port, 15000)
        self.up.wait_for_requests(1)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        rc = s.wait(10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(elapsed, 0.9, "exited before drain_timeout with a request "
                                "in flight")
        self.assertLess(elapsed, harness.scaled(4), "drain_timeout 1s not honoured")
        t.join(harness.scaled(10))
        r = result.get("r")
        self.assertFalse(r is not None and r.status == 200,
                         "the 15s request cannot have completed: %r" % r)


class DefaultConfigTest(harness.SluiceTestCase):

    def test_no_config_uses_embedded_default(self):
        for port in (8080, 9901):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                self.skipTest("port %d is busy; the embedded default needs 8080 and 9901"
                              % port)
            finally:
                s.close()
        d = self.tempdir()
        err = open(os.path.join(d, "stderr"), "wb")
        self.addCleanup(err.close)
        p = subprocess.Popen([harness.sluice_binary(), "--concurrency", "1"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             preexec_fn=harness._pdeathsig)

        def cleanup():
            if p.poll() is None:
                p.kill()
                p.wait()
        self.addCleanup(cleanup)

        def ready():
            if p.poll() is not None:
                return True  # exited: reported below
            return harness.admin_request("127.0.0.1", 9901, "GET", "/ready", timeout=1)[0] == 200
        harness.wait_until(ready, 20, message="default admin on 127.0.0.1:9901")
        err.flush()
        with open(os.path.join(d, "stderr"), errors="replace") as f:
            self.assertIsNone(p.poll(), "sluice without -c exited with %s:\n%s"
                              % (p.returncode, f.read()[-4000:]))
        # docs/configuration.md, "The embedded default configuration": GET /healthz -> "ok",
        # every other request -> the text page.
        r = harness.request(8080, "GET", "/")
        self.assertEqual((r.status, r.header("content-type")), (200, "text/plain"), r)
        self.assertEqual(r.body.decode(), DEFAULT_PAGE)
        r = harness.request(8080, "POST", "/some/other/path?x=1", body="ignored")
        self.assertEqual((r.status, r.body.decode()), (200, DEFAULT_PAGE), r)
        r = harness.request(8080, "GET", "/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"), r)
        listeners = harness.admin_request("127.0.0.1", 9901, "GET", "/listeners")
        self.assertIn(b"127.0.0.1:8080", listeners[2])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(15)), 0)


if __name__ == "__main__":
    harness.main()
