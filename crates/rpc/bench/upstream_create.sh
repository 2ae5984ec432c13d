#!/usr/bin/env bash
# create_account/s at 16 connections: upstream BOINC's PHP (nginx + php-fpm)
# beside our release boinc-rpc, in one invocation, on this machine.
# See crates/rpc/PERFORMANCE.md, "Sign-up against upstream".
#
#   bash crates/rpc/bench/upstream_create.sh              # 3 rounds x 10 s
#   DURATION=5 bash crates/rpc/bench/upstream_create.sh
#
# Environment (defaults in brackets):
#   DURATION [10]      seconds per wrk run
#   ROUNDS [3]         rounds; each runs upstream, ours (and ours at nice 5)
#   CONNS [16]         wrk connections (-t2)
#   PHP_WORKERS [16]   php-fpm workers (pm = static)
#   NICE5 [1]          also run ours with BOINC_RPC_HASH_NICE=5 (0: skip)
#   UPSTREAM_BOINC_GIT [/work/.mirror/BOINC+boinc/repo]  upstream BOINC git
#                      repository (bare is fine); its HEAD's html/ and db/
#                      are extracted to a temp dir at run time
#   MYSQL_HOST [127.0.0.1] MYSQL_PORT [3306] MYSQL_USER [root] MYSQL_PWD []
#
# Everything runs on 127.0.0.1 on free ports with its own config in a temp
# dir (own nginx and php-fpm instances; system services are not touched).
# Missing Debian packages (php-fpm php-mysql php-xml nginx-light wrk) are installed
# with apt-get when run as root. Databases, processes and files it made are
# removed on exit, Ctrl-C included.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-16}
PHP_WORKERS=${PHP_WORKERS:-16}
NICE5=${NICE5:-1}
UPSTREAM_BOINC_GIT=${UPSTREAM_BOINC_GIT:-/work/.mirror/BOINC+boinc/repo}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
export MYSQL_PWD=${MYSQL_PWD:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
lua="$here/create_account_get.lua"

die() {
    echo "upstream_create: $*" >&2
    # What the servers said, if they got that far.
    for f in "${TMP:-/nonexistent}"/{php-fpm.out,php-fpm.log,nginx/error.log,boinc-rpc.log}; do
        [ -s "$f" ] && { echo "--- ${f#"$TMP"/}" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- tools -------------------------------------------------------------
find_fpm() { compgen -c php-fpm | sort -V | tail -n1; }
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v php >/dev/null || need+=(php-cli)
[ -n "$(find_fpm)" ] || need+=(php-fpm)
# (captured first: `php -m | grep -q` can fail under pipefail when grep
# exits early and php gets SIGPIPE)
php_mods=$(php -m 2>/dev/null || true)
grep -qx mysqli <<<"$php_mods" || need+=(php-mysql)
grep -qx SimpleXML <<<"$php_mods" || need+=(php-xml) # config.xml
command -v mysql >/dev/null || need+=(mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages: ${need[*]} (apt-get install them, or run as root)"
    echo "# installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null
fi
FPM=$(find_fpm)
[ -n "$FPM" ] || die "php-fpm not found after install"
command -v git >/dev/null || die "git missing"
git -C "$UPSTREAM_BOINC_GIT" rev-parse --verify -q HEAD >/dev/null 2>&1 ||
    die "no upstream BOINC git repository at $UPSTREAM_BOINC_GIT (set UPSTREAM_BOINC_GIT to a clone of https://github.com/BOINC/boinc)"

sql() { mysql -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --batch --skip-column-names "$@"; }
sql -e 'SELECT 1' >/dev/null || die "MariaDB not reachable at $MYSQL_HOST:$MYSQL_PORT as $MYSQL_USER"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- clean-up ----------------------------------------------------------
TMP=$(mktemp -d /tmp/upstream_create.XXXXXX)
chmod 755 "$TMP"
tag="ucb$$"
DB_UP="boinc_bench_${tag}_up"
DB_OURS="boinc_bench_${tag}_ours"
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    sql -e "DROP DATABASE IF EXISTS \`$DB_UP\`; DROP DATABASE IF EXISTS \`$DB_OURS\`" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

wait_http() { # url, what; 60 s (creating a schema on a busy machine is slow)
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$2 did not come up ($1)"
}

echo "# upstream_create  $(nproc) cores, load at start $(loadavg), $(date -u '+%F %T') UTC"
echo "# duration ${DURATION}s, ${CONNS} connections, ${ROUNDS} rounds, php-fpm ${PHP_WORKERS} workers"

# --- our server (built first: the build must not overlap measurements) --
(cd "$repo" && cargo build --release -p boinc-rpc --quiet) || die "cargo build --release -p boinc-rpc failed"
RPC="$repo/target/release/boinc-rpc"
RPC_BENCH="$repo/target/release/rpc_bench"

# --- upstream: code, database, project --------------------------------
UP="$TMP/upstream"
mkdir -p "$UP"
git -C "$UPSTREAM_BOINC_GIT" archive HEAD html db | tar -x -C "$UP"
up_commit=$(git -C "$UPSTREAM_BOINC_GIT" rev-parse --short HEAD)
sql -e "CREATE DATABASE \`$DB_UP\`"
for f in schema constraints content; do
    sql "$DB_UP" <"$UP/db/$f.sql"
done
sql "$DB_UP" -e "UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'"
# html/project/ as make_project creates it from project.sample, except that
# the stopforumspam.com lookup (an HTTPS request per sign-up) is off.
cp -r "$UP/html/project.sample" "$UP/html/project"
sed -i 's/define("USE_STOPFORUMSPAM", true)/define("USE_STOPFORUMSPAM", false)/' "$UP/html/project/project.inc"
grep -q 'define("USE_STOPFORUMSPAM", false)' "$UP/html/project/project.inc" ||
    die "could not switch off USE_STOPFORUMSPAM in upstream's project.inc"
# config.xml and terms_of_use.txt in the project dir (html/inc/../..).
cat >"$UP/config.xml" <<EOF
<boinc>
<config>
<db_name>$DB_UP</db_name>
<db_host>$MYSQL_HOST:$MYSQL_PORT</db_host>
<db_user>$MYSQL_USER</db_user>
<db_passwd>$MYSQL_PWD</db_passwd>
<master_url>http://127.0.0.1/bench/</master_url>
<long_name>Bench Project</long_name>
</config>
</boinc>
EOF
echo "Bench terms of use." >"$UP/terms_of_use.txt"

FPM_PORT=$(free_port)
cat >"$TMP/php-fpm.conf" <<EOF
[global]
pid = $TMP/php-fpm.pid
error_log = $TMP/php-fpm.log
daemonize = no
[bench]
listen = 127.0.0.1:$FPM_PORT
pm = static
pm.max_children = $PHP_WORKERS
catch_workers_output = yes
EOF
root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(-R)
"$FPM" -y "$TMP/php-fpm.conf" "${root_flag[@]}" >"$TMP/php-fpm.out" 2>&1 &
pids+=($!)

NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx/logs"
nginx_user=""
[ "$(id -u)" = 0 ] && nginx_user="user root;"
cat >"$TMP/nginx.conf" <<EOF
$nginx_user
worker_processes auto;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    proxy_temp_path $TMP/nginx/proxy;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $UP/html/user;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass 127.0.0.1:$FPM_PORT;
        }
    }
}
EOF
nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx.conf" &
pids+=($!)
UP_URL="http://127.0.0.1:$NGINX_PORT"
wait_http "$UP_URL/get_project_config.php" "upstream (nginx + php-fpm)"

check_one() { # base url, name
    local r
    r=$(curl -fsS "$1/create_account.php?email_addr=check%40bench.test&passwd_hash=0123456789abcdef0123456789abcdef&user_name=Check&consent_flag=1&source=bench") ||
        die "$2: create_account request failed"
    grep -q '<authenticator>' <<<"$r" || die "$2: create_account answered without <authenticator>: $r"
}
check_one "$UP_URL" upstream
stored=$(sql "$DB_UP" -e "SELECT passwd_hash FROM user WHERE email_addr = 'check@bench.test'")
echo "# upstream $up_commit answers create_account; stored hash prefix ${stored:0:7} (cost 10: \$2y\$10\$)"
[ "$(sql "$DB_UP" -e "SELECT COUNT(*) FROM consent c JOIN user u ON u.id = c.userid WHERE u.email_addr = 'check@bench.test'")" = 1 ] ||
    die "upstream did not record the ENROLL consent"

# --- ours -------------------------------------------------------------
OURS="$TMP/ours"
mkdir -p "$OURS"
ours_config() { # dir
    cat >"$1/config.xml" <<EOF
<boinc>
<config>
<db_name>$DB_OURS</db_name>
<db_host>$MYSQL_HOST:$MYSQL_PORT</db_host>
<db_user>$MYSQL_USER</db_user>
<db_passwd>$MYSQL_PWD</db_passwd>
<master_url>http://127.0.0.1/bench/</master_url>
<long_name>Bench Project</long_name>
<rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>
<rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>
</config>
</boinc>
EOF
    echo "Bench terms of use." >"$1/terms_of_use.txt"
}
ours_config "$OURS"
OURS_PORT=$(free_port)
start_ours() { # nice or ""
    local env=(RUST_LOG=warn)
    [ -n "$1" ] && env+=(BOINC_RPC_HASH_NICE="$1")
    env "${env[@]}" "$RPC" --config "$OURS/config.xml" --listen "127.0.0.1:$OURS_PORT" --init-db \
        >>"$TMP/boinc-rpc.log" 2>&1 &
    OURS_PID=$!
    pids+=("$OURS_PID")
    wait_http "http://127.0.0.1:$OURS_PORT/get_project_config.php" "boinc-rpc"
}
stop_ours() {
    kill "$OURS_PID" 2>/dev/null || true
    wait "$OURS_PID" 2>/dev/null || true
    local keep=() p
    for p in "${pids[@]}"; do [ "$p" = "$OURS_PID" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}
start_ours ""
sql "$DB_OURS" -e "UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'"
sleep 1 # the server re-reads the consent types every 500 ms
OURS_URL="http://127.0.0.1:$OURS_PORT"
check_one "$OURS_URL" ours
[ "$(sql "$DB_OURS" -e "SELECT COUNT(*) FROM consent c JOIN user u ON u.id = c.userid WHERE u.email_addr = 'check@bench.test'")" = 1 ] ||
    die "ours did not record the ENROLL consent"
stop_ours
echo "# ours answers create_account (release build, $(git -C "$repo" rev-parse --short HEAD))"

# --- hash rate, as context (one thread each, wall clock, back to back) --
php_rate=$(php -r '
    $t = microtime(true); $n = 0; $r0 = getrusage();
    while (microtime(true) - $t < 3) { password_hash("0123456789abcdef0123456789abcdef", PASSWORD_BCRYPT, ["cost" => 10]); $n++; }
    $r1 = getrusage(); $w = microtime(true) - $t;
    $cpu = ($r1["ru_utime.tv_sec"] + $r1["ru_utime.tv_usec"] / 1e6 + $r1["ru_stime.tv_sec"] + $r1["ru_stime.tv_usec"] / 1e6)
         - ($r0["ru_utime.tv_sec"] + $r0["ru_utime.tv_usec"] / 1e6 + $r0["ru_stime.tv_sec"] + $r0["ru_stime.tv_usec"] / 1e6);
    printf("%.1f hashes/s wall, %.1f per CPU-second", $n / $w, $n / $cpu);')
echo "| PHP password_hash cost 10, one thread | $php_rate | load $(loadavg) |"
if [ -x "$RPC_BENCH" ]; then
    # Ctrl-C waits for it (~10 s): killed, it would leave its test database.
    ours_rate=$( (trap '' INT; exec "$RPC_BENCH" --only bcrypt 2>/dev/null) | grep '^| bcrypt' | cut -d'|' -f3 | xargs) || ours_rate="?"
    echo "| ours hash_for_storage cost 10, one thread (rpc_bench --only bcrypt) | $ours_rate wall | load $(loadavg) |"
fi

# --- measurements -----------------------------------------------------
declare -A rates
run() { # label, url, db, nonce
    local before after out rps bad created
    before=$(loadavg)
    out=$(RPC_BENCH_NONCE="$4" wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$lua" "$2")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    bad=$(awk '/^bad replies:/ {print $3}' <<<"$out")
    created=$(sql "$3" -e "SELECT COUNT(*) FROM user WHERE email_addr LIKE '${4}t%'")
    after=$(loadavg)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" \
        "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        "$bad" "$created" "$before" "$after"
    grep '^first bad reply' <<<"$out" || true
    rates[$1]+="$rps "
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo
echo "| server | req/s | p50 | p99 | bad replies | accounts created | load before | load after |"
echo "|---|---|---|---|---|---|---|---|"
labels=(upstream ours)
[ "$NICE5" = 1 ] && labels+=("ours, nice 5")
for round in $(seq 1 "$ROUNDS"); do
    run upstream "$UP_URL" "$DB_UP" "u${round}x$tag"
    start_ours ""
    run ours "$OURS_URL" "$DB_OURS" "o${round}x$tag"
    stop_ours
    if [ "$NICE5" = 1 ]; then
        start_ours 5
        run "ours, nice 5" "$OURS_URL" "$DB_OURS" "z${round}x$tag"
        stop_ours
    fi
done

echo
echo "| server | median req/s of $ROUNDS | runs |"
echo "|---|---|---|"
for l in "${labels[@]}"; do
    echo "| $l | $(median "${rates[$l]}") | ${rates[$l]}|"
done
up=$(median "${rates[upstream]}")
ours=$(median "${rates[ours]}")
echo "# ours / upstream = $(awk -v a="$ours" -v b="$up" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'), load at end $(loadavg)"
