#!/usr/bin/env bash
# Deterministic cost of a proxied request: user-space instructions per request, counted by
# valgrind (callgrind) over a fixed number of keep-alive requests. Unlike timings on a shared
# VM, the count repeats to within ~1% run to run, so it shows what a code change costs.
#
#   tools/bench/instructions.sh [N]        # default N=40000 requests over 16 connections
#   SLUICE_BIN=... KEEP=1 tools/bench/instructions.sh
#   TRACING=1 tools/bench/instructions.sh    # W3C tracing on: every request sampled, its span
#                                            # exported over OTLP/HTTP (to the nginx upstream)
#   TRACING=0 ...                            # tracing configured, sample_rate 0
#   TRACEPARENT=1 ...                        # requests carry a sampled traceparent
#
# Kernel work (TCP, syscalls) is not counted: see e2e.sh for whole-process CPU per request.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-40000}
BIN=${SLUICE_BIN:-$PWD/bazel-bin/source/exe/sluice}
[[ -x $BIN ]] || { echo "sluice not built: $BIN (make build)" >&2; exit 1; }
for tool in valgrind callgrind_annotate h2load nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool (tools/setup.sh)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/sluice-instr.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { return 200 "hello\n"; } }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
port=$(free_port)
tracing=""
case ${TRACING:-} in
  1) tracing=", tracing: {sample_rate: 1.0, otlp_endpoint: \"http://127.0.0.1:$up/v1/traces\"}" ;;
  0) tracing=", tracing: {sample_rate: 0.0, otlp_endpoint: \"http://127.0.0.1:$up/v1/traces\"}" ;;
esac
headers=()
[[ ${TRACEPARENT:-0} == 1 ]] && headers=(-H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
cat >"$work/bootstrap.yaml" <<CONF
admin: {address: 127.0.0.1, port: 0}
concurrency: 1
static_resources:
  listeners:
  - {name: bench, address: {host: 127.0.0.1, port: $port}, route_table: bench$tracing}
  route_tables:
  - name: bench
    virtual_hosts:
    - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: upstream}}]}
  clusters:
  - {name: upstream, endpoints: [{address: 127.0.0.1, port: $up}]}
CONF
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$BIN" -c "$work/bootstrap.yaml" \
  >"$work/sluice.log" 2>&1 &
vpid=$!
pids+=($vpid)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.2
done
# Startup is counted once; measure it with a short run and subtract.
h2load --h1 -n 1000 -c 16 "${headers[@]}" "http://127.0.0.1:$port/" >/dev/null
callgrind_control -d "$vpid" >/dev/null 2>&1 || true
h2load --h1 -n "$N" -c 16 "${headers[@]}" "http://127.0.0.1:$port/" | grep -E '^requests:'
kill -TERM "$vpid"
wait "$vpid" 2>/dev/null || true
# callgrind.out.1 is the dump after the warm-up (startup + 1,000 requests); callgrind.out is
# everything after it: the N measured requests (plus a negligible shutdown).
measured=$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "instructions per proxied request (user space): $((measured / N))"
