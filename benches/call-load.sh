#!/usr/bin/env bash
# Calls through the whole platform under load (issue: the first real call): SIPp plays
# the carrier (sipp-scenarios/uac_flow_load.xml: INVITE with SDP, ACK, then the
# caller talks with rtp_stream until the platform's BYE) against a release build of
# `voipbin serve` on its embedded SQLite, with a flow of answer, play, hangup.
#
#   benches/call-load.sh cps [RATE] [SECONDS]          (default 500 cps for 60 s; 1 s play)
#   benches/call-load.sh concurrent [CALLS] [SECONDS]  (default 1000 calls of a 60 s play)
#   benches/call-load.sh overload [RATE] [SECONDS]     (default 1200 cps for 30 s of the cps
#                                                      flow: more than this box carries;
#                                                      admitted calls must complete, the
#                                                      rest get 503, and how fast is shown)
#   benches/call-load.sh talk [RATE] [SECONDS]         (default 500 cps for 60 s: answer, a
#                                                      `talk` of one sentence (espeak-ng,
#                                                      cached), hangup; SIPp echoes RTP)
#   benches/call-load.sh bridged [CALLS] [SECONDS]     (default 1000 calls of 60 s, each a
#                                                      `connect` to a second SIPp, the callee
#                                                      (sipp-scenarios/uas_connect_callee.xml),
#                                                      which echoes the caller's RTP back and
#                                                      hangs up after SECONDS: RTP both ways
#                                                      through the bridge)
#
# VOIPBIN_BIN=path runs another build of the server (an older commit's, to compare).
#
# With CALL_LOAD_WIRE=1 tcpdump captures the SIP port and the latencies are printed a
# second time as the kernel saw them on the wire (benches/sip_wire_latency.py): SIPp's
# own figures include how late its event loop read each answer.
#
# With CALL_LOAD_WEBHOOK=<url> the customer's events go there as webhooks, and the
# script waits for the outbox to drain and says how long it took.
#
# Prints SIPp's counters and exit status, the call rows in the database by status and
# reason (they must equal SIPp's successful calls), the RTP totals from the rows'
# rtp_stats (what the platform received from SIPp, and lost), and the CPU and peak
# memory of the server and of SIPp. SIPp never reads the RTP sent to its rtp_stream
# sockets: the kernel drops it there, so the platform's side is what is counted.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sipp:sip-tester sox:sox curl:curl python3:python3-minimal
mode=${1:-cps}
case $mode in
  cps) rate=${2:-500}; secs=${3:-60}; calls=$((rate * secs)); play=1; limit=$((rate * 6)) ;;
  concurrent) calls=${2:-1000}; play=${3:-60}; rate=100; limit=$calls ;;
  overload) rate=${2:-1200}; secs=${3:-30}; calls=$((rate * secs)); play=1; limit=$((rate * 6)) ;;
  talk) rate=${2:-500}; secs=${3:-60}; calls=$((rate * secs)); play=2; limit=$((rate * 6)) ;;
  bridged) calls=${2:-1000}; play=${3:-60}; rate=50; limit=$calls ;;
  *) echo "usage: $0 cps|overload|talk [RATE] [SECONDS] | concurrent|bridged [CALLS] [SECONDS]" >&2; exit 2 ;;
esac
bin=${VOIPBIN_BIN:-target/release/voipbin}
[ -n "${VOIPBIN_BIN:-}" ] || cargo build --release --bin voipbin >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
api_port=$((30000 + RANDOM % 10000))
sip_port=$((api_port + 1))
key=bench-admin-key
api=http://127.0.0.1:$api_port/v1.0

# What the caller says (SIPp's rtp_stream takes raw mu-law).
sox -n -r 8000 -c 1 -t ul "$dir/caller.ul" synth 3 sine 440 vol 0.3

VOIPBIN_ADMIN_ACCESSKEY=$key RUST_LOG=warn "$bin" serve \
  --http 127.0.0.1:$api_port --sip 127.0.0.1:$sip_port --rtp-ports 20000-39999 \
  --data-dir "$dir/data" --invite-rate 0 --max-outbound-calls 0 >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "$api/health" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -H "Authorization: Bearer $key" "$api/customers" \
  -d '{"username":"load","password":"a-long-password","name":"Load"}' >/dev/null
