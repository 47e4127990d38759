#!/usr/bin/env bash
# The kernel's floor for relaying RTP on this machine's loopback (issue: media-engine):
# CPU per UDP send and receive of an RTP-sized datagram, with no relay at all. Compare
# with `cargo run --release -p media-engine --example rtp-load -- --calls N --seconds S`
# and its `--bare` mode. Needs a C compiler (gcc or cc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${CC:-cc}" -O2 -o "$out/loopback-floor" "$here/loopback-floor.c"
"$out/loopback-floor"
