#!/usr/bin/env bash
# Makes the labelled AMD set in tests/amd/set/: 50 people answering and 50
# answering machines, as 8 kHz G.711 mu-law without a header (.ul), listed with
# their labels in tests/amd/labels.csv (file,label,beep_ms; beep_ms is where a
# machine's beep starts, -1 for none). People: a pause as the phone is picked up,
# a short answer ("hello?", "yes, hello, this is Sam.") in one of several voices and speeds, then silence
# while they wait. Machines: a pause, a greeting of several sentences, a gap, a
# beep (400 Hz to 2 kHz, 250-700 ms), a little silence. Line noise at three levels
# is mixed in (up to about -36 dBFS). The set is committed: run this only to make it again (espeak-ng
# and sox; the random choices are seeded, so the same tools make the same set).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf set && mkdir -p set
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
RANDOM=14
voices=(en-us en-gb en-gb-scotland en-gb-x-rp en-029 en-us+f3 en-gb+f2 en-us+m3 en-gb-x-gbclan en-us+f4)
speeds=(130 150 165 175 190)
noises=(0 0.002 0.006 0.015)
humans=("Hello?" "Hello." "Hi." "Yes?" "Hello, hello?" "Hey." "Yeah?" "Speaking." "Hello, yes?" "Hi there." "Hello, who is calling?" "Yes, hello, this is Sam.")
machines=(
  "Hi, you've reached the Smith family. We can't come to the phone right now. Please leave a message after the tone."
  "Hello, this is John. I'm away from my desk at the moment. Leave your name and number and I'll call you back."
  "The person you are calling is not available. Please record your message after the tone. When you are finished, hang up."
  "Thank you for calling Acme Plumbing. Our office is closed. Please leave a detailed message and we will return your call."
  "Hey, it's Maria. Sorry I missed you. Leave a message and I'll get back to you as soon as I can."
)
beeps=(1000 1000 850 440 1400 2000 1000 600)
echo "file,label,beep_ms" > labels.csv
make() { # name text voice speed lead_ms tail_ms beep_hz beep_ms gap_ms noise label
  local name=$1 text=$2 voice=$3 speed=$4 lead=$5 tail=$6 hz=$7 beep=$8 gap=$9 noise=${10} label=${11}
  espeak-ng -v "$voice" -s "$speed" -w "$tmp/speech.wav" "$text"
  sox "$tmp/speech.wav" -r 8000 -c 1 -b 16 "$tmp/s8.wav" gain -n -3
  local parts=("$tmp/lead.wav" "$tmp/s8.wav")
  sox -n -r 8000 -c 1 -b 16 "$tmp/lead.wav" trim 0 "$(echo "$lead/1000" | bc -l)"
  local beep_at=-1
  if [ "$hz" -gt 0 ]; then
    sox -n -r 8000 -c 1 -b 16 "$tmp/gap.wav" trim 0 "$(echo "$gap/1000" | bc -l)"
    sox -n -r 8000 -c 1 -b 16 "$tmp/beep.wav" synth "$(echo "$beep/1000" | bc -l)" sine "$hz" vol 0.4
    parts+=("$tmp/gap.wav" "$tmp/beep.wav")
    local speech_ms
    speech_ms=$(soxi -D "$tmp/s8.wav" | awk '{printf "%d", $1*1000}')
    beep_at=$((lead + speech_ms + gap))
  fi
  sox -n -r 8000 -c 1 -b 16 "$tmp/tail.wav" trim 0 "$(echo "$tail/1000" | bc -l)"
  parts+=("$tmp/tail.wav")
  sox "${parts[@]}" "$tmp/clean.wav"
  if [ "$noise" != 0 ]; then
    local dur
    dur=$(soxi -D "$tmp/clean.wav")
    sox -n -r 8000 -c 1 -b 16 "$tmp/noise.wav" synth "$dur" whitenoise vol "$noise"
    sox -m -v 1 "$tmp/clean.wav" -v 1 "$tmp/noise.wav" "$tmp/mixed.wav"
  else
    cp "$tmp/clean.wav" "$tmp/mixed.wav"
  fi
  sox "$tmp/mixed.wav" -t ul -r 8000 -c 1 "set/$name.ul"
  echo "$name.ul,$label,$beep_at" >> labels.csv
}
for i in $(seq -w 1 50); do
  v=${voices[$((RANDOM % ${#voices[@]}))]}
  s=${speeds[$((RANDOM % ${#speeds[@]}))]}
  n=${noises[$((RANDOM % ${#noises[@]}))]}
  make "human-$i" "${humans[$((RANDOM % ${#humans[@]}))]}" "$v" "$s" $((200 + RANDOM % 700)) 3000 0 0 0 "$n" human
done
for i in $(seq -w 1 50); do
  v=${voices[$((RANDOM % ${#voices[@]}))]}
  s=${speeds[$((RANDOM % ${#speeds[@]}))]}
  n=${noises[$((RANDOM % ${#noises[@]}))]}
  make "machine-$i" "${machines[$((RANDOM % ${#machines[@]}))]}" "$v" "$s" $((100 + RANDOM % 900)) 500 \
    "${beeps[$((RANDOM % ${#beeps[@]}))]}" $((250 + RANDOM % 450)) $((300 + RANDOM % 400)) "$n" machine
done
echo "made $(($(wc -l < labels.csv) - 1)) calls in $(pwd)/set"
