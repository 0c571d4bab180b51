#!/usr/bin/env bash
# Profiles the server holding CALLS calls in the story step (loopback, bounded).
#
#   bench/profile.sh [CALLS] [SECONDS]          (default 2000 calls, 10 s of sampling)
#
# perf with the cpu-clock software event (this VM has no hardware counters, so
# `perf stat -e instructions` is "not supported"); syscall counts from tracepoints.
# Falls back to valgrind --tool=callgrind on 200 calls when perf cannot sample.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

CALLS=${1:-2000}
SECS=${2:-10}
OUT=${OUT:-/tmp/belteken-profile-$(date +%Y%m%d-%H%M%S)}
RATE=${RATE:-250}
mkdir -p "$OUT"
trap 'stop_server' EXIT INT TERM
raise_fd_limit
build

prompts "$OUT/audio" 600
wait_quiet
config "$OUT/c.toml" "$OUT/data" "$OUT/audio"
ramp=$(( (CALLS + RATE - 1) / RATE ))
hold=$(( ramp + 2 * SECS + 15 ))

if timeout 10 perf record -e cpu-clock -o "$OUT/probe.data" -- true >/dev/null 2>&1; then
  start_server "$OUT/c.toml" "$OUT/server.log" || exit 1
  timeout $(( hold + ramp + 60 )) "$LOADGEN" --server "127.0.0.1:$SIP_PORT" --calls "$CALLS" \
    --rate "$RATE" --hold "$hold" --max-call $(( hold + 5 )) --rtp-shards 2 \
    --duration $(( hold + ramp + 30 )) --out "$OUT/lg.json" > "$OUT/lg.txt" 2>&1 &
  lg=$!
  sleep $(( ramp + 3 ))
  timeout $(( SECS + 20 )) perf stat -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex \
    -p "$SERVER_PID" -- sleep "$SECS" 2> "$OUT/perf-stat.txt"
  timeout $(( SECS + 60 )) perf record -e cpu-clock -F 1999 -g -p "$SERVER_PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/perf-record.log"
  # Also the whole machine, to see the kernel's share (loopback delivery, softirq).
  timeout $(( SECS + 60 )) perf record -e cpu-clock -F 999 -a -o "$OUT/perf-all.data" -- sleep 5 2>> "$OUT/perf-record.log"
  wait "$lg"
  stop_server
  perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | grep '%' | head -60 > "$OUT/top-symbols.txt"
  perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' | head -60 > "$OUT/top-inclusive.txt"
  perf report -i "$OUT/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep '%' | head -20 > "$OUT/by-thread.txt"
  perf report -i "$OUT/perf-all.data" --no-children --sort comm,dso --stdio 2>/dev/null | grep '%' | head -20 > "$OUT/machine.txt"
  cat "$OUT/perf-stat.txt"
  echo "--- self time, top symbols"; head -40 "$OUT/top-symbols.txt"
  echo "--- machine by process"; cat "$OUT/machine.txt"
  echo "--- loadgen"; cat "$OUT/lg.txt"
else
  log "perf cannot sample here: callgrind on 200 calls"
  RUST_LOG=warn timeout 120 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$SERVER_BIN" serve --config "$OUT/c.toml" > "$OUT/server.log" 2>&1 &
  vp=$!
  sleep 8
  timeout 90 "$LOADGEN" --server "127.0.0.1:$SIP_PORT" --calls 200 --rate 50 --hold 20 \
    --rtp-shards 1 --duration 60 --out "$OUT/lg.json" > "$OUT/lg.txt" 2>&1
  kill -TERM "$vp"; wait "$vp"
  callgrind_annotate "$OUT/callgrind.out" | head -60
fi
log "profile in $OUT"
