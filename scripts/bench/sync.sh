#!/usr/bin/env bash
# Snapshot copy and catch-up of `rdbcat sync` next to a real replica (REPLICAOF) of the same source.
# Usage: scripts/bench/sync.sh [KEYS] [VALUE_BYTES]  (default 1000000 keys of 100 bytes, Redis 7.0 from PATH)
# Needs a release build: swift build -c release --product rdbcat, and --product rdbcat-full
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rdbcat="$root/.build/release/rdbcat"
keys="${1:-1000000}"; size="${2:-100}"
work="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # port name extra...
  local p="$1" n="$2"; shift 2
  mkdir -p "$work/$n"
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$n" --daemonize no \
    --logfile "$work/$n/log" --enable-debug-command yes --repl-diskless-sync yes --repl-diskless-sync-delay 0 "$@" & pids+=($!)
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
}
src=$(port); start "$src" source
redis-cli -p "$src" debug populate "$keys" key "$size" >/dev/null
for i in $(seq 0 999); do echo "RPUSH list:$((i % 100)) $(head -c 32 /dev/urandom | base64 | tr -d '/+=')"; done | redis-cli -p "$src" >/dev/null
mem=$(redis-cli -p "$src" info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
redis-cli -p "$src" save >/dev/null
rdb=$(stat -c %s "$work/source/dump.rdb")
echo "source: $keys keys of $size bytes, used_memory $((mem / 1048576)) MiB, RDB $((rdb / 1048576)) MiB; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# 1. A real replica: REPLICAOF until the link is up and loading is done.
rep=$(port); start "$rep" replica
t0=$(date +%s.%N)
redis-cli -p "$rep" replicaof 127.0.0.1 "$src" >/dev/null
until redis-cli -p "$rep" info replication | grep -q '^master_link_status:up'; do sleep 0.02; done
t1=$(date +%s.%N)
echo "REPLICAOF (the server's own replication): $(echo "$t1 - $t0" | bc) s ($(echo "$rdb / 1048576 / ($t1 - $t0)" | bc) MB/s of RDB)"
redis-cli -p "$rep" replicaof no one >/dev/null

# 2. rdbcat sync --full-only, RESTORE and commands.
for mode in --restore ""; do
  dst=$(port); start "$dst" "target$mode"
  /usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/time" "$rdbcat" sync --full-only $mode --no-progress \
    --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" > "$work/out" 2> "$work/err"
  same=$([ "$(redis-cli -p "$src" debug digest)" = "$(redis-cli -p "$dst" debug digest)" ] && echo digest-equal || echo DIGEST-DIFFERS)
  secs=$(cut -d' ' -f1 "$work/time")
  echo "rdbcat sync --full-only ${mode:-(commands)}: $(cat "$work/time") ($(echo "$rdb / 1048576 / $secs" | bc) MB/s of RDB), $same"
done

# 3. Catch-up: an incremental sync while redis-benchmark writes a fixed load, then until caught up.
dst=$(port); start "$dst" target-inc
"$rdbcat" sync --restore --no-progress --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" > "$work/status" 2> "$work/err" & sync=$!
until grep -q '"phase":"incremental"' "$work/status" 2>/dev/null; do sleep 0.1; done
n=500000
t0=$(date +%s.%N)
redis-benchmark -p "$src" -t set -n "$n" -r 1000000 -d "$size" -P 16 -c 4 -q > "$work/bench" 2>&1
t1=$(date +%s.%N)
target=$(redis-cli -p "$src" info replication | awk -F: '/^master_repl_offset:/{print $2}' | tr -d '\r')
until tail -n 1 "$work/status" | grep -q "\"applied_offset\":$target,"; do sleep 0.05; done
t2=$(date +%s.%N)
kill -INT "$sync"; wait "$sync" || true
echo "catch-up: $n SETs written in $(echo "$t1 - $t0" | bc) s ($(tr '\r' '\n' < "$work/bench" | grep -o 'SET: [0-9.]* requests per second' | tail -n 1)), all applied $(echo "$t2 - $t1" | bc) s after the last write ($(echo "$n / ($t2 - $t0)" | bc) commands/s end to end)"
same=$([ "$(redis-cli -p "$src" debug digest)" = "$(redis-cli -p "$dst" debug digest)" ] && echo digest-equal || echo DIGEST-DIFFERS)
echo "after the stop: $same"
