#!/bin/bash
# Replays the checked-in corpus through the fuzz target (a regression test for every input
# that ever crashed or was interesting).
set -euo pipefail
bin="$1"
dir="$(dirname "$0")/corpus/http1"
[[ -d "$TEST_SRCDIR/sluice/tools/fuzz/corpus/http1" ]] && dir="$TEST_SRCDIR/sluice/tools/fuzz/corpus/http1"
"$bin" "$dir"/*
