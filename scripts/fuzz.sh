#!/usr/bin/env bash
# Builds the libFuzzer targets (FuzzTesting/build.sh) and runs each one in turn, one process at a time,
# seeded from testdata/ (whole files for rdb/streaming/aof/manifest, embedded blobs extracted by seedgen
# for the encoding targets) and from the committed regression inputs in testdata/fuzz/<target>/.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 300             # every target, 300 s each
#   scripts/fuzz.sh 600 rdb lzf     # these targets, 600 s each
#
# Work files go to fuzz-out/ (git-ignored): corpus/<target>/ (grows between runs), seeds/, logs/ and
# crash-/timeout-/oom- artifacts in artifacts/<target>/. Exit status 1 when any target found something.
# Reproduce one input: SWIFT_BACKTRACE=enable=no FuzzTesting/.build/fuzz-<target> FILE
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(rdb streaming listpack ziplist intset zipmap stream lzf aof manifest)
out="$repo/fuzz-out"
bin="$repo/FuzzTesting/.build"
mkdir -p "$out"/{corpus,seeds,logs,artifacts}

"$repo/FuzzTesting/build.sh" "${targets[@]}" seedgen || exit 2

# The Swift runtime's crash handler would catch the signal before libFuzzer and print a long backtrace.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"

# Seeds.
seeds="$out/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"/{rdb,aof,manifest}
find "$repo/testdata" -name '*.rdb' -size -64k | while read -r f; do
    cp "$f" "$seeds/rdb/$(echo "${f#"$repo"/testdata/}" | tr '/' '_')"
done
find "$repo/testdata" \( -name '*.aof' -o -name '*.aof.*' \) -type f | grep -v '\.manifest$' | while read -r f; do
    head -c 65536 "$f" > "$seeds/aof/$(echo "${f#"$repo"/testdata/}" | tr '/' '_')"
done
find "$repo/testdata" -name '*.manifest' -type f | while read -r f; do
    cp "$f" "$seeds/manifest/$(echo "${f#"$repo"/testdata/}" | tr '/' '_')"
done
find "$repo/testdata" -name '*.rdb' -o -name '*.aof' | sort > "$out/seeds/list.txt"
SEEDGEN_LIST="$out/seeds/list.txt" SEEDGEN_OUT="$seeds" "$bin/fuzz-seedgen" >&2

seed_dir() {
    case "$1" in
        rdb|streaming) echo "$seeds/rdb" ;;
        *) echo "$seeds/$1" ;;
    esac
}
max_len() {
    case "$1" in
        rdb|aof) echo 65536 ;;
        streaming) echo 16384 ;;
        manifest) echo 4096 ;;
        *) echo 16384 ;;
    esac
}

status=0
printf '%-10s %6s %10s %8s %8s %s\n' target secs execs exec/s corpus result
for t in "${targets[@]}"; do
    corpus="$out/corpus/$t"
    arts="$out/artifacts/$t"
    mkdir -p "$corpus" "$arts" "$(seed_dir "$t")"
    extra=()
    [ -d "$repo/testdata/fuzz/$t" ] && extra+=("$repo/testdata/fuzz/$t")
    log="$out/logs/$t.log"
    "$bin/fuzz-$t" "$corpus" "$(seed_dir "$t")" "${extra[@]}" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$arts/" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    size=$(find "$corpus" -type f | wc -l)
    found=$(find "$arts" -type f | wc -l)
    result="ok"
    if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
        result="FOUND $found artifact(s), exit $rc: see $log"
        status=1
    fi
    printf '%-10s %6s %10s %8s %8s %s\n' "$t" "$secs" "${execs:-?}" "${speed:-?}" "$size" "$result"
done
exit $status
