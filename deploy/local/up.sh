#!/usr/bin/env bash
# Sets up and starts the whole system on this machine, then runs the example pipeline once:
#   nats-server (JetStream) -> dockerd -> build image -> gateway + the four driver apps
#   -> example resource definition and pipeline -> an example resource whose run is followed
#   to its end.
# Everything binds to 127.0.0.1. Idempotent: what already runs is reused, not started twice.
# Stop it with deploy/local/down.sh.
#
#   CONVEYOR_HTTP_PORT   gateway port (default 8080)
#   CONVEYOR_NATS_URL    use this NATS server instead of starting one on 127.0.0.1
#   CONVEYOR_LOCAL_NATS_PORT  port of the NATS server this script starts (default 4222)
#   CONVEYOR_EXAMPLE_TIMEOUT  seconds the example run may take (default 300)
#   CONVEYOR_SECRET_KEY / CONVEYOR_SECRET_KEY_FILE  the secrets key; by default one made once
#                        in .data/secret.key (mode 0600) and given to every app as a file
set -euo pipefail

# shellcheck source=deploy/local/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CONVEYOR_ROOT"

HTTP_PORT="${CONVEYOR_HTTP_PORT:-8080}"
API="http://127.0.0.1:$HTTP_PORT"
NATS_PORT="${CONVEYOR_LOCAL_NATS_PORT:-4222}"
DRIVERS=(container-start git-cloner builder container-stop)
# The examples as HTTP API bodies (deploy/examples/*.yaml are the same as CLI manifests).
EXAMPLES="$CONVEYOR_ROOT/deploy/examples/api"
EXAMPLE_REPO="$CONVEYOR_DATA/example-repo"
EXAMPLE_BODY="$CONVEYOR_DATA/example-app.resource.json"
EXAMPLE_TIMEOUT="${CONVEYOR_EXAMPLE_TIMEOUT:-300}"

entry_of() { printf '%s/dist/apps/%s/src/main.js' "$CONVEYOR_ROOT" "$1"; }

# Starts a long-running process in its own session (it outlives this shell and its terminal),
# appending to .data/logs/<name>.log, with its pid in .data/pids/<name>.pid.
start_detached() {
  local name="$1"; shift
  local pidfile="$CONVEYOR_PIDS/$name.pid" logfile="$CONVEYOR_LOGS/$name.log"
  rm -f "$pidfile"
  printf '\n--- %s: starting %s\n' "$(date -Is)" "$*" >>"$logfile"
  # The wrapper writes its own pid and then becomes the program, so the pidfile names it.
  # shellcheck disable=SC2016
  # NO_COLOR: the output goes to a file, not a terminal.
  NO_COLOR=1 setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
  local waited=0
  until [ -s "$pidfile" ]; do
    [ "$waited" -lt 50 ] || die "$name did not start (log: $logfile)"
    sleep 0.1
    waited=$((waited + 1))
  done
}

ensure_nats() {
  local pidfile="$CONVEYOR_PIDS/nats.pid"
  if pid_alive "$pidfile" nats-server; then
    log "nats-server already running (pid $(cat "$pidfile"))"
    return 0
  fi
  if port_open "$NATS_PORT"; then
    log "a NATS server already listens on 127.0.0.1:$NATS_PORT; using it (it must have JetStream enabled)"
    return 0
  fi
  mkdir -p "$CONVEYOR_DATA/nats"
  log "starting nats-server on 127.0.0.1:$NATS_PORT (store: .data/nats, log: .data/logs/nats.log)"
  start_detached nats nats-server -js -sd "$CONVEYOR_DATA/nats" -a 127.0.0.1 -p "$NATS_PORT"
  local waited=0
  until port_open "$NATS_PORT"; do
    if [ "$waited" -ge 150 ] || ! pid_alive "$pidfile" nats-server; then
      tail -n 20 "$CONVEYOR_LOGS/nats.log" >&2 || true
      die "nats-server did not start listening on 127.0.0.1:$NATS_PORT"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# Starts dist/apps/<app>/src/main.js unless it already runs.
ensure_app() {
  local app="$1" entry
  entry="$(entry_of "$app")"
  if pid_alive "$CONVEYOR_PIDS/$app.pid" "$entry"; then
    log "$app already running (pid $(cat "$CONVEYOR_PIDS/$app.pid"))"
    return 0
  fi
  log "starting $app (log: .data/logs/$app.log)"
  start_detached "$app" node "$entry"
}

app_died() {
  local app="$1"
  tail -n 30 "$CONVEYOR_LOGS/$app.log" >&2 || true
  die "$app exited at start-up (log: $CONVEYOR_LOGS/$app.log)"
}

# http METHOD PATH [BODY_FILE]: prints the status code; the response body is in $RESPONSE.
RESPONSE="$CONVEYOR_DATA/last-response.json"
http() {
  local args=(-sS --max-time 30 -o "$RESPONSE" -w '%{http_code}' -X "$1")
  [ $# -lt 3 ] || args+=(-H 'content-type: application/json' --data-binary "@$3")
  local code
  code="$(curl "${args[@]}" "$API$2")" || true
  printf '%s' "${code:-000}"
}

# json FILE EXPR: prints EXPR evaluated on the JSON in FILE (bound to `j`), or nothing.
json() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const v = eval(process.argv[2]); if (v !== undefined) console.log(typeof v === "string" ? v : JSON.stringify(v, null, 2));' "$1" "$2" 2>/dev/null || true
}

expect_2xx() {
  local what="$1" status="$2"
  case "$status" in
    2??) log "$what: HTTP $status" ;;
    *) cat "$RESPONSE" >&2 2>/dev/null || true; echo >&2; die "$what failed: HTTP $status" ;;
  esac
}

