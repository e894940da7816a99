#!/bin/bash
# A/B of two builds on the same files, alternating runs; medians of N. usage: ab.sh OLD_DIR NEW_DIR N
old=$1; new=$2; N=${3:-3}; D=${BENCH_DATA:-bench-data}
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>&1; local e=$(date +%s.%N); echo "$e - $s" | bc; }
printf "%-20s %-8s %8s %8s %6s\n" file mode old_s new_s new/old
for f in strings small-aggregates huge-aggregates mixed-ttl-streams one-big-value; do
  for m in decode jsonl resp restore stats keys; do
    o=(); n=()
    for i in $(seq $N); do
      for side in old new; do
        dir=${!side}
        if [ $m = decode ]; then v=$(t $dir/rdbbench --child decode $D/$f.rdb); else v=$(t $dir/rdbcat $D/$f.rdb --format $m); fi
        if [ $side = old ]; then o+=($v); else n+=($v); fi
      done
    done
    a=$(printf "%s\n" "${o[@]}" | med); b=$(printf "%s\n" "${n[@]}" | med)
    printf "%-20s %-8s %8.3f %8.3f %6.2f\n" $f $m $a $b $(echo "$b / $a" | bc -l)
  done
done
