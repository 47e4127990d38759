#!/usr/bin/env bash
# The security issue's figures, against a release build of `voipbin serve`:
#
#   1. memory under 100 concurrent wrong logins (each from its own 127.0.0.x address
#      and username, so the throttle does not stop them: argon2 runs one per core);
#   2. memory under a `play` of a 1.5 GB URL (a local HTTP server streams it; the
#      download is cut at 20 MB);
#   3. /ping latency while 20,000 slowloris connections (from 80 addresses) are
#      attempted;
#   4. INVITEs a second from one source admitted before the limiter holds
#      (--invite-rate 100, the default; 1,000 INVITEs sent in one second).
#
#   benches/security.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sipp:sip-tester curl:curl python3:python3-minimal
cargo build --release --bin voipbin >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
api_port=$((30000 + RANDOM % 10000))
sip_port=$((api_port + 1))
web_port=$((api_port + 2))
key=bench-admin-key
api=http://127.0.0.1:$api_port/v1.0

VOIPBIN_ADMIN_ACCESSKEY=$key RUST_LOG=warn target/release/voipbin serve \
  --http 127.0.0.1:$api_port --sip 127.0.0.1:$sip_port --rtp-ports 40000-40999 \
  --data-dir "$dir/data" --allow-outbound-to 127.0.0.0/8 >"$dir/server.log" 2>&1 &
pid=$!
web=""
trap 'kill $pid $web 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "$api/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
hwm() { awk '/VmHWM/{print $2}' /proc/$pid/status; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "server RSS at start: $(rss) KB"
echo "== 1. 100 concurrent wrong logins"
for i in $(seq 100); do
  curl -sf -H "Authorization: Bearer $key" "$api/customers" \
    -d "{\"username\":\"u$i\",\"password\":\"a-long-password\",\"name\":\"u\"}" >/dev/null
done
before=$(rss); hwm0=$(hwm)
start=$(date +%s.%N)
for i in $(seq 100); do
  curl -s -o /dev/null --interface "127.0.0.$((i + 10))" "http://127.0.0.1:$api_port/auth/login" \
    -d "{\"username\":\"u$i\",\"password\":\"wrong\"}" &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
end=$(date +%s.%N)
sleep 1
echo "RSS before ${before} KB, peak during ${hwm0}->$(hwm) KB (VmHWM), after $(rss) KB; 100 logins in $(echo "$end - $start" | bc 2>/dev/null || python3 -c "print($end-$start)") s"

echo "== 2. play of a 1.5 GB URL"
cat >"$dir/big.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        size = 1536 * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        if "nolength" not in self.path:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$dir/big.py" "$web_port" &
web=$!
curl -sf -H "Authorization: Bearer $key" "$api/customers" \
  -d '{"username":"player","password":"a-long-password","name":"P"}' >/dev/null
token=$(curl -sf "http://127.0.0.1:$api_port/auth/login" \
  -d '{"username":"player","password":"a-long-password"}' | json '["token"]')
ckey=$(curl -sf -H "Authorization: Bearer $token" "$api/accesskeys" -d '{"name":"p"}' | json '["token"]')
flow=$(curl -sf -H "Authorization: Bearer $ckey" "$api/flows" -d "{\"name\":\"big\",\"actions\":[
  {\"type\":\"answer\"},{\"type\":\"play\",\"option\":{\"stream_urls\":[\"http://127.0.0.1:$web_port/big-nolength.wav\"]}},{\"type\":\"hangup\"}]}" | json '["id"]')
curl -sf -H "Authorization: Bearer $ckey" "$api/numbers" \
  -d "{\"number\":\"+15550000002\",\"call_flow_id\":\"$flow\"}" >/dev/null
before=$(rss); hwm0=$(hwm)
(cd "$dir" && sipp 127.0.0.1:$sip_port -sf "$OLDPWD/sipp-scenarios/uac_flow_call.xml" -s +15550000002 \
  -i 127.0.0.1 -p 0 -m 1 -nostdin -set rtpport 40990 -timeout 60s >/dev/null 2>&1) || true
echo "RSS before ${before} KB, VmHWM ${hwm0}->$(hwm) KB, after $(rss) KB; cache holds $(du -sk "$dir/data/cache" 2>/dev/null | cut -f1 || echo 0) KB"
curl -sf -H "Authorization: Bearer $ckey" "$api/activeflows" | python3 -c "
import json,sys
for a in json.load(sys.stdin)['result'][:1]: print('activeflow', a['status'])"

echo "== 3. /ping during 20,000 slowloris connections"
cat >"$dir/slow.py" <<'EOF'
import socket, sys, time, subprocess
port = int(sys.argv[1]); want = int(sys.argv[2]); url = sys.argv[3]
socks = []; refused = 0
for i in range(want):
    s = socket.socket(); s.setblocking(True); s.settimeout(1)
    try:
        s.bind(("127.0.1.%d" % (1 + i % 80), 0))
        s.connect(("127.0.0.1", port))
        s.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    except OSError:
        refused += 1; s.close()
    if i % 2000 == 0:
        t = time.time(); subprocess.run(["curl", "-sf", "-o", "/dev/null", url]); print("  after %5d attempts: /ping %.1f ms" % (i, (time.time() - t) * 1000), flush=True)
times = []
for _ in range(20):
    t = time.time(); r = subprocess.run(["curl", "-sf", "-o", "/dev/null", url]); times.append((time.time() - t) * 1000)
times.sort()
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += 0 if s.recv(1) == b"" else 1
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
print("attempted %d, refused at connect %d; still open on our side %d (the server caps 256 per address); /ping p50 %.1f ms, max %.1f ms" % (want, refused, alive, times[10], times[-1]))
EOF
python3 "$dir/slow.py" "$api_port" 20000 "http://127.0.0.1:$api_port/ping"
echo "server RSS $(rss) KB; open descriptors $(ls /proc/$pid/fd | wc -l)"

echo "== 4. INVITEs a second from one source (--invite-rate 100)"
cat >"$dir/flood.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1]); n = int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", 0)); me = s.getsockname()[1]
s.settimeout(0.2)
start = time.time()
for i in range(n):
    inv = ("INVITE sip:+15550000009@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKb%d;rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=%d\r\nTo: <sip:+15550000009@127.0.0.1>\r\nCall-ID: b%d\r\n"
           "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n") % (port, me, i, i, i)
    s.sendto(inv.encode(), ("127.0.0.1", port))
    time.sleep(max(0, start + (i + 1) / n - time.time()))
first = {}
end = time.time() + 2
while time.time() < end:
    try:
        d = s.recv(4096).decode(errors="replace")
    except socket.timeout:
        continue
    cid = [l for l in d.split("\r\n") if l.startswith("Call-ID:")]
    if cid and cid[0] not in first:
        first[cid[0]] = d.split(" ")[1]
codes = {}
for c in first.values():
    codes[c] = codes.get(c, 0) + 1
admitted = sum(v for k, v in codes.items() if k != "503")
print("%d INVITEs in 1 s from one source: first responses %s; admitted (routed: 100 Trying or 404) %d, refused statelessly (503) %d" % (n, codes, admitted, codes.get("503", 0)))
EOF
python3 "$dir/flood.py" "$sip_port" 1000