# Prints Server-Sent Events of /logs/pipeline/:runid as "[step driver] line".
format_sse() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (raw) => {
  if (!raw.startsWith("data:")) return;
  const data = raw.slice(5).trim();
  try {
    const e = JSON.parse(data);
    if (typeof e.line === "string") console.log(`  [${e.stepId} ${e.driver}${e.stream === "stderr" ? " stderr" : ""}] ${e.line}`);
    else if (e.status) console.log(`  -- run ${e.status}`);
    else console.log(`  ${data}`);
  } catch { console.log(`  ${data}`); }
});'
}

make_example_repo() {
  # A repository made by an older up.sh (a shell script, no C program) gets the C project added.
  if [ -f "$EXAMPLE_REPO/hello.c" ]; then return 0; fi
  log "creating the example git repository $EXAMPLE_REPO (a small C program: deploy/examples/c-app)"
  mkdir -p "$EXAMPLE_REPO"
  [ -d "$EXAMPLE_REPO/.git" ] || git -C "$EXAMPLE_REPO" init -q
  cp "$CONVEYOR_ROOT"/deploy/examples/c-app/{hello.c,Makefile,README.md} "$EXAMPLE_REPO/"
  git -C "$EXAMPLE_REPO" add hello.c Makefile README.md
  git -C "$EXAMPLE_REPO" -c user.name=conveyor -c user.email=conveyor@localhost commit -q -m "Example app: a small C program"
}

# The example resource with the example repository's file:// URL filled in.
write_example_body() {
  node -e 'const fs = require("fs"); const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
r.spec.repository = "file://" + process.argv[2];
fs.writeFileSync(process.argv[3], JSON.stringify(r, null, 2) + "\n");' \
    "$EXAMPLES/example-app.resource.json" "$EXAMPLE_REPO" "$EXAMPLE_BODY"
}

# Posts the example resource (or a new version of it) and follows its run to the end.
run_example() {
  make_example_repo
  local status runid
  status="$(http POST /resources "$EXAMPLE_BODY")"
  if [ "$status" = 409 ]; then
    status="$(http PUT /resources/flutter-builder/example-app "$EXAMPLE_BODY")"
    expect_2xx "resource example-app (new version)" "$status"
  else
    expect_2xx "resource example-app" "$status"
  fi
  runid="$(json "$RESPONSE" j.runid)"
  [ -n "$runid" ] || { cat "$RESPONSE" >&2; die "the response names no runid"; }
  log "run $runid started; its logs:"

  # The stream should end with the run; polling the run as well bounds the wait if it does not.
  timeout "$EXAMPLE_TIMEOUT" curl -sN "$API/logs/pipeline/$runid" > >(format_sse) &
  local follower=$! waited=0 run_status=""
  while [ "$waited" -lt "$EXAMPLE_TIMEOUT" ]; do
    [ "$(http GET "/runs/$runid")" = 200 ] && run_status="$(json "$RESPONSE" j.status)"
    case "$run_status" in succeeded | failed | cancelled) break ;; esac
    sleep 1
    waited=$((waited + 1))
  done
  waited=0
  while kill -0 "$follower" 2>/dev/null && [ "$waited" -lt 10 ]; do sleep 1; waited=$((waited + 1)); done
  kill "$follower" 2>/dev/null || true
  wait "$follower" 2>/dev/null || true
  sleep 0.2 # let the formatter print what it has read

  echo
  [ "$(http GET "/runs/$runid")" = 200 ] || die "GET /runs/$runid failed"
  log "GET /runs/$runid:"
  # shellcheck disable=SC2016 # JavaScript, not shell
  json "$RESPONSE" '({ id: j.id, status: j.status, message: j.message, durationMs: j.durationMs,
    steps: j.steps.map((s) => `${s.id} ${s.driver}: ${s.status} (attempts ${s.attempts}${s.agent ? ", agent " + s.agent : ""}${s.message ? ", " + s.message : ""})`) })'
  run_status="$(json "$RESPONSE" j.status)"
  EXAMPLE_RUNID="$runid"
  [ "$run_status" = succeeded ] || die "the example run $runid ended as '${run_status:-unknown}' (logs: $CONVEYOR_LOGS)"
  log "the example run $runid succeeded"
}

