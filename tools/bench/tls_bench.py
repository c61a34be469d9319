#!/usr/bin/python3
"""TLS termination benchmark: sluice vs nginx vs haproxy terminating HTTPS with the same ECDSA
P-256 certificate, in front of the same cleartext upstream (issue 12).

    /usr/bin/python3 tools/bench/tls_bench.py [--help]

Topology (2-core box, as tools/bench/e2e.sh):
  core PROXY_CPU (0): the proxy under test, ONE worker (sluice --concurrency 1 / nginx
                      worker_processes 1 / haproxy nbthread 1); TLS downstream only, keep-alive
                      cleartext HTTP/1.1 to the upstream, no access logs
  core LOAD_CPU  (1): the load generator (wrk, or this script's own TLS client) and the upstream
                      nginx (1 worker, `return 200 "hello\\n"`, up for the whole run); this
                      script itself also pins itself there
One ECDSA P-256 server certificate (SANs bench.test, localhost, 127.0.0.1) signed by a fresh
ECDSA P-256 CA is generated per run with python3-cryptography; all three proxies serve it.
TLS settings, the same for all three where the software allows:
  TLS 1.2 + 1.3 accepted (clients negotiate 1.3), the same TLS 1.2 cipher list, server
  preference, groups X25519:P-256, ALPN http/1.1 only, stateless session tickets on, no
  server-side session cache, ticket lifetime 2h:
  sluice   listener tls: {certificates: [{cert_chain_file, private_key_file}],
           alpn: [http/1.1], session_timeout: 7200s}  (sluice's own ticket keys; 1 ticket)
  nginx    listen ... ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
           ssl_session_cache off; ssl_session_timeout 2h; ssl_ecdh_curve X25519:prime256v1;
           ssl_prefer_server_ciphers on  (OpenSSL's ticket keys and its default of 2 tickets)
  haproxy  bind ... ssl crt <cert+key pem> alpn http/1.1 curves X25519:P-256;
           tune.ssl.cachesize 0  (tickets on, the default)
The report lists what each server really negotiated (version, cipher, ALPN, tickets per full
handshake, and whether a ticket resumes), checked with a verifying client against the CA.

Rounds: ROUNDS rounds; in each, every proxy is started fresh, in an order that rotates (round r,
0-based, starts at proxy r mod N), and measured in this sequence:
  1. keep-alive HTTPS: one `wrk -t1 -cCONNS --latency` run of WARMUP + DURATION + 1 s; the
     measured window starts WARMUP s after wrk started and lasts DURATION s (so the CONNS full
     handshakes wrk makes at its start are not in it). CPU us/request = (utime+stime) delta of
     the proxy's worker (/proc/<pid>/stat) over the window / requests the upstream answered in
     it (its stub_status counter: every proxied request is one upstream request).
  2. (HS_PROXIES only) full handshakes: HS_CONC connections at a time, each a new TCP
     connection + full TLS handshake + one GET / + response read, then closed by the client
     (RST, no TIME_WAIT), for HS_DURATION s; CPU us/handshake = proxy CPU delta / handshakes
     completed (so one request's proxying is included, the same for every proxy).
  3. (HS_PROXIES only) resumed handshakes: the same, every connection resuming with the
     newest ticket its client slot got (slots are primed with one full handshake each before
     the measured window). The client checks every connection (session_reused); for sluice
     the bench also reads the listener's admin counters ssl.handshake and ssl.session_reused
     and reports them against the client's counts.
  The handshake client is this script (`--client hs`, Python ssl = the system OpenSSL, the
  same library the servers use) pinned to LOAD_CPU: verification off there (the
  CertificateVerify signature is still checked), so the client spends its core on handshakes.
After the rounds, once per proxy (fresh process, WARMUP s of wrk first): KiB per idle TLS
keep-alive connection: IDLE_CONNS clients (`--client idle` on LOAD_CPU), each a full handshake
and one GET, then idle; (VmRSS of the worker(s) 2 s after the last response - before) / conns.
At most IDLE_INFLIGHT of them handshake at a time: the record and handshake buffers of the
connections in flight raise the heap's high-water mark, which RSS keeps, so opening many at
once (e2e.sh opens plain connections 250 at a time) adds 1-3 KiB to every connection's share,
differently from run to run.

Tables show medians over the rounds, every round's value, and the ratios sluice/nginx and
sluice/haproxy (ratio of the medians; per-round ratios listed below each table).

Environment knobs (defaults):
  ROUNDS=3  DURATION=5  WARMUP=2  CONNS=64  HS_DURATION=5  HS_CONC=16  IDLE_CONNS=2000
  IDLE_INFLIGHT=16
  PROXIES="sluice nginx haproxy"  HS_PROXIES="sluice nginx"  PARTS="keepalive handshake idle"
  HS_TLS=1.3 (1.2: handshakes measured with TLS 1.2, resumption by TLS 1.2 tickets)
  PROXY_CPU=0  LOAD_CPU=1  SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice
  OUT_DIR=<repo>/bench-results  KEEP_WORKDIR=0 (1 = keep the temp dir: configs, certs, logs)
Defaults take about 3 minutes. Output: Markdown on stdout and in $OUT_DIR/tls-<date>.md;
progress on stderr. Every process started here is stopped on exit, also on failure or Ctrl-C.
Needs nginx, haproxy, wrk, taskset and python3-cryptography.
"""

import datetime
import ipaddress
import json
import os
import re
import selectors
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HAPROXY_DEFAULTS, children, cleanup, cmdline, core_busy,  # noqa: E402
                      cpu_ticks_all, env_int, exit_on_signals, first_line, free_port, http_get_raw,
                      log_fatal, make_log, parse_wrk, pin_self, raise_nofile, read_line, rss_kib,
                      run_meta, start, stop, stub_status_requests, temp_paths, wait_port,
                      write_report)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
SNI = "bench.test"
REQ = b"GET / HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: tls-bench\r\n\r\n"
LINGER_RST = struct.pack("ii", 1, 0)  # close() sends RST: no TIME_WAIT on either side
ALL_PROXIES = ("sluice", "nginx", "haproxy")
KNOBS = ("ROUNDS", "DURATION", "WARMUP", "CONNS", "HS_DURATION", "HS_CONC", "IDLE_CONNS",
         "IDLE_INFLIGHT", "PROXIES", "HS_PROXIES", "PARTS", "HS_TLS", "PROXY_CPU", "LOAD_CPU",
         "SLUICE_BIN")  # repeated in the report's command line
# sluice's default TLS 1.2 list (source/common/tls/context.cc), given to nginx and haproxy too.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                 "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384")


