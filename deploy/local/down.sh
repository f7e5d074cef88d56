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

# Drivers first so that none is cut off from NATS mid-step, the gateway, then the servers.
for app in container-start git-cloner builder container-stop gateway; do
  stop_started "$app" "dist/apps/$app/src/main.js"
done
stop_started nats nats-server
stop_started dockerd dockerd

if [ "$purge" = 1 ]; then
  log "deleting $CONVEYOR_DATA"
  rm -rf "$CONVEYOR_DATA"
fi
log "stopped"
