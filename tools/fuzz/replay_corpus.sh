#!/bin/bash
# Replays the checked-in corpus through the fuzz target (a regression test for every input
# that ever crashed or was interesting). Fails when the corpus directory is missing or holds no
# files: a test that replayed nothing must not pass.
#   usage: replay_corpus.sh FUZZER [CORPUS]   (CORPUS: the folder under corpus/, default http1)
set -euo pipefail
bin="$1"
corpus="${2:-http1}"
dir="$(dirname "$0")/corpus/$corpus"
if [[ -n "${TEST_SRCDIR:-}" && -d "$TEST_SRCDIR/sluice/tools/fuzz/corpus/$corpus" ]]; then
  dir="$TEST_SRCDIR/sluice/tools/fuzz/corpus/$corpus"
fi
if [[ ! -d "$dir" ]]; then
  echo "replay_corpus: no corpus directory $dir" >&2
  exit 1
fi
files=()
for f in "$dir"/* "$dir"/.[!.]*; do
  [[ -f "$f" ]] && files+=("$f")
done
if (( ${#files[@]} == 0 )); then
  echo "replay_corpus: corpus directory $dir has no files" >&2
  exit 1
fi
echo "replay_corpus: ${#files[@]} input(s) from $dir"
"$bin" "${files[@]}"