token=$(curl -sf "http://127.0.0.1:$api_port/auth/login" \
  -d '{"username":"load","password":"a-long-password"}' | json '["token"]')
ckey=$(curl -sf -H "Authorization: Bearer $token" "$api/accesskeys" -d '{"name":"load"}' | json '["token"]')
# The prompt the flow plays: the customer's own media, under media/<customer id>/.
cid=$(curl -sf -H "Authorization: Bearer $ckey" "$api/customer" | json '["id"]')
mkdir -p "$dir/data/media/$cid/prompts"
sox -n -r 8000 -c 1 -b 16 "$dir/data/media/$cid/prompts/prompt.wav" synth "$play" sine 1000 vol 0.3
if [ "$mode" = talk ]; then
  actions='[{"type":"answer"},{"type":"talk","option":{"text":"Thank you for calling.","language":"en-US"}},{"type":"hangup"}]'
elif [ "$mode" = bridged ]; then
  actions='[{"type":"connect","option":{"source":{"type":"tel","target":"+15550001111"},"destinations":[{"type":"tel","target":"+15559990000"}]}},{"type":"hangup"}]'
  # The callee: the `local` provider (127.0.0.1) takes the numbers out to a second
  # SIPp, which answers, echoes what it hears (-rtp_echo on its media port) and
  # hangs up after the call's length.
  uas_port=$((sip_port + 2)); echo_port=41000
  local_provider=$(curl -sf -H "Authorization: Bearer $key" "$api/providers" | json '["result"][0]["id"]')
  curl -sf -X PUT -H "Authorization: Bearer $key" "$api/providers/$local_provider" -d "{\"port\":$uas_port}" >/dev/null
  (cd "$dir" && exec sipp -sf "$OLDPWD/sipp-scenarios/uas_connect_callee.xml" -i 127.0.0.1 -mi 127.0.0.1 \
    -p "$uas_port" -mp "$echo_port" -rtp_echo -set rtpport "$echo_port" -d $((play * 1000)) \
    -l "$calls" -nostdin -buff_size 4194304 >uas.out 2>&1) &
  uas_job=$!
  trap 'kill $uas_job 2>/dev/null || true; pkill -f "uas_connect_callee.xml -i 127.0.0.1" 2>/dev/null || true; kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
else
  actions='[{"type":"answer"},{"type":"play","option":{"stream_urls":["prompts/prompt.wav"]}},{"type":"hangup"}]'
fi
flow=$(curl -sf -H "Authorization: Bearer $ckey" "$api/flows" -d "{\"name\":\"load\",\"actions\":$actions}" | json '["id"]')
curl -sf -H "Authorization: Bearer $ckey" "$api/numbers" \
  -d "{\"number\":\"+15550000001\",\"call_flow_id\":\"$flow\"}" >/dev/null
if [ -n "${CALL_LOAD_WEBHOOK:-}" ]; then
  curl -sf -X PUT -H "Authorization: Bearer $ckey" "$api/customer" \
    -d "{\"webhook_uri\":\"$CALL_LOAD_WEBHOOK\",\"webhook_method\":\"POST\",\"webhook_secret\":\"s\"}" >/dev/null
fi

cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{print int(($14+$15)*1000/t)}' "/proc/$1/stat"; }
case $mode in
  talk) what='a sentence of TTS' ;;
  bridged) what="a ${play} s connect, RTP both ways" ;;
  *) what="a ${play} s play" ;;
esac
echo "$mode: $calls calls at $rate cps ($what each)" >&2
if [ -n "${CALL_LOAD_WIRE:-}" ]; then
  ensure_packages tcpdump:tcpdump
  # Only INVITEs in and 180s and 503s out (the first four bytes of the payload, then
  # the status code): the capture must not take the CPU it measures.
  tcpdump -i lo -n -s 1500 -w "$dir/sip.pcap" \
    "(udp dst port $sip_port and udp[8:4] = 0x494e5649) or (udp src port $sip_port and udp[8:4] = 0x5349502f and (udp[16:4] = 0x31383020 or udp[16:4] = 0x35303320))" \
    2>"$dir/tcpdump.log" &
  tcpdump_pid=$!
  trap 'kill $tcpdump_pid 2>/dev/null || true; kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
  sleep 1
