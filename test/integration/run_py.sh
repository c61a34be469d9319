#!/bin/bash
# Runs one stdlib-only Python integration test file against the sluice binary (and, for the
# control-plane tests, sluice-cp and sluicectl).
# Under `bazel test` the files come from the runfiles tree; by hand it falls back to the
# source tree (then set SLUICE_BIN yourself, or build bazel-bin/source/exe/sluice first;
# cp_harness.py likewise reads SLUICE_CP_BIN and SLUICECTL_BIN, defaulting to bazel-bin).
#   usage: run_py.sh <test_file.py> [unittest args, e.g. ProxyTest.test_head]
set -euo pipefail

test_file="$1"
shift

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  runfiles="${TEST_SRCDIR}/sluice"
  export SLUICE_BIN="${runfiles}/source/exe/sluice"
  # Present only for the tests that list them as data.
  if [[ -x "${runfiles}/source/control_plane/sluice-cp" ]]; then
    export SLUICE_CP_BIN="${runfiles}/source/control_plane/sluice-cp"
  fi
  if [[ -x "${runfiles}/source/cli/sluicectl" ]]; then
    export SLUICECTL_BIN="${runfiles}/source/cli/sluicectl"
  fi
  test_dir="${runfiles}/test/integration"
else
  test_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fi

# Never write __pycache__ next to the (symlinked) sources.
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
export PYTHONPATH="${test_dir}${PYTHONPATH:+:${PYTHONPATH}}"
exec /usr/bin/python3 "${test_dir}/${test_file}" "$@"
