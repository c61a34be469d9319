#!/usr/bin/env bash
# End-to-end benchmark: Sluice vs nginx vs haproxy as HTTP/1.1 reverse proxies.
#
#   tools/bench/e2e.sh [--strace] [--help]
#
# Topology (2-core box):
#   core 1: wrk (1 thread, keep-alive)  +  upstream nginx (1 worker, `return 200 "hello\n"`)
#   core 0: the proxy under test, ONE worker (sluice --concurrency 1 / nginx worker_processes 1 /
#           haproxy nbthread 1), keep-alive on both sides, no access logs, no extra headers.
#
# Rounds: the upstream stays up for the whole run; the proxies are measured in ROUNDS rounds. In
# each round every proxy is started fresh, warmed up (WARMUP s) and measured (DURATION s), then
# stopped. The order rotates (round r, 0-based, starts at proxy index r mod N), so with ROUNDS = N
# every proxy runs once in every position; this cancels the "first proxy looks best" drift.
# Per proxy and round: req/s, p50/p99 (wrk --latency), proxy CPU µs/request ((utime+stime) delta
# of the proxy's worker processes from /proc/<pid>/stat over the measured run / requests
# completed), proxy core utilisation and the core's usr/sys/softirq split. The table shows the
# median over rounds, plus each round's CPU µs/req and the per-round sluice/haproxy CPU ratio.
# After the rounds, once per proxy (fresh process + warm-up): RSS per idle keep-alive connection
# (IDLE_CONNS clients, each does one request then stays idle; (VmRSS after - before) / conns).
# --strace additionally attaches `strace -c -f` for STRACE_SECS under load in that phase and
# reports syscalls per request, plus the same counts from `perf stat` syscall tracepoints (if
# perf is installed), which do not slow the proxy down.
#
# Environment knobs (defaults):
#   ROUNDS=3  DURATION=10  WARMUP=2  CONNS=64  IDLE_CONNS=8000  STRACE_SECS=3
#   PROXIES="sluice nginx haproxy"   PROXY_CPU=0  LOAD_CPU=1
#   SLUICE_BIN=<repo>/bazel-bin/source/exe/sluice   SLUICE_ARGS=""  (extra sluice flags)
#   OUT_DIR=<repo>/bench-results   KEEP_WORKDIR=0 (1 = keep the temp dir with configs/logs)
#
# Output: Markdown on stdout and in $OUT_DIR/e2e-<date>.md. Progress goes to stderr.
# Every process the script starts is stopped on exit (trap), also on failure / Ctrl-C.

set -uo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

STRACE=0
for arg in "$@"; do
  case "$arg" in
    --strace) STRACE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "e2e.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-8000}
STRACE_SECS=${STRACE_SECS:-3}
PROXIES=${PROXIES:-"sluice nginx haproxy"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/bazel-bin/source/exe/sluice}
SLUICE_ARGS=${SLUICE_ARGS:-}
OUT_DIR=${OUT_DIR:-$REPO_ROOT/bench-results}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)

CMDLINE="$0${*:+ $*}"
for v in ROUNDS DURATION WARMUP CONNS IDLE_CONNS STRACE_SECS PROXIES SLUICE_BIN SLUICE_ARGS; do
  # Record knobs the caller set explicitly, so the command line in the report is reproducible.
  if [[ -n ${!v+x} ]] && env | grep -q "^$v="; then CMDLINE="$v='${!v}' $CMDLINE"; fi
done

log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

for v in ROUNDS DURATION WARMUP CONNS IDLE_CONNS STRACE_SECS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

for tool in nginx haproxy wrk curl taskset; do
  command -v "$tool" >/dev/null || die "$tool not installed"
done
if ((STRACE)); then command -v strace >/dev/null || die "strace not installed"; fi

WORK=$(mktemp -d /tmp/sluice-e2e.XXXXXX) || die "mktemp failed"
RESULTS=$WORK/results.tsv
: >"$RESULTS"
ANY_FAIL=0
PIDS=()   # every background process we started (direct children of this shell)

