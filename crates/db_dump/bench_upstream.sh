#!/usr/bin/env bash
# Upstream BOINC's C++ db_dump beside ours on the same generated database,
# in one invocation: upstream's db_dump is built at run time from a BOINC
# git checkout (nothing upstream is in this repository), both run with the
# same config.xml and db_dump_spec.xml under /usr/bin/time -v, back to back.
#
#   bash crates/db_dump/bench_upstream.sh          # 1m (generated once by bench.sh's rules)
#   bash crates/db_dump/bench_upstream.sh 100k
#
# Environment (defaults in brackets):
#   UPSTREAM_BOINC_GIT [/work/.mirror/BOINC+boinc/repo]  upstream BOINC git
#                     repository (bare is fine); its HEAD is built
#   ROUNDS [1]        runs of each, alternating (upstream takes minutes at 1M)
#   UPSTREAM_DB_DUMP []  an upstream db_dump binary built earlier by this
#                     script's steps (skips the ~10 min build)
#   BENCH_MYSQL [mysql://root@127.0.0.1:3306]  the server (root, no password)
#   BENCH_DB_PREFIX [boinc_bench]  database BENCH_DB_PREFIX_SIZE, generated
#                     with db_dump_gen when missing (kept for reuse, as bench.sh)
#
# Build dependencies (build-essential autoconf automake libtool pkg-config
# libmariadb-dev-compat libssl-dev libcurl4-openssl-dev nlohmann-json3-dev) are installed with
# apt-get when run as root. The build lives in a temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
UPSTREAM_BOINC_GIT=${UPSTREAM_BOINC_GIT:-/work/.mirror/BOINC+boinc/repo}
ROUNDS=${ROUNDS:-1}
server="${BENCH_MYSQL:-mysql://root@127.0.0.1:3306}"
size=${1:-1m}
case "$size" in
  100k) users=100000 ;;
  1m) users=1000000 ;;
  *) echo "unknown size $size (100k|1m)" >&2; exit 2 ;;
