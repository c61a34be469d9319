#!/usr/bin/env bash
# Installs every Debian package that Sluice's build, tests and benches need.
# Idempotent: when everything is present it only runs one dpkg-query (well under a second).
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java pkg-config g++ make clang-format
  # fuzzing (bazel build --config=fuzz): clang with the libFuzzer runtime
  clang libclang-rt-14-dev
  # libraries
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev libevent-dev node-llhttp libnghttp2-dev libssl-dev libc-ares-dev
  libre2-dev libyaml-cpp-dev libhiredis-dev libspdlog-dev libfmt-dev rapidjson-dev
  # tests and benches
  libgtest-dev libgmock-dev libbenchmark-dev
  curl wrk nghttp2-client nginx-light haproxy redis-server python3 procps strace valgrind linux-perf
  openssl
  # HTTP/2: raw frames for the attack tests (python3-h2), nghttpx for the h2 bench
  python3-h2 nghttp2-proxy
  # Python gRPC clients of sluice-cp in tests (stubs generated with grpc_python_plugin)
  python3-grpcio python3-protobuf
  # Independent JWT/JWS implementation for the auth integration tests and bench
  python3-jwt python3-cryptography
  # JSON Schema draft 4 conformance cases for request_validator (and the draft-04 meta-schema
  # they reference, python3-jsonschema's copy)
  json-schema-test-suite python3-jsonschema
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
readarray -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx/haproxy/redis as services on install; tests run their own copies.
for svc in nginx haproxy redis-server; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
