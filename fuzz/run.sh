#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) on this stable toolchain
# (cargo-fuzz needs RUSTC_BOOTSTRAP=1 for -Z flags) and prints the execution counts.
#   cargo install cargo-fuzz --locked; fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
export RUSTC_BOOTSTRAP=1
for target in sip_message sdp transactions user_agent; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
    echo "$target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
  else
    echo "$target: FAILED (crash or error); see $log"
    tail -n 30 "$log"
    exit 1
  fi
done
