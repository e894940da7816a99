#!/bin/bash
# Import A/B into a fresh Redis 7.0 per run (alternating builds), medians of N. usage: ab-import.sh OLD NEW N FILE... 
old=$1; new=$2; N=$3; shift 3
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for f in "$@"; do
 for mode in "" "--restore"; do
  o=(); n=()
  for i in $(seq $N); do for side in old new; do
    dir=${!side}; port=$((20000 + RANDOM % 20000)); tmp=$(mktemp -d)
    /usr/bin/redis-server --port $port --dir $tmp --save '' --appendonly no --daemonize no > /dev/null 2>&1 & pid=$!
    for k in $(seq 50); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
    s=$(date +%s.%N); $dir/rdbcat import $f --to redis://127.0.0.1:$port $mode > /dev/null 2>&1; rc=$?; e=$(date +%s.%N)
    keys=$(redis-cli -p $port dbsize)
    kill $pid; wait $pid 2>/dev/null; rm -rf $tmp
    v=$(echo "$e - $s" | bc); [ $side = old ] && o+=($v) || n+=($v)
    echo "  $side $(basename $f) $mode rc=$rc keys=$keys ${v}s" >&2
  done; done
  a=$(printf "%s\n" "${o[@]}" | med); b=$(printf "%s\n" "${n[@]}" | med)
  printf "%-24s %-10s %8.3f %8.3f %6.2f\n" $(basename $f) "${mode:-commands}" $a $b $(echo "$b / $a" | bc -l)
 done
done
