#!/usr/bin/env bash
# Builds two revisions under build-ab/REV (once each; a git worktree and a
# default build) and measures them against each other with
# tests/bench/ab.py, in alternating pairs (BENCH_PAIRS, BENCH_SECONDS,
# BENCH_ROWS to keep only some rows).
#   scripts/bench-ab.sh REV_A REV_B
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 REV_A REV_B" >&2; exit 2; }
root=$(git rev-parse --show-toplevel)
dirs=()
for rev in "$1" "$2"; do
  sha=$(git -C "$root" rev-parse --short=12 "$rev^{commit}")
  dir="$root/build-ab/$sha"
  if [ ! -x "$dir/build/profiled" ]; then
    rm -rf "$dir"
    git -C "$root" worktree add --detach -f "$dir" "$sha" >/dev/null
    cmake -S "$dir" -B "$dir/build" >/dev/null
    cmake --build "$dir/build" -j"$(nproc)" --target profiled profile-gateway profilectl profile-kafka-broker >/dev/null
  fi
  dirs+=("$dir/build")
done
PROFILE_BUILD="$root/build" python3 "$root/tests/bench/ab.py" "${dirs[@]}"
