#!/usr/bin/env bash
# Stops what deploy/local/up.sh started: the apps, and nats-server and dockerd only when up.sh
# started them (their pidfiles under .data/pids say so). State in .data is kept.
#
#   deploy/local/down.sh            stop
#   deploy/local/down.sh --purge    stop, then delete .data (streams, buckets, logs, workspaces)
set -euo pipefail

# shellcheck source=deploy/local/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h | --help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (use --purge or --help)" ;;
  esac
done

# stop NAME EXPECT: stops the process in .data/pids/NAME.pid if its command line contains
# EXPECT (a recycled pid must not be killed), SIGTERM first, SIGKILL after a bounded wait.
stop() {
  local name="$1" expect="$2" pidfile="$CONVEYOR_PIDS/$1.pid" pid waited=0
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if ! pid_alive "$pidfile" "$expect"; then
    log "$name is not running"
    rm -f "$pidfile"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge 300 ]; then
      warn "$name did not stop within 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
}

# Drivers first so that none is cut off from NATS mid-step, the gateway, then the servers.
for app in container-start git-cloner builder container-stop gateway; do
  stop "$app" "dist/apps/$app/src/main.js"
done
stop nats nats-server
stop dockerd dockerd

if [ "$purge" = 1 ]; then
  log "deleting $CONVEYOR_DATA"
  rm -rf "$CONVEYOR_DATA"
fi
log "stopped"
