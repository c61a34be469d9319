#!/bin/bash
# Runs one stdlib-only Python integration test file against the sluice binary.
# Under `bazel test` the files come from the runfiles tree; by hand it falls back to the
# source tree (then set SLUICE_BIN yourself, or build bazel-bin/source/exe/sluice first).
#   usage: run_py.sh <test_file.py> [unittest args, e.g. ProxyTest.test_head]
set -euo pipefail

test_file="$1"
shift

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  runfiles="${TEST_SRCDIR}/sluice"
  export SLUICE_BIN="${runfiles}/source/exe/sluice"
  test_dir="${runfiles}/test/integration"
else
  test_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fi

# Never write __pycache__ next to the (symlinked) sources.
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
export PYTHONPATH="${test_dir}${PYTHONPATH:+:${PYTHONPATH}}"
exec /usr/bin/python3 "${test_dir}/${test_file}" "$@"
