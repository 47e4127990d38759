#!/usr/bin/env bash
# Answering machine detection on the labelled set in tests/amd/ (100 calls made by
# tests/amd/make-set.sh): accuracy, the confusion matrix, time to a verdict (ms of
# audio), how long after its start each beep was recognised, and the detectors'
# CPU per 20 ms frame (the whole test process's CPU time, reading and decoding
# the files included, over the frames fed: an upper bound). Goal (issue: call
# audio to the outside world): at least 90% right, notsure under 10%, every beep
# within 300 ms.
#
#   benches/amd-accuracy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo test --release -p media-engine --test amd_set --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*amd_set[^"]*\)".*/\1/p' | tail -1)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
(cd media-engine && /usr/bin/time -f "%U %S" -o "$out" "$bin" --nocapture) | grep -v "^$\|^running\|^test result\|^test "
bytes=$(cat tests/amd/set/*.ul | wc -c)
frames=$((bytes / 160))
read -r user sys < "$out"
awk -v u="$user" -v s="$sys" -v f="$frames" \
  'BEGIN { printf "  CPU: %.2f s for %d frames (%.1f h of calls): %.1f us per frame, the test binary start and file reads included\n", u + s, f, f * 0.02 / 3600, (u + s) * 1e6 / f }'
