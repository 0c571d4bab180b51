# Helpers for the benchmark scripts: build, prompts, configs, server start/stop, /proc figures.
# Sourced by bench/run.sh and bench/profile.sh; everything stays on loopback.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=${SERVER_BIN:-$TARGET_DIR/release/belteken}
LOADGEN=${LOADGEN:-$TARGET_DIR/release/loadgen}
SSEFAN=${SSEFAN:-$TARGET_DIR/release/ssefan}
SIP_PORT=${SIP_PORT:-25060}
HTTP_PORT=${HTTP_PORT:-28080}
SERVER_PID=

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

build() {
  if [ "${BUILD:-1}" = 1 ]; then
    (cd "$ROOT" && timeout 1800 cargo build --release -p loadgen -p belteken) || exit 1
  fi
  for b in "$SERVER_BIN" "$LOADGEN" "$SSEFAN"; do
    [ -x "$b" ] || { log "missing $b"; exit 1; }
  done
}

# Calls and SSE streams each need a descriptor: take the hard limit (20000 on our CI box).
raise_fd_limit() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  log "open files limit: $(ulimit -n)"
}

# prompts DIR STORY_SECONDS: short greeting/thanks, a story of the given length (8 kHz tones).
prompts() {
  local dir=$1 story=$2
  mkdir -p "$dir"
  sox -n -r 8000 -c 1 -b 16 "$dir/greeting.wav" synth 0.5 sine 600 vol 0.3
  sox -n -r 8000 -c 1 -b 16 "$dir/story.wav" synth "$story" sine 500 vol 0.3
  sox -n -r 8000 -c 1 -b 16 "$dir/thanks.wav" synth 0.5 sine 700 vol 0.3
}

# config_server FILE DATA_DIR [MAX_CALLS]: the [server] and [sip] tables of a bench config.
config_server() {
  cat > "$1" <<EOF
[server]
sip_listen = "127.0.0.1:$SIP_PORT"
http_listen = "127.0.0.1:$HTTP_PORT"
data_dir = "$2"
max_calls = ${3:-20000}
max_call_seconds = 600
# Load shedding is off (0) to measure what the server carries; SHED=1 turns it on (percent).
shed_late_percent = ${SHED:-0}

# The load generator is one source placing hundreds of calls a second: the per-source flood
# limit (and its ban) would measure the limiter, not the server.
[sip]
rate_limit_per_second = 100000
rate_limit_burst = 100000
EOF
}

# config FILE DATA_DIR PROMPT_DIR [MAX_CALLS]: ring 0, short silence so a signing call is short.
config() {
  config_server "$1" "$2" "${4:-}"
  cat >> "$1" <<EOF

[[campaign]]
slug = "demo"
title = "Benchmark"
ring_seconds = 0
silence_seconds = 0.5
min_speech_ms = 500
[campaign.prompts]
greeting = "$3/greeting.wav"
story = "$3/story.wav"
thanks = "$3/thanks.wav"
EOF
}

# config_press1 FILE DATA_DIR PROMPT_DIR: the call-rate flow. No ring, a 0.5 s greeting the
# caller cuts short with 1 (barge-in), sign on the key, a 0.5 s thanks, server BYE: under a
# second per call, so the rate is measured on the SIP path and the store, not on media held.
config_press1() {
  config_server "$1" "$2"
  cat >> "$1" <<EOF

[[campaign]]
slug = "demo"
title = "Benchmark"

[campaign.flow]
[campaign.flow.prompts]
greeting = "$3/greeting.wav"
thanks = "$3/thanks.wav"

[[campaign.flow.step]]
name = "greeting"
kind = "play"
prompt = "greeting"
barge_in = true

[[campaign.flow.step]]
name = "ask"
kind = "menu"
prompt = "press_1_to_sign"
choices = { "1" = "sign" }
timeout_seconds = 3
retries = 0
next = "bye"

[[campaign.flow.step]]
name = "sign"
kind = "sign"
key_pressed = true

[[campaign.flow.step]]
name = "bye"
kind = "hangup"
prompt = "thanks"
EOF
}

start_server() {
  local cfg=$1 logf=$2
  RUST_LOG=${SERVER_LOG:-warn} "$SERVER_BIN" serve --config "$cfg" >"$logf" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "server did not start; see $logf"
  tail -5 "$logf" >&2
  return 1
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

# CPU ticks (user+system, 1/100 s) and RSS (KiB) of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Busy jiffies of the whole machine (all cores) in user+system, and in irq+softirq, from
# /proc/stat. With IRQ time accounting the softirq work of loopback delivery (the receive
# half of every packet) is charged to no process, only to the softirq column.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4}' /proc/stat; }
softirq_ticks() { awk '/^cpu / {print $7 + $8}' /proc/stat; }

# window PID SECONDS [OTHER_PID]: over the next SECONDS prints
# "server_cpu% rss_kib other_pid_cpu% everything_else_cpu% softirq_cpu%" (percent of one
# core). "everything else" is the machine's user+system time minus both processes: other
# people's work on a shared box shows up there and makes a run suspect.
window() {
  local pid=$1 secs=$2 opid=${3:-} c0 c1 o0 o1 m0 m1 q0 q1
  c0=$(cpu_ticks "$pid"); m0=$(machine_ticks); q0=$(softirq_ticks); o0=0; [ -n "$opid" ] && o0=$(cpu_ticks "$opid")
  sleep "$secs"
  c1=$(cpu_ticks "$pid"); m1=$(machine_ticks); q1=$(softirq_ticks); o1=0; [ -n "$opid" ] && o1=$(cpu_ticks "$opid")
  local s=$(( (c1 - c0) / secs )) o=$(( (o1 - o0) / secs )) m=$(( (m1 - m0) / secs ))
  local others=$(( m - s - o )); [ "$others" -lt 0 ] && others=0
  echo "$s $(rss_kib "$pid") $o $others $(( (q1 - q0) / secs ))"
}

# Waits (at most QUIET_WAIT seconds, default 240) until the machine has been nearly idle
# (under 10% of one core busy, no compiler running) for 4 s in a row, so that other people's
# work on a shared machine does not take the cores from a run.
wait_quiet() {
  local waited=0 calm=0 m0 m1
  while [ "$waited" -lt "${QUIET_WAIT:-240}" ] && [ "$calm" -lt 4 ]; do
    m0=$(( $(machine_ticks) + $(softirq_ticks) )); sleep 1; m1=$(( $(machine_ticks) + $(softirq_ticks) )); waited=$((waited + 1))
    if [ $(( m1 - m0 )) -lt 10 ] && ! pgrep -x rustc >/dev/null; then calm=$((calm + 1)); else calm=0; fi
  done
  [ "$calm" -ge 4 ] || log "machine still busy after ${QUIET_WAIT:-240}s: figures may be low"
}

# The loadgen process under a `timeout` wrapper.
child_of() { pgrep -P "$1" | head -1; }

# jq-free JSON reads.
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }
