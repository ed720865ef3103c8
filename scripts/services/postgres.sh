#!/usr/bin/env bash
# PostgreSQL 15 primary + hot standby for the LSN tracker tests (loopback only).
#
# Usage:
#   postgres.sh start   DIR   create (first time) and start the pair, write DIR/env
#   postgres.sh stop    DIR   stop both servers (fast mode); idempotent
#   postgres.sh status  DIR   report whether each server is running; exit 0 iff both are
#   postgres.sh restart-standby DIR
#                             restart the standby only (fast mode) and wait until it is
#                             back in recovery; used by the reconnect test
#   postgres.sh stop-standby DIR
#                             stop the standby only (fast mode); `start DIR` brings it back
#   postgres.sh rebuild-standby DIR
#                             replace the standby by a fresh pg_basebackup of the primary
#                             (same port) and wait until it is in recovery; used after a
#                             test promoted it (pg_promote()) to restore the pair
#
# DIR/env holds libpq key=value connection strings, single-quoted (they contain spaces)
# and ready for `set -a; . DIR/env; set +a`:
#   OTP_THREADS_PG_PRIMARY='host=127.0.0.1 port=P user=postgres dbname=postgres'
#   OTP_THREADS_PG_STANDBY='host=127.0.0.1 port=S user=postgres dbname=postgres'
#   OTP_THREADS_PG_DIR='DIR'   (absolute; used by tests that stop/restart the standby)
#
# Layout of DIR: primary/ and standby/ (data directories), sock/ (unix sockets),
# primary.log and standby.log (server logs), env.
#
# The server refuses to run as root: when invoked as root every PostgreSQL command runs
# as the unprivileged `postgres` OS user (runuser) and DIR is chowned to it; otherwise
# everything runs as the current user. Authentication is `trust`, on 127.0.0.1 only.
set -euo pipefail

PG_VERSION=15
PG_BIN=${PG_BIN:-/usr/lib/postgresql/${PG_VERSION}/bin}
PG_USER_OS=postgres # OS account used when invoked as root
WAIT_SECS=${OTP_THREADS_PG_WAIT_SECS:-60}

die() {
	echo "postgres.sh: error: $*" >&2
	exit 1
}

log() {
	echo "postgres.sh: $*" >&2
}

usage() {
	# The header comment, whatever its length.
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
	exit 2
}

is_root() {
	[[ $(id -u) -eq 0 ]]
}

# Run a command as the account that owns the clusters.
as_pg() {
	if is_root; then
		runuser -u "$PG_USER_OS" -- "$@"
	else
		"$@"
	fi
}

ensure_binaries() {
	if [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb && -x $PG_BIN/pg_basebackup ]]; then
		return
	fi
	if ! is_root; then
		die "PostgreSQL ${PG_VERSION} binaries not found in $PG_BIN and not running as root;" \
			"install them with 'apt-get install -y postgresql-${PG_VERSION}' (as root) or set PG_BIN"
	fi
	log "installing postgresql-${PG_VERSION} (binaries missing from $PG_BIN)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y "postgresql-${PG_VERSION}" >&2
	[[ -x $PG_BIN/postgres ]] || die "postgresql-${PG_VERSION} installed but $PG_BIN/postgres is missing"
}

# Print one free TCP port on 127.0.0.1, not equal to $1 (if given).
free_port() {
	local avoid=${1:-0} port
	if command -v python3 >/dev/null 2>&1; then
		for _ in 1 2 3 4 5; do
			port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
			if [[ $port != "$avoid" ]]; then
				echo "$port"
				return
			fi
		done
	fi
	# Fallback: scan a random range, skipping ports that ss reports as listening.
	local used
	used=$(ss -Htanl 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u || true)
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if [[ $port != "$avoid" ]] && ! grep -qx "$port" <<<"$used"; then
			echo "$port"
			return
		fi
	done
	die "could not find a free TCP port on 127.0.0.1"
}

# Port configured in a data directory (last `port = N` line of postgresql.conf wins).
conf_port() {
	sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]\{1,\}\).*/\1/p' "$1/postgresql.conf" | tail -n 1
}

