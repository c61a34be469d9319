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

# Envoy's xDS v3 protos (sluice-cp's proxyless gRPC mesh, docs/mesh.md): the npm package
# @grpc/grpc-js-xds ships the Envoy, xds/udpa and protoc-gen-validate .proto trees; only its
# deps/ folder is used (no JavaScript), at a pinned version, in a folder named after it that
# WORKSPACE's envoy_api repository points at (bazel/envoy_api.bzl).
GRPC_JS_XDS_VERSION=1.14.1
ENVOY_PROTO_DIR=/usr/local/share/sluice/grpc-js-xds-${GRPC_JS_XDS_VERSION}

install_envoy_protos() {
  [ -f "$ENVOY_PROTO_DIR/.complete" ] && return 0
  command -v npm >/dev/null || {
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  }
  local tmp
  tmp=$(mktemp -d)
  echo "setup: installing @grpc/grpc-js-xds@${GRPC_JS_XDS_VERSION} protos in $ENVOY_PROTO_DIR" >&2
  # npm pack: the package's own tarball, checked against the registry's integrity hash, without
  # its JavaScript dependencies.
  (cd "$tmp" && npm pack --silent "@grpc/grpc-js-xds@${GRPC_JS_XDS_VERSION}" >/dev/null)
  $SUDO rm -rf "$ENVOY_PROTO_DIR"
  $SUDO mkdir -p "$ENVOY_PROTO_DIR"
  $SUDO tar -xzf "$tmp"/grpc-grpc-js-xds-"${GRPC_JS_XDS_VERSION}".tgz -C "$ENVOY_PROTO_DIR" \
    --strip-components=1 package/deps package/package.json
  rm -rf "$tmp"
  $SUDO touch "$ENVOY_PROTO_DIR/.complete"
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_envoy_protos
  exit 0
fi
readarray -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx/haproxy/redis as services on install; tests run their own copies.
for svc in nginx haproxy redis-server; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
install_envoy_protos
