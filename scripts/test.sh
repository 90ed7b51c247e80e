#!/usr/bin/env bash
# The project's one test command, locally and in CI: scripts/test.sh [pytest args...]
# Sets up the virtualenv, installs Debian's chromium for the browser tests where missing, finds (or
# starts) PostgreSQL and RabbitMQ, then runs pytest from the repo root.
#   VENV                            virtualenv to create or reuse (default: .venv in the repo root)
#   DATABASE_URL, CELERY_BROKER_URL used as given when set (else the run gets a vhost of its
#                                   own on the broker, deleted when it ends)
#   ORDERFLOW_RABBITMQ=4            test against RabbitMQ 4.0: a throwaway node run from a cached
#                                   Debian 13 root (scripts/lib/rabbitmq4.sh; needs root), or the
#                                   broker of CELERY_BROKER_URL if that one is 4.x. Default 3.10:
#                                   the local server or a throwaway one of Debian 12's package.
#   ORDERFLOW_THROWAWAY_SERVICES=1  start private servers even when the local ones answer
#   ORDERFLOW_SERVICE_BIN_DIRS      colon-separated dirs to search for initdb/rabbitmq-server
# Exits with pytest's exit code, or 2 when no database or broker can be had.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=scripts/lib/rabbitmq4.sh
source "$ROOT/scripts/lib/rabbitmq4.sh"
# shellcheck source=scripts/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"
# shellcheck source=scripts/lib/browser.sh
source "$ROOT/scripts/lib/browser.sh"

trap cleanup_services EXIT
trap 'exit 130' INT  # exiting runs the EXIT trap, which stops what we started
trap 'exit 143' TERM

throwaway_forced() { [ "${ORDERFLOW_THROWAWAY_SERVICES:-0}" = 1 ]; }

choose_database() {
  if [ -n "${DATABASE_URL:-}" ]; then
    DB_ORIGIN="from DATABASE_URL"
  elif ! throwaway_forced && postgres_answers 127.0.0.1 5432; then
    # pytest-django creates test_orderflow via the 'postgres' database, so orderflow need not exist.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderflow DB_ORIGIN="local server"
  else
    start_throwaway_postgres
    DB_ORIGIN="throwaway server"
  fi
}

RABBITMQ_WANTED=${ORDERFLOW_RABBITMQ:-3.10}
case "$RABBITMQ_WANTED" in
  3.10 | 4 | 4.0) ;;
  *) die 2 "ORDERFLOW_RABBITMQ=$RABBITMQ_WANTED: the suite runs on RabbitMQ 3.10 (the default) or 4" ;;
esac

choose_broker() {  # then a vhost of the run's own on it, unless CELERY_BROKER_URL names one
  if [ -n "${CELERY_BROKER_URL:-}" ]; then
    BROKER_ORIGIN="from CELERY_BROKER_URL, used as it is"
    return
  elif [ "${RABBITMQ_WANTED%%.*}" = 4 ]; then
    start_throwaway_rabbitmq4
    BROKER_ORIGIN="throwaway server from the Debian 13 root $(rabbitmq4_root)"
    # The nodes chaos.cluster starts (tests/cluster) run from the same root.
    export RABBITMQ_ROOT=${RABBITMQ_ROOT:-$(rabbitmq4_root)}
  elif ! throwaway_forced && amqp_answers 127.0.0.1 5672 && local_rabbitmqctl_works; then
    CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//" BROKER_ORIGIN="local server"
  else
    # A local server we may not administer cannot give us a vhost: a private one can.
    start_throwaway_rabbitmq
    BROKER_ORIGIN="throwaway server"
  fi
  use_own_vhost
  BROKER_ORIGIN="$BROKER_ORIGIN, vhost $TEST_VHOST made for this run"
}

ensure_venv requirements-dev.txt
ensure_chromium
choose_database
choose_broker
export DATABASE_URL CELERY_BROKER_URL
# Tests run with DEBUG off, like production, which needs a key; this one signs nothing real.
export SECRET_KEY=${SECRET_KEY:-orderflow-tests-only-not-a-secret}
# Named by the broker itself, so the line says what the run was tested against.
BROKER_VERSION=$(broker_version "$CELERY_BROKER_URL") ||
  die 2 "could not ask the broker at $(hide_password "$CELERY_BROKER_URL") for its version (error above)"
if [ -n "${ORDERFLOW_RABBITMQ:-}" ] && [[ "${BROKER_VERSION#* }" != "$RABBITMQ_WANTED"* ]]; then
  die 2 "ORDERFLOW_RABBITMQ=$ORDERFLOW_RABBITMQ, but the broker is $BROKER_VERSION ($BROKER_ORIGIN)"
fi
note "database $(hide_password "$DATABASE_URL") ($DB_ORIGIN), broker $BROKER_VERSION at $(hide_password "$CELERY_BROKER_URL") ($BROKER_ORIGIN)"
"$VENV/bin/python" -m pytest "$@"
