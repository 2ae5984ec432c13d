#!/usr/bin/env bash
# db_dump benchmark: generates BOINC databases of 100k and 1M users (2
# hosts per user, users/50 teams, STATSEXPORT enabled) once, keeps them
# (boinc_bench_100k, boinc_bench_1m) for reuse, and runs the release
# db_dump with the standard spec under /usr/bin/time -v.
#
#   crates/db_dump/bench.sh            # both sizes
#   crates/db_dump/bench.sh 1m         # one size
#   REGEN=1 crates/db_dump/bench.sh    # drop and regenerate the databases
#
# Server: BENCH_MYSQL (default mysql://root@127.0.0.1:3306); databases are
# named BENCH_DB_PREFIX_SIZE (default boinc_bench_100k / boinc_bench_1m). The
# test suite never uses these databases. The config enables <credit_by_app/>
# so user_work/team_work are measured too (badge files are written because
# the generator adds badges).
set -euo pipefail
cd "$(dirname "$0")/../.."
server="${BENCH_MYSQL:-mysql://root@127.0.0.1:3306}"
sizes=("${@:-100k 1m}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -p boinc-db-dump
cargo build --release -p boinc-bench --bin db_dump_gen
bin=target/release
out=target/db_dump_bench
mkdir -p "$out"
hostport="${server#mysql://}"; hostport="${hostport#*@}"
for size in "${sizes[@]}"; do
  case "$size" in
    100k) users=100000 ;;
    1m) users=1000000 ;;
    *) echo "unknown size $size (100k|1m)"; exit 2 ;;
  esac
  db="${BENCH_DB_PREFIX:-boinc_bench}_$size"
  have=$(mariadb -h "${hostport%:*}" -P "${hostport#*:}" -uroot -N -e \
    "SELECT COUNT(*) FROM $db.user" 2>/dev/null || echo 0)
  if [ "${REGEN:-0}" = 1 ] || [ "$have" != "$users" ]; then
    mariadb -h "${hostport%:*}" -P "${hostport#*:}" -uroot -e "DROP DATABASE IF EXISTS $db"
    echo "== generating $db ($users users)"
    "$bin/db_dump_gen" --database-url "$server/$db" --users "$users" --create
  fi
  dir="$out/$size"
  rm -rf "$dir"; mkdir -p "$dir/html"
  cat > "$dir/config.xml" <<XML
<boinc><config><db_name>$db</db_name><db_host>$hostport</db_host><db_user>root</db_user>
<user_country/><user_url/><credit_by_app/></config></boinc>
XML
  sed "s#html/#$PWD/$dir/html/#" config/db_dump_spec.xml > "$dir/spec.xml"
  echo "== db_dump on $db; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  BOINC_DATABASE_URL= /usr/bin/time -v "$bin/db_dump" --no-progress \
      --config "$dir/config.xml" --dump-spec "$dir/spec.xml" 2> "$dir/time.log"
  grep -E "Elapsed|User time|System time|Maximum resident|Percent of CPU" "$dir/time.log"
  echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