is_running() { # DATADIR
	[[ -f $1/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

log_tail() { # LOGFILE
	if [[ -f $1 ]]; then
		echo "---- last lines of $1 ----" >&2
		tail -n 30 "$1" >&2 || true
		echo "----" >&2
	fi
}

psql_at() { # PORT SQL
	as_pg "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2" 2>/dev/null
}

# Wait until the server on PORT accepts SQL connections; on standby=yes also until it
# reports pg_is_in_recovery() = t.
wait_ready() { # NAME PORT LOGFILE EXPECT_RECOVERY(t|f)
	local name=$1 port=$2 logfile=$3 expect=$4 deadline state
	deadline=$((SECONDS + WAIT_SECS))
	while ((SECONDS < deadline)); do
		state=$(psql_at "$port" 'SELECT pg_is_in_recovery()' || true)
		if [[ $state == "$expect" ]]; then
			return 0
		fi
		sleep 0.1
	done
	log_tail "$logfile"
	die "$name on 127.0.0.1:$port not ready after ${WAIT_SECS}s (pg_is_in_recovery() = '${state:-<no connection>}', wanted '$expect')"
}

start_cluster() { # NAME DATADIR LOGFILE
	local name=$1 data=$2 logfile=$3
	if is_running "$data"; then
		return 0
	fi
	if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t "$WAIT_SECS" start >/dev/null; then
		log_tail "$logfile"
		die "could not start the $name server (data directory $data)"
	fi
}

stop_cluster() { # NAME DATADIR
	local name=$1 data=$2
	if [[ ! -f $data/PG_VERSION ]]; then
		return 0
	fi
	if is_running "$data"; then
		as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t "$WAIT_SECS" stop >/dev/null ||
			die "could not stop the $name server (data directory $data)"
		log "$name stopped"
	fi
}

write_env() { # DIR PRIMARY_PORT STANDBY_PORT
	local dir=$1 tmp
	tmp=$(mktemp "$dir/env.XXXXXX")
	{
		# Values are single-quoted: they contain spaces and the file is meant to be sourced.
		echo "OTP_THREADS_PG_PRIMARY='host=127.0.0.1 port=$2 user=postgres dbname=postgres'"
		echo "OTP_THREADS_PG_STANDBY='host=127.0.0.1 port=$3 user=postgres dbname=postgres'"
		echo "OTP_THREADS_PG_DIR='$dir'"
	} >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$dir/env"
}

# Create the primary and standby data directories (first start only).
create_pair() { # DIR
	local dir=$1 primary=$1/primary standby=$1/standby sock=$1/sock pport sport
	pport=$(free_port)
	sport=$(free_port "$pport")
	log "creating primary (port $pport) in $primary"
	rm -rf "$primary" "$standby"
	as_pg "$PG_BIN/initdb" --no-sync -D "$primary" -U postgres --auth=trust -E UTF8 --locale=C \
		>"$dir/initdb.log" 2>&1 || {
		log_tail "$dir/initdb.log"
		die "initdb failed"
	}
	as_pg tee -a "$primary/postgresql.conf" >/dev/null <<EOF

# ---- otp-threads test service (scripts/services/postgres.sh) ----
listen_addresses = '127.0.0.1'
port = $pport
unix_socket_directories = '$sock'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
synchronous_commit = on
wal_keep_size = '256MB'
logging_collector = off
log_line_prefix = '%m [%p] '
EOF
	as_pg tee -a "$primary/pg_hba.conf" >/dev/null <<EOF

# ---- otp-threads test service: loopback only ----
host    replication     all     127.0.0.1/32    trust
host    all             all     127.0.0.1/32    trust
EOF
	start_cluster primary "$primary" "$dir/primary.log"
	wait_ready primary "$pport" "$dir/primary.log" f

	make_standby "$dir" "$pport" "$sport"
}

# Create the standby data directory from a base backup of the running primary.
make_standby() { # DIR PRIMARY_PORT STANDBY_PORT
	local dir=$1 pport=$2 sport=$3 standby=$1/standby
	log "creating standby (port $sport) in $standby via pg_basebackup"
	as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres -D "$standby" \
		-R -X stream -c fast >"$dir/basebackup.log" 2>&1 || {
		log_tail "$dir/basebackup.log"
		die "pg_basebackup failed"
	}
	as_pg tee -a "$standby/postgresql.conf" >/dev/null <<EOF

# ---- otp-threads test service: standby overrides ----
port = $sport
hot_standby = on
EOF
}

cmd_start() { # DIR
	local dir=$1 t0 pport sport
	t0=$(date +%s.%N)
	ensure_binaries
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	mkdir -p "$dir/sock"
	if is_root; then
		chown -R "$PG_USER_OS:" "$dir"
		as_pg test -w "$dir" ||
			die "user '$PG_USER_OS' cannot write $dir (a parent directory is not accessible to it?)"
	fi

	if [[ ! -f $dir/primary/PG_VERSION || ! -f $dir/standby/PG_VERSION ]]; then
		create_pair "$dir"
	fi
	pport=$(conf_port "$dir/primary")
	sport=$(conf_port "$dir/standby")
	[[ -n $pport && -n $sport ]] || die "cannot read the configured ports from $dir/{primary,standby}"

	start_cluster primary "$dir/primary" "$dir/primary.log"
	wait_ready primary "$pport" "$dir/primary.log" f
	start_cluster standby "$dir/standby" "$dir/standby.log"
	wait_ready standby "$sport" "$dir/standby.log" t

	write_env "$dir" "$pport" "$sport"
	log "primary 127.0.0.1:$pport, standby 127.0.0.1:$sport (in recovery); env in $dir/env;" \
		"ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s"
}

cmd_stop() { # DIR
	local dir=$1
	if [[ ! -d $dir ]]; then
		log "nothing to stop ($dir does not exist)"
		return 0
	fi
	[[ -x $PG_BIN/pg_ctl ]] || die "pg_ctl not found in $PG_BIN"
	stop_cluster standby "$dir/standby"
	stop_cluster primary "$dir/primary"
}

cmd_status() { # DIR
	local dir=$1 rc=0 name
	for name in primary standby; do
		if is_running "$dir/$name"; then
			echo "$name: running (port $(conf_port "$dir/$name"))"
		else
			echo "$name: stopped"
			rc=1
		fi
	done
	if [[ -f $dir/env ]]; then
		cat "$dir/env"
	fi
	return "$rc"
}

cmd_restart_standby() { # DIR
	local dir=$1 sport
	[[ -f $dir/standby/PG_VERSION ]] || die "no standby in $dir (run 'start' first)"
	sport=$(conf_port "$dir/standby")
	as_pg "$PG_BIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -m fast -w -t "$WAIT_SECS" \
		restart >/dev/null || {
		log_tail "$dir/standby.log"
		die "could not restart the standby"
	}
	wait_ready standby "$sport" "$dir/standby.log" t
	log "standby restarted"
}

cmd_rebuild_standby() { # DIR
	local dir=$1 pport sport
	[[ -f $dir/primary/PG_VERSION && -f $dir/standby/PG_VERSION ]] ||
		die "no primary + standby in $dir (run 'start' first)"
	pport=$(conf_port "$dir/primary")
	sport=$(conf_port "$dir/standby")
	[[ -n $pport && -n $sport ]] || die "cannot read the configured ports from $dir/{primary,standby}"
	start_cluster primary "$dir/primary" "$dir/primary.log"
	wait_ready primary "$pport" "$dir/primary.log" f
	stop_cluster standby "$dir/standby"
	rm -rf "$dir/standby"
	make_standby "$dir" "$pport" "$sport"
	start_cluster standby "$dir/standby" "$dir/standby.log"
	wait_ready standby "$sport" "$dir/standby.log" t
	log "standby rebuilt from the primary (127.0.0.1:$sport, in recovery)"
}

main() {
	[[ $# -eq 2 ]] || usage
	local cmd=$1 dir=$2
	case $cmd in
	start) cmd_start "$dir" ;;
	stop) cmd_stop "$dir" ;;
	status) cmd_status "$dir" ;;
	restart-standby) cmd_restart_standby "$dir" ;;
	stop-standby) stop_cluster standby "$dir/standby" ;;
	rebuild-standby) cmd_rebuild_standby "$dir" ;;
	*) usage ;;
	esac
}

main "$@"