# =============================================================================================
# Client side: `tls_bench.py --client hs|idle ...`, run by the bench pinned to LOAD_CPU.
# One non-blocking event loop (epoll) driving Python ssl sockets: connect, handshake, one GET,
# read the response (Content-Length or chunked), then close (hs) or hold (idle).
# =============================================================================================
def response_state(buf):
    """None: incomplete; "ok": a complete 200 keep-alive response; "bad": anything else."""
    h = buf.find(b"\r\n\r\n")
    if h < 0:
        return None
    head = buf[:h].decode("latin-1").lower()
    if not head.startswith("http/1.1 200"):
        return "bad"
    if re.search(r"^connection:\s*close", head, re.M):
        return "bad"
    m = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if m:
        return "ok" if len(buf) >= h + 4 + int(m.group(1)) else None
    if re.search(r"^transfer-encoding:.*chunked", head, re.M):
        return "ok" if buf.endswith(b"0\r\n\r\n") else None
    return "bad"


def client_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
    ctx.minimum_version = ctx.maximum_version = v
    return ctx


class _Conn:
    __slots__ = ("tls", "buf", "state", "events", "slot", "deadline")


class Engine:
    """Drives many TLS client connections at once. on_done(conn, ok, reason) is called once per
    connection, after its response (ok) or its failure; the engine has unregistered it by then."""

    HS, SEND, RECV = 0, 1, 2

    def __init__(self, port, ctx, on_done, conn_timeout=15.0):
        self.port = port
        self.ctx = ctx
        self.on_done = on_done
        self.sel = selectors.EpollSelector()
        self.live = set()
        self.conn_timeout = conn_timeout

    def open(self, slot, session=None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(5)
            raw.connect(("127.0.0.1", self.port))  # loopback: completes in the call
            raw.setblocking(False)
            tls = self.ctx.wrap_socket(raw, server_hostname=SNI, do_handshake_on_connect=False,
                                       session=session)
        except (OSError, ValueError) as e:
            raw.close()
            c = _Conn()
            c.slot, c.tls = slot, None
            self.on_done(c, False, "connect: " + (getattr(e, "strerror", None) or str(e)))
            return
        c = _Conn()
        c.tls, c.buf, c.state, c.events, c.slot = tls, b"", Engine.HS, 0, slot
        c.deadline = time.monotonic() + self.conn_timeout
        self.live.add(c)
        self.step(c)

    def _want(self, c, ev):
        if c.events == 0:
            self.sel.register(c.tls, ev, c)
        elif c.events != ev:
            self.sel.modify(c.tls, ev, c)
        c.events = ev

    def _finish(self, c, ok, reason=None):
        if c.events:
            self.sel.unregister(c.tls)
            c.events = 0
        self.live.discard(c)
        self.on_done(c, ok, reason)

    def step(self, c):
        try:
            if c.state == Engine.HS:
                c.tls.do_handshake()
                c.state = Engine.SEND
            if c.state == Engine.SEND:
                if c.tls.send(REQ) != len(REQ):
                    raise OSError(0, "short write of the request")
                c.state = Engine.RECV
            while True:
                data = c.tls.recv(65536)
                if not data:
                    raise OSError(0, "closed by the server")
                c.buf += data
                st = response_state(c.buf)
                if st is not None:
                    self._finish(c, st == "ok", None if st == "ok" else "bad response")
                    return
        except ssl.SSLWantReadError:
            self._want(c, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._want(c, selectors.EVENT_WRITE)
        except ssl.SSLError as e:
            self._finish(c, False, "ssl: " + (e.reason or str(e)))
        except OSError as e:
            self._finish(c, False, e.strerror or str(e))

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            self.step(key.data)
        now = time.monotonic()
        for c in [c for c in self.live if c.deadline < now]:
            self._finish(c, False, "timeout")
            c.tls.close()


def client_hs(port, mode, secs, conc, version):
    """Handshake load. Prints "ready" (after priming the sessions for mode=resumed), waits for
    "go" on stdin, runs `secs` seconds with `conc` connections in flight, finishes the ones in
    flight, prints a JSON summary."""
    port, secs, conc = int(port), float(secs), int(conc)
    ctx = client_context(version)
    sessions = [None] * conc
    st = {"ok": 0, "reused": 0, "failed": 0, "errors": {}}
    restart = []  # slots whose connection ended: the loop opens the next one

    def done(c, ok, reason):
        if ok:
            st["ok"] += 1
            if c.tls.session_reused:
                st["reused"] += 1
            if mode == "resumed":
                sessions[c.slot] = c.tls.session
        else:
            st["failed"] += 1
            st["errors"][reason] = st["errors"].get(reason, 0) + 1
        if c.tls is not None:
            c.tls.close()
        restart.append(c.slot)

    def drive(until):
        """Keep every slot busy until `until`, then let the ones in flight finish."""
        while True:
            while restart and time.monotonic() < until:
                if st["failed"] > 1000 and st["failed"] > 10 * st["ok"]:
                    until = 0  # the server is not answering: stop
                    break
                slot = restart.pop()
                eng.open(slot, sessions[slot] if mode == "resumed" else None)
            if not eng.live:
                if not restart or time.monotonic() >= until:
                    return
                continue
            eng.poll(0.2)

    eng = Engine(port, ctx, done)
    if mode == "resumed":
        for i in range(conc):
            eng.open(i)
        while eng.live:
            eng.poll(0.5)
        if st["ok"] != conc or any(s is None for s in sessions):
            print(json.dumps({"error": "priming failed: %d/%d sessions, errors %s"
                              % (st["ok"], conc, st["errors"])}), flush=True)
            return 1
        st.update(ok=0, reused=0, failed=0, errors={})
    restart[:] = range(conc)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    t0 = time.monotonic()
    drive(t0 + secs)
    st["elapsed"] = time.monotonic() - t0
    print(json.dumps(st), flush=True)
    return 0


def client_idle(port, n, version, inflight):
    """Opens n connections, at most `inflight` handshaking at a time, one GET on each, keeps
    them. After the first half and again after all of them: prints a JSON line {"ok", "failed",
    "errors"} (counts so far) and waits for a line on stdin. Then prints {"alive": n}
    (connections still open) and closes everything."""
    port, n, inflight = int(port), int(n), int(inflight)
    ctx = client_context(version)
    held, st = [], {"ok": 0, "failed": 0, "errors": {}}

    def done(c, ok, reason):
        if ok:
            st["ok"] += 1
            held.append(c.tls)
        else:
            st["failed"] += 1
            st["errors"][reason] = st["errors"].get(reason, 0) + 1
            if c.tls is not None:
                c.tls.close()

    eng = Engine(port, ctx, done)
    opened = 0
    for upto in (n // 2, n):
        while opened < upto or eng.live:
            while opened < upto and len(eng.live) < inflight:
                eng.open(opened)
                opened += 1
            if eng.live:
                eng.poll(0.2)
        print(json.dumps(st), flush=True)
        sys.stdin.readline()
    alive = 0
    for t in held:
        try:
            # An idle, open TLS connection has nothing to read (tickets were read with the
            # response); EOF or RST means the server closed it.
            d = t.recv(1)
            alive += 1 if d else 0
        except ssl.SSLWantReadError:
            alive += 1
        except (OSError, ssl.SSLError):
            pass
    print(json.dumps({"alive": alive}), flush=True)
    for t in held:
        t.close()
    return 0


# =============================================================================================
# Bench side
# =============================================================================================
ROUNDS = DURATION = WARMUP = CONNS = HS_DURATION = HS_CONC = IDLE_CONNS = IDLE_INFLIGHT = 0
PROXIES = HS_PROXIES = PARTS = []
HS_TLS = PROXY_CPU = LOAD_CPU = SLUICE_BIN = OUT_DIR = ""
KEEP_WORKDIR = False
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORK = None
NOFILE = 0
UPSTREAM_STATUS_PORT = 0


def load_knobs():
    global ROUNDS, DURATION, WARMUP, CONNS, HS_DURATION, HS_CONC, IDLE_CONNS, PROXIES
    global HS_PROXIES, PARTS, HS_TLS, PROXY_CPU, LOAD_CPU, SLUICE_BIN, OUT_DIR, KEEP_WORKDIR
    global IDLE_INFLIGHT
    ROUNDS = env_int("ROUNDS", 3)
    DURATION = env_int("DURATION", 5)
    WARMUP = env_int("WARMUP", 2)
    CONNS = env_int("CONNS", 64)
    HS_DURATION = env_int("HS_DURATION", 5)
    HS_CONC = env_int("HS_CONC", 16)
    IDLE_CONNS = env_int("IDLE_CONNS", 2000)
    IDLE_INFLIGHT = env_int("IDLE_INFLIGHT", 16)
    PROXIES = os.environ.get("PROXIES", "sluice nginx haproxy").split()
    HS_PROXIES = os.environ.get("HS_PROXIES", "sluice nginx").split()
    PARTS = os.environ.get("PARTS", "keepalive handshake idle").split()
    HS_TLS = os.environ.get("HS_TLS", "1.3")
    PROXY_CPU = os.environ.get("PROXY_CPU", "0")
    LOAD_CPU = os.environ.get("LOAD_CPU", "1")
    SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "bazel-bin/source/exe/sluice"))
    OUT_DIR = os.environ.get("OUT_DIR", os.path.join(REPO, "bench-results"))
    KEEP_WORKDIR = os.environ.get("KEEP_WORKDIR", "0") == "1"
    for p in PROXIES + HS_PROXIES:
        if p not in ALL_PROXIES:
            sys.exit("tls_bench: unknown proxy %r (known: %s)" % (p, " ".join(ALL_PROXIES)))
    if len(set(PROXIES)) != len(PROXIES):
        sys.exit("tls_bench: a proxy is listed twice in PROXIES")
    for p in PARTS:
        if p not in ("keepalive", "handshake", "idle"):
            sys.exit("tls_bench: unknown part %r in PARTS (keepalive handshake idle)" % p)
    if HS_TLS not in ("1.2", "1.3"):
        sys.exit("tls_bench: HS_TLS must be 1.2 or 1.3")


log = make_log("tls-bench")


# ---------------------------------------------------------------------------------------------
# Certificates (python3-cryptography)
# ---------------------------------------------------------------------------------------------
def make_certs(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sluice TLS bench")])

    os.makedirs(d, exist_ok=True)
    now = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(name("tls-bench CA")).issuer_name(name("tls-bench CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name(SNI)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(SNI), x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {"ca": os.path.join(d, "ca.crt"), "cert": os.path.join(d, "server.crt"),
             "key": os.path.join(d, "server.key"), "pem": os.path.join(d, "server.pem")}
    cert_pem = leaf.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for k, data in (("ca", ca.public_bytes(pem)), ("cert", cert_pem), ("key", key_pem),
                    ("pem", cert_pem + key_pem)):
        with open(paths[k], "wb") as f:
            f.write(data)
    os.chmod(paths["key"], 0o600)
    os.chmod(paths["pem"], 0o600)
    return paths


# ---------------------------------------------------------------------------------------------
# Upstream and proxies
# ---------------------------------------------------------------------------------------------
def start_upstream(port, status_port):
    """The upstream: `return 200 "hello\\n"` on port; stub_status on status_port (its request
    counter is how many requests the proxy in front forwarded)."""
    d = os.path.join(WORK, "upstream")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; master_process on; user root;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn; worker_rlimit_nofile %(nofile)d;
events { worker_connections 4096; }
http { access_log off; %(tmp)s
  keepalive_requests 1000000000; keepalive_timeout 300s; default_type text/plain;
  server { listen 127.0.0.1:%(p)d backlog=4096; location / { return 200 "hello\\n"; } }
  server { listen 127.0.0.1:%(sp)d; location / { stub_status; } } }
""" % {"d": d, "p": port, "sp": status_port, "tmp": temp_paths(d), "nofile": NOFILE})
    return start(["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf], LOAD_CPU,
                 os.path.join(d, "stdout.log"))


def upstream_requests():
    """Requests the upstream nginx has answered so far (stub_status; this query counts 1)."""
    return stub_status_requests(UPSTREAM_STATUS_PORT)


class Proxy:
    """One running proxy: .proc (the process to signal), .workers (pids whose CPU/RSS count),
    .admin (sluice's admin port file)."""

    def __init__(self, name, d, port, proc, admin=None):
        self.name, self.dir, self.port, self.proc, self.admin = name, d, port, proc, admin
        self.workers = []

    def logs(self):
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    out.append("%s: %s" % (fn, f.read()[-800:]))
        return "\n".join(out)


def write_nginx(d, port, up_port, certs):
    conf = os.path.join(d, "nginx.conf")
    conn_limit = min(NOFILE, 20000)
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
daemon off;
master_process on;
user root;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
worker_rlimit_nofile %(nofile)d;
events { worker_connections %(conns)d; }
http {
  access_log off;
  %(tmp)s
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  upstream backend {
    server 127.0.0.1:%(up)d;
    keepalive 64;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:%(p)d ssl backlog=4096;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers %(ciphers)s;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    ssl_session_tickets on;
    ssl_session_cache off;
    ssl_session_timeout 2h;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
""" % {"d": d, "p": port, "up": up_port, "tmp": temp_paths(d), "nofile": NOFILE,
       "conns": conn_limit, "cert": certs["cert"], "key": certs["key"],
       "ciphers": TLS12_CIPHERS})
    return conf


def start_nginx(d, port, up_port, certs):
    conf = write_nginx(d, port, up_port, certs)
    chk = subprocess.run(["nginx", "-t", "-q", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
                          conf], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("nginx -t: " + chk.stderr[-500:])
    p = start(["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf], PROXY_CPU,
              os.path.join(d, "stdout.log"))
    return Proxy("nginx", d, port, p)


def start_haproxy(d, port, up_port, certs):
    maxconn = max(1000, min((NOFILE - 200) // 2, 20000))
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
  nbthread 1
  maxconn %(maxconn)d
  tune.ssl.cachesize 0
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-ciphers %(ciphers)s

%(defaults)s
frontend fe
  bind 127.0.0.1:%(p)d ssl crt %(pem)s alpn http/1.1 curves X25519:P-256 backlog 4096
  maxconn %(maxconn)d
  default_backend be

backend be
  server up 127.0.0.1:%(up)d
""" % {"p": port, "up": up_port, "pem": certs["pem"], "maxconn": maxconn, "defaults": HAPROXY_DEFAULTS,
       "ciphers": TLS12_CIPHERS})
    chk = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("haproxy -c: " + (chk.stdout + chk.stderr)[-500:])
    p = start(["haproxy", "-db", "-f", cfg], PROXY_CPU, os.path.join(d, "haproxy.log"))
    return Proxy("haproxy", d, port, p)


def sluice_bootstrap(d, port, up_port, certs):
    return {
        "admin": {"address": "127.0.0.1", "port": 0, "address_path": os.path.join(d, "admin.addr")},
        "concurrency": 1, "drain_timeout": "1s",
        "static_resources": {
            "listeners": [{
                "name": "bench", "address": {"host": "127.0.0.1", "port": port},
                "route_table": "bench", "backlog": 4096,
                "limits": {"idle_timeout": "300s", "request_headers_timeout": "300s"},
                "tls": {"certificates": [{"cert_chain_file": certs["cert"],
                                          "private_key_file": certs["key"]}],
                        "alpn": ["http/1.1"], "session_timeout": "7200s"}}],
            "route_tables": [{"name": "bench", "virtual_hosts": [{
                "name": "all", "domains": ["*"],
                "routes": [{"name": "all", "match": {"prefix": "/"},
                            "route": {"cluster": "upstream"}}]}]}],
            "clusters": [{"name": "upstream", "lb_policy": "ROUND_ROBIN",
                          "endpoints": [{"address": "127.0.0.1", "port": up_port}],
                          "idle_timeout": "300s", "max_idle_connections_per_endpoint": 64}]}}


def start_sluice(d, port, up_port, certs):
    cfg = os.path.join(d, "bootstrap.json")
    with open(cfg, "w") as f:
        json.dump(sluice_bootstrap(d, port, up_port, certs), f, indent=1)
    chk = subprocess.run([SLUICE_BIN, "-c", cfg, "--validate"], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("sluice --validate: " + (chk.stdout + chk.stderr)[-500:])
    p = start([SLUICE_BIN, "-c", cfg, "--concurrency", "1"], PROXY_CPU,
              os.path.join(d, "sluice.log"))
    return Proxy("sluice", d, port, p, admin=os.path.join(d, "admin.addr"))


def sluice_ssl_stats(px):
    """{handshake, session_reused} from sluice's admin /stats (None if unavailable)."""
    try:
        with open(px.admin) as f:
            port = int(f.read().strip().rsplit(":", 1)[1])
        body = http_get_raw(port, "/stats")[2].decode("latin-1")
    except (OSError, ValueError, IndexError):
        return None
    out = {}
    for k in ("handshake", "session_reused", "connection_error"):
        m = re.search(r"^listener\.bench\.ssl\.%s: (\d+)$" % k, body, re.M)
        out[k] = int(m.group(1)) if m else None
    return out


def probe(port, certs):
    """One verifying client (CA + host name) with a GET, then a second
    connection offering the first one's session. Returns a dict describing what was
    negotiated, or raises."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs["ca"])
    ctx.set_alpn_protocols(["http/1.1"])
    tickets = []

    def cb(_conn, direction, _version, _ctype, msg_type, _data):
        if direction == "read" and msg_type == 4:
            tickets.append(1)

    try:
        ctx._msg_callback = cb  # NewSessionTicket (type 4) messages; a CPython debugging hook
    except (AttributeError, ValueError):
        tickets = None

    def one(session=None):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=SNI, session=session) as t:
                t.sendall(REQ)
                buf = b""
                while response_state(buf) is None:
                    d = t.recv(65536)
                    if not d:
                        break
                    buf += d
                if response_state(buf) != "ok" or not buf.endswith(b"\r\n\r\nhello\n"):
                    raise RuntimeError("unexpected response: %r" % buf[:300])
                return {"version": t.version(), "cipher": t.cipher()[0],
                        "alpn": t.selected_alpn_protocol(), "reused": t.session_reused,
                        "session": t.session}
    first = one()
    n_tickets = len(tickets) if tickets is not None else None
    second = one(first["session"])
    return {"version": first["version"], "cipher": first["cipher"], "alpn": first["alpn"],
            "tickets": n_tickets, "resumes": second["reused"]}


def launch(name, d, up_port, certs):
    """Start `name` fresh on a new port; wait until it serves HTTPS. Returns a Proxy."""
    os.makedirs(d, exist_ok=True)
    port = free_port()
    px = {"sluice": start_sluice, "nginx": start_nginx, "haproxy": start_haproxy}[name](
        d, port, up_port, certs)
    if not wait_port(port, 15) or px.proc.poll() is not None:
        logs = px.logs()
        stop(px.proc)
        raise RuntimeError("%s did not start listening: %s" % (name, logs))
    time.sleep(0.3)
    px.workers = children(px.proc.pid) if name == "nginx" else [px.proc.pid]
    if not px.workers:
        stop(px.proc)
        raise RuntimeError("%s: no worker process" % name)
    try:
        px.probe = probe(port, certs)
    except Exception as e:
        stop(px.proc)
        raise RuntimeError("%s: HTTPS sanity check failed: %s" % (name, e))
    return px


def run_wrk(px, secs, out_path, latency=False, window=None):
    """wrk for secs seconds. With window=(start, length): the proxy's CPU and the upstream's
    request counter are sampled `start` s after wrk started and `length` s later (wrk still
    running, its connections long established), returned as res["window"]."""
    cmd = ["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % secs]
    if latency:
        cmd.append("--latency")
    cmd.append("https://127.0.0.1:%d/" % px.port)
    t0 = time.monotonic()
    p = start(cmd, LOAD_CPU, out_path)
    win = None
    try:
        if window:
            samples = []
            for at in (window[0], window[0] + window[1]):
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                if p.poll() is not None:
                    break
                samples.append((time.monotonic(), cpu_ticks_all(px.workers), upstream_requests()))
            if len(samples) == 2:
                win = samples
        p.wait(secs + 30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(p, 1)
    with open(out_path, errors="replace") as f:
        res = parse_wrk(f.read())
    res["window"] = win
    return res


def measure_keepalive(px, d):
    """One wrk run of WARMUP + DURATION + 1 s; the measured window is [WARMUP, WARMUP +
    DURATION]: no handshakes in it, requests counted by the upstream."""
    res = run_wrk(px, WARMUP + DURATION + 1, os.path.join(d, "wrk.log"), latency=True,
                  window=(WARMUP, DURATION))
    if px.proc.poll() is not None:
        return {"status": "died during the run"}
    if not res.get("requests") or not res["window"]:
        with open(os.path.join(d, "wrk.log"), errors="replace") as f:
            return {"status": "wrk failed: " + f.read()[-300:].replace("\n", " ")}
    (w0, (u0, s0), r0), (w1, (u1, s1), r1) = res["window"]
    n = r1 - r0 - 1  # the second stub_status query
    if n <= 0:
        return {"status": "no request in the window"}
    k = 1e6 / CLK_TCK / n
    res.update(window_requests=n, rps=n / (w1 - w0), usr_us=(u1 - u0) * k, sys_us=(s1 - s0) * k,
               util_pct=100.0 * (u1 - u0 + s1 - s0) / CLK_TCK / (w1 - w0))
    res["cpu_us"] = res["usr_us"] + res["sys_us"]
    errs = []
    if res["non2xx"]:
        errs.append("%d non-2xx" % res["non2xx"])
    if res["sockerr"]:
        errs.append("%d socket errors" % res["sockerr"])
    res["status"] = "ok" if not errs else ", ".join(errs)
    return res


def measure_handshakes(px, d, mode):
    """mode: full | resumed. Proxy CPU per completed connection (handshake + one GET)."""
    log_path = os.path.join(d, "client-%s.log" % mode)
    p = start([PY, os.path.abspath(__file__), "--client", "hs", str(px.port), mode,
               str(HS_DURATION), str(HS_CONC), HS_TLS], LOAD_CPU, log_path,
              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = read_line(p, 30)
        if line != "ready":
            return {"status": "client not ready: %s" % (line or "no output")[:300]}
        st0 = sluice_ssl_stats(px) if px.name == "sluice" else None
        u0, s0 = cpu_ticks_all(px.workers)
        p.stdin.write(b"go\n")
        p.stdin.flush()
        line = read_line(p, HS_DURATION + 60)
        time.sleep(0.1)  # the server's side of the last RSTs
        u1, s1 = cpu_ticks_all(px.workers)
        st1 = sluice_ssl_stats(px) if px.name == "sluice" else None
    finally:
        stop(p, 5)
    try:
        res = json.loads(line)
    except ValueError:
        return {"status": "client failed: %s" % (line or "no output")[:300]}
    if "error" in res:
        return {"status": res["error"]}
    if px.proc.poll() is not None:
        return {"status": "died during the run"}
    if not res["ok"]:
        return {"status": "no connection completed: %s" % res["errors"]}
    res["cpu_us"] = (u1 - u0 + s1 - s0) * 1e6 / CLK_TCK / res["ok"]
    res["usr_us"] = (u1 - u0) * 1e6 / CLK_TCK / res["ok"]
    res["sys_us"] = (s1 - s0) * 1e6 / CLK_TCK / res["ok"]
    res["rate"] = res["ok"] / res["elapsed"]
    res["util_pct"] = 100.0 * (u1 - u0 + s1 - s0) / CLK_TCK / res["elapsed"]
    res["reuse_pct"] = 100.0 * res["reused"] / res["ok"]
    if st0 and st1 and st0.get("handshake") is not None and st1.get("handshake") is not None:
        res["srv_handshakes"] = st1["handshake"] - st0["handshake"]
        res["srv_reused"] = (st1["session_reused"] or 0) - (st0["session_reused"] or 0)
    notes, bad = [], []
    if res["failed"]:
        notes.append("%d failed %s" % (res["failed"], res["errors"]))
        if res["failed"] * 1000 > res["ok"]:
            bad.append(notes[-1])
    if mode == "resumed" and res["reused"] != res["ok"]:
        notes.append("%d of %d not resumed" % (res["ok"] - res["reused"], res["ok"]))
        if res["reused"] * 100 < res["ok"] * 99:
            bad.append(notes[-1])
    if mode == "full" and res["reused"]:
        notes.append("%d resumed" % res["reused"])
        bad.append(notes[-1])
    if "srv_handshakes" in res:
        want_reused = res["reused"] if mode == "resumed" else 0
        if res["srv_handshakes"] != res["ok"] or res["srv_reused"] != want_reused:
            notes.append("server counted %d handshakes, %d reused" % (
                res["srv_handshakes"], res["srv_reused"]))
            if abs(res["srv_handshakes"] - res["ok"]) > res["failed"]:
                bad.append(notes[-1])
    res["status"] = "; ".join(bad) or "ok"
    res["notes"] = "; ".join(notes)
    return res


def measure_idle(px, d):
    """KiB per idle TLS connection: (RSS with IDLE_CONNS idle connections - before) / conns,
    the e2e.sh figure; also the marginal figure between half and all of them, which leaves out
    what the first connections get for free from memory the warm-up freed."""
    run_wrk(px, WARMUP, os.path.join(d, "wrk-warmup.log"))
    time.sleep(1.0)
    r0 = rss_kib(px.workers)
    p = start([PY, os.path.abspath(__file__), "--client", "idle", str(px.port), str(IDLE_CONNS),
               "1.3", str(IDLE_INFLIGHT)], LOAD_CPU, os.path.join(d, "client-idle.log"),
              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        half = None
        for phase in (1, 2):
            line = read_line(p, 120)
            try:
                res = json.loads(line)
            except ValueError:
                return {"status": "idle client failed: %s" % (line or "no output")[:300]}
            time.sleep(2.0)  # buffers released after the last response
            if phase == 1:
                half = (res["ok"], rss_kib(px.workers))
            else:
                r1 = rss_kib(px.workers)
            p.stdin.write(b"next\n")
            p.stdin.flush()
        try:
            res["alive"] = json.loads(read_line(p, 60))["alive"]
        except (ValueError, KeyError):
            res["alive"] = None
    finally:
        stop(p, 10)
    if px.proc.poll() is not None:
        return {"status": "died during the run"}
    res.update(rss_before=r0, rss_half=half[1], rss_after=r1)
    if res["ok"]:
        res["kib_per_conn"] = (r1 - r0) / res["ok"]
    if res["ok"] > half[0]:
        res["kib_marginal"] = (r1 - half[1]) / (res["ok"] - half[0])
    errs = []
    if res["failed"]:
        errs.append("%d failed %s" % (res["failed"], res["errors"]))
    if res["alive"] != res["ok"]:
        errs.append("%s of %d alive at the end" % (res["alive"], res["ok"]))
    res["status"] = "ok" if res["ok"] and not errs else ("; ".join(errs) or "no connection")
    return res


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def render(R, meta):
    """R[part][proxy][round] = result dict (part: keepalive, full, resumed, idle; idle has
    round "final")."""
    out = []
    w = out.append
    rounds = list(range(1, ROUNDS + 1))

    def ok(part, p, r):
        return R.get(part, {}).get(p, {}).get(r, {}).get("status") == "ok"

    def per_round(part, p, k):
        return [R[part][p][r].get(k) if ok(part, p, r) else None for r in rounds]

    def med(part, p, k):
        v = [x for x in per_round(part, p, k) if x is not None] if p in R.get(part, {}) else []
        return statistics.median(v) if v else None

    def f(x, spec):
        return spec.format(x) if x is not None else "n/a"

    def ratio(a, b):
        return f(a / b, "{:.2f}x") if a is not None and b else "n/a"

    def errors(part, p):
        e = ["round %s: %s" % (r, v["status"]) for r, v in sorted(R[part][p].items())
             if v.get("status") != "ok"]
        e += ["round %s: %s" % (r, v["notes"]) for r, v in sorted(R[part][p].items())
              if v.get("status") == "ok" and v.get("notes")]
        return "; ".join(e) or "0"

    def round_ratios(part, other, k="cpu_us"):
        if "sluice" not in R.get(part, {}) or other not in R.get(part, {}):
            return None
        rs = [a / b if a is not None and b else None
              for a, b in zip(per_round(part, "sluice", k), per_round(part, other, k))]
        have = [x for x in rs if x is not None]
        if not have:
            return None
        return "sluice/%s by round: %s (median %.2f)" % (
            other, ", ".join(f(x, "{:.2f}") for x in rs), statistics.median(have))

    def vs_cols(part, p, k="cpu_us"):
        """sluice/nginx and sluice/haproxy, in the sluice row (ratios of the medians)."""
        if p != "sluice":
            return " | "
        s = med(part, "sluice", k)
        return " | ".join(ratio(s, med(part, o, k)) if o in R.get(part, {}) else "–"
                          for o in ("nginx", "haproxy"))

    def idle_kib(p):
        v = R.get("idle", {}).get(p, {}).get("final", {})
        return v.get("kib_per_conn") if v.get("status") == "ok" else None

    w("# Sluice TLS termination benchmark (%s)" % meta["date"])
    w("")
    w("- Host: %s, %s CPUs, kernel %s; cores busy before the run (1 s sample): %s"
      % (meta["cpu"], meta["ncpu"], meta["kernel"], meta["busy_before"]))
    w("- Pinning: proxy (1 worker) on core %s; load generator + upstream nginx (1 worker, "
      "`return 200 \"hello\\n\"`, cleartext keep-alive) on core %s" % (PROXY_CPU, LOAD_CPU))
    w("- Certificate: ECDSA P-256 leaf (SANs bench.test, localhost, 127.0.0.1) from an ECDSA "
      "P-256 CA, generated for this run; the same files for all three proxies")
    w("- Versions: %s" % meta["versions"])
    if meta["orders"]:
        w("- Rounds: %d, fresh proxies every round, order rotated: %s. Tables: medians over the "
          "rounds." % (len(meta["orders"]), "; ".join("%d: %s" % (i + 1, " → ".join(o))
                                                      for i, o in enumerate(meta["orders"]))))
    w("- Command: `%s`" % meta["cmdline"])
    w("- Total runtime %s" % meta["elapsed"])
    if meta.get("busy_warning"):
        w("- **Warning: the cores were busy before the run (another build or benchmark?); "
          "timings are noisy, compare the per-round ratios.**")
    w("")
    w("## Summary")
    w("")
    w("| measurement | sluice | nginx | haproxy | sluice/nginx | sluice/haproxy | target | met |")
    w("|---|---:|---:|---:|---:|---:|---|---|")
    rows = [("keepalive", "keep-alive HTTPS, CPU µs/request", "{:.2f}", 1.00),
            ("full", "full handshake (+1 request), CPU µs", "{:.1f}", 1.10),
            ("resumed", "resumed handshake (+1 request), CPU µs", "{:.1f}", 1.10),
            ("idle", "KiB per idle TLS connection", "{:.2f}", 1.00)]
    for part, label, spec, target in rows:
        if part not in R:
            continue
        if part == "idle":
            vals = {p: idle_kib(p) for p in ALL_PROXIES}
        else:
            vals = {p: med(part, p, "cpu_us") if p in R[part] else None for p in ALL_PROXIES}
        sn = vals["sluice"] / vals["nginx"] if vals["sluice"] and vals["nginx"] else None
        sh = vals["sluice"] / vals["haproxy"] if vals["sluice"] and vals["haproxy"] else None
        met = "n/a" if sn is None else ("yes" if sn <= target else "**no**")
        w("| %s | %s | %s | %s | %s | %s | sluice/nginx ≤ %.2f | %s |" % (
            label, *[f(vals[p], spec) if vals[p] is not None else "–" for p in ALL_PROXIES],
            f(sn, "{:.2f}x") if sn else "–", f(sh, "{:.2f}x") if sh else "–", target, met))
    w("")
    w("Negotiated (verifying client, CA + host name, ALPN offered http/1.1):")
    w("")
    w("| proxy | version | cipher | ALPN | tickets after a full handshake | ticket resumes |")
    w("|---|---|---|---|---:|---|")
    for p in PROXIES:
        pr = meta["probes"].get(p)
        if pr:
            w("| %s | %s | %s | %s | %s | %s |" % (
                p, pr["version"], pr["cipher"], pr["alpn"],
                pr["tickets"] if pr["tickets"] is not None else "?",
                "yes" if pr["resumes"] else "**no**"))
        else:
            w("| %s | not run | | | | |" % p)

    if "keepalive" in R:
        w("")
        w("## HTTPS keep-alive: proxy CPU per request")
        w("")
        w("`taskset -c %s wrk -t1 -c%d -d%ds --latency https://127.0.0.1:<port>/` (TLS 1.3); "
          "measured window: from %d s after wrk started to %d s later, so wrk's %d handshakes "
          "are not in it; requests in the window counted by the upstream (stub_status). "
          "p50/p99: wrk's, whole run. Target: sluice not above nginx."
          % (LOAD_CPU, CONNS, WARMUP + DURATION + 1, WARMUP, DURATION, CONNS))
        w("")
        w("| proxy | req/s | p50 (ms) | p99 (ms) | CPU µs/req | per round | usr / sys µs/req "
          "| proxy busy | sluice/nginx | sluice/haproxy | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for p in PROXIES:
            if p not in R["keepalive"]:
                continue
            pr = " / ".join(f(x, "{:.2f}") if x is not None else "–"
                            for x in per_round("keepalive", p, "cpu_us"))
            w("| %s | %s | %s | %s | **%s** | %s | %s / %s | %s | %s | %s |" % (
                p, f(med("keepalive", p, "rps"), "{:,.0f}"),
                f(med("keepalive", p, "p50_ms"), "{:.3f}"),
                f(med("keepalive", p, "p99_ms"), "{:.3f}"),
                f(med("keepalive", p, "cpu_us"), "{:.2f}"), pr,
                f(med("keepalive", p, "usr_us"), "{:.2f}"),
                f(med("keepalive", p, "sys_us"), "{:.2f}"),
                f(med("keepalive", p, "util_pct"), "{:.0f}%"),
                vs_cols("keepalive", p), errors("keepalive", p)))
        for o in ("nginx", "haproxy"):
            line = round_ratios("keepalive", o)
            if line:
                w("")
                w(line)

    if "full" in R or "resumed" in R:
        w("")
        w("## New connections: proxy CPU per full and per resumed handshake")
        w("")
        w("Client: this script's `--client hs` on core %s (Python ssl, OpenSSL %s), %d "
          "connections in flight for %d s, TLS %s; each connection: TCP connect, handshake, "
          "`GET /` (proxied to the upstream), response, close (RST). CPU per handshake = "
          "proxy CPU delta / connections completed, so it includes accepting the connection and "
          "proxying one request. Resumed: every connection offers the newest ticket its client "
          "slot received (slots primed before the window); `reused` is the client's "
          "`session_reused` count. Target: sluice within 10%% of nginx."
          % (LOAD_CPU, ssl.OPENSSL_VERSION.split()[1], HS_CONC, HS_DURATION, HS_TLS))
        for part, title in (("full", "Full handshakes"), ("resumed", "Resumed handshakes")):
            if part not in R:
                continue
            w("")
            w("**%s**" % title)
            w("")
            w("| proxy | handshakes/s | CPU µs/handshake | per round | usr / sys µs | proxy busy "
              "| reused | server counters (handshake / reused) | sluice/nginx | sluice/haproxy "
              "| errors |")
            w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            for p in HS_PROXIES:
                if p not in R[part]:
                    continue
                pr = " / ".join(f(x, "{:.1f}") if x is not None else "–"
                                for x in per_round(part, p, "cpu_us"))
                oks = [v for v in R[part][p].values() if v.get("status") == "ok"]
                reused = "%d / %d" % (sum(v["reused"] for v in oks), sum(v["ok"] for v in oks))
                srv = "–"
                if any("srv_handshakes" in v for v in oks):
                    srv = "%d / %d" % (sum(v.get("srv_handshakes", 0) for v in oks),
                                       sum(v.get("srv_reused", 0) for v in oks))
                w("| %s | %s | **%s** | %s | %s / %s | %s | %s | %s | %s | %s |" % (
                    p, f(med(part, p, "rate"), "{:,.0f}"), f(med(part, p, "cpu_us"), "{:.1f}"),
                    pr, f(med(part, p, "usr_us"), "{:.1f}"), f(med(part, p, "sys_us"), "{:.1f}"),
                    f(med(part, p, "util_pct"), "{:.0f}%"), reused, srv,
                    vs_cols(part, p), errors(part, p)))
            for o in ("nginx", "haproxy"):
                line = round_ratios(part, o)
                if line and o in HS_PROXIES:
                    w("")
                    w(line)

    if "idle" in R:
        w("")
        w("## Memory per idle TLS keep-alive connection")
        w("")
        w("Once per proxy after the rounds (fresh process, %d s of wrk first): %d clients (on "
          "core %s, %d handshaking at a time), each a full TLS 1.3 handshake and one GET, then "
          "idle. KiB/conn = (VmRSS of the worker(s) 2 s after the last response − before) / "
          "connections (the e2e.sh figure; target: sluice not above nginx). Marginal = the same "
          "between the first half and all of them: it leaves out what the first connections "
          "get from heap memory the warm-up freed." % (WARMUP, IDLE_CONNS, LOAD_CPU,
                                                        IDLE_INFLIGHT))
        w("")
        w("| proxy | connections (ok / alive at the end) | RSS before → half → all (KiB) "
          "| KiB/conn | marginal KiB/conn | sluice/nginx | sluice/haproxy | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        fin = {p: v.get("final", {}) for p, v in R["idle"].items()}

        def marginal(p):
            v = fin.get(p, {})
            return v.get("kib_marginal") if v.get("status") == "ok" else None
        for p in PROXIES:
            if p not in fin:
                continue
            v = fin[p]
            vs = " | " if p != "sluice" else " | ".join(
                "%s (marginal %s)" % (ratio(idle_kib("sluice"), idle_kib(o)),
                                      ratio(marginal("sluice"), marginal(o)))
                if o in fin else "–" for o in ("nginx", "haproxy"))
            w("| %s | %s / %s | %s → %s → %s | **%s** | %s | %s | %s |" % (
                p, v.get("ok", "–"), v.get("alive", "–"), f(v.get("rss_before"), "{:,}"),
                f(v.get("rss_half"), "{:,}"), f(v.get("rss_after"), "{:,}"),
                f(v.get("kib_per_conn"), "{:.2f}"), f(v.get("kib_marginal"), "{:.2f}"), vs,
                v.get("status") if v.get("status") != "ok" else "0"))
    w("")
    w("- CPU = utime+stime of the proxy's worker process(es) from /proc/<pid>/stat (clock tick "
      "%d Hz; sluice: the whole process, main thread included; nginx: the worker; haproxy: the "
      "process); per request / per handshake = that delta / completed requests or connections. "
      "\"proxy busy\" = that CPU / wall time: below ~95%% the client core was the limit, "
      "compare µs rather than rates." % CLK_TCK)
    w("- Ratios are sluice's median divided by the other proxy's median from the same run "
      "(below 1.00x: sluice cheaper).")
    return "\n".join(out)


def versions():
    v = [first_line(["nginx", "-v"]).replace("nginx version: ", ""),
         re.sub(r" - https.*", "", first_line(["haproxy", "-v"])),
         re.sub(r" Copyright.*", "", first_line(["wrk", "-v"])),
         first_line(["openssl", "version"])]
    if os.access(SLUICE_BIN, os.X_OK):
        real = os.path.realpath(SLUICE_BIN)
        import hashlib
        h = hashlib.sha256()
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        v.append("sluice %s (%s, sha256 %s)" % (
            real, time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(real).st_mtime)),
            h.hexdigest()[:12]))
    return "; ".join(v)


def main():
    global WORK, NOFILE, PROXIES, UPSTREAM_STATUS_PORT
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        kind, args = sys.argv[2], sys.argv[3:]
        sys.exit({"hs": client_hs, "idle": client_idle}[kind](*args))
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(sys.argv) > 1:
        sys.exit("tls_bench: unknown argument %r (see --help)" % sys.argv[1])
    load_knobs()
    for tool in ["nginx", "wrk", "taskset"] + (["haproxy"] if "haproxy" in PROXIES else []):
        if shutil.which(tool) is None:
            sys.exit("tls_bench: %s not installed (tools/setup.sh)" % tool)
    import importlib.util
    if importlib.util.find_spec("cryptography") is None:
        sys.exit("tls_bench: python3-cryptography not installed (tools/setup.sh); run with "
                 "/usr/bin/python3")
    run = []
    for p in PROXIES:
        if p == "sluice" and not os.access(SLUICE_BIN, os.X_OK):
            log("[sluice] %s not found: skipped" % SLUICE_BIN)
            continue
        run.append(p)
    if not run:
        sys.exit("tls_bench: nothing to run")
    hs_run = [p for p in HS_PROXIES if p in run] if "handshake" in PARTS else []

    NOFILE = raise_nofile()
    if "idle" in PARTS and IDLE_CONNS + 200 > NOFILE:
        sys.exit("tls_bench: IDLE_CONNS=%d does not fit the fd limit (%d)" % (IDLE_CONNS, NOFILE))
    pin_self(LOAD_CPU, log)
    exit_on_signals(log)
    t_start = time.monotonic()
    WORK = tempfile.mkdtemp(prefix="sluice-tls-bench-")
    failed = False
    try:
        busy = core_busy([PROXY_CPU, LOAD_CPU], 1.0)
        busy_s = ", ".join("core %s %.0f%%" % (c, v) for c, v in busy.items())
        log("cores busy before start: %s" % busy_s)
        if any(v > 10 for v in busy.values()):
            log("warning: cores are not idle (another build running?); numbers will be noisy")
        certs = make_certs(os.path.join(WORK, "certs"))

        up_port, UPSTREAM_STATUS_PORT = free_port(), free_port()
        start_upstream(up_port, UPSTREAM_STATUS_PORT)
        if not wait_port(up_port, 10) or not wait_port(UPSTREAM_STATUS_PORT, 10):
            raise RuntimeError("upstream nginx did not start")
        log("upstream nginx on 127.0.0.1:%d (core %s); certificates in %s"
            % (up_port, LOAD_CPU, os.path.dirname(certs["cert"])))

        R = {}
        probes = {}
        orders = []
        for r in range(1, ROUNDS + 1):
            if not ({"keepalive", "handshake"} & set(PARTS)):
                break
            order = [run[(r - 1 + i) % len(run)] for i in range(len(run))]
            orders.append(order)
            log("=== round %d/%d: %s" % (r, ROUNDS, " ".join(order)))
            for p in order:
                d = os.path.join(WORK, p, "round%d" % r)
                parts = [x for x in ("keepalive",) if x in PARTS]
                if p in hs_run:
                    parts += ["full", "resumed"]
                if not parts:
                    continue
                try:
                    px = launch(p, d, up_port, certs)
                except RuntimeError as e:
                    log("[%s] %s" % (p, e))
                    for part in parts:
                        R.setdefault(part, {}).setdefault(p, {})[r] = {"status": "start failed"}
                    failed = True
                    continue
                probes.setdefault(p, px.probe)
                try:
                    for part in parts:
                        if part == "keepalive":
                            log("[%s] round %d: keep-alive, %ds warm-up + %ds" % (
                                p, r, WARMUP, DURATION))
                            res = measure_keepalive(px, d)
                            if res["status"] == "ok":
                                log("[%s] round %d: %.0f req/s, %.2f us/req, proxy %.0f%% busy"
                                    % (p, r, res["rps"], res["cpu_us"], res["util_pct"]))
                        else:
                            log("[%s] round %d: %s handshakes, %ds" % (p, r, part, HS_DURATION))
                            res = measure_handshakes(px, d, part)
                            if res["status"] == "ok" or "cpu_us" in res:
                                log("[%s] round %d: %s: %d conns (%d reused), %.0f/s, "
                                    "%.1f us/handshake, proxy %.0f%% busy%s" % (
                                        p, r, part, res["ok"], res["reused"], res["rate"],
                                        res["cpu_us"], res["util_pct"],
                                        ", server counted %s/%s" % (
                                            res["srv_handshakes"], res["srv_reused"])
                                        if "srv_handshakes" in res else ""))
                        if res["status"] != "ok":
                            log("[%s] round %d: %s: %s" % (p, r, part, res["status"]))
                            failed = True
                        R.setdefault(part, {}).setdefault(p, {})[r] = res
                        time.sleep(0.3)
                finally:
                    stop(px.proc)

        if "idle" in PARTS:
            log("=== idle memory: %s" % " ".join(run))
            for p in run:
                d = os.path.join(WORK, p, "idle")
                try:
                    px = launch(p, d, up_port, certs)
                except RuntimeError as e:
                    log("[%s] %s" % (p, e))
                    R.setdefault("idle", {})[p] = {"final": {"status": "start failed"}}
                    failed = True
                    continue
                probes.setdefault(p, px.probe)
                try:
                    log("[%s] idle TLS connections: %d" % (p, IDLE_CONNS))
                    res = measure_idle(px, d)
                finally:
                    stop(px.proc)
                if res["status"] != "ok":
                    failed = True
                log("[%s] RSS %s -> %s -> %s KiB, %s KiB/conn, marginal %s (%s ok, %s alive): %s"
                    % (p, res.get("rss_before"), res.get("rss_half"), res.get("rss_after"),
                       "%.2f" % res["kib_per_conn"] if "kib_per_conn" in res else "n/a",
                       "%.2f" % res["kib_marginal"] if "kib_marginal" in res else "n/a",
                       res.get("ok"), res.get("alive"), res["status"]))
                R.setdefault("idle", {})[p] = {"final": res}

        meta = run_meta(t_start, versions(), orders, cmdline(KNOBS, "tls_bench.py"))
        meta.update(busy_before=busy_s, probes=probes,
                    busy_warning=any(v > 10 for v in busy.values()))
        PROXIES = run
        write_report(render(R, meta) + "\n", OUT_DIR, "tls", log)
        return 0
    except BaseException as e:
        failed = True
        if isinstance(e, SystemExit):
            raise
        log_fatal(e, log)
        return 1
    finally:
        cleanup(log, WORK, failed or KEEP_WORKDIR, "configs, certs, logs")


if __name__ == "__main__":
    sys.exit(main())
