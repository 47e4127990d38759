#!/usr/bin/env bash
# Measures GET /v1.0/flows/{id} throughput with wrk against a release build on the
# embedded SQLite database. Goal (issue: Foundation): at least 10,000 req/s on a
# 2-core machine, wrk sharing it.
#
#   benches/api-wrk.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages wrk:wrk curl:curl
secs=${1:-15}
conns=${2:-64}
cargo build --release --bin voipbin >&2
dir=$(mktemp -d)
port=$((30000 + RANDOM % 10000))
key=bench-admin-key
VOIPBIN_ADMIN_ACCESSKEY=$key RUST_LOG=warn target/release/voipbin serve \
  --http 127.0.0.1:$port --sip 127.0.0.1:0 --data-dir "$dir" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1.0/health" >/dev/null && break; sleep 0.1; done
flow=$(curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1.0/flows" \
  -d '{"name":"bench","actions":[{"type":"answer"},{"type":"talk","option":{"text":"hello","language":"en-US"}},{"type":"hangup"}]}')
id=$(printf '%s' "$flow" | sed -E 's/^\{"id":"([^"]+)".*/\1/')
echo "flow $id; wrk -t2 -c$conns -d${secs}s" >&2
cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1.0/flows/$id"
cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
tck=$(getconf CLK_TCK)
echo "server CPU: $(( (cpu1 - cpu0) * 1000 / tck )) ms over ${secs} s"
echo "server RSS: $(awk '/VmHWM/{print $2" "$3}' /proc/$pid/status) peak"