usage() {
  cat <<EOF

${1:-Conveyor is running.}
  Dashboard      $API/${EXAMPLE_RUNID:+#/runs/$EXAMPLE_RUNID}
  API            $API   (OpenAPI: $API/docs, health: $API/health)
  NATS           ${CONVEYOR_NATS_URL}
  process logs   $CONVEYOR_LOGS/<app>.log   (pids in $CONVEYOR_PIDS)

Try it:
  curl -s $API/pipelines
  curl -s $API/resources/flutter-builder/example-app
  curl -s -X PUT -H 'content-type: application/json' \\
       --data-binary @$EXAMPLE_BODY $API/resources/flutter-builder/example-app
  curl -s $API/runs${EXAMPLE_RUNID:+/$EXAMPLE_RUNID}
  curl -sN $API/logs/pipeline/${EXAMPLE_RUNID:-<runid>}      # live logs (Server-Sent Events)
  curl -s  $API/runs/${EXAMPLE_RUNID:-<runid>}/artifacts     # the example's binary, kept as an artifact
  curl -s -o hello $API/runs/${EXAMPLE_RUNID:-<runid>}/artifacts/hello
  curl -s  $API/drivers

Stop it:  deploy/local/down.sh        (add --purge to delete .data as well)
EOF
}

# Secrets (and triggers' webhook secrets) need a key on every app: made once, kept in .data,
# readable by this user only, and passed as a file so it is not in the processes' environment.
ensure_secret_key() {
  if [ -n "${CONVEYOR_SECRET_KEY:-}" ] || [ -n "${CONVEYOR_SECRET_KEY_FILE:-}" ]; then
    log "using the secrets key given in the environment"
    return 0
  fi
  local file="$CONVEYOR_DATA/secret.key"
  if [ ! -s "$file" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$file.tmp" && mv "$file.tmp" "$file")
    log "made a secrets key: $file (keep it: stored secrets cannot be read without it)"
  fi
  chmod 600 "$file"
  export CONVEYOR_SECRET_KEY_FILE="$file"
}

main() {
  conveyor_setup
  ensure_secret_key
  export CONVEYOR_HTTP_PORT="$HTTP_PORT"
  export CONVEYOR_WORKSPACE_ROOT="${CONVEYOR_WORKSPACE_ROOT:-$CONVEYOR_DATA/workspaces}"
  mkdir -p "$CONVEYOR_WORKSPACE_ROOT"
  if [ -z "${CONVEYOR_NATS_URL:-}" ]; then
    ensure_nats
    export CONVEYOR_NATS_URL="nats://127.0.0.1:$NATS_PORT"
  else
    log "using the NATS server at $CONVEYOR_NATS_URL"
  fi
  ensure_dockerd
  ensure_build_image
  ensure_c_build_image

  local gateway_entry
  gateway_entry="$(entry_of gateway)"
  [ -f "$gateway_entry" ] || die "the gateway is not built: $gateway_entry is missing (does apps/gateway/src/main.ts exist?). NATS and Docker are up; stop them with deploy/local/down.sh"
  if ! pid_alive "$CONVEYOR_PIDS/gateway.pid" "$gateway_entry" && port_open "$HTTP_PORT"; then
    die "another process listens on 127.0.0.1:$HTTP_PORT; stop it or set CONVEYOR_HTTP_PORT"
  fi
  ensure_app gateway

  local app missing=() started=()
  for app in "${DRIVERS[@]}"; do
    if [ -f "$(entry_of "$app")" ]; then
      ensure_app "$app"
      started+=("$app")
    else
      missing+=("$app")
    fi
  done

  log "waiting for $API/health"
  local waited=0
  until curl -fsS --max-time 2 -o /dev/null "$API/health" 2>/dev/null; do
    pid_alive "$CONVEYOR_PIDS/gateway.pid" "$gateway_entry" || app_died gateway
    [ "$waited" -lt 60 ] || die "the gateway did not answer $API/health within 60 s (log: $CONVEYOR_LOGS/gateway.log)"
    sleep 1
    waited=$((waited + 1))
  done
  for app in "${started[@]}"; do
    pid_alive "$CONVEYOR_PIDS/$app.pid" "$(entry_of "$app")" || app_died "$app"
  done
  log "the gateway is ready"

  expect_2xx "resource definition flutter-builder" \
    "$(http POST /resource-definitions/apply "$EXAMPLES/flutter-builder.definition.json")"
  local status
  status="$(http POST /pipelines "$EXAMPLES/flutter-pipeline.pipeline.json")"
  [ "$status" != 409 ] || status="$(http PUT /pipelines/flutter-pipeline "$EXAMPLES/flutter-pipeline.pipeline.json")"
  expect_2xx "pipeline flutter-pipeline" "$status"

  write_example_body
  if [ ${#missing[@]} -gt 0 ]; then
    usage "The gateway is running, but not every driver is."
    die "not built, so not started: ${missing[*]} (dist/apps/<app>/src/main.js missing); the example run needs all four drivers"
  fi
  run_example
  usage
}

main "$@"