# ---------------------------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------------------------
alive() {  # alive PID -> true if the process exists and is not a zombie
  local st
  [[ -r /proc/$1/stat ]] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

descendants() {  # all descendant pids of PID (depth-first)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

forget() {  # forget PID: drop a reaped pid from PIDS (so cleanup never signals a recycled pid)
  local i
  for i in "${!PIDS[@]}"; do [[ ${PIDS[i]} == "$1" ]] && unset 'PIDS[i]'; done
  return 0
}

stop_pid() {  # stop_pid PID [grace_seconds]: TERM, wait, then KILL it and its leftover children
  local pid=$1 grace=${2:-5} kids k i
  [[ -n $pid ]] || return 0
  alive "$pid" || { wait "$pid" 2>/dev/null; forget "$pid"; return 0; }
  kids=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  for k in $kids; do alive "$k" && kill -KILL "$k" 2>/dev/null; done
  wait "$pid" 2>/dev/null
  forget "$pid"
}

cleanup() {
  local rc=$? i idx=("${!PIDS[@]}")
  trap - EXIT INT TERM
  for ((i = ${#idx[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[idx[i]]}" 3; done
  if ((rc != 0 || ANY_FAIL)) || [[ $KEEP_WORKDIR == 1 ]]; then
    log "work dir kept (configs, logs, raw wrk/strace output): $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

bg() {  # bg CMD...: start in background, remember the pid in BG_PID and PIDS
  "$@" &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# ---------------------------------------------------------------------------------------------
# Python helpers (stdlib only)
# ---------------------------------------------------------------------------------------------
cat >"$WORK/helper.py" <<'PYEOF'
import json, os, re, selectors, socket, sys, time

def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()

def waitport(port, timeout):
    end = time.time() + float(timeout)
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=0.5).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1

def _to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    x = float(m.group(1))
    return x * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]

def wrkparse(path):
    """Print `key<TAB>value` lines from wrk --latency output."""
    out = {}
    txt = open(path).read()
    for line in txt.splitlines():
        line = line.strip()
        m = re.match(r"(50|75|90|99)%\s+(\S+)$", line)
        if m:
            out["p" + m.group(1) + "_ms"] = _to_ms(m.group(2))
        m = re.match(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", line)
        if m:
            out["requests"] = int(m.group(1))
            out["wrk_secs"] = _to_ms(m.group(2) + m.group(3)) / 1e3
        m = re.match(r"Requests/sec:\s+([\d.]+)", line)
        if m:
            out["rps"] = float(m.group(1))
        m = re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line)
        if m:
            out["non2xx"] = int(m.group(1))
        m = re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line)
        if m:
            out["sockerr"] = sum(int(x) for x in m.groups())
    out.setdefault("non2xx", 0)
    out.setdefault("sockerr", 0)
    for k, v in out.items():
        print(f"{k}\t{v}")

def procstat(*pids):
    """Sum of utime+stime (clock ticks) over pids."""
    tot = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        fields = f[f.rindex(")") + 2:].split()
        tot += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    print(tot)

def rss(*pids):
    """Sum of VmRSS (KiB) over pids."""
    tot = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    tot += int(line.split()[1])
        except OSError:
            pass
    print(tot)

def cpubusy(cpus, secs):
    """Busy percentage of the given cpus over secs (from /proc/stat)."""
    def snap():
        d = {}
        for line in open("/proc/stat"):
            if re.match(r"cpu\d+ ", line):
                f = line.split()
                vals = list(map(int, f[1:]))
                idle = vals[3] + vals[4]
                d[f[0][3:]] = (sum(vals[:8]), idle)
        return d
    a = snap(); time.sleep(float(secs)); b = snap()
    res = []
    for c in cpus.split(","):
        tot = b[c][0] - a[c][0]; idle = b[c][1] - a[c][1]
        res.append(f"cpu{c}={100.0 * (tot - idle) / max(tot, 1):.0f}%")
    print(" ".join(res))

def cpusnap(path):
    """Save the per-cpu lines of /proc/stat (user nice system idle iowait irq softirq steal)."""
    d = {}
    for line in open("/proc/stat"):
        if re.match(r"cpu\d+ ", line):
            f = line.split()
            d[f[0][3:]] = list(map(int, f[1:9]))
    json.dump(d, open(path, "w"))

def cpudelta(a, b, proxy_cpu, load_cpu):
    """Busy ticks / percentages per core between two cpusnap files."""
    A = json.load(open(a)); B = json.load(open(b))
    for tag, c in (("proxy_core", proxy_cpu), ("load_core", load_cpu)):
        d = [y - x for x, y in zip(A[c], B[c])]
        tot = sum(d); idle = d[3] + d[4]
        print(f"{tag}_busy_ticks\t{tot - idle}")
        print(f"{tag}_user_ticks\t{d[0] + d[1]}")
        print(f"{tag}_sys_ticks\t{d[2] + d[5]}")
        print(f"{tag}_softirq_ticks\t{d[6]}")
        print(f"{tag}_busy_pct\t{100.0 * (tot - idle) / max(tot, 1):.1f}")

def idleclient(port, n, donefile, readyfile):
    """Open n keep-alive connections, do one request on each, keep them idle until donefile
    exists, then report how many are still open."""
    n = int(n)
    port = int(port)
    req = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: e2e-idle\r\n\r\n"
    sel = selectors.DefaultSelector()
    done_socks, failed = [], 0
    batch = 250
    opened = 0
    errs = {}
    linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # RST on close: no TIME_WAIT
    def complete(buf):
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
    while opened < n:
        k = min(batch, n - opened)
        pending = {}
        for _ in range(k):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s] = [b"", False]
            sel.register(s, selectors.EVENT_WRITE)
        opened += k
        deadline = time.time() + 15
        while pending and time.time() < deadline:
            for key, ev in sel.select(timeout=0.5):
                s = key.fileobj
                st = pending[s]
                try:
                    if not st[1]:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        s.send(req)
                        st[1] = True
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    data = s.recv(65536)
                    if not data:
                        raise OSError(0, "closed by peer")
                    st[0] += data
                    c = complete(st[0])
                    if c is None:
                        continue
                    sel.unregister(s)
                    del pending[s]
                    if c == "ok":
                        done_socks.append(s)
                    else:
                        errs["bad response"] = errs.get("bad response", 0) + 1
                        failed += 1
                        s.close()
                except OSError as e:
                    errs[e.strerror] = errs.get(e.strerror, 0) + 1
                    sel.unregister(s)
                    del pending[s]
                    failed += 1
                    s.close()
        for s in list(pending):
            errs["timeout"] = errs.get("timeout", 0) + 1
            sel.unregister(s)
            s.close()
            failed += 1
    with open(readyfile, "w") as f:
        f.write(f"ok {len(done_socks)}\nfailed {failed}\nerrors {json.dumps(errs)}\n")
    end = time.time() + 300
    while not os.path.exists(donefile) and time.time() < end:
        time.sleep(0.05)
    alive = 0
    for s in done_socks:
        try:
            d = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if d:
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    with open(readyfile, "a") as f:
        f.write(f"alive {alive}\n")
    for s in done_socks:
        s.close()

def straceparse(path):
    """strace -c summary -> `syscall<TAB>calls` lines."""
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[\d.]+", f[0]) and f[3].isdigit():
            print(f"{f[-1]}\t{f[3]}")

def perfparse(path):
    """perf stat -x, output -> JSON {syscall: count, "total": n}."""
    calls = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) < 3 or not f[0].isdigit():
            continue
        ev = f[2]
        if ev == "raw_syscalls:sys_enter":
            calls["total"] = int(f[0])
        elif ev.startswith("syscalls:sys_enter_"):
            calls[ev[len("syscalls:sys_enter_"):]] = int(f[0])
    print(json.dumps(calls))

def report(results, meta):
    """Render the Markdown report from results.tsv (proxy, round, key, value) and meta (key=value).
    round is 1..ROUNDS for the throughput rounds, "final" for the once-per-proxy phase (strace,
    idle memory test) and "-" for proxies that were not run."""
    import statistics
    R = {}   # proxy -> round -> key -> value
    order = []
    for line in open(results):
        p, rnd, k, v = line.rstrip("\n").split("\t", 3)
        if p not in R:
            R[p] = {}
            order.append(p)
        R[p].setdefault(rnd, {})[k] = v
    M = {}
    for line in open(meta):
        k, _, v = line.rstrip("\n").partition("=")
        M[k] = v
    rounds = [str(r) for r in range(1, int(M["rounds"]) + 1)]
    def num_or_none(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None
    def ok(p, r):
        return R.get(p, {}).get(r, {}).get("status") == "ok"
    def per_round(p, k):
        """Value of k in each round (None where the round failed)."""
        return [num_or_none(R[p][r].get(k)) if ok(p, r) else None for r in rounds]
    def med(p, k):
        vals = [x for x in per_round(p, k) if x is not None] if p in R else []
        return statistics.median(vals) if vals else None
    def fin(p, k):
        return R.get(p, {}).get("final", {}).get(k)
    def fmt(x, spec):
        return spec.format(x) if x is not None else "n/a"
    elapsed = int(M.get("elapsed") or 0)
    orders = [o for o in M.get("orders", "").split(";") if o]
    out = []
    w = out.append
    w(f"# Sluice e2e proxy benchmark ({M['date']})")
    w("")
    w(f"- Host: {M['cpu']}, {M['ncpu']} CPUs, kernel {M['kernel']}")
    w(f"- Pinning: proxy (1 worker) on core {M['proxy_cpu']}; wrk + upstream nginx (1 worker) on core {M['load_cpu']}")
    w(f"- Load: `{M['wrk_cmd']}` after a {M['warmup']}s warm-up, each proxy freshly started for every round; "
      f"upstream `return 200 \"hello\\n\"` (6-byte body, keep-alive, up for the whole run)")
    w(f"- Rounds: {len(rounds)}, order rotated: "
      + "; ".join(f"{i + 1}: {' → '.join(o.split())}" for i, o in enumerate(orders))
      + ". Table values are medians over the rounds.")
    w(f"- Versions: {M['nginx_ver']}; {M['haproxy_ver']}; {M['wrk_ver']}; sluice: {M['sluice_ver']}")
    w(f"- Command: `{M['cmdline']}`")
    w(f"- Cores busy before the run (1 s sample): {M['busy_before']}; total runtime {elapsed // 60}m{elapsed % 60:02d}s")
    w("")
    w("| proxy | req/s | p50 (ms) | p99 (ms) | CPU µs/req | CPU µs/req per round | CPU vs haproxy | KiB/idle conn "
      "| core usr / sys / softirq µs/req | proxy / core0 / core1 busy | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    base = med("haproxy", "cpu_us_per_req")
    for p in order:
        errs = []
        failed = [(r, R[p][r]["status"]) for r in rounds if r in R[p] and not ok(p, r)]
        if not any(ok(p, r) for r in rounds):
            st = R[p].get("-", {}).get("status") or (failed[0][1] if failed else "not run")
            w(f"| {p} | {st} | | | | | | | | | |")
            continue
        errs += [f"round {r}: {st}" for r, st in failed]
        cpu = med(p, "cpu_us_per_req")
        ratio = f"{cpu / base:.2f}x" if cpu is not None and base else "n/a"
        spread = " / ".join(fmt(x, "{:.1f}") if x is not None else "–" for x in per_round(p, "cpu_us_per_req"))
        kib = num_or_none(fin(p, "kib_per_conn"))
        idle_note = ""
        if fin(p, "idle_ok") is not None:
            iok, ialive = fin(p, "idle_ok"), fin(p, "idle_alive")
            if iok != M["idle_conns"] or ialive != iok:
                idle_note = f" ({iok} opened, {ialive} alive)"
        fst = fin(p, "status")
        if fst is None:
            errs.append("memory test: not run")
        elif fst != "ok":
            errs.append(f"memory test: {fst}")
        non2xx = sum(int(x) for x in per_round(p, "non2xx") if x is not None)
        sockerr = sum(int(x) for x in per_round(p, "sockerr") if x is not None)
        if non2xx:
            errs.append(f"{non2xx} non-2xx")
        if sockerr:
            errs.append(f"{sockerr} socket errors")
        if fin(p, "idle_error"):
            errs.append(fin(p, "idle_error"))
        def m(k, spec):
            return fmt(med(p, k), spec)
        busy = f"{m('cpu_util_pct', '{:.0f}%')} / {m('proxy_core_busy_pct', '{:.0f}%')} / {m('load_core_busy_pct', '{:.0f}%')}"
        w(f"| {p} | {m('rps', '{:,.0f}')} | {m('p50_ms', '{:.3f}')} | {m('p99_ms', '{:.3f}')} | "
          f"{m('cpu_us_per_req', '{:.2f}')} | {spread} | {ratio} | "
          f"{fmt(kib, '{:.2f}')}{idle_note} | {m('core_user_us_per_req', '{:.1f}')} / {m('core_sys_us_per_req', '{:.1f}')} / {m('core_softirq_us_per_req', '{:.1f}')} | "
          f"{busy} | {', '.join(errs) or '0'} |")
    if "sluice" in R and "haproxy" in R:
        ratios = [s / h if s is not None and h else None
                  for s, h in zip(per_round("sluice", "cpu_us_per_req"), per_round("haproxy", "cpu_us_per_req"))]
        have = [x for x in ratios if x is not None]
        if have:
            w("")
            w("sluice/haproxy CPU by round: " + ", ".join(f"{x:.2f}" if x is not None else "n/a" for x in ratios)
              + f" (median {statistics.median(have):.2f})")
    w("")
    w(f"- CPU µs/req = (utime+stime) delta of the proxy's worker process(es) over the measured run / requests "
      f"completed (clock tick {M['clk_tck']} Hz); per round = that value in rounds 1..{len(rounds)} (see the "
      f"order above for the position); CPU vs haproxy = ratio of the medians.")
    w(f"- KiB/idle conn = (sum of the workers' VmRSS with {M['idle_conns']} idle keep-alive clients - before) / "
      f"connections; measured once per proxy after the rounds, in a fresh process after a {M['warmup']}s warm-up; "
      f"each client did one request first, RSS read 2 s after the last response.")
    w(f"- core usr / sys / softirq µs/req = /proc/stat time of core {M['proxy_cpu']} (only the proxy runs there) "
      f"split by kind, per request: userland vs syscalls vs loopback TCP work in softirq (the process's stime "
      f"above includes the softirq part).")
    w(f"- busy = proxy process CPU / wall, core {M['proxy_cpu']} busy, core {M['load_cpu']} (wrk + upstream) busy. "
      f"If the proxy core is below ~95%, the load core was (also) the limit: compare µs/req rather than req/s.")
    if any(fin(p, "sys_calls") or fin(p, "perf_calls") for p in order):
        w("")
        w(f"## Syscalls per request ({M['strace_secs']}s of the same wrk load, once per proxy after the rounds)")
        w("")
        w("`strace -c -f` stops the proxy on every syscall (it runs ~10-30x slower, so each epoll_wait "
          "returns more events); `perf stat` counts the syscall tracepoints at full speed "
          "(all = raw_syscalls:sys_enter; the breakdown covers the listed syscalls only).")
        w("")
        w("| proxy | method | requests | read-ish/req | write-ish/req | epoll_wait/req | epoll_ctl/req | all syscalls/req | top syscalls (calls/req) |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for p in order:
            for method, ck, nk in (("strace", "sys_calls", "strace_requests"), ("perf", "perf_calls", "perf_requests")):
                if fin(p, ck) is None:
                    continue
                n = num_or_none(fin(p, nk)) or 0
                if not n:
                    w(f"| {p} | {method} | 0 | | | | | | |")
                    continue
                calls = json.loads(fin(p, ck))
                g = lambda names: sum(calls.get(x, 0) for x in names) / n
                rd = g(["read", "readv", "recvfrom", "recvmsg", "recvmmsg", "recv"])
                wr = g(["write", "writev", "sendto", "sendmsg", "sendmmsg", "sendfile", "sendfile64", "send"])
                ew = g(["epoll_wait", "epoll_pwait", "epoll_pwait2"])
                ec = g(["epoll_ctl"])
                tot = calls["total"] / n if "total" in calls else sum(calls.values()) / n
                top = sorted(((v, k) for k, v in calls.items() if k != "total" and v), reverse=True)[:6]
                tops = ", ".join(f"{k} {v / n:.2f}" for v, k in top)
                w(f"| {p} | {method} | {int(n):,} | {rd:.2f} | {wr:.2f} | {ew:.2f} | {ec:.2f} | {tot:.2f} | {tops} |")
    print("\n".join(out))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    r = globals()[cmd](*args)
    sys.exit(r or 0)
PYEOF
helper() { "$PY" "$WORK/helper.py" "$@"; }
res() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }  # res PROXY ROUND KEY VALUE

# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
# Connection limits: brief asks for ~20000; never more than the fd limit allows.
CONN_LIMIT=$((NOFILE < 20000 ? NOFILE : 20000))
# haproxy needs ~2 fds per connection (client + server side); it derives its fd need from maxconn.
HAPROXY_MAXCONN=$(((NOFILE - 200) / 2))
((HAPROXY_MAXCONN > 20000)) && HAPROXY_MAXCONN=20000
((IDLE_CONNS + 100 > NOFILE)) && die "IDLE_CONNS=$IDLE_CONNS does not fit the fd limit ($NOFILE)"
((HAPROXY_MAXCONN < IDLE_CONNS + 100)) && log "warning: haproxy maxconn $HAPROXY_MAXCONN < IDLE_CONNS+100 (fd limit $NOFILE)"

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
((NCPU >= 2)) || log "warning: only $NCPU CPU(s); pinning to cores $PROXY_CPU/$LOAD_CPU will fail"

LOAD=(taskset -c "$LOAD_CPU")
PIN=(taskset -c "$PROXY_CPU")

NGINX_VER=$(nginx -v 2>&1 | sed 's/^nginx version: //')
HAPROXY_VER=$(haproxy -v 2>&1 | head -1 | sed 's/ - https.*//')
WRK_VER=$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')

TEMP_PATHS="client_body_temp_path $WORK/tmp/body; proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fastcgi; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;"
mkdir -p "$WORK/tmp"

# ---------------------------------------------------------------------------------------------
# Upstream: nginx, 1 worker, on the load core
# ---------------------------------------------------------------------------------------------
UP_PORT=$(helper freeport)
mkdir -p "$WORK/upstream"
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
user root;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
worker_rlimit_nofile $CONN_LIMIT;
events { worker_connections 4096; }
http {
  access_log off;
  $TEMP_PATHS
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server {
    listen 127.0.0.1:$UP_PORT backlog=4096;
    location / { return 200 "hello\n"; }
  }
}
EOF
log "starting upstream nginx on 127.0.0.1:$UP_PORT (core $LOAD_CPU)"
bg "${LOAD[@]}" nginx -e "$WORK/upstream/error.log" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" \
  >"$WORK/upstream/stdout.log" 2>&1
UP_PID=$BG_PID
helper waitport "$UP_PORT" 10 || die "upstream nginx did not start: $(cat "$WORK/upstream/error.log")"
[[ $(curl -s "http://127.0.0.1:$UP_PORT/") == hello ]] || die "upstream does not answer hello"

# ---------------------------------------------------------------------------------------------
# Proxies. start_<name> DIR PORT -> sets PROXY_PID (process to signal) and returns 0/1.
# worker_pids_<name> -> pids whose CPU / RSS count.
# ---------------------------------------------------------------------------------------------
start_nginx() {
  local dir=$1 port=$2
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $CONN_LIMIT; }
http {
  access_log off;
  $TEMP_PATHS
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  bg "${PIN[@]}" nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1
  PROXY_PID=$BG_PID
}
worker_pids_nginx() { pgrep -P "$PROXY_PID"; }

start_haproxy() {
  local dir=$1 port=$2
  cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn $HAPROXY_MAXCONN

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 300s
  timeout http-keep-alive 300s

frontend fe
  bind 127.0.0.1:$port backlog 4096
  maxconn $HAPROXY_MAXCONN
  default_backend be

backend be
  server up 127.0.0.1:$UP_PORT
EOF
  haproxy -c -f "$dir/haproxy.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; return 1; }
  bg "${PIN[@]}" haproxy -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1
  PROXY_PID=$BG_PID
}
worker_pids_haproxy() { echo "$PROXY_PID"; }

start_sluice() {
  local dir=$1 port=$2
  cat >"$dir/bootstrap.yaml" <<EOF
admin:
  address: 127.0.0.1
  port: 0
  address_path: $dir/admin.addr
concurrency: 1
drain_timeout: 1s
static_resources:
  listeners:
  - name: bench
    address:
      host: 127.0.0.1
      port: $port
    route_table: bench
    backlog: 4096
    limits:
      idle_timeout: 300s
      request_headers_timeout: 300s
  route_tables:
  - name: bench
    virtual_hosts:
    - name: all
      domains: ["*"]
      routes:
      - name: all
        match:
          prefix: /
        route:
          cluster: upstream
  clusters:
  - name: upstream
    lb_policy: ROUND_ROBIN
    endpoints:
    - address: 127.0.0.1
      port: $UP_PORT
    idle_timeout: 300s
    max_idle_connections_per_endpoint: 64
EOF
  # shellcheck disable=SC2086
  if ! "$SLUICE_BIN" -c "$dir/bootstrap.yaml" --validate $SLUICE_ARGS >"$dir/validate.log" 2>&1; then
    log "sluice --validate failed:"; cat "$dir/validate.log" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  bg "${PIN[@]}" "$SLUICE_BIN" -c "$dir/bootstrap.yaml" --concurrency 1 $SLUICE_ARGS \
    >"$dir/stdout.log" 2>"$dir/stderr.log"
  PROXY_PID=$BG_PID
}
worker_pids_sluice() { echo "$PROXY_PID"; }  # threads are summed in /proc/<pid>/stat and VmRSS

run_wrk() {  # run_wrk SECONDS OUTFILE [--latency]
  local secs=$1 out=$2; shift 2
  bg "${LOAD[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" "$@" "$URL" >"$out" 2>&1
  wait "$BG_PID"
  forget "$BG_PID"
}

# start_proxy NAME DIR: start NAME (config in DIR) on a fresh port and check that it proxies.
# Sets PROXY_PID, PORT, URL and WORKERS; on failure sets START_ERR, stops the proxy, returns 1.
start_proxy() {
  local name=$1 dir=$2 body
  mkdir -p "$dir"
  PORT=$(helper freeport)
  URL="http://127.0.0.1:$PORT/"
  PROXY_PID=""
  WORKERS=""
  START_ERR=""
  log "[$name] starting on 127.0.0.1:$PORT (core $PROXY_CPU)"
  if ! "start_$name" "$dir" "$PORT"; then START_ERR="failed to start (config)"; return 1; fi
  if ! helper waitport "$PORT" 15 || ! alive "$PROXY_PID"; then
    log "[$name] did not start listening; logs:"; tail -n 20 "$dir"/*.log >&2
    START_ERR="failed to start"; stop_pid "$PROXY_PID"; return 1
  fi
  sleep 0.3
  WORKERS=$("worker_pids_$name" | xargs)
  [[ -n ${WORKERS// /} ]] || { START_ERR="no worker pids"; stop_pid "$PROXY_PID"; return 1; }
  body=$(curl -s -m 5 "$URL")
  if [[ $body != hello ]]; then
    log "[$name] sanity request failed: got '${body:0:200}'"
    START_ERR="sanity check failed"; stop_pid "$PROXY_PID"; return 1
  fi
}

# measure_round NAME ROUND: fresh proxy, warm-up, measured run; results go to round ROUND.
measure_round() {
  local name=$1 r=$2
  local dir=$WORK/$name/round$r t0 t1 k v kind
  local -A W=()
  if ! start_proxy "$name" "$dir"; then res "$name" "$r" status "$START_ERR"; return 1; fi
  log "[$name] round $r/$ROUNDS: workers $WORKERS; warm-up ${WARMUP}s"
  run_wrk "$WARMUP" "$dir/wrk-warmup.out"
  sleep 0.5

  log "[$name] round $r/$ROUNDS: measuring ${DURATION}s"
  # shellcheck disable=SC2086
  t0=$(helper procstat $WORKERS)
  helper cpusnap "$dir/cpu0.json"
  run_wrk "$DURATION" "$dir/wrk.out" --latency
  helper cpusnap "$dir/cpu1.json"
  # shellcheck disable=SC2086
  t1=$(helper procstat $WORKERS)
  if ! alive "$PROXY_PID"; then
    log "[$name] round $r: proxy died during the run; logs:"; tail -n 20 "$dir"/*.log >&2
    res "$name" "$r" status "died during the run"; stop_pid "$PROXY_PID"; return 1
  fi
  while IFS=$'\t' read -r k v; do W[$k]=$v; res "$name" "$r" "$k" "$v"; done \
    < <(helper cpudelta "$dir/cpu0.json" "$dir/cpu1.json" "$PROXY_CPU" "$LOAD_CPU"
        helper wrkparse "$dir/wrk.out")
  if [[ -z ${W[requests]:-} || ${W[requests]} == 0 ]]; then
    log "[$name] round $r: wrk produced no requests:"; cat "$dir/wrk.out" >&2
    res "$name" "$r" status "wrk failed"; stop_pid "$PROXY_PID"; return 1
  fi
  res "$name" "$r" cpu_us_per_req "$("$PY" -c "print(($t1-$t0)*1e6/$CLK_TCK/${W[requests]})")"
  res "$name" "$r" cpu_util_pct "$("$PY" -c "print(($t1-$t0)*100.0/$CLK_TCK/${W[wrk_secs]})")"
  for kind in busy user sys softirq; do
    res "$name" "$r" "core_${kind}_us_per_req" \
      "$("$PY" -c "print(${W[proxy_core_${kind}_ticks]:-0}*1e6/$CLK_TCK/${W[requests]})")"
  done
  log "[$name] round $r/$ROUNDS: $(grep -E 'Requests/sec' "$dir/wrk.out" | tr -s ' '), cpu ticks $((t1 - t0))"
  stop_pid "$PROXY_PID"
  res "$name" "$r" status ok
}

# once_per_proxy NAME: after the rounds, a fresh proxy, warm-up, then the optional strace/perf
# syscall counts and the idle keep-alive memory test; results go to round "final".
once_per_proxy() {
  local name=$1
  local dir=$WORK/$name/final r0 r1
  if ! start_proxy "$name" "$dir"; then res "$name" final status "$START_ERR"; return 1; fi
  log "[$name] syscall / memory phase: workers $WORKERS; warm-up ${WARMUP}s"
  run_wrk "$WARMUP" "$dir/wrk-warmup.out"
  sleep 0.5

  if ((STRACE)); then
    log "[$name] strace -c for ${STRACE_SECS}s under load"
    local targs=() w t
    for w in $WORKERS; do for t in /proc/"$w"/task/*; do targs+=(-p "${t##*/}"); done; done
    bg strace -c -f -o "$dir/strace.out" "${targs[@]}" 2>"$dir/strace.err"
    local spid=$BG_PID
    sleep 1
    run_wrk "$STRACE_SECS" "$dir/wrk-strace.out"
    kill -INT "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    forget "$spid"
    local sreq calls
    sreq=$(helper wrkparse "$dir/wrk-strace.out" | awk -F'\t' '$1=="requests"{print $2}')
    calls=$(helper straceparse "$dir/strace.out" |
      "$PY" -c 'import sys,json; print(json.dumps({l.split("\t")[0]: int(l.split("\t")[1]) for l in sys.stdin if l.strip()}))')
    res "$name" final strace_requests "${sreq:-0}"
    res "$name" final sys_calls "$calls"
    sleep 0.5
    if command -v perf >/dev/null; then
      # Same counts from kernel tracepoints: no ptrace stop per syscall, so the proxy runs at full
      # speed and the batching (events per epoll_wait) is the real one.
      log "[$name] perf stat syscall tracepoints for ${STRACE_SECS}s under load"
      local evs=raw_syscalls:sys_enter sc pidlist
      for sc in read readv recvfrom recvmsg write writev sendto sendmsg sendfile64 epoll_wait epoll_pwait \
                epoll_ctl accept4 close getsockopt setsockopt connect socket clock_gettime; do
        evs+=",syscalls:sys_enter_$sc"
      done
      pidlist=${WORKERS// /,}
      bg perf stat -x, -o "$dir/perf.out" -e "$evs" -p "$pidlist" -- sleep $((STRACE_SECS + 1))
      local ppid=$BG_PID
      sleep 0.5
      run_wrk "$STRACE_SECS" "$dir/wrk-perf.out"
      wait "$ppid" 2>/dev/null
      forget "$ppid"
      sreq=$(helper wrkparse "$dir/wrk-perf.out" | awk -F'\t' '$1=="requests"{print $2}')
      calls=$(helper perfparse "$dir/perf.out")
      if [[ -n $calls && $calls != "{}" ]]; then
        res "$name" final perf_requests "${sreq:-0}"
        res "$name" final perf_calls "$calls"
      else
        log "[$name] perf stat failed: $(head -c 300 "$dir/perf.out" 2>/dev/null)"
      fi
      sleep 0.5
    fi
  fi

  log "[$name] idle keep-alive test: $IDLE_CONNS connections"
  sleep 1
  # shellcheck disable=SC2086
  r0=$(helper rss $WORKERS)
  rm -f "$dir/idle.ready" "$dir/idle.done"
  bg "${LOAD[@]}" "$PY" "$WORK/helper.py" idleclient "$PORT" "$IDLE_CONNS" "$dir/idle.done" "$dir/idle.ready" \
    >"$dir/idle.log" 2>&1
  local ipid=$BG_PID i
  for ((i = 0; i < 1200; i++)); do
    [[ -s $dir/idle.ready ]] && break
    alive "$ipid" || break
    sleep 0.1
  done
  if [[ ! -s $dir/idle.ready ]]; then
    log "[$name] idle client failed:"; cat "$dir/idle.log" >&2
    res "$name" final idle_error "idle client failed"
  else
    sleep 2   # let the proxy settle (buffers released after the response)
    # shellcheck disable=SC2086
    r1=$(helper rss $WORKERS)
    touch "$dir/idle.done"
    for ((i = 0; i < 300; i++)); do grep -q '^alive' "$dir/idle.ready" && break; sleep 0.1; done
    local ok failed alivec errs
    ok=$(awk '$1=="ok"{print $2}' "$dir/idle.ready")
    failed=$(awk '$1=="failed"{print $2}' "$dir/idle.ready")
    alivec=$(awk '$1=="alive"{print $2}' "$dir/idle.ready")
    errs=$(sed -n 's/^errors //p' "$dir/idle.ready")
    res "$name" final idle_ok "$ok"
    res "$name" final idle_alive "${alivec:-?}"
    res "$name" final rss_before_kib "$r0"
    res "$name" final rss_after_kib "$r1"
    ((failed > 0)) && res "$name" final idle_error "$failed idle conns failed $errs"
    if ((ok > 0)); then
      res "$name" final kib_per_conn "$("$PY" -c "print(($r1-$r0)/$ok)")"
    fi
    log "[$name] RSS $r0 KiB -> $r1 KiB with $ok idle conns ($failed failed, ${alivec:-?} alive at the end)"
  fi
  stop_pid "$ipid" 10
  stop_pid "$PROXY_PID"
  res "$name" final status ok
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
BUSY_BEFORE=$(helper cpubusy "$PROXY_CPU,$LOAD_CPU" 1)
log "cores busy before start: $BUSY_BEFORE"
if [[ $BUSY_BEFORE =~ ([0-9]+)%.*\ .*=([0-9]+)% ]] && ((BASH_REMATCH[1] > 10 || BASH_REMATCH[2] > 10)); then
  log "warning: cores are not idle (another build running?); numbers will be noisy"
fi

SLUICE_VER="not built ($SLUICE_BIN missing)"
RUN=()   # proxies to measure, in PROXIES order
for p in $PROXIES; do
  case "$p" in
    sluice|nginx|haproxy) ;;
    *) die "unknown proxy in PROXIES: $p" ;;
  esac
  [[ " ${RUN[*]} " == *" $p "* ]] && die "proxy listed twice in PROXIES: $p"
  if [[ $p == sluice ]]; then
    if [[ ! -x $SLUICE_BIN ]]; then
      log "[sluice] $SLUICE_BIN not found: skipped"
      res sluice - status "not built"
      continue
    fi
    SLUICE_VER="$(realpath "$SLUICE_BIN") ($(stat -c '%y' "$(realpath "$SLUICE_BIN")" | cut -d. -f1), sha256 $(sha256sum "$SLUICE_BIN" | cut -c1-12))"
  fi
  RUN+=("$p")
done
N=${#RUN[@]}

# Throughput rounds: every proxy once per round; round r (0-based) starts at RUN[r mod N], so with
# ROUNDS == N every proxy is measured once in every position.
ORDERS=()
for ((r = 0; r < ROUNDS && N > 0; r++)); do
  ORDER=()
  for ((i = 0; i < N; i++)); do ORDER+=("${RUN[(r + i) % N]}"); done
  ORDERS+=("${ORDER[*]}")
  log "=== round $((r + 1))/$ROUNDS: ${ORDER[*]}"
  alive "$UP_PID" || log "warning: upstream nginx is not running"
  for p in "${ORDER[@]}"; do measure_round "$p" $((r + 1)) || ANY_FAIL=1; done
done

# Once per proxy: syscall counts (--strace) and the idle keep-alive memory test.
((N > 0)) && log "=== syscall / memory phase: ${RUN[*]}"
for p in "${RUN[@]}"; do once_per_proxy "$p" || ANY_FAIL=1; done

alive "$UP_PID" || log "warning: upstream nginx died during the run"

META=$WORK/meta.txt
{
  echo "date=$(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "ncpu=$NCPU"
  echo "kernel=$(uname -r)"
  echo "proxy_cpu=$PROXY_CPU"
  echo "load_cpu=$LOAD_CPU"
  echo "wrk_cmd=taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency http://127.0.0.1:<port>/"
  echo "warmup=$WARMUP"
  echo "rounds=$ROUNDS"
  echo "orders=$(IFS=';'; echo "${ORDERS[*]}")"
  echo "elapsed=$SECONDS"
  echo "nginx_ver=$NGINX_VER"
  echo "haproxy_ver=$HAPROXY_VER"
  echo "wrk_ver=$WRK_VER"
  echo "sluice_ver=$SLUICE_VER"
  echo "cmdline=$CMDLINE"
  echo "busy_before=$BUSY_BEFORE"
  echo "idle_conns=$IDLE_CONNS"
  echo "clk_tck=$CLK_TCK"
  echo "strace_secs=$STRACE_SECS"
} >"$META"

mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/e2e-$(date '+%Y-%m-%d-%H%M%S').md
helper report "$RESULTS" "$META" >"$OUT" || die "report generation failed"
cat "$OUT"
log "report written to $OUT"
