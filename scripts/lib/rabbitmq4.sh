# shellcheck shell=bash
# Sourced by scripts/test.sh after services.sh: a throwaway RabbitMQ 4.0 on a Debian 12 machine.
#
# Users deploy RabbitMQ 4, Debian 12 packages 3.10. Debian 13 (trixie) packages rabbitmq-server 4.0
# with the Erlang it needs, so the node runs from a Debian 13 root made once with debootstrap
# (Debian's own packages, about 370 MB) and cached between runs:
#   ORDERFLOW_RABBITMQ4_ROOT  where that root lives
#                             (default: ${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/debian-trixie-rabbitmq)
# Each run gets a fresh node directory (mnesia, logs, config, cookie) on the host, seen inside the
# root as /run/orderflow, and its own node name, ports and epmd: the machine's own RabbitMQ node and
# its epmd are never reached. Every process in the root (the node, its epmd, rabbitmqctl) runs in a
# mount namespace of its own where /proc and the node directory are mounted: those mounts go away
# with the last process of the namespace, so nothing stays mounted in the cached root, whatever
# stopped the run, and two runs can share one root.

RABBIT4_IN_ROOT="/run/orderflow"  # the node directory, as seen inside the root

rabbitmq4_root() {  # CI may run with no HOME: then the user's home directory from passwd
  local home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
  echo "${ORDERFLOW_RABBITMQ4_ROOT:-${XDG_CACHE_HOME:-${home:-/root}/.cache}/orderflow/debian-trixie-rabbitmq}"
}

ensure_rabbitmq4_root() {  # print the cached Debian 13 root with rabbitmq-server 4.0, making it on first use
  local root debootstrap log started
  root=$(rabbitmq4_root)
  [ -f "$root/.orderflow-ready" ] && { echo "$root"; return; }
  [ "$(id -u)" -eq 0 ] || die 2 "RabbitMQ 4 runs from a Debian 13 root ($root) that only root can make (debootstrap, chroot, mount)"
  debootstrap=$(locate_or_install debootstrap debootstrap) || die 2 "debootstrap not found and not installable: install it (Debian: apt-get install debootstrap)"
  mkdir -p "$(dirname "$root")"
  # One maker at a time; a run that waited finds the root made.
  exec {lock_fd}>"$root.lock"
  flock "$lock_fd"
  if [ ! -f "$root/.orderflow-ready" ]; then
    rm -rf "$root" "$root.partial"
    log="$(dirname "$root")/debootstrap.log"
    note "making a Debian 13 root with rabbitmq-server 4.0 in $root (first run only, about 370 MB)"
    started=$SECONDS
    "$debootstrap" --variant=minbase --include=rabbitmq-server trixie "$root.partial" >"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die 2 "debootstrap of the RabbitMQ 4 root failed (log: $log)"; }
    # Debian runs no service inside a root it bootstraps (no init); the package leaves an
    # empty node it never started in /var/lib/rabbitmq, which we never use.
    mkdir -p "$root.partial$RABBIT4_IN_ROOT"
    touch "$root.partial/.orderflow-ready"
    mv "$root.partial" "$root"
    note "the RabbitMQ 4 root took $((SECONDS - started)) s to make"
  fi
  exec {lock_fd}>&-
  echo "$root"
}

start_throwaway_rabbitmq4() {
  local root uid gid node port dist_port vars in_root deadline=$((SECONDS + 90))
  root=$(ensure_rabbitmq4_root) || exit 2
  # The root's own rabbitmq user, by number: the host may have another one, or none.
  uid=$(awk -F: '$1 == "rabbitmq" { print $3 }' "$root/etc/passwd")
  gid=$(awk -F: '$1 == "rabbitmq" { print $4 }' "$root/etc/passwd")
  [ -n "$uid" ] && [ -n "$gid" ] || die 2 "no rabbitmq user in $root: remove it, the next run makes it again"
  RABBIT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-rabbit4.XXXXXX") RABBIT_LOG_SUFFIX=-4
  node="orderflow-test-$$@localhost"
  read -r port dist_port RABBIT_EPMD_PORT < <(free_ports 3)
  # The node and rabbitmqctl read the cookie from $HOME, the node directory: written before either starts.
  python3 -c 'import secrets; print(secrets.token_hex(20))' >"$RABBIT_TMP/.erlang.cookie"
  chmod 400 "$RABBIT_TMP/.erlang.cookie"
  echo '[].' >"$RABBIT_TMP/enabled_plugins"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' "$port" >"$RABBIT_TMP/rabbitmq.conf"
  : >"$RABBIT_TMP/rabbitmq-env.conf"  # instead of the root's /etc/rabbitmq/rabbitmq-env.conf
  mkdir "$RABBIT_TMP/mnesia" "$RABBIT_TMP/log"
  chown -R "$uid:$gid" "$RABBIT_TMP"
  local d=$RABBIT4_IN_ROOT
  vars=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="$d" RABBITMQ_NODENAME="$node"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist_port"
    ERL_EPMD_PORT="$RABBIT_EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" RABBITMQ_PID_FILE="$d/rabbit.pid"
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_MNESIA_BASE="$d/mnesia"
    RABBITMQ_LOG_BASE="$d/log")
  # in-root PROGRAM ARGS...: PROGRAM inside the root, as its rabbitmq user, with this run's
  # environment; unshare gives it the mount namespace in which in-root mounts /proc and the node dir.
  {
    echo '#!/bin/sh'
    echo 'set -e'
    printf 'mount -t proc proc %q\n' "$root/proc"
    printf 'mount --bind %q %q\n' "$RABBIT_TMP" "$root$d"
    printf 'exec chroot --userspec=%s:%s %q env -i' "$uid" "$gid" "$root"
    printf ' %q' "${vars[@]}"
    printf ' "$@"\n'
  } >"$RABBIT_TMP/in-root"
  in_root=(unshare --mount --propagation private sh "$RABBIT_TMP/in-root")  # sh: /tmp may be noexec
  # Own session, so a Ctrl-C reaches us (and our cleanup) rather than the broker; the server script
  # turns the TERM of cleanup_services into a clean stop.
  (exec setsid "${in_root[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server >"$RABBIT_TMP/server.out" 2>&1 </dev/null) &
  RABBIT_PID=$!
  RABBIT_CTL=("${in_root[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl -n "$node")
  RABBIT_EPMD=("${in_root[@]}" epmd)
  until "${RABBIT_CTL[@]}" await_startup --timeout 10 >/dev/null 2>&1; do
    if ! kill -0 "$RABBIT_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 20 "$RABBIT_TMP/server.out" "$RABBIT_TMP/log/$node.log" >&2 2>/dev/null
      die 2 "the throwaway RabbitMQ 4 did not start (log above)"
    fi
    sleep 1
  done
  export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:$port//"
}