esac
die() { echo "bench_upstream: $*" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

need=()
for c in gcc g++ make autoconf automake libtoolize pkg-config mysql_config /usr/bin/time; do
  command -v "$c" >/dev/null || need+=("$c")
done
[ -e /usr/include/openssl/ssl.h ] || need+=(openssl)
[ -e /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json)
[ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing build tools (${need[*]}): run as root or install them"
  echo "# installing build dependencies (missing: ${need[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential autoconf automake \
    libtool pkg-config libmariadb-dev-compat libssl-dev libcurl4-openssl-dev nlohmann-json3-dev time >/dev/null
fi
git -C "$UPSTREAM_BOINC_GIT" rev-parse --verify -q HEAD >/dev/null 2>&1 ||
  die "no upstream BOINC git repository at $UPSTREAM_BOINC_GIT (set UPSTREAM_BOINC_GIT to a clone of https://github.com/BOINC/boinc)"

TMP=$(mktemp -d /tmp/db_dump_upstream.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
up_commit=$(git -C "$UPSTREAM_BOINC_GIT" rev-parse --short HEAD)
echo "# bench_upstream  $(nproc) cores, $(date -u '+%F %T') UTC, upstream $up_commit, ours $(git rev-parse --short HEAD)"

# --- builds (before any measurement) -----------------------------------
cargo build --release -q -p boinc-db-dump
if [ -n "${UPSTREAM_DB_DUMP:-}" ]; then
  UP_BIN=$UPSTREAM_DB_DUMP
  [ -x "$UP_BIN" ] || die "UPSTREAM_DB_DUMP=$UP_BIN is not an executable"
else
echo "# building upstream's db_dump (lib/, sched/db_dump only), load $(loadavg)"
git -C "$UPSTREAM_BOINC_GIT" archive HEAD | tar -x -C "$TMP" --exclude='*/android/*'
(
  cd "$TMP"
  ./_autosetup >"$TMP/autosetup.log" 2>&1 || { tail -20 "$TMP/autosetup.log"; exit 1; }
  ./configure --disable-client --disable-manager --enable-server --disable-fcgi \
    >"$TMP/configure.log" 2>&1 || { tail -20 "$TMP/configure.log"; exit 1; }
  make svn_version.h >"$TMP/make.log" 2>&1 || { tail -20 "$TMP/make.log"; exit 1; }
  make -j"$(nproc)" -C lib >>"$TMP/make.log" 2>&1 || { tail -20 "$TMP/make.log"; exit 1; }
  make -j"$(nproc)" -C sched db_dump >>"$TMP/make.log" 2>&1 ||
    { grep -E 'error|\*\*\*' "$TMP/make.log" | head -20; exit 1; }
) || die "building upstream's db_dump failed (logs above)"
UP_BIN="$TMP/sched/db_dump"
[ -x "$UP_BIN" ] || UP_BIN="$TMP/sched/.libs/db_dump"
[ -x "$UP_BIN" ] || die "upstream db_dump binary not found after the build"
fi

# --- the database (as bench.sh makes it) -------------------------------
hostport="${server#mysql://}"; hostport="${hostport#*@}"
sqlc() { mariadb -h "${hostport%:*}" -P "${hostport#*:}" -uroot -N "$@"; }
db="${BENCH_DB_PREFIX:-boinc_bench}_$size"
have=$(sqlc -e "SELECT COUNT(*) FROM $db.user" 2>/dev/null || echo 0)
if [ "$have" != "$users" ]; then
  cargo build --release -q -p boinc-bench --bin db_dump_gen
  sqlc -e "DROP DATABASE IF EXISTS $db"
  echo "# generating $db ($users users)"
  target/release/db_dump_gen --database-url "$server/$db" --users "$users" --create
fi
exported=$(sqlc -e "SELECT COUNT(*) FROM $db.user WHERE total_credit > 0")

# --- one project dir per program, the same config and spec -------------
setup() { # dir
  # upstream finds its project dir by config.xml and cgi-bin/
  mkdir -p "$1/html" "$1/tmp" "$1/cgi-bin"
  cat >"$1/config.xml" <<XML
<boinc><config><db_name>$db</db_name><db_host>$hostport</db_host><db_user>root</db_user>
<db_passwd></db_passwd><user_country/><user_url/></config></boinc>
XML
  sed "s#html/#$1/html/#" config/db_dump_spec.xml >"$1/db_dump_spec.xml"
}
run() { # label, dir, command...
  local label=$1 dir=$2; shift 2
  rm -rf "$dir/html"/*
  local before; before=$(loadavg)
  (cd "$dir/tmp" && BOINC_PROJECT_DIR="$dir" /usr/bin/time -v "$@" >"$dir/out.log" 2>"$dir/time.log") ||
    { tail -n 20 "$dir/out.log" "$dir/time.log" >&2; die "$label failed"; }
  local wall cpu_u cpu_s rss
  wall=$(awk -F': ' '/Elapsed/ {print $2}' "$dir/time.log")
  cpu_u=$(awk -F': ' '/User time/ {print $2}' "$dir/time.log")
  cpu_s=$(awk -F': ' '/System time/ {print $2}' "$dir/time.log")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f MB", $2/1024}' "$dir/time.log")
  printf '| %s | %s | %.1f s | %s | %s | %s | %s |\n' "$label" "$wall" "$(awk -v a="$cpu_u" -v b="$cpu_s" 'BEGIN {print a+b}')" \
    "$rss" "$(du -sh "$dir/html" | cut -f1)" "$before" "$(loadavg)"
}
setup "$TMP/p_up"; setup "$TMP/p_ours"
echo
echo "database $db: $users users ($exported with credit); standard spec (no <credit_by_app/>: upstream runs html/ops/export_credit_by_app.php for it)"
echo
echo "| program | wall | CPU (user+sys) | peak RSS | output | load before | load after |"
echo "|---|---|---|---|---|---|---|"
for _ in $(seq 1 "$ROUNDS"); do
  run "upstream db_dump ($up_commit)" "$TMP/p_up" "$UP_BIN" -d 1 --dump_spec "$TMP/p_up/db_dump_spec.xml"
  run "ours (release)" "$TMP/p_ours" "$repo/target/release/db_dump" --no-progress \
    --config "$TMP/p_ours/config.xml" --dump-spec "$TMP/p_ours/db_dump_spec.xml"
done
echo "# load at end $(loadavg)"
