#!/usr/bin/env bash
# Load on the example UAS (issue: sip-stack): SIPp's built-in `uac` scenario (INVITE,
# 100, 200, ACK, BYE, 200; no media) at a fixed rate against our UAS, then against
# SIPp's own UAS (`sipp -sn uas`) in the same rig, and the CPU each UAS spent per
# call (from /proc utime+stime), the failed calls and the UAS's peak RSS.
#
#   benches/sip-uas-load.sh [RATE] [SECONDS]     (default 8000 cps for 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sipp:sip-tester
rate=${1:-8000}
secs=${2:-20}
calls=$((rate * secs))
cargo build --release -p sip-stack --example uas >&2
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{print int(($14+$15)*1000/t)}' "/proc/$1/stat"; }

# run NAME UAS_PID PORT: drive $calls calls at $rate cps, print one line of figures.
run() {
  local name=$1 pid=$2 port=$3
  local c0; c0=$(cpu_ms "$pid")
  local t0; t0=$(date +%s.%N)
  set +e
  sipp "127.0.0.1:$port" -sn uac -i 127.0.0.1 -p 0 -cp 0 -mp 0 -r "$rate" -m "$calls" -l $((rate * 4)) \
    -timeout $((secs * 3))s -nostdin -buff_size 4194304 -trace_stat -stf "$dir/$name.csv" -fd 1 >"$dir/$name.out" 2>&1
  local status=$?
  set -e
  local t1; t1=$(date +%s.%N)
  local c1; c1=$(cpu_ms "$pid")
  local last; last=$(tail -n 1 "$dir/$name.csv")
  local head; head=$(head -n 1 "$dir/$name.csv")
  field() { awk -F';' -v want="$1" -v h="$head" 'BEGIN{n=split(h,a,";"); for(i=1;i<=n;i++) if(a[i]==want) c=i} {print $c}' <<<"$last"; }
  local ok; ok=$(field 'SuccessfulCall(C)')
  local failed; failed=$(field 'FailedCall(C)')
  local retrans; retrans=$(field 'Retransmissions(C)')
  local rss; rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  awk -v n="$name" -v ok="$ok" -v f="$failed" -v r="$retrans" -v c=$((c1 - c0)) -v t0="$t0" -v t1="$t1" -v rss="$rss" -v st="$status" \
    'BEGIN{printf "%s: sipp_exit=%d successful=%d failed=%d retransmissions=%d cps=%.0f uas_cpu_us_per_call=%.1f uas_peak_rss_kb=%d\n", n, st, ok, f, r, ok/(t1-t0), (ok>0? c*1000/ok : 0), rss}'
}

target/release/examples/uas --listen 127.0.0.1:25160 2>"$dir/uas.log" &
ours=$!
sleep 0.5
run voipbin-uas "$ours" 25160
kill "$ours"

sipp -sn uas -i 127.0.0.1 -p 25170 -cp 0 -mp 0 -nostdin -bg >/dev/null 2>&1 || true
sleep 0.5
theirs=$(pgrep -f 'sipp -sn uas -i 127.0.0.1 -p 25170' | head -n 1)
run sipp-uas "$theirs" 25170
kill "$theirs" 2>/dev/null || true
