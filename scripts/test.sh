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

soak=""
stop_services() {
  if [[ -n $soak ]]; then
    kill "$soak" 2>/dev/null || true
  fi
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

echo "== Chromium (headless) for the observer web view's browser test"
bash scripts/services/chromium.sh ensure

echo "== building every test"
cargo test --workspace --all-features --no-run "$@"

# The five-minute soak of a visible connection to BEAM is mostly idle: it runs beside
# the rest of the suite instead of after it (it is #[ignore]d in the ordinary run for
# that reason, and run here, always).
echo "== the distribution soak (5 minutes), in the background: $state/dist_soak.log"
cargo test -p otp-threads --all-features --test dist_soak -- --ignored >"$state/dist_soak.log" 2>&1 &
soak=$!

echo "== cargo test --workspace --all-features"
cargo test --workspace --all-features "$@"

echo "== waiting for the distribution soak"
status=0
wait "$soak" || status=$?
soak=""
cat "$state/dist_soak.log"
if [[ $status -ne 0 ]]; then
  echo "the distribution soak failed (exit $status)" >&2
  exit "$status"
fi
