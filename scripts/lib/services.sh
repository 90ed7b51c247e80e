# shellcheck shell=bash
# Sourced by scripts/test.sh: find, install or start PostgreSQL and RabbitMQ for the tests.
# Whatever is started here is recorded in the globals below so cleanup_services can stop it.

PG_TMP="" PG_CTL="" AS_PG=() RABBIT_TMP="" RABBIT_PID="" RABBIT_EPMD_PORT="" RABBIT_EPMD=(epmd)
# rabbitmqctl for the broker the run uses, where we may administer it; the run's own vhost.
RABBIT_CTL=() TEST_VHOST="" CTL_WRAPPER=""
RABBIT_LOG_SUFFIX=""  # of the copy of a throwaway node's log kept in test-artifacts/broker/

note() { echo "${0##*/}: $*" >&2; }
die() { local code=$1; shift; note "$*"; exit "$code"; }
hide_password() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

free_ports() {  # COUNT: print COUNT distinct free loopback ports (bound together, so no repeats)
  python3 -c 'import socket, sys; ss = [socket.socket() for _ in range(int(sys.argv[1]))]
[s.bind(("127.0.0.1", 0)) for s in ss]; print(*(s.getsockname()[1] for s in ss))' "$1"
}

# A bare TCP connect can be answered by anything, so speak each protocol where we can.
postgres_answers() {  # HOST PORT
  if command -v pg_isready >/dev/null; then pg_isready -q -h "$1" -p "$2" -t 3; return; fi
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()' \
    "$1" "$2" 2>/dev/null
}

amqp_answers() {  # HOST PORT: send the AMQP 0-9-1 header and expect a method frame (Connection.Start) back
  python3 - "$1" "$2" 2>/dev/null <<'PY'
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
    s.settimeout(3)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    sys.exit(0 if s.recv(1) == b"\x01" else 1)
PY
}

# Debian keeps server binaries off PATH, and its /usr/sbin/rabbitmq-server wrapper su's to the
# rabbitmq user (and that user's Erlang cookie): prefer the real scripts in /usr/lib/rabbitmq/bin.
service_bin_dirs() {
  if [ -n "${ORDERFLOW_SERVICE_BIN_DIRS+set}" ]; then echo "$ORDERFLOW_SERVICE_BIN_DIRS"; return; fi
  local pg_dirs
  pg_dirs=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV | paste -sd:)
  echo "/usr/lib/rabbitmq/bin:$pg_dirs:$PATH:/usr/sbin:/usr/local/sbin"
}

find_service_bin() {  # NAME: print the first executable NAME in service_bin_dirs
  local dir IFS=:
  for dir in $(service_bin_dirs); do [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }; done
  return 1
}

locate_or_install() {  # BINARY DEBIAN_PACKAGE: print the binary's path, installing the package if we may
  find_service_bin "$1" && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  command -v apt-get >/dev/null && "${sudo[@]}" true 2>/dev/null || return 1
  note "$1 not found; running apt-get install $2"
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2")
  # The package lists may be stale or missing on a fresh machine: update only if needed.
  "${install[@]}" >/dev/null 2>&1 || { "${sudo[@]}" apt-get update -q >/dev/null && "${install[@]}" >/dev/null; }
  find_service_bin "$1"
}

