#!/usr/bin/env bash
# The B2BUA's calls per second (issue: outbound calls and connect), side by side
# with Kamailio's stateful proxy in the same run. SIPp's built-in UAC calls (INVITE
# with SDP, ACK, a call of -d ms, BYE; no media) and SIPp's built-in UAS answers:
#   ours:     UAC -> voipbin serve (a number whose flow is one `connect` to a number
#             routed to the UAS's provider) -> UAS; two call rows per call
#   Kamailio: UAC -> kamailio (tm + rr, every INVITE relayed to the UAS) -> UAS
#
#   benches/b2bua-load.sh [RATE] [SECONDS]    (default 1000 cps for 60 s, 1 s calls)
#
# Prints for each: SIPp's counters and exit status, the proxy's CPU per call and
# peak memory, and for ours the call rows by direction (they must be twice SIPp's
# successful calls) and our CPU per call by thread. VOIPBIN_BIN=path runs another
# build; SKIP_KAMAILIO=1 stops after ours (to compare builds of ours, alternately).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sipp:sip-tester kamailio:kamailio curl:curl python3:python3-minimal
rate=${1:-1000}; secs=${2:-60}; calls=$((rate * secs)); limit=$((rate * 4))
bin=${VOIPBIN_BIN:-target/release/voipbin}
[ -n "${VOIPBIN_BIN:-}" ] || cargo build --release --bin voipbin >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
base=$((30000 + RANDOM % 10000))
api_port=$base; sip_port=$((base + 1)); uas_port=$((base + 2)); kam_port=$((base + 3))
key=bench-admin-key
api=http://127.0.0.1:$api_port/v1.0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pkill -f "kamailio -f $dir" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

# CPU of a process, or of a thread from its /proc/PID/task/TID/stat (/proc/TID/stat
# counts the whole process).
stat_cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{print int(($14+$15)*1000/t)}' "$1"; }
cpu_ms() { stat_cpu_ms "/proc/$1/stat"; }
# CPU of a process and its children (Kamailio forks its workers).
tree_cpu_ms() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(cpu_ms "$p" 2>/dev/null || echo 0))); done
  echo "$total"
}
tree_rss_kb() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(awk '/VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo "$total"
}

# The callee side for both runs: SIPp's own UAS.
(cd "$dir" && exec sipp -sn uas -i 127.0.0.1 -p "$uas_port" -nostdin -buff_size 4194304 >/dev/null 2>&1) &
pids+=("$!")

# run NAME TARGET PID: SIPp's UAC against TARGET while measuring PID's process tree.
run() {
  local name=$1 target=$2 pid=$3 c0 c1 t0 t1 status
  c0=$(tree_cpu_ms "$pid"); t0=$(date +%s.%N)
  set +e
  (cd "$dir" && sipp "$target" -sn uac -s +15551230000 -i 127.0.0.1 -p 0 -r "$rate" -m "$calls" \
    -l "$limit" -d 1000 -timeout $((secs + 120))s -nostdin -buff_size 4194304 \
    -trace_stat -stf "$name.csv" -fd 1 >"$name.out" 2>&1)
  status=$?
  set -e
  t1=$(date +%s.%N); c1=$(tree_cpu_ms "$pid")
  local head last
  head=$(head -n 1 "$dir/$name.csv"); last=$(tail -n 1 "$dir/$name.csv")
  field() { awk -F';' -v want="$1" -v h="$head" 'BEGIN{n=split(h,a,";"); for(i=1;i<=n;i++) if(a[i]==want) c=i} {print $c}' <<<"$last"; }
  local ok failed
  ok=$(field 'SuccessfulCall(C)'); failed=$(field 'FailedCall(C)')
  awk -v n="$name" -v st="$status" -v ok="$ok" -v f="$failed" -v t0="$t0" -v t1="$t1" -v c=$((c1 - c0)) -v rss="$(tree_rss_kb "$pid")" \
    'BEGIN{printf "%s: sipp exit=%d successful=%d failed=%d in %.1f s (%.1f cps); CPU %.1f s, %.0f us per call; peak RSS %d KB\n", n, st, ok, f, t1-t0, ok/(t1-t0), c/1000, (ok>0? c*1000/ok : 0), rss}'
  echo "$ok" >"$dir/$name.ok"
}

