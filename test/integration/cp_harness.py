"""Helpers for tests that run the control plane: `sluice-cp`, `sluicectl`, and data planes
configured over ADS. Stdlib only (the Python gRPC client tests use grpc_stubs.py).

Pieces:
  * ControlPlane  - runs sluice-cp on a fixed loopback port with its own config and state dirs
                    (kept across restart()/kill()+start()); ctl()/apply()/status()/node()/
                    wait_in_sync() drive it through sluicectl; write_group_file() edits the
                    config dir; wait_log() waits for a line in its stderr.
  * dp_bootstrap  - a data-plane bootstrap pointing at a ControlPlane (fast reconnects).
  * declared      - a declared config (static_resources keys) from upstreams and routes.
  * to_yaml       - a block-style YAML rendering of a declared config, for config-dir files.
  * direct_config - a declared config answering one path itself (no upstreams).
  * CpTestCase    - SluiceTestCase plus start_cp()/start_dp() with cleanups, the sluice-cp
                    stderr printed when a test fails, and wait_served() which measures how long
                    a change takes to be served through a proxy.

Environment (set by run_py.sh under bazel):
  SLUICE_CP_BIN     path of sluice-cp (default: <repo>/bazel-bin/source/control_plane/sluice-cp)
  SLUICECTL_BIN     path of sluicectl (default: <repo>/bazel-bin/source/cli/sluicectl)
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import harness
from harness import REPO_ROOT, make_tempdir, scaled, wait_until


def cp_binary():
    return os.environ.get("SLUICE_CP_BIN") or os.path.join(
        REPO_ROOT, "bazel-bin", "source", "control_plane", "sluice-cp")


def ctl_binary():
    return os.environ.get("SLUICECTL_BIN") or os.path.join(
        REPO_ROOT, "bazel-bin", "source", "cli", "sluicectl")


free_port = harness.free_port


class ControlPlane:
    """Runs sluice-cp with its own config and state dirs (kept across restart()), on a fixed
    loopback port so data planes can reconnect to the same address after a restart."""

    def __init__(self, port=None, config_dir=None, state_dir=None, extra_args=(),
                 poll_interval="100ms", ctl_args=()):
        self.tmpdir = make_tempdir("sluice-cp-")
        self.config_dir = config_dir or os.path.join(self.tmpdir, "config")
        self.state_dir = state_dir or os.path.join(self.tmpdir, "state")
        os.makedirs(self.config_dir, exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        self.port = port or free_port()
        self.extra_args = list(extra_args) + ["--poll-interval", poll_interval]
        # Global flags of every ctl() call (e.g. the --tls-* flags of a TLS sluice-cp).
        self.ctl_args = list(ctl_args)
        self.proc = None
        self.logs = []
        self._stderr_cache = None
        with _CPS_LOCK:
            _CPS.append(self)
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=15.0):
        addr_path = os.path.join(self.tmpdir, "address")
        if os.path.exists(addr_path):
            os.unlink(addr_path)
        self.stderr_path = os.path.join(self.tmpdir, "stderr-%d.log" % len(self.logs))
        self.logs.append(self.stderr_path)
        self._stderr = open(self.stderr_path, "wb")
        self.cmd = [cp_binary(), "--listen", self.address, "--address-path", addr_path,
                    "--config-dir", self.config_dir, "--state-dir", self.state_dir] \
            + self.extra_args
        deadline = time.monotonic() + scaled(timeout)
        while True:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=self._stderr, stderr=self._stderr,
                                         preexec_fn=harness._pdeathsig)
            try:
                wait_until(lambda: os.path.exists(addr_path) or self.proc.poll() is not None,
                           timeout=timeout, message="sluice-cp address file")
            except AssertionError:
                raise AssertionError("sluice-cp did not start:\n" + self.stderr())
            if self.proc.poll() is None:
                return
            # The port may still be held by the previous instance for a moment.
            if time.monotonic() > deadline:
                raise AssertionError("sluice-cp exited during startup:\n" + self.stderr())
            time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: no shutdown at all (streams are cut, nothing is flushed)."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._stderr.close()

    def stop(self):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self._stderr.close()
        except OSError:
            pass

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        """Stops it and removes its dirs; fails if a sanitizer reported something on its
        stderr (make test-asan), leaks reported at exit included."""
        self.stop()
        if self._stderr_cache is None:
            self._stderr_cache = self.stderr()
        if not os.environ.get("SLUICE_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        report = harness.sanitizer_report(self._stderr_cache)
        if report is not None:
            raise AssertionError("sanitizer report from sluice-cp (%s):\n%s"
                                 % (" ".join(self.cmd), report))

    def stderr(self):
        """Everything every instance (start) of this sluice-cp wrote, in order."""
        if self._stderr_cache is not None:
            return self._stderr_cache
        out = []
        for p in self.logs:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def wait_log(self, pattern, timeout=5.0, since=0):
        """Waits until the stderr (from offset `since`) matches the regex; returns the match."""
        holder = {}

        def check():
            holder["m"] = re.search(pattern, self.stderr()[since:])
            return holder["m"]
        wait_until(check, timeout=timeout, interval=0.02,
                   message="sluice-cp to log /%s/" % pattern)
        return holder["m"]

    # -- config dir ---------------------------------------------------------------------------

    def group_file(self, group, ext="yaml"):
        return os.path.join(self.config_dir, "%s.%s" % (group, ext))

    def write_group_file(self, group, content, ext="yaml", atomic=True):
        """Writes <config-dir>/<group>.<ext>: `content` is text or a declared dict (rendered
        as YAML). atomic: write a hidden temp file and rename it over (what deploy tools do);
        otherwise truncate and rewrite in place (what an editor may do)."""
        if not isinstance(content, str):
            content = to_yaml(content)
        path = self.group_file(group, ext)
        if atomic:
            tmp = os.path.join(self.config_dir, ".%s.%s.tmp" % (group, ext))
            with open(tmp, "w") as f:
                f.write(content)
            os.rename(tmp, path)
        else:
            with open(path, "w") as f:
                f.write(content)
        return path

    # -- sluicectl ----------------------------------------------------------------------------

    def ctl(self, *args, check=True, input=None, timeout=30):
        cmd = [ctl_binary(), "--server", self.address] + self.ctl_args + [str(a) for a in args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True,
                           timeout=scaled(timeout))
        if check and r.returncode != 0:
            raise AssertionError("%s -> exit %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def write_config(self, resources):
        path = os.path.join(self.tmpdir, "apply-%d.json" % int(time.monotonic() * 1e6))
        with open(path, "w") as f:
            json.dump(resources, f)
        return path

    def apply(self, resources, group="default", check=True):
        """Applies a declared config (dict with the static_resources keys) with sluicectl;
        returns the CompletedProcess."""
        path = self.write_config(resources)
        try:
            return self.ctl("apply", "-f", path, "--group", group, check=check)
        finally:
            os.unlink(path)

    def status(self):
        return json.loads(self.ctl("status", "-o", "json").stdout)

    def node(self, node_id):
        for n in self.status().get("nodes", []):
            if n.get("id") == node_id:
                return n
        return None

    def group(self, group):
        for g in self.status().get("groups", []):
            if g.get("name") == group:
                return g
        return None

    def group_version(self, group):
        g = self.group(group)
        return g.get("version") if g else None

    def wait_in_sync(self, node_id, timeout=10.0):
        """Waits until the node has ACKed every type at its group's current version; returns
        its NodeStatus (JSON)."""
        last = {}

        def check():
            n = self.node(node_id)
            last["n"] = n
            return n if n is not None and n.get("connected") and n.get("in_sync") else None
        try:
            return wait_until(check, timeout=timeout, interval=0.05,
                              message="node %s connected and in sync" % node_id)
        except AssertionError as e:
            raise AssertionError("%s; last status of the node: %s"
                                 % (e, json.dumps(last.get("n"), indent=1)))


def dp_bootstrap(cp, node_id, group="default", delta=False, static_resources=None, **extra):
    """A data-plane bootstrap that takes its config from `cp` (fast reconnects for tests)."""
    b = {
        "node": {"id": node_id, "cluster": group},
        "control_plane": {"address": cp.address if isinstance(cp, ControlPlane) else cp,
                          "api_type": "DELTA" if delta else "SOTW",
                          "retry_interval": "50ms", "max_retry_interval": "500ms",
                          "initial_fetch_timeout": "10s"},
    }
    if static_resources:
        b["static_resources"] = static_resources
    b.update(extra)
    return b


def declared(upstreams, routes=None, listener_port=0, listener_name="public", limits=None,
             clusters=None, **extra):
    """A declared config: one listener routing to clusters named after `upstreams`
    ({name: [Upstream, port, (Upstream, weight) or endpoint dict, ...]}); `routes` =
    [(prefix, cluster)], default one route per cluster at /<cluster>."""
    cl = [harness.cluster(name, targets, connect_timeout="1s")
          for name, targets in upstreams.items()]
    if clusters:
        cl.extend(clusters)
    rs = []
    for prefix, cluster in (routes or [("/" + n, n) for n in upstreams]):
        rs.append({"name": prefix.strip("/") or "root", "match": {"prefix": prefix},
                   "route": {"cluster": cluster}})
    listener = {"name": listener_name, "address": {"host": "127.0.0.1", "port": listener_port},
                "route_table": "main"}
    if limits:
        listener["limits"] = limits
    out = {
        "clusters": cl,
        "route_tables": [{"name": "main", "virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": rs}]}],
        "listeners": [listener],
    }
    out.update(extra)
    return out


def direct_config(body="ok\n", path="/healthz", listener_name="public", **extra):
    """A declared config without upstreams: listener `listener_name` on a free loopback port
    answering GET `path` with 200 `body` (a direct response)."""
    out = {
        "listeners": [{"name": listener_name, "address": {"host": "127.0.0.1", "port": 0},
                       "route_table": "main"}],
        "route_tables": [{"name": "main", "virtual_hosts": [{
            "name": "all", "domains": ["*"],
            "routes": [{"match": {"path": path},
                        "direct_response": {"status": 200, "body": body}}]}]}],
    }
    out.update(extra)
    return out


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value, indent=0):
    """Block-style YAML for dicts/lists/scalars (enough for declared configs)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s\n" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s\n" % (pad, k, _yaml_scalar(v)))
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 1)
                # "- " takes the place of the first line's indentation.
                out.append(pad + "- " + body[len(pad) + 2:])
            else:
                out.append("%s- %s" % (pad, to_yaml(item, 0).strip() + "\n"
                                       if isinstance(item, (dict, list))
                                       else _yaml_scalar(item) + "\n"))
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"