start_throwaway_postgres() {
  local initdb port
  initdb=$(locate_or_install initdb postgresql) ||
    die 2 "no PostgreSQL server found: install PostgreSQL 15 (Debian: apt-get install postgresql) or set DATABASE_URL"
  PG_CTL="$(dirname "$initdb")/pg_ctl"
  PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-pg.XXXXXX")
  if [ "$(id -u)" -eq 0 ]; then  # PostgreSQL refuses to run as root
    id postgres >/dev/null 2>&1 || die 2 "running as root needs a 'postgres' user to run PostgreSQL as"
    AS_PG=(runuser -u postgres --)
    chown postgres: "$PG_TMP"
  fi
  "${AS_PG[@]}" "$initdb" -D "$PG_TMP/data" -U postgres --auth=trust --no-locale -E UTF8 --no-sync \
    >"$PG_TMP/initdb.log" 2>&1 || { cat "$PG_TMP/initdb.log" >&2; die 2 "initdb of the throwaway PostgreSQL failed"; }
  port=$(free_ports 1)
  # Loopback only, socket in the temp dir; durability is pointless for a throwaway cluster.
  "${AS_PG[@]}" "$PG_CTL" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 30 start >/dev/null \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c full_page_writes=off" ||
    { tail -n 20 "$PG_TMP/server.log" >&2; die 2 "the throwaway PostgreSQL did not start (log above)"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/orderflow"
}

start_throwaway_rabbitmq() {
  local server ctl node port dist_port vars deadline=$((SECONDS + 60))
  server=$(locate_or_install rabbitmq-server rabbitmq-server) ||
    die 2 "no RabbitMQ server found: install RabbitMQ (Debian: apt-get install rabbitmq-server) or set CELERY_BROKER_URL"
  ctl="$(dirname "$server")/rabbitmqctl"
  RABBIT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-rabbit.XXXXXX")
  node="orderflow-test-$$@localhost"
  read -r port dist_port RABBIT_EPMD_PORT < <(free_ports 3)
  # The node and rabbitmqctl read the Erlang cookie from $HOME: give both the same fresh one, written
  # before either starts (they would race to create it otherwise).
  python3 -c 'import secrets; print(secrets.token_hex(20))' >"$RABBIT_TMP/.erlang.cookie"
  chmod 400 "$RABBIT_TMP/.erlang.cookie"
  echo '[].' >"$RABBIT_TMP/enabled_plugins"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' "$port" >"$RABBIT_TMP/rabbitmq.conf"
  : >"$RABBIT_TMP/rabbitmq-env.conf"  # instead of /etc/rabbitmq/rabbitmq-env.conf, which pins the node name
  # A private epmd port: our node never touches the machine's epmd, and we can stop ours afterwards.
  vars=(HOME="$RABBIT_TMP" RABBITMQ_NODENAME="$node" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist_port" ERL_EPMD_PORT="$RABBIT_EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CONF_ENV_FILE="$RABBIT_TMP/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$RABBIT_TMP/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_TMP/advanced.config" RABBITMQ_PID_FILE="$RABBIT_TMP/rabbit.pid"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_TMP/enabled_plugins" RABBITMQ_MNESIA_BASE="$RABBIT_TMP/mnesia"
    RABBITMQ_LOG_BASE="$RABBIT_TMP/log")
  # Own session, so a Ctrl-C reaches us (and our cleanup) rather than the broker.
  (cd "$RABBIT_TMP" && exec setsid env "${vars[@]}" "$server" >"$RABBIT_TMP/server.out" 2>&1 </dev/null) &
  RABBIT_PID=$!
  until env "${vars[@]}" "$ctl" -n "$node" await_startup --timeout 10 >/dev/null 2>&1; do
    if ! kill -0 "$RABBIT_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 20 "$RABBIT_TMP/server.out" "$RABBIT_TMP/log/$node.log" >&2 2>/dev/null
      die 2 "the throwaway RabbitMQ did not start (log above)"
    fi
    sleep 1
  done
  RABBIT_CTL=(env "${vars[@]}" "$ctl" -n "$node")
  export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:$port//"
}

local_rabbitmqctl_works() {  # the machine's own node, if this user may administer it
  local ctl
  # The one on PATH: Debian's /usr/sbin wrapper runs it with the node's own Erlang cookie.
  ctl=$(command -v rabbitmqctl) || return 1
  timeout 20 "$ctl" -q status >/dev/null 2>&1 || return 1
  RABBIT_CTL=("$ctl")
}

broker_version() {  # URL: the RabbitMQ version the broker names in its AMQP server properties
  "$VENV/bin/python" - "$1" <<'PY'
import sys

import kombu

try:
    with kombu.Connection(sys.argv[1], connect_timeout=10) as connection:
        connection.connect()
        properties = connection.connection.server_properties
except Exception as error:  # one line, not a traceback: test.sh says what it was doing
    sys.exit(f"{type(error).__name__}: {error}")
print(properties.get("product", "?"), properties.get("version", "?"))
PY
}

use_own_vhost() {  # a vhost for this run alone, made now and deleted at exit (cleanup_services)
  TEST_VHOST="orderflow-test-$$-$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
  local user
  user=$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).username or "guest"))' "$CELERY_BROKER_URL")
  timeout 60 "${RABBIT_CTL[@]}" add_vhost "$TEST_VHOST" >/dev/null &&
    timeout 60 "${RABBIT_CTL[@]}" set_permissions -p "$TEST_VHOST" "$user" '.*' '.*' '.*' >/dev/null ||
    die 2 "could not make the vhost $TEST_VHOST for this run"
  CELERY_BROKER_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1])
print(p.scheme + "://" + p.netloc + "/" + u.quote(sys.argv[2], safe=""))' "$CELERY_BROKER_URL" "$TEST_VHOST")
  export CELERY_BROKER_URL
  export_rabbitmqctl
}

export_rabbitmqctl() {  # RABBITMQCTL: a command that administers the run's broker, for the tests
  # that make users on it (tests/broker_users). A throwaway node's rabbitmqctl needs its own
  # cookie, ports and (RabbitMQ 4) root: the one on PATH would reach another node.
  CTL_WRAPPER=$(mktemp "${TMPDIR:-/tmp}/orderflow-rabbitmqctl.XXXXXX")
  { echo '#!/bin/sh'; printf 'exec'; printf ' %q' "${RABBIT_CTL[@]}"; echo ' "$@"'; } >"$CTL_WRAPPER"
  chmod +x "$CTL_WRAPPER"
  export RABBITMQCTL=$CTL_WRAPPER
}

cleanup_services() {
  local rc=$?
  trap '' INT TERM  # a second Ctrl-C must not leave servers behind
  set +e
  if [ -n "$TEST_VHOST" ] && [ -z "$RABBIT_PID" ]; then  # a throwaway broker goes with its vhosts
    timeout 60 "${RABBIT_CTL[@]}" delete_vhost "$TEST_VHOST" >/dev/null 2>&1 ||
      note "could not delete the vhost $TEST_VHOST"
  fi
  if [ -n "$RABBIT_PID" ]; then
    kill -TERM "$RABBIT_PID" 2>/dev/null  # the rabbitmq-server script turns TERM into a clean stop
    for _ in {1..30}; do kill -0 "$RABBIT_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$RABBIT_PID" 2>/dev/null
    "${RABBIT_EPMD[@]}" -port "$RABBIT_EPMD_PORT" -kill >/dev/null 2>&1  # the node started it as a daemon
  fi
  if [ -n "$PG_TMP" ] && [ -f "$PG_TMP/data/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_CTL" -D "$PG_TMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  fi
  if [ -n "$RABBIT_TMP" ]; then  # the node's log outlives it, for a failure to be read afterwards
    mkdir -p "${ROOT:-.}/test-artifacts/broker" &&
      cat "$RABBIT_TMP"/log/*.log >"${ROOT:-.}/test-artifacts/broker/throwaway-rabbitmq${RABBIT_LOG_SUFFIX:-}.log" 2>/dev/null
  fi
  rm -rf ${PG_TMP:+"$PG_TMP"} ${RABBIT_TMP:+"$RABBIT_TMP"} ${CTL_WRAPPER:+"$CTL_WRAPPER"}
  exit "$rc"
}
