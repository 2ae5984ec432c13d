#!/usr/bin/env bash
# The public lookups at 1M users through the release boinc-rpc with wrk:
# show_user by random id, team_lookup by random id, team_email_list of a
# 100,000-member team. Generates (once) 1,000,000 users, 2,000,000 hosts,
# 20,000 teams and their consent histories with db_dump_gen (STATSEXPORT
# enabled, so every lookup applies the consent rule), then moves the first
# 100,000 users into team 1.
#
#   crates/rpc/bench/lookups.sh            # generate if missing, measure
#   DROP=1 crates/rpc/bench/lookups.sh     # ... and drop the database after
#
# Server: BENCH_MYSQL (default mysql://root@127.0.0.1:3306); database
# BENCH_DB (default lookups_bench_1m), never used by the test suite.
set -euo pipefail
cd "$(dirname "$0")/../../.."
server="${BENCH_MYSQL:-mysql://root@127.0.0.1:3306}"
db="${BENCH_DB:-lookups_bench_1m}"
users="${BENCH_USERS:-1000000}"
secs="${BENCH_SECS:-10}"
hostport="${server#mysql://}"; hostport="${hostport#*@}"
host="${hostport%:*}"; port="${hostport#*:}"
sql() { mariadb -h "$host" -P "$port" -uroot -N "$@"; }
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p boinc-rpc -p boinc-bench --bin boinc-rpc --bin db_dump_gen
have=$(sql -e "SELECT COUNT(*) FROM $db.user" 2>/dev/null || echo 0)
if [ "${REGEN:-0}" = 1 ] || [ "$have" != "$users" ]; then
  sql -e "DROP DATABASE IF EXISTS $db"
  echo "== generating $db ($users users); load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$target/release/db_dump_gen" --database-url "$server/$db" --users "$users" --create
  sql "$db" -e "UPDATE user SET teamid = 1 ORDER BY id LIMIT 100000; ANALYZE TABLE user, team, consent;"
fi
members=$(sql "$db" -e "SELECT COUNT(*) FROM user WHERE teamid = 1")
shown=$(sql "$db" -e "SELECT COUNT(*) FROM user u WHERE teamid = 1 AND (SELECT c.consent_flag FROM consent c JOIN consent_type t ON t.id = c.consent_type_id WHERE c.userid = u.id AND t.shortname = 'STATSEXPORT' ORDER BY c.consent_time DESC, c.id DESC LIMIT 1) = 1")
maxteam=$(sql "$db" -e "SELECT MAX(id) FROM team")
dir=$(mktemp -d)
trap 'kill $rpc 2>/dev/null || true; rm -rf "$dir"' EXIT
listen="127.0.0.1:${BENCH_PORT:-18480}"
cat > "$dir/config.xml" <<XML
<boinc><config>
  <db_name>$db</db_name><db_host>$host:$port</db_host><db_user>root</db_user><db_passwd></db_passwd>
  <master_url>http://$listen/</master_url><long_name>Lookup bench</long_name>
  <rpc_lookups_per_ip>0</rpc_lookups_per_ip>
</config></boinc>
XML
RUST_LOG=warn "$target/release/boinc-rpc" --config "$dir/config.xml" --listen "$listen" &
rpc=$!
until curl -sf "http://$listen/get_project_config.php" >/dev/null; do sleep 0.2; done
run() { # name connections path max [seconds [timeout]]
  local d="${5:-$secs}"
  echo "== $1 ($2 connections, ${d}s); load $(cut -d' ' -f1-3 /proc/loadavg)"
  LOOKUP_PATH="$3" LOOKUP_MAX="$4" wrk -t2 -c"$2" -d"${d}s" --timeout "${6:-2}s" --latency \
    -s crates/rpc/bench/lookup.lua "http://$listen" |
    grep -E "requests in|Requests/sec|Transfer/sec|50%|99%|Non-2xx|Socket errors"
}
run "show_user by id" 16 "/show_user.php?userid=%d&format=xml" "$users"
run "team_lookup by id" 16 "/team_lookup.php?team_id=%d" "$maxteam"
echo "team 1: $members members, $shown shown under STATSEXPORT"
curl -s -o /dev/null -w "one team_email_list of team 1 alone: %{size_download} bytes in %{time_total} s (first byte after %{time_starttransfer} s)\n" \
  "http://$listen/team_email_list.php?teamid=1&xml=1"
run "team_email_list, team of $members" 2 "/team_email_list.php?teamid=%d&xml=1" 1 30 60
kill $rpc; wait $rpc 2>/dev/null || true
if [ "${DROP:-0}" = 1 ]; then sql -e "DROP DATABASE $db"; echo "== dropped $db"; fi
