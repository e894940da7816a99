#!/bin/bash
# The same files read from local disk and from an S3-compatible bucket (moto_server on loopback, signature checks
# on), in alternating rounds: `rdbcat FILE --format stats` and `rdbcat import FILE` into a fresh Redis 7.0.
# Prints medians of N, the bucket/local ratio and the peak RSS of each side.
#
#   scripts/bench/s3.sh [-n N] [-r RDBCAT] FILE...      (default: N=3, .build/release/rdbcat if built, else debug)
#
# moto_server is a Python server: what it can serve bounds the bucket side, so the ratio is an upper bound of
# what a real object store costs over loopback. Needs scripts/setup.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
N=3
rdbcat="$root/.build/release/rdbcat"
[ -x "$rdbcat" ] || rdbcat="$root/.build/debug/rdbcat"
while getopts "n:r:" o; do case $o in n) N=$OPTARG ;; r) rdbcat=$OPTARG ;; *) exit 2 ;; esac; done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n N] [-r RDBCAT] FILE..." >&2; exit 2; }

work=$(mktemp -d)
moto_port=$((20000 + RANDOM % 20000))
INITIAL_NO_AUTH_ACTION_COUNT=3 moto_server -H 127.0.0.1 -p $moto_port > "$work/moto.log" 2>&1 &
moto_pid=$!
cleanup() { kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$moto_port) 2>/dev/null && break; sleep 0.1; done
read -r AK SK < <(python3 "$root/Tests/RDBTestSupport/moto_bucket.py" setup $moto_port)
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
obs=(--obs-endpoint "http://127.0.0.1:$moto_port" --obs-path-style)
specs=()
for f in "$@"; do specs+=("$(basename "$f")=$f"); done
python3 "$root/Tests/RDBTestSupport/moto_bucket.py" put $moto_port "$AK" "$SK" bench "${specs[@]}" > /dev/null

med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# Runs a command under /usr/bin/time; prints "seconds rss_kb".
timed() {
    local s e
    s=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$@" > /dev/null 2> "$work/err" || { echo "failed: $* ($(tail -2 "$work/err"))" >&2; return 1; }
    e=$(date +%s.%N)
    echo "$(echo "$e - $s" | bc) $(cat "$work/rss")"
}
fresh_redis() {
    port=$((20000 + RANDOM % 20000)); tmp=$(mktemp -d -p "$work")
    redis-server --port $port --dir "$tmp" --save '' --appendonly no --daemonize no > /dev/null 2>&1 & rpid=$!
    for _ in $(seq 50); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
}

printf "%-28s %-7s %9s %9s %7s %10s %10s\n" file mode local_s bucket_s ratio local_MB bucket_MB
for f in "$@"; do
    name=$(basename "$f")
    for mode in stats import; do
        lt=(); bt=(); lr=(); br=()
        for _ in $(seq "$N"); do
            for side in local bucket; do
                input=$f; extra=()
                [ $side = bucket ] && { input="s3://bench/$name"; extra=("${obs[@]}"); }
                if [ $mode = stats ]; then
                    out=$(timed "$rdbcat" "$input" --format stats --no-progress "${extra[@]}")
                else
                    fresh_redis
                    out=$(timed "$rdbcat" import "$input" --to redis://127.0.0.1:$port --no-progress "${extra[@]}")
                    kill $rpid; wait $rpid 2>/dev/null || true
                fi
                read -r t m <<< "$out"
                if [ $side = local ]; then lt+=("$t"); lr+=("$m"); else bt+=("$t"); br+=("$m"); fi
            done
        done
        a=$(printf "%s\n" "${lt[@]}" | med); b=$(printf "%s\n" "${bt[@]}" | med)
        ra=$(printf "%s\n" "${lr[@]}" | sort -n | tail -1); rb=$(printf "%s\n" "${br[@]}" | sort -n | tail -1)
        printf "%-28s %-7s %9.3f %9.3f %7.2f %10.1f %10.1f\n" "$name" $mode "$a" "$b" "$(echo "$b / $a" | bc -l)" \
            "$(echo "$ra / 1024" | bc -l)" "$(echo "$rb / 1024" | bc -l)"
    done
done
