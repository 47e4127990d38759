#!/usr/bin/env bash
# The media relay against its peer (issue: outbound calls and connect, "the relay
# against its peer"): the same generator (media-engine's rtp-load example: N bridged
# G.711 calls, each leg's peer sending 50 packets/s) relays the calls three ways in
# one run, and prints each one's loss, jitter and CPU per relayed packet:
#   bare:      a plain recv/send loop (the kernel's floor on this machine)
#   voipbin:   our media engine's bridge
#   rtpengine: Debian's rtpengine-daemon in userspace mode (no kernel module),
#              each call set up over its ng control protocol
#
#   benches/relay-compare.sh [CALLS] [SECONDS] [ROUNDS]
#                                (default 2000 calls, 20 s a run, 3 rounds)
#
# This VM's CPU per packet drifts by 10-15% from one run to the next (the generator
# and the relay share two cores), so the bare loop and our engine run alternately,
# ROUNDS times each, and the medians (and the median of each round's ratio) are
# compared; rtpengine runs once, after them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages rtpengine:rtpengine-daemon
calls=${1:-2000}; secs=${2:-20}; rounds=${3:-3}
cargo build --release -p media-engine --example rtp-load >&2
tool=target/release/examples/rtp-load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
ng_port=$((22000 + RANDOM % 1000))
rtpe_pid=
cleanup() { [ -n "$rtpe_pid" ] && kill "$rtpe_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

line() { grep -E '^calls=' "$1"; }
field() { sed -E "s/.*$2=([0-9.]+).*/\1/" <<<"$1"; }

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for round in $(seq "$rounds"); do
  echo "== round $round: bare recv/send loop ($calls calls, $secs s)"
  "$tool" --calls "$calls" --seconds "$secs" --bare | tee "$dir/bare.$round.txt"
  echo "== round $round: voipbin media engine"
  "$tool" --calls "$calls" --seconds "$secs" | tee "$dir/engine.$round.txt"
  b=$(line "$dir/bare.$round.txt"); e=$(line "$dir/engine.$round.txt")
  echo "$(field "$b" relay_cpu_us_per_pkt)" >>"$dir/bare.cpu"
  echo "$(field "$e" relay_cpu_us_per_pkt)" >>"$dir/engine.cpu"
  awk -v e="$(field "$e" relay_cpu_us_per_pkt)" -v b="$(field "$b" relay_cpu_us_per_pkt)" \
    'BEGIN{printf "%.3f\n", e/b}' >>"$dir/ratio"
  # The loss columns below are the worst round's.
  echo "$(field "$b" loss_pct)" >>"$dir/bare.loss"
  echo "$(field "$e" loss_pct)" >>"$dir/engine.loss"
done

echo "== rtpengine $(rtpengine --version 2>&1 | awk '/Version/{print $2}') (userspace)"
# Its ports sit below Linux's ephemeral range (32768-60999), where the generator's
# own sockets are.
rtpengine --table=-1 --interface=127.0.0.1 --listen-ng="127.0.0.1:$ng_port" \
  --port-min=10000 --port-max=$((10000 + calls * 4 + 100)) --foreground --log-stderr \
  --log-level=3 --num-threads=2 --pidfile="$dir/rtpengine.pid" 2>"$dir/rtpengine.log" &
rtpe_pid=$!
for _ in $(seq 50); do
  grep -q "Startup complete" "$dir/rtpengine.log" 2>/dev/null && break
  # log-level 3 hides the startup line: probe the control port instead.
  python3 - "$ng_port" <<'EOF' 2>/dev/null && break
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
s.sendto(b"p d7:command4:pinge", ("127.0.0.1", int(sys.argv[1])))
s.recvfrom(100)
EOF
  sleep 0.1
done
"$tool" --calls "$calls" --seconds "$secs" --via rtpengine --ng "127.0.0.1:$ng_port" \
  --relay-pid "$rtpe_pid" | tee "$dir/rtpengine.txt"
rss=$(awk '/VmHWM/{print $2}' "/proc/$rtpe_pid/status")
echo "rtpengine peak RSS: $rss KiB ($(awk -v r="$rss" -v c="$calls" 'BEGIN{printf "%.1f", r/(2*c)}') KiB per leg, incl. its baseline)"

r=$(line "$dir/rtpengine.txt")
be=$(median <"$dir/bare.cpu"); ee=$(median <"$dir/engine.cpu"); re=$(field "$r" relay_cpu_us_per_pkt)
echo
echo "== summary: CPU per relayed packet (us; median of $rounds rounds for bare and voipbin), worst loss (%)"
printf '%-10s %8s %8s   %s\n' relay cpu_us loss_pct rounds
printf '%-10s %8s %8s   %s\n' bare "$be" "$(sort -g "$dir/bare.loss" | tail -1)" "$(paste -sd' ' "$dir/bare.cpu")"
printf '%-10s %8s %8s   %s\n' voipbin "$ee" "$(sort -g "$dir/engine.loss" | tail -1)" "$(paste -sd' ' "$dir/engine.cpu")"
printf '%-10s %8s %8s\n' rtpengine "$re" "$(field "$r" loss_pct)"
awk -v e="$ee" -v b="$be" -v r="$re" -v rr="$(median <"$dir/ratio")" 'BEGIN{
  printf "voipbin / bare = %.2f (median of the rounds\x27 ratios %.2f; goal <= 1.15); voipbin / rtpengine = %.2f (goal <= 1)\n", e/b, rr, e/r }'
