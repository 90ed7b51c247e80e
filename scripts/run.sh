#!/usr/bin/env bash
# The main command: scripts/run.sh. Runs every Procfile process of Orderflow locally with honcho.
# Needs nothing but Python 3.11: without DATABASE_URL it uses SQLite, and without a RabbitMQ
# on 127.0.0.1:5672 (or CELERY_BROKER_URL) it uses kombu's filesystem broker, saying what
# that mode lacks. PORT (default 8000) is where the web app listens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=scripts/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"

ensure_venv requirements.txt
export DEBUG=${DEBUG:-1} PORT=${PORT:-8000} PATH="$VENV/bin:$PATH"  # the Procfile runs python, celery

lacks=()
if [ -z "${DATABASE_URL:-}" ]; then
  lacks+=("SQLite instead of PostgreSQL: no row locks, one writer at a time")
fi
if [ -z "${CELERY_BROKER_URL:-}" ] && ! amqp_answers 127.0.0.1 5672; then
  export CELERY_BROKER_URL="filesystem://"
fi
if [[ "${CELERY_BROKER_URL:-}" == filesystem://* ]]; then
  lacks+=("kombu's filesystem broker instead of RabbitMQ: no dead-letter queue, no delivery limit,")
  lacks+=("  no publisher confirms; retries wait in worker memory; one machine only")
fi
if [ ${#lacks[@]} -gt 0 ]; then
  note "WARNING: running in development mode with embedded defaults."
  for line in "${lacks[@]}"; do note "  - $line"; done
  note "Set DATABASE_URL and CELERY_BROKER_URL (see README.md) for the real thing."
fi

# Migrated before anything starts, so no process meets an empty database; the Procfile's
# release process then finds nothing left to do.
python manage.py migrate --noinput
note "Orderflow on http://127.0.0.1:$PORT/ (admin: /admin/, API: /api/orders/); Ctrl-C stops it."
note "Make a login with: $VENV/bin/python manage.py createsuperuser"
note "See every outcome: $VENV/bin/python manage.py demo --orders 50 (in another terminal)"
exec honcho start
