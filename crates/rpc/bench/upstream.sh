#!/usr/bin/env bash
# Requests/s at 16 connections for create_account, get_project_config,
# am_set_info (a STATSEXPORT flip) and lookup_account: upstream BOINC's PHP
# (nginx + php-fpm) beside our release boinc-rpc, in one invocation, on
# this machine. See crates/rpc/PERFORMANCE.md, "Against upstream".
#
#   bash crates/rpc/bench/upstream.sh                     # 3 rounds x 10 s per RPC
#   DURATION=5 RPCS=create_account bash crates/rpc/bench/upstream.sh
#
# Environment (defaults in brackets):
#   RPCS [create_account get_project_config am_set_info lookup_account]
#   DURATION [10]      seconds per wrk run
#   ROUNDS [3]         rounds; each runs every RPC on upstream then ours
#                      (create_account also on ours at nice 5)
#   CONNS [16]         wrk connections (-t2)
#   PHP_WORKERS [16]   php-fpm workers (pm = static)
#   NICE5 [1]          also run ours with BOINC_RPC_HASH_NICE=5 (0: skip)
#   UPSTREAM_BOINC_GIT [/work/.mirror/BOINC+boinc/repo]  upstream BOINC git
#                      repository (bare is fine); UPSTREAM_REF's html/ and
#                      db/ are extracted to a temp dir at run time
#   UPSTREAM_REF [server_release/1.6/1.6.2]  the upstream release to run: the
#                      one whose RPCs ours answer like (get_project_config's
#                      <server_version>); master since 2026-03-30 answers
#                      am_set_info with -1 "not supported"
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
RPCS=${RPCS:-create_account get_project_config am_set_info lookup_account}
UPSTREAM_BOINC_GIT=${UPSTREAM_BOINC_GIT:-/work/.mirror/BOINC+boinc/repo}
UPSTREAM_REF=${UPSTREAM_REF:-server_release/1.6/1.6.2}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
export MYSQL_PWD=${MYSQL_PWD:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
lua="$here/side_by_side.lua"

die() {
    echo "upstream.sh: $*" >&2
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
git -C "$UPSTREAM_BOINC_GIT" rev-parse --verify -q "$UPSTREAM_REF^{commit}" >/dev/null 2>&1 ||
    die "no $UPSTREAM_REF in an upstream BOINC git repository at $UPSTREAM_BOINC_GIT (set UPSTREAM_BOINC_GIT to a clone of https://github.com/BOINC/boinc)"

sql() { mysql -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --batch --skip-column-names "$@"; }
sql -e 'SELECT 1' >/dev/null || die "MariaDB not reachable at $MYSQL_HOST:$MYSQL_PORT as $MYSQL_USER"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- clean-up ----------------------------------------------------------
TMP=$(mktemp -d /tmp/upstream_bench.XXXXXX)
chmod 755 "$TMP"
tag="ucb$$"
DB_UP="boinc_bench_${tag}_up"
DB_OURS="boinc_bench_${tag}_ours"
# Upstream's PHP (1.6.2) refuses an empty database password: a user of its
# own for its database, dropped on exit.
UP_USER="bench_$tag"
UP_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    sql -e "DROP DATABASE IF EXISTS \`$DB_UP\`; DROP DATABASE IF EXISTS \`$DB_OURS\`; DROP USER IF EXISTS '$UP_USER'@'%'" 2>/dev/null || true
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

echo "# upstream.sh  $(nproc) cores, load at start $(loadavg), $(date -u '+%F %T') UTC"
echo "# duration ${DURATION}s, ${CONNS} connections, ${ROUNDS} rounds, php-fpm ${PHP_WORKERS} workers, RPCs: $RPCS"

# --- our server (built first: the build must not overlap measurements) --
(cd "$repo" && cargo build --release -p boinc-rpc -p boinc-bench --bin boinc-rpc --bin rpc_bench --quiet) || die "cargo build --release -p boinc-rpc failed"
RPC="$repo/target/release/boinc-rpc"
RPC_BENCH="$repo/target/release/rpc_bench"

# --- upstream: code, database, project --------------------------------
UP="$TMP/upstream"
mkdir -p "$UP"
git -C "$UPSTREAM_BOINC_GIT" archive "$UPSTREAM_REF" html db | tar -x -C "$UP"
up_commit="$UPSTREAM_REF ($(git -C "$UPSTREAM_BOINC_GIT" rev-parse --short "$UPSTREAM_REF^{commit}"))"
sql -e "CREATE DATABASE \`$DB_UP\`; CREATE USER '$UP_USER'@'%' IDENTIFIED BY '$UP_PASS'; GRANT ALL ON \`$DB_UP\`.* TO '$UP_USER'@'%'"
for f in schema constraints content; do
    sql "$DB_UP" <"$UP/db/$f.sql"
done
sql "$DB_UP" -e "UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL', 'STATSEXPORT')"
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
<db_user>$UP_USER</db_user>
<db_passwd>$UP_PASS</db_passwd>
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
# 64 accounts for am_set_info and lookup_account: "authenticator email".
seed() { # base url, keys file, name
    local i r key
    : >"$2"
    for i in $(seq 0 63); do
        r=$(curl -fsS "$1/create_account.php?email_addr=seed$i%40bench.test&passwd_hash=0123456789abcdef0123456789abcdef&user_name=Seed$i&consent_flag=1&source=bench") ||
            die "$3: seeding account $i failed"
        key=$(sed -n 's:.*<authenticator>\(.*\)</authenticator>.*:\1:p' <<<"$r")
        [ -n "$key" ] || die "$3: seeding account $i answered: $r"
        echo "$key seed$i@bench.test" >>"$2"
    done
}
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
sql "$DB_OURS" -e "UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL', 'STATSEXPORT')"
sleep 1 # the server re-reads the consent types every 500 ms
OURS_URL="http://127.0.0.1:$OURS_PORT"
check_one "$OURS_URL" ours
[ "$(sql "$DB_OURS" -e "SELECT COUNT(*) FROM consent c JOIN user u ON u.id = c.userid WHERE u.email_addr = 'check@bench.test'")" = 1 ] ||
    die "ours did not record the ENROLL consent"
seed "$OURS_URL" "$TMP/keys-ours" ours
stop_ours
seed "$UP_URL" "$TMP/keys-up" upstream
echo "# ours answers create_account (release build, $(git -C "$repo" rev-parse --short HEAD)); 64 accounts seeded on each for am_set_info and lookup_account"

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
run() { # rpc, label, url, db, keys file, nonce
    local before after out rps bad created=""
    before=$(loadavg)
    out=$(RPC_BENCH_RPC="$1" RPC_BENCH_KEYS="$5" RPC_BENCH_NONCE="$6" \
        wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$lua" "$3")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    bad=$(awk '/^bad replies:/ {print $3}' <<<"$out")
    [ "$1" = create_account ] &&
        created=$(sql "$4" -e "SELECT COUNT(*) FROM user WHERE email_addr LIKE '${6}t%'")
    after=$(loadavg)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$rps" \
        "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        "$bad" "$created" "$before" "$after"
    grep '^first bad reply' <<<"$out" || true
    rates["$1/$2"]+="$rps "
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo
echo "| RPC | server | req/s | p50 | p99 | bad replies | accounts created | load before | load after |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for rpc in $RPCS; do
        run "$rpc" upstream "$UP_URL" "$DB_UP" "$TMP/keys-up" "u${round}${rpc:0:1}x$tag"
        start_ours ""
        run "$rpc" ours "$OURS_URL" "$DB_OURS" "$TMP/keys-ours" "o${round}${rpc:0:1}x$tag"
        stop_ours
        if [ "$NICE5" = 1 ] && [ "$rpc" = create_account ]; then
            start_ours 5
            run "$rpc" "ours, nice 5" "$OURS_URL" "$DB_OURS" "$TMP/keys-ours" "z${round}x$tag"
            stop_ours
        fi
    done
done

echo
echo "| RPC | server | median req/s of $ROUNDS | runs | ours / upstream |"
echo "|---|---|---|---|---|"
for rpc in $RPCS; do
    up=$(median "${rates[$rpc/upstream]}")
    labels=(upstream ours)
    [ "$NICE5" = 1 ] && [ "$rpc" = create_account ] && labels+=("ours, nice 5")
    for l in "${labels[@]}"; do
        m=$(median "${rates[$rpc/$l]}")
        ratio=""
        [ "$l" = upstream ] || ratio=$(awk -v a="$m" -v b="$up" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
        echo "| $rpc | $l | $m | ${rates[$rpc/$l]}| $ratio |"
    done
done
echo "# load at end $(loadavg), $(date -u '+%F %T') UTC"
