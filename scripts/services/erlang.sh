#!/usr/bin/env bash
# Erlang/OTP for the distribution tests: real `erl` nodes and an isolated epmd, loopback only.
#
# Usage:
#   erlang.sh ensure                  make sure `erl`, `epmd` and runtime_tools' observer_backend
#                                     exist: installs erlang-base / erlang-runtime-tools with
#                                     apt-get when missing and running as root; otherwise fails
#                                     with the command to run
#   erlang.sh epmd PORT               run epmd in the foreground on 127.0.0.1:PORT (exec; the
#                                     tests start it as a child process and kill it)
#   erlang.sh epmd-start PORT         start epmd as a daemon on 127.0.0.1:PORT and wait until
#                                     it answers
#   erlang.sh epmd-stop PORT          stop the epmd on PORT (idempotent)
#   erlang.sh node NAME COOKIE EPMD_PORT [ERL ARGS...]
#                                     run `erl -sname NAME -setcookie COOKIE -noshell` in the
#                                     foreground (exec), registered with the epmd (or the
#                                     EPMD-compatible name server) on 127.0.0.1:EPMD_PORT,
#                                     distribution bound to 127.0.0.1; never starts an epmd
#                                     of its own. Extra arguments go to erl (e.g. -eval '...').
#
# Short names (-sname) take the host part from `hostname`; it must resolve to 127.0.0.1
# (on the project machine /etc/hosts maps `vm` to 127.0.0.1), so NAME@$(hostname) is on
# loopback.
set -euo pipefail

die() {
	echo "erlang.sh: error: $*" >&2
	exit 1
}

log() {
	echo "erlang.sh: $*" >&2
}

usage() {
	sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# `observer_backend` (OTP's runtime_tools application) answers the calls observer makes;
# the observer tests compare our answers with a BEAM node's own.
has_observer_backend() {
	[[ $(erl -noshell -eval 'io:format("~p", [code:which(observer_backend)]), halt().' 2>/dev/null) == \"*\" ]]
}

apt_install() {
	if [[ $(id -u) -ne 0 ]]; then
		die "$1 is not installed and this is not root; install it with" \
			"'sudo apt-get install -y $1', then rerun"
	fi
	log "installing $1"
	export DEBIAN_FRONTEND=noninteractive
	# Another apt may hold the lock for a while: wait for it rather than fail.
	apt-get -o DPkg::Lock::Timeout=600 update >&2 || true
	apt-get -o DPkg::Lock::Timeout=600 install -y "$1" >&2
}

ensure() {
	if ! command -v erl >/dev/null 2>&1 || ! command -v epmd >/dev/null 2>&1; then
		apt_install erlang-base
		command -v erl >/dev/null 2>&1 || die "erlang-base installed but erl is not on PATH"
	fi
	if ! has_observer_backend; then
		apt_install erlang-runtime-tools
		has_observer_backend || die "erlang-runtime-tools installed but observer_backend is not found"
	fi
}

check_port() {
	[[ $1 =~ ^[0-9]+$ ]] && ((1 <= $1 && $1 <= 65535)) || die "invalid port '$1'"
}

cmd_epmd() {
	check_port "$1"
	ensure
	exec epmd -address 127.0.0.1 -port "$1"
}

cmd_epmd_start() {
	check_port "$1"
	ensure
	epmd -daemon -address 127.0.0.1 -port "$1"
	for _ in $(seq 1 100); do
		if epmd -port "$1" -names >/dev/null 2>&1; then
			log "epmd listening on 127.0.0.1:$1"
			return 0
		fi
		sleep 0.1
	done
	die "epmd on 127.0.0.1:$1 did not answer within 10 s"
}

cmd_epmd_stop() {
	check_port "$1"
	if command -v epmd >/dev/null 2>&1; then
		epmd -port "$1" -kill >/dev/null 2>&1 || true
	fi
}

cmd_node() {
	[[ $# -ge 3 ]] || usage
	local name=$1 cookie=$2 port=$3
	shift 3
	check_port "$port"
	ensure
	export ERL_EPMD_PORT=$port
	export ERL_EPMD_ADDRESS=127.0.0.1
	# No erl_crash.dump files in the working directory when a test kills a node.
	export ERL_CRASH_DUMP_SECONDS=0
	exec erl -sname "$name" -setcookie "$cookie" -noshell -noinput \
		-start_epmd false \
		-kernel inet_dist_use_interface '{127,0,0,1}' \
		"$@"
}

main() {
	[[ $# -ge 1 ]] || usage
	local cmd=$1
	shift
	case $cmd in
	ensure) ensure ;;
	epmd) [[ $# -eq 1 ]] || usage; cmd_epmd "$1" ;;
	epmd-start) [[ $# -eq 1 ]] || usage; cmd_epmd_start "$1" ;;
	epmd-stop) [[ $# -eq 1 ]] || usage; cmd_epmd_stop "$1" ;;
	node) cmd_node "$@" ;;
	*) usage ;;
	esac
}

main "$@"