fi
# UDP datagrams the kernel dropped because a socket's receive buffer was full (for
# the whole host: SIPp's sockets and ours alike).
rcvbuf_errors() { awk '/^Udp: [0-9]/{print $6}' /proc/net/snmp; }
drops0=$(rcvbuf_errors)
c0=$(cpu_ms $pid); t0=$(date +%s.%N)
set +e
scenario=uac_flow_load.xml
[ "$mode" = overload ] && scenario=uac_flow_overload.xml
(cd "$dir" && sipp "127.0.0.1:$sip_port" -sf "$OLDPWD/sipp-scenarios/$scenario" -s +15550000001 \
  -i 127.0.0.1 -mi 127.0.0.1 -p 0 -cp 0 -mp 40000 -r "$rate" -m "$calls" -l "$limit" \
  -timeout $((calls / rate + play + 120))s -nostdin -buff_size 4194304 \
  -trace_stat -stf stats.csv -fd 1 -trace_rtt -rtt_freq 1 $([ "$mode" = talk ] && echo -rtp_echo) >sipp.out 2>&1) &
sipp_job=$!
sleep 1
sipp_pid=$(pgrep -n -x sipp || true)
peak=0; sipp_cpu=0
if [ "$mode" = concurrent ] || [ "$mode" = bridged ]; then
  # Sample the server's CPU over 20 s of the steady state (every call set up).
  sleep $((calls / rate + 5))
  s0=$(cpu_ms $pid); p0=$(cpu_ms "$sipp_pid"); w0=$(date +%s.%N)
  sleep 20
  s1=$(cpu_ms $pid); p1=$(cpu_ms "$sipp_pid"); w1=$(date +%s.%N)
  live=$(python3 -c "import sqlite3; print(sqlite3.connect('$dir/data/voipbin.db').execute(\"select count(*) from calls where status='progressing'\").fetchone()[0])")
  rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  awk -v l="$live" -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v w0="$w0" -v w1="$w1" -v rss="$rss" \
    'BEGIN{w=w1-w0; printf "steady state: %d calls live; server %.1f%% of a core (%.0f us/s per call), RSS %d KB (%.1f KB per call); SIPp %.1f%% of a core\n", l, s/w/10, (l>0? s*1000/w/l : 0), rss, (l>0? rss/l : 0), p/w/10}'
fi
while kill -0 "$sipp_pid" 2>/dev/null; do
  c=$(cpu_ms "$sipp_pid" 2>/dev/null || echo "$sipp_cpu"); sipp_cpu=$c; sleep 1
done
wait $sipp_job; status=$?
set -e
t1=$(date +%s.%N); c1=$(cpu_ms $pid)
sleep 2  # the last rows are written as the calls end
head=$(head -n 1 "$dir/stats.csv"); last=$(tail -n 1 "$dir/stats.csv")
field() { awk -F';' -v want="$1" -v h="$head" 'BEGIN{n=split(h,a,";"); for(i=1;i<=n;i++) if(a[i]==want) c=i} {print $c}' <<<"$last"; }
ok=$(field 'SuccessfulCall(C)'); failed=$(field 'FailedCall(C)'); retrans=$(field 'Retransmissions(C)')
awk -v st="$status" -v ok="$ok" -v f="$failed" -v r="$retrans" -v t0="$t0" -v t1="$t1" -v c=$((c1 - c0)) -v sc="$sipp_cpu" \
  -v rss="$(awk '/VmHWM/{print $2}' /proc/$pid/status)"\
  'BEGIN{printf "sipp: exit=%d successful=%d failed=%d (%.3f%%) retransmissions=%d in %.1f s, the last call included (%.1f cps)\nserver: CPU %.1f s (%.0f us per call), peak RSS %d KB; SIPp CPU %.1f s\n", st, ok, f, (ok+f>0? f*100/(ok+f) : 0), r, t1-t0, ok/(t1-t0), c/1000, (ok>0? c*1000/ok : 0), rss, sc/1000}'
