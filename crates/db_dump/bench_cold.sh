#!/usr/bin/env bash
# db_dump against its limit from a cold cache, in one run, on a private
# mariadbd whose buffer pool is much smaller than the data (the state of a
# large project's database server). Each measurement starts cold: the
# server is restarted (empty buffer pool) and the kernel's page cache
# dropped. The limit is one pass reading the columns the dump exports from
# user, host, team and consent with `mariadb --quick`, piped to gzip -6.
#
#   crates/db_dump/bench_cold.sh 1m             # 1M users, 256 MB pool
#   POOL=128M crates/db_dump/bench_cold.sh 10m  # 10M users, default pool
#   ROUNDS=2 ...                                # limit/ours pairs
#   DB_DUMP=/path/to/db_dump ...                # another build (before/after)
#
# The server (port PORT, default 3399; datadir target/db_dump_cold/data, or
# DATADIR) is this script's own: started with O_DIRECT so the page cache
# does not hide the disk, generated into once per size (db_dump_gen) and
# kept for the next run. Needs root (drop_caches).
set -euo pipefail
cd "$(dirname "$0")/../.."
size="${1:-1m}"
case "$size" in
  100k) users=100000 ;;
  1m) users=1000000 ;;
  10m) users=10000000 ;;
  *) echo "unknown size $size (100k|1m|10m)"; exit 2 ;;
esac
pool="${POOL:-256M}"
port="${PORT:-3399}"
rounds="${ROUNDS:-1}"
base=target/db_dump_cold
datadir="${DATADIR:-$PWD/$base/data}"
sock="$PWD/$base/mysqld.sock"
db="cold_$size"
mkdir -p "$base"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -p boinc-db-dump
cargo build --release -p boinc-bench --bin db_dump_gen
bin=target/release
sql() { mariadb -uroot -h 127.0.0.1 -P "$port" "$@"; }

start() { # $1: buffer pool size
  /usr/sbin/mariadbd --no-defaults --datadir="$datadir" --port="$port" \
    --bind-address=127.0.0.1 --socket="$sock" --user=root \
    --innodb-buffer-pool-size="$1" --innodb-flush-method=O_DIRECT \
    --innodb-log-file-size=512M --skip-log-bin \
    --pid-file="$PWD/$base/mysqld.pid" >"$base/mysqld.log" 2>&1 &
  for _ in $(seq 1 120); do
    sql -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "mariadbd did not start: $base/mysqld.log"; exit 1
}
stop() {
  if [ -f "$base/mysqld.pid" ]; then
    kill "$(cat "$base/mysqld.pid")" 2>/dev/null || true
    while [ -f "$base/mysqld.pid" ] && kill -0 "$(cat "$base/mysqld.pid")" 2>/dev/null; do sleep 0.5; done
  fi
}
cold() { stop; sync; echo 3 > /proc/sys/vm/drop_caches; start "$pool"; }
trap stop EXIT

if [ ! -d "$datadir/mysql" ]; then
  mkdir -p "$datadir"
  mariadb-install-db --no-defaults --datadir="$datadir" --user=root \
    --auth-root-authentication-method=normal >"$base/install.log" 2>&1
fi
stop
have=0
if start "$pool"; then
  have=$(sql -N -e "SELECT COUNT(*) FROM $db.user" 2>/dev/null || echo 0)
fi
if [ "$have" != "$users" ]; then
  # Generated with a big pool: the load is not what is measured.
  stop; start 4G
  sql -e "DROP DATABASE IF EXISTS $db"
  echo "== generating $db ($users users)"
  /usr/bin/time -f "generated in %e s, max RSS %M KB" \
    "$bin/db_dump_gen" --database-url "mysql://root@127.0.0.1:$port/$db" --users "$users" --create
fi
echo "== data: $(du -sh "$datadir/$db" | cut -f1), buffer pool $pool, O_DIRECT"

dir="$base/$size"
rm -rf "$dir"; mkdir -p "$dir/html"
cat > "$dir/config.xml" <<XML
<boinc><config><db_name>$db</db_name><db_host>127.0.0.1:$port</db_host><db_user>root</db_user>
<user_country/><user_url/></config></boinc>
XML
sed "s#html/#$PWD/$dir/html/#" config/db_dump_spec.xml > "$dir/spec.xml"
# The exported columns of each table, read once.
limit_sql="SELECT id, name, create_time, total_credit, expavg_credit, expavg_time, \
cross_project_id, email_addr, country, url, teamid, has_profile, show_hosts, authenticator FROM user; \
SELECT id, userid, create_time, rpc_time, timezone, total_credit, expavg_credit, \
expavg_time, p_vendor, p_model, os_name, os_version, misc, p_ncpus, p_fpops, p_iops, p_membw, \
m_nbytes, m_cache, m_swap, d_total, d_free, n_bwup, n_bwdown, avg_turnaround, \
credit_per_cpu_sec, host_cpid, domain_name FROM host; \
SELECT id, type, name, userid, total_credit, expavg_credit, expavg_time, create_time, url, \
name_html, description, country FROM team; \
SELECT userid, consent_type_id, consent_time, consent_flag FROM consent;"

for r in $(seq 1 "$rounds"); do
  cold
  echo "== round $r: limit (cold; load $(cut -d' ' -f1-3 /proc/loadavg))"
  s=$(date +%s.%N)
  sql --quick --batch --raw -N "$db" -e "$limit_sql" | gzip -6 > "$dir/limit.gz"
  limit=$(echo "$(date +%s.%N) - $s" | bc)
  echo "   limit: ${limit} s, $(du -h "$dir/limit.gz" | cut -f1) gzip"
  cold
  echo "== round $r: db_dump (cold; load $(cut -d' ' -f1-3 /proc/loadavg))"
  rm -rf "$dir/html"; mkdir -p "$dir/html"
  s=$(date +%s.%N)
  BOINC_DATABASE_URL= /usr/bin/time -v "${DB_DUMP:-$bin/db_dump}" --no-progress \
    --config "$dir/config.xml" --dump-spec "$dir/spec.xml" 2> "$dir/time.log"
  ours=$(echo "$(date +%s.%N) - $s" | bc)
  grep -E "owner map|records in|dump done" "$dir/time.log" | cut -c 29- || true
  echo "   db_dump: ${ours} s, max RSS $(grep 'Maximum resident' "$dir/time.log" | awk '{print $NF}') KB"
  echo "   ratio: $(echo "scale=2; $ours / $limit" | bc)x the limit"
done