# --- Ours ---------------------------------------------------------------------
VOIPBIN_ADMIN_ACCESSKEY=$key RUST_LOG=warn "$bin" serve \
  --http 127.0.0.1:$api_port --sip 127.0.0.1:$sip_port --rtp-ports 20000-49999 \
  --data-dir "$dir/data" --invite-rate 0 --max-outbound-calls 0 >"$dir/server.log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 100); do curl -sf "$api/health" >/dev/null && break; sleep 0.1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
local_provider=$(curl -sf -H "Authorization: Bearer $key" "$api/providers" | json '["result"][0]["id"]')
curl -sf -X PUT -H "Authorization: Bearer $key" "$api/providers/$local_provider" -d "{\"port\":$uas_port}" >/dev/null
curl -sf -H "Authorization: Bearer $key" "$api/customers" \
  -d '{"username":"load","password":"a-long-password","name":"Load"}' >/dev/null
token=$(curl -sf "http://127.0.0.1:$api_port/auth/login" \
  -d '{"username":"load","password":"a-long-password"}' | json '["token"]')
ckey=$(curl -sf -H "Authorization: Bearer $token" "$api/accesskeys" -d '{"name":"load"}' | json '["token"]')
flow=$(curl -sf -H "Authorization: Bearer $ckey" "$api/flows" -d '{"name":"b2bua","actions":[
  {"type":"connect","option":{"source":{"type":"tel","target":"+15550001111"},
   "destinations":[{"type":"tel","target":"+15559990000"}]}}]}' | json '["id"]')
curl -sf -H "Authorization: Bearer $ckey" "$api/numbers" \
  -d "{\"number\":\"+15551230000\",\"call_flow_id\":\"$flow\"}" >/dev/null
echo "$calls calls at $rate cps, 1 s each, no media" >&2
# CPU by thread kind (sip-ua, tokio-rt-worker, media-N as media, sqlx-sqlite-worker, ...),
# before and after, to say where a call's CPU goes.
threads_cpu_ms() {
  local t
  for t in /proc/"$1"/task/*; do
    echo "$(sed 's/-[0-9]*$//' "$t/comm" 2>/dev/null) $(stat_cpu_ms "$t/stat" 2>/dev/null || echo 0)"
  done | awk '{ms[$1]+=$2} END {for (n in ms) print n, ms[n]}'
}
threads_cpu_ms "$pid" >"$dir/threads0"
run voipbin "127.0.0.1:$sip_port" "$pid"
threads_cpu_ms "$pid" >"$dir/threads1"
awk -v ok="$(cat "$dir/voipbin.ok")" 'NR==FNR {before[$1]=$2; next} {d=$2-before[$1]; if (d > 0 && ok > 0) printf "  %-20s %6.0f us per call\n", $1, d*1000/ok}' \
  "$dir/threads0" "$dir/threads1" | sort -k2 -n -r
sleep 3  # the last rows
python3 - "$dir/data/voipbin.db" "$(cat "$dir/voipbin.ok")" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select direction, status, hangup_reason, count(*) from calls group by 1, 2, 3").fetchall()
total = sum(r[3] for r in rows)
print("  call rows: %d (%s); twice SIPp's successful calls: %d" % (total, ", ".join("%s/%s/%s %d" % r for r in rows), 2 * int(sys.argv[2])))
EOF
{ grep -c -i 'error\|warn' "$dir/server.log" || true; } | sed 's/^/  server log warnings+errors: /'
kill "$pid"; wait "$pid" 2>/dev/null || true

# Comparing builds of ours only: no Kamailio run.
[ -n "${SKIP_KAMAILIO:-}" ] && exit 0

# --- Kamailio -----------------------------------------------------------------
mods=$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' -print -quit)")
cat >"$dir/kamailio.cfg" <<EOF
#!KAMAILIO
debug=0
log_stderror=no
children=2
listen=udp:127.0.0.1:$kam_port
mpath="$mods"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK") && t_check_trans()) { t_relay(); }
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  record_route();
  \$du = "sip:127.0.0.1:$uas_port";
  t_relay();
}
EOF
kamailio -f "$dir/kamailio.cfg" -m 2048 -M 64 -D -E -w "$dir" >"$dir/kamailio.log" 2>&1 &
kpid=$!; pids+=("$kpid")
sleep 2
run kamailio "127.0.0.1:$kam_port" "$kpid"
