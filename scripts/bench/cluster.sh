#!/bin/bash
# Import into a 3-master Redis 7.0 cluster next to import of the same file into one Redis 7.0, fresh servers
# for every run, alternating, medians of N: seconds, keys/s, MB/s of input, peak RSS of rdbcat.
# usage: scripts/bench/cluster.sh [N] FILE...   (files with keys in database 0 only; rdbcat from .build/release)
set -uo pipefail
N=${1:-3}; shift
source "$(dirname "$0")/common.sh"
start() { # port dir [cluster]
  local extra=(); [ "${3:-}" = cluster ] && extra=(--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000)
  $server --port $1 --bind 127.0.0.1 --dir $2 --save '' --appendonly no --daemonize no "${extra[@]}" > /dev/null 2>&1 & pids+=($!)
  for k in $(seq 50); do $cli -p $1 ping > /dev/null 2>&1 && return; sleep 0.1; done
}
run() { # target-port -> "seconds rss_kb"
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o $t "$rdbcat" import "$f" --to redis://127.0.0.1:$1 --no-progress > /dev/null 2>&1 || echo "rdbcat failed" >&2
  cat $t; rm -f $t
}
printf "%-22s %-8s %9s %11s %8s %9s\n" file target seconds keys/s MB/s rss_MB
for f in "$@"; do
  size=$(stat -c %s "$f")
  keys=$("$rdbcat" "$f" --format stats 2>/dev/null | awk '$1 == "all" {print $3; exit}')
  s1=(); r1=(); s3=(); r3=()
  for i in $(seq $N); do
    tmp=$(mktemp -d); p=$(port); start $p $tmp
    read -r s r < <(run $p); s1+=($s); r1+=($r)
    echo "  single $(basename $f): ${s}s, $($cli -p $p dbsize) keys" >&2
    stop; rm -rf $tmp
    tmp=$(mktemp -d); ports=()
    for n in 1 2 3; do p=$(port); mkdir -p $tmp/$n; start $p $tmp/$n cluster; ports+=($p); done
    $cli --cluster create $(for p in "${ports[@]}"; do echo 127.0.0.1:$p; done) --cluster-yes > /dev/null 2>&1
    for k in $(seq 100); do
      ok=0; for p in "${ports[@]}"; do $cli -p $p cluster info | grep -q cluster_state:ok && ok=$((ok + 1)); done
      [ $ok = 3 ] && break; sleep 0.1
    done
    read -r s r < <(run ${ports[0]}); s3+=($s); r3+=($r)
    total=0; for p in "${ports[@]}"; do total=$((total + $($cli -p $p dbsize))); done
    echo "  cluster $(basename $f): ${s}s, $total keys" >&2
    stop; rm -rf $tmp
  done
  for side in 1 3; do
    eval "ss=(\"\${s$side[@]}\"); rr=(\"\${r$side[@]}\")"
    sec=$(printf "%s\n" "${ss[@]}" | med); rss=$(printf "%s\n" "${rr[@]}" | med)
    label=$([ $side = 1 ] && echo single || echo cluster3)
    printf "%-22s %-8s %9.2f %11.0f %8.1f %9.1f\n" "$(basename $f)" $label $sec \
      "$(echo "${keys:-0} / $sec" | bc -l)" "$(echo "$size / 1000000 / $sec" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  done
done
