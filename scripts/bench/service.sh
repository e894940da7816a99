#!/bin/bash
# A backup-import task through `rdbcat serve` next to `rdbcat import` of the same file, into a fresh Redis 7.0
# each run, alternating, medians of N: the service's overhead (HTTP, the store, the worker, the file checks).
# The service's time is from the POST to the task's SUCCESS as GET reports it (polled every 200 ms: up to 0.2 s of the time is the polling's).
# usage: scripts/bench/service.sh [N] FILE...   (rdbcat from .build/release, or $RDBCAT)
set -uo pipefail
N=${1:-3}; shift
source "$(dirname "$0")/common.sh"
start_redis() { # port dir
  $server --port $1 --bind 127.0.0.1 --dir $2 --save '' --appendonly no --daemonize no > /dev/null 2>&1 & pids+=($!)
  for k in $(seq 50); do $cli -p $1 ping > /dev/null 2>&1 && return; sleep 0.1; done
}
now() { date +%s.%N; }
export RDBCAT_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf "%-24s %10s %10s %8s\n" file import_s service_s ratio
for f in "$@"; do
  a=(); b=()
  for i in $(seq $N); do
    tmp=$(mktemp -d); p=$(port); start_redis $p $tmp
    t0=$(now); "$rdbcat" import "$f" --to redis://127.0.0.1:$p --no-progress > /dev/null 2>&1; t1=$(now)
    a+=($(echo "$t1 - $t0" | bc)); stop; rm -rf $tmp
    tmp=$(mktemp -d); p=$(port); start_redis $p $tmp; sp=$(port)
    mkdir -p $tmp/bucket && ln -s "$(realpath "$f")" $tmp/bucket/$(basename "$f")
    printf '{"store":"sqlite:%s/tasks.sqlite","instances":{"t":{"address":"127.0.0.1:%s"}},"buckets":{"b":{"path":"%s/bucket"}},"workers":1}' $tmp $p $tmp > $tmp/config.json
    "$rdbcat" serve --listen 127.0.0.1:$sp --config $tmp/config.json > /dev/null 2>&1 & pids+=($!)
    for k in $(seq 100); do curl -sf localhost:$sp/health > /dev/null && break; sleep 0.05; done
    body="{\"task_name\":\"bench\",\"migration_type\":\"backupfile_import\",\"migration_method\":\"full_amount_migration\",\"backup_files\":{\"bucket_name\":\"b\",\"files\":[{\"file_name\":\"$(basename "$f")\"}]},\"target_instance\":{\"id\":\"t\"}}"
    t0=$(now)
    id=$(curl -s -X POST localhost:$sp/v2/bench/migration-task -d "$body" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
    while curl -s localhost:$sp/v2/bench/migration-task/$id | grep -q '"status":"MIGRATING"'; do sleep 0.2; done
    t1=$(now)
    curl -s localhost:$sp/v2/bench/migration-task/$id | grep -q '"status":"SUCCESS"' || echo "  the task did not succeed" >&2
    b+=($(echo "$t1 - $t0" | bc)); stop; rm -rf $tmp
  done
  ma=$(printf "%s\n" "${a[@]}" | med); mb=$(printf "%s\n" "${b[@]}" | med)
  printf "%-24s %10.2f %10.2f %8.2f\n" $(basename $f) $ma $mb $(echo "$mb / $ma" | bc -l)
done
