# Sluice: every target runs the setup first (a no-op when everything is installed).
BAZEL ?= bazel
SETUP := tools/setup.sh
# Extra `bazel test` flags, e.g. TEST_FLAGS=--nocache_test_results (CI: run every test).
TEST_FLAGS ?=

.PHONY: setup build run test test-asan unit-test integration-test bench format clean

setup:
	@bash $(SETUP)

build: setup
	$(BAZEL) build //source/exe:sluice

# Builds and starts sluice on its embedded default config (listener 127.0.0.1:8080, admin 9901).
run: build
	@echo "sluice: send a request to http://127.0.0.1:8080/ (admin: http://127.0.0.1:9901/); Ctrl-C stops it"
	./bazel-bin/source/exe/sluice

# All unit and integration tests.
test: setup
	$(BAZEL) test $(TEST_FLAGS) --test_env=SLUICE_TEST_REDIS_PORT //...

# Every test again, built with AddressSanitizer + UndefinedBehaviorSanitizer (.bazelrc
# --config=asan, in its own output tree): the unit tests, the fuzz corpus replays, and the
# integration tests against the sanitized sluice, sluice-cp and sluicectl (any sanitizer report
# on a process's stderr fails its test). Wait deadlines are stretched (SLUICE_TIMEOUT_SCALE);
# tests tagged no-asan are left out (none today: for a measurement that only means something on
# a normal build; streaming_test's RSS bounds hold under ASan too).
# LeakSanitizer suppressions, third-party only: tools/asan/lsan.supp.
ASAN_TEST_ENV := \
	--test_env=ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=1 \
	--test_env=UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	--test_env=LSAN_OPTIONS=suppressions=$(CURDIR)/tools/asan/lsan.supp:print_suppressions=0 \
	--test_env=SLUICE_TIMEOUT_SCALE=3

test-asan: setup
	$(BAZEL) test --config=asan --build_tests_only --test_tag_filters=-no-asan $(TEST_FLAGS) \
	  $(ASAN_TEST_ENV) --test_env=SLUICE_TEST_REDIS_PORT //...

unit-test: setup
	$(BAZEL) test //test/... --test_tag_filters=-integration

integration-test: setup
	$(BAZEL) test --test_env=SLUICE_TEST_REDIS_PORT //test/integration/...

# Micro benchmarks, the end-to-end comparison with nginx and haproxy (3 rotated rounds), the
# same comparison terminating TLS (keep-alive HTTPS, full and resumed handshakes, memory per idle
# TLS connection), the same four-way with nghttpx terminating HTTP/2 (h2c to HTTP/1.1 and to h2c
# upstreams, memory per idle HTTP/2 connection), the deterministic user-space instruction count per proxied request, the
# auth, transformation and http_log filters' cost per request, the response cache's hits
# against nginx proxy_cache's, and the
# dynamic-configuration benchmark (apply -> live, p99 during config swaps, sluice-cp with 200
# ADS streams), and sluice-cp's pushes to 200 proxyless gRPC streams next to 200 data-plane
# streams (about 30 s).
bench: setup
	$(BAZEL) build //test/benchmark/... //source/exe:sluice //source/control_plane:sluice-cp //source/cli:sluicectl
	@for b in bazel-bin/test/benchmark/*_benchmark; do echo "== $$b"; $$b --benchmark_min_time=0.2; done
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice tools/bench/e2e.sh
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/tls_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/h2_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice tools/bench/instructions.sh
	@echo "== tracing: every request sampled and exported over OTLP"
	TRACING=1 SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice tools/bench/instructions.sh 20000
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/auth_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/transform_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/cache_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/log_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/resilience_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice /usr/bin/python3 tools/bench/rate_limit_bench.py
	SLUICE_BIN=$(CURDIR)/bazel-bin/source/exe/sluice \
	  SLUICE_CP_BIN=$(CURDIR)/bazel-bin/source/control_plane/sluice-cp \
	  SLUICECTL_BIN=$(CURDIR)/bazel-bin/source/cli/sluicectl \
	  /usr/bin/python3 tools/bench/xds_bench.py
	SLUICE_CP_BIN=$(CURDIR)/bazel-bin/source/control_plane/sluice-cp \
	  SLUICECTL_BIN=$(CURDIR)/bazel-bin/source/cli/sluicectl \
	  /usr/bin/python3 tools/bench/mesh_bench.py

format:
	find source test -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	$(BAZEL) clean
