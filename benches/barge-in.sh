#!/usr/bin/env bash
# Barge-in on the wire (issue: call audio to the outside world): a media_stream
# client's prompt to a SIPp caller, interrupted 20 times by the caller's "hello";
# the client sends `clear` on `speech_started`. Prints the distribution from the
# caller's first speech packet to speech_started at the client and to the prompt's
# last frame at the caller, and holds the latter's p95 to 50 ms (or $1). Release
# build, run alone (in the test suite it shares two cores with everything else).
#
#   benches/barge-in.sh [P95_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
BARGE_IN_P95_MS=${1:-50} cargo test --release --test sip barge_in -- --nocapture 2>&1 \
  | grep -E "^barge-in|^test |panicked|p95"
