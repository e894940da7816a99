#!/bin/bash
# rdbcat next to librdb's rdb-cli (the official C library, -O3; ../shared/tools/peers/librdb) on the same files,
# alternating runs, medians of N, output to /dev/null:
#   rdbcat --format resp    vs  rdb-cli resp      (target: >= 5x faster)
#   rdbcat --format jsonl   vs  rdb-cli json      (target: >= 10x faster)
#   rdbcat --format restore vs  rdb-cli resp      (target: >= 5x faster)
# usage: scripts/bench/librdb.sh [N] FILE...   (rdbcat from .build/release; RDBCLI= to point at another rdb-cli)
set -uo pipefail
N=${1:-5}; shift
root="$(cd "$(dirname "$0")/../.." && pwd)"
rdbcat=${RDBCAT:-$root/.build/release/rdbcat}
rdbcli=${RDBCLI:-$root/../shared/tools/peers/librdb/rdb-cli}
[ -x "$rdbcli" ] || { echo "rdb-cli not found at $rdbcli (set RDBCLI)" >&2; exit 2; }
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1 || echo "failed: $*" >&2; e=$(date +%s.%N); echo "$e - $s" | bc; }
printf "%-24s %-8s %9s %9s %9s\n" file ours ours_s librdb_s speedup
for f in "$@"; do
  for pair in "resp:resp" "jsonl:json" "restore:resp"; do
    ours=${pair%%:*}; theirs=${pair##*:}
    o=(); l=()
    for i in $(seq $N); do
      o+=($(t "$rdbcat" "$f" --format $ours))
      l+=($(t "$rdbcli" "$f" -l /dev/null $theirs))
    done
    a=$(printf "%s\n" "${o[@]}" | med); b=$(printf "%s\n" "${l[@]}" | med)
    printf "%-24s %-8s %9.3f %9.3f %8.1fx\n" "$(basename "$f")" $ours $a $b "$(echo "$b / $a" | bc -l)"
  done
done
