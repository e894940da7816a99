# Shared by the bench scripts that start their own servers (source it): where rdbcat and the servers are,
# medians, free-ish ports, and stopping every server started (pids) on exit.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rdbcat=${RDBCAT:-$root/.build/release/rdbcat}
server=$(command -v redis-server); cli=$(command -v redis-cli)
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
port() { echo $((20000 + RANDOM % 20000)); }
pids=()
stop() { for p in "${pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; pids=(); }
trap stop EXIT
