#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs and starts every real service the
# tests need, on loopback only (PostgreSQL primary + hot standby, a Kafka-API broker,
# Erlang/OTP for the distribution tests),
# runs every test with every feature, and stops the services again, whatever happens.
#
#   bash scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="${OTP_THREADS_SERVICE_DIR:-$root/.services}"
mkdir -p "$state"

stop_services() {
  bash "$root/scripts/services/kafka.sh" stop "$state/kafka" || true
  bash "$root/scripts/services/postgres.sh" stop "$state/postgres" || true
}
trap stop_services EXIT

echo "== starting services (state in $state)"
bash scripts/services/postgres.sh start "$state/postgres"
bash scripts/services/kafka.sh start "$state/kafka"
set -a
# shellcheck disable=SC1091
. "$state/postgres/env"
# shellcheck disable=SC1091
. "$state/kafka/env"
set +a

echo "== Erlang (erl, epmd): the distribution tests start their own nodes and epmd"
bash scripts/services/erlang.sh ensure

echo "== cargo test --workspace --all-features"
cargo test --workspace --all-features "$@"