# How long the 180 and the 200 took from the INVITE (SIPp's rtd 1 and 2, every call).
python3 - "$dir" <<'EOF'
import glob, sys
times = {"1": [], "2": [], "3": []}
for path in glob.glob(sys.argv[1] + "/*_rtt.csv"):
    for line in open(path):
        parts = line.strip().split(";")
        if len(parts) >= 3 and parts[2] in times:
            try:
                times[parts[2]].append(float(parts[1]))
            except ValueError:
                pass
for rtd, name in (("1", "INVITE->180"), ("2", "INVITE->200"), ("3", "INVITE->503 (refused)")):
    t = sorted(times[rtd])
    if not t and rtd == "3":
        continue
    if not t:
        print("%s: no samples" % name)
        continue
    pick = lambda q: t[min(len(t) - 1, int(len(t) * q))]
    print("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d calls)" % (name, pick(0.5), pick(0.99), t[-1], len(t)))
EOF
if [ -n "${CALL_LOAD_WIRE:-}" ]; then
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
  grep -h 'dropped by kernel' "$dir/tcpdump.log" | sed 's/^/  tcpdump: /'
  python3 benches/sip_wire_latency.py "$dir/sip.pcap" "$sip_port"
fi
python3 - "$dir/data/voipbin.db" "$ok" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select status, hangup_reason, rtp_stats, direction from calls").fetchall()
by = {}
sent = received = lost = 0
jitter = []
per_direction = {}
for status, reason, stats, direction in rows:
    by[(status, reason)] = by.get((status, reason), 0) + 1
    if stats:
        s = json.loads(stats)
        sent += s.get("packets_sent", 0); received += s.get("packets_received", 0)
        lost += s.get("packets_lost", 0); jitter.append(s.get("jitter_ms", 0))
        d = per_direction.setdefault(direction, [0, 0, 0])
        d[0] += s.get("packets_sent", 0); d[1] += s.get("packets_received", 0); d[2] += s.get("packets_lost", 0)
print("call rows: %d (%s); SIPp's successful calls: %s" % (len(rows), ", ".join("%s/%s %d" % (k[0], k[1], v) for k, v in sorted(by.items())), sys.argv[2]))
jitter.sort()
p99 = jitter[int(len(jitter) * 0.99)] if jitter else 0
print("rtp: sent %d, received %d, lost %d (%.4f%%), jitter p99 %.2f ms" % (sent, received, lost, lost * 100 / max(received + lost, 1), p99))
if len(per_direction) > 1:
    for direction, (s_, r_, l_) in sorted(per_direction.items()):
        print("  %s legs: sent %d, received %d, lost %d (%.4f%%)" % (direction, s_, r_, l_, l_ * 100 / max(r_ + l_, 1)))
EOF
echo "udp receive-buffer drops on the host during the run: $(( $(rcvbuf_errors) - drops0 ))"
# Every call's actor has finished: none left live.
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$api_port/metrics" | awk '/^voipbin_calls_live /{print "calls live after the run (metrics): " $2}'
if [ -n "${CALL_LOAD_WEBHOOK:-}" ]; then
  # The outbox: how long until every event of the run was delivered.
  w0=$(date +%s.%N)
  python3 - "$dir/data/voipbin.db" <<'EOF'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
for _ in range(600):
    left = db.execute("select count(*) from webhook_deliveries where status = 'pending'").fetchone()[0]
    if left == 0:
        break
    time.sleep(1)
rows = db.execute("select status, count(*) from webhook_deliveries group by status").fetchall()
print("webhooks: " + ", ".join("%s %d" % r for r in rows))
EOF
  awk -v w0="$w0" -v w1="$(date +%s.%N)" 'BEGIN{printf "webhook outbox drained %.1f s after the last call\n", w1-w0}'
fi
grep -c -i 'error\|warn' "$dir/server.log" | sed 's/^/server log warnings+errors: /'
grep -i 'error\|warn' "$dir/server.log" | head -n 5
