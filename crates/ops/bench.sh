#!/usr/bin/env bash
# Admin paths at 1M users: generates (once) a project of 1,000,000 users,
# 2,000,000 hosts and ~1.7M consent rows with db_dump_gen into
# scale_bench_1m, links its ENROLL consents to two terms versions (as
# create_account does), and runs the release ops_bench: the consent report
# (with the ops page's monthly series) and its charts beside the streaming
# limit in the same run, one user's history, the ops page's first load and
# time to the report.
#
#   crates/ops/bench.sh               # generate if missing, then measure
#   crates/ops/bench.sh --old         # also time the previous report query
#   REGEN=1 crates/ops/bench.sh       # drop and regenerate
#
# Server: BENCH_MYSQL (default mysql://root@127.0.0.1:3306); database
# BENCH_DB (default scale_bench_1m), never used by the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
server="${BENCH_MYSQL:-mysql://root@127.0.0.1:3306}"
db="${BENCH_DB:-scale_bench_1m}"
users="${BENCH_USERS:-1000000}"
hostport="${server#mysql://}"; hostport="${hostport#*@}"
sql() { mariadb -h "${hostport%:*}" -P "${hostport#*:}" -uroot -N "$@"; }
cargo build --release -p boinc-bench --bin db_dump_gen --bin ops_bench
have=$(sql -e "SELECT COUNT(*) FROM $db.user" 2>/dev/null || echo 0)
if [ "${REGEN:-0}" = 1 ] || [ "$have" != "$users" ]; then
  sql -e "DROP DATABASE IF EXISTS $db"
  echo "== generating $db ($users users); load $(cut -d' ' -f1-3 /proc/loadavg)"
  target/release/db_dump_gen --database-url "$server/$db" --users "$users" --create
fi
if [ "$(sql -e "SELECT COUNT(*) FROM $db.consent_terms")" = 0 ]; then
  # Two terms versions; ENROLL consents before the midpoint accepted v1,
  # later ones v2, every tenth none (PHP sign-ups): the report's join. v2
  # is first seen at the midpoint (the ENROLL chart marks it).
  sql "$db" -e "
    SET @mid = (SELECT AVG(consent_time) FROM consent);
    INSERT INTO terms_version (sha256, terms, first_seen) VALUES
      (SHA2('Bench terms v1', 256), 'Bench terms v1', (SELECT MIN(consent_time) FROM consent)),
      (SHA2('Bench terms v2', 256), 'Bench terms v2', ROUND(@mid));
    INSERT INTO consent_terms (consent_id, terms_version_id)
      SELECT c.id, IF(c.consent_time < @mid,
                      (SELECT id FROM terms_version WHERE terms = 'Bench terms v1'),
                      (SELECT id FROM terms_version WHERE terms = 'Bench terms v2'))
        FROM consent c JOIN consent_type t ON t.id = c.consent_type_id
       WHERE t.shortname = 'ENROLL' AND c.consent_flag = 1 AND c.id % 10 <> 0;"
fi
echo "== ops_bench on $db; load $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/ops_bench --database-url "$server/$db" "$@"