# ---------------------------------------------------------------------------------------------
# Waiting for a change to be served
# ---------------------------------------------------------------------------------------------

def routed_to(upstream_name):
    """Predicate on a Response: 200 from the upstream named `upstream_name`."""
    def check(resp):
        return resp.status == 200 and resp.header("x-upstream") == upstream_name
    check.description = "200 from upstream %r" % upstream_name
    return check


def not_routed(resp):
    return resp.status == 404 and resp.header("x-upstream") is None


not_routed.description = "404 (no route) from the proxy itself"


def describe(expect):
    return getattr(expect, "description", getattr(expect, "__name__", repr(expect)))


def wait_served(port, path, expect, since, limit=1.0, host=harness.DEFAULT_HOST):
    """Polls GET `path` through the proxy listener on `port` until expect(response) holds;
    returns the seconds from `since` (a time.monotonic() value). Fails once limit (scaled by
    SLUICE_TIMEOUT_SCALE) has passed since `since`, naming the last response or error."""
    deadline = since + scaled(limit)
    last = None
    while True:
        try:
            last = harness.request(port, "GET", path, host=host, timeout=2.0)
            if expect(last):
                return time.monotonic() - since
        except (OSError, harness.ProtocolError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("GET %s on port %d: not %s within %.2fs; last: %r"
                                 % (path, port, describe(expect), scaled(limit), last))
        time.sleep(0.005)


def assert_served(port, path, expect, host=harness.DEFAULT_HOST, msg=""):
    """One request now must satisfy expect."""
    resp = harness.request(port, "GET", path, host=host, timeout=5.0)
    if not expect(resp):
        raise AssertionError("GET %s on port %d: expected %s, got %r %s"
                             % (path, port, describe(expect), resp, msg))
    return resp


# ---------------------------------------------------------------------------------------------
# unittest integration
# ---------------------------------------------------------------------------------------------

_CPS = []
_CPS_LOCK = threading.Lock()


class CpTestCase(harness.SluiceTestCase):
    """SluiceTestCase for control-plane tests: start_cp()/start_dp() register cleanups; when a
    test fails, what every sluice-cp wrote during it is printed (after the proxies' stderr).
    API ("SOTW" or "DELTA") is the api_type start_dp() uses unless told otherwise."""

    API = "SOTW"

    def run(self, result=None):
        if result is None:
            return super().run(result)
        with _CPS_LOCK:
            offsets = {id(c): len(c.stderr()) for c in _CPS}
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                with _CPS_LOCK:
                    cps = list(_CPS)
                for c in cps:
                    err = c.stderr()[offsets.get(id(c), 0):]
                    if len(err) > 20000:
                        err = "...\n" + err[-20000:]
                    sys.stderr.write("\n----- sluice-cp %s stderr during %s -----\n%s"
                                     "\n----- end -----\n" % (c.address, self.id(), err))
            with _CPS_LOCK:
                _CPS[:] = [c for c in _CPS if c.running()]

    def start_cp(self, **kw):
        cp = ControlPlane(**kw)
        self.addCleanup(cp.cleanup)
        return cp

    def start_dp(self, cp, node_id, group="default", delta=None, **kw):
        """A data plane taking its config from cp; waits for /ready (every type's first
        response) unless wait_ready=False."""
        if delta is None:
            delta = self.API == "DELTA"
        sluice_kw = {k: kw.pop(k) for k in ("concurrency", "extra_args", "ready_timeout",
                                             "wait_ready") if k in kw}
        return self.start_sluice(dp_bootstrap(cp, node_id, group, delta=delta, **kw),
                                 **sluice_kw)

    def assertServed(self, port, path, expect, msg=""):
        return assert_served(port, path, expect, msg=msg)
