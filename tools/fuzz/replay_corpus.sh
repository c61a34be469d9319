#!/bin/bash
# Replays the checked-in corpus through the fuzz target (a regression test for every input
# that ever crashed or was interesting).
set -euo pipefail
bin="$1"
corpus="${2:-http1}"  # the folder under corpus/
dir="$(dirname "$0")/corpus/$corpus"
[[ -d "$TEST_SRCDIR/sluice/tools/fuzz/corpus/$corpus" ]] && dir="$TEST_SRCDIR/sluice/tools/fuzz/corpus/$corpus"
"$bin" "$dir"/*
