#!/usr/bin/env bash
# Sets up and runs every test: type check, unit tests, then the end-to-end suites against a real
# nats-server (each suite starts its own), real Docker and real git. Ends with one line
# "N passed, M failed" and a non-zero exit when anything failed or no test ran.
#
#   bash test/run.sh            (also: npm test, .ci/run)
#   CONVEYOR_UNIT_TIMEOUT / CONVEYOR_E2E_TIMEOUT   bounds of the two jest runs (default 5m / 20m)
set -euo pipefail

# shellcheck source=deploy/local/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/setup.sh"
cd "$CONVEYOR_ROOT"

results="$CONVEYOR_DATA/test-results"
mkdir -p "$CONVEYOR_LOGS" "$CONVEYOR_PIDS" "$results"
rm -f "$results"/*.json
rm -rf "$results/screenshots"
# The browser tests' screenshots of every dashboard page, kept with the results.
CONVEYOR_SCREENSHOTS="$results/screenshots"
export CONVEYOR_SCREENSHOTS
problems=()

ensure_packages
# The dashboard's browser tests drive Debian's chromium (never a downloaded browser) with
# playwright-core; only the tests need it, so only this script installs it.
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "the browser tests need chromium and fonts-dejavu-core; run as root or apt-get install -y chromium fonts-dejavu-core"
  log "installing Debian packages: chromium fonts-dejavu-core"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } \
    || die "could not install chromium"
fi
# The conformance kit's test builds examples/go-driver: Debian's Go and its packaged nats.go (GOPATH mode, no download).
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/nats-io/nats.go ]; then
  [ "$(id -u)" = 0 ] || die "the conformance test needs golang-go and golang-github-nats-io-go-nats-dev; run as root or apt-get install -y them"
  log "installing Debian packages: golang-go golang-github-nats-io-go-nats-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go golang-github-nats-io-go-nats-dev \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go golang-github-nats-io-go-nats-dev; } \
    || die "could not install golang-go"
fi
ensure_node_modules
# jest compiles the TypeScript itself: a failed build is reported, and the tests still run.
build_dist || problems+=("the build failed (npm run build)")
# An engine this run starts, it stops when it exits (however it exits); one that was running,
# or that up.sh started and is still coming up, is left as it was.
if docker info >/dev/null 2>&1 || pid_alive "$CONVEYOR_PIDS/dockerd.pid" dockerd; then own_dockerd=0; else own_dockerd=1; fi
stop_own_dockerd() { if [ "$own_dockerd" = 1 ]; then own_dockerd=0; stop_started dockerd dockerd; fi; }
trap stop_own_dockerd EXIT
ensure_dockerd
ensure_build_image
NATS_SERVER_BIN="$(command -v nats-server)"
export NATS_SERVER_BIN

# An old nats-server for test/e2e/server-version.e2e-spec.ts, which checks that every app refuses
# one: Debian bookworm's 2.9.10, fetched once into .data/nats-server-2.9/ (not installed; the
# binary is static). Without it that suite fails, saying so.
ensure_old_nats_server() {
  local dir="$CONVEYOR_DATA/nats-server-2.9" tmp found
  if [ ! -x "$dir/nats-server" ]; then
    log "fetching Debian bookworm's nats-server 2.9 (the version-check test's old server) into $dir"
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    if ! (cd "$tmp" && apt-get download -q nats-server/bookworm); then
      DEBIAN_FRONTEND=noninteractive apt-get update -q || true
      (cd "$tmp" && apt-get download -q nats-server/bookworm) || { rm -rf "$tmp"; warn "could not download nats-server/bookworm"; return 1; }
    fi
    found=""
    dpkg -x "$tmp"/nats-server_*.deb "$tmp/root" && found="$(find "$tmp/root" -type f -name nats-server | head -n 1)"
    if [ -z "$found" ]; then rm -rf "$tmp"; warn "no nats-server binary in the bookworm package"; return 1; fi
    mkdir -p "$dir"
    install -m 0755 "$found" "$dir/nats-server"
    rm -rf "$tmp"
  fi
  NATS_SERVER_OLD_BIN="$dir/nats-server"
  export NATS_SERVER_OLD_BIN
  log "old nats-server for the version-check test: $("$NATS_SERVER_OLD_BIN" --version 2>&1)"
}
ensure_old_nats_server || problems+=("could not fetch Debian bookworm's nats-server 2.9 (NATS_SERVER_OLD_BIN): the version-check test fails without it")

# Each run gets its own temporary directory: the nats-servers, repositories and workspaces the
# tests make live there, so leftovers are found (and removed) without touching anyone else's.
TMPDIR="$(mktemp -d /tmp/conveyor-test.XXXXXX)"
export TMPDIR
trap 'rm -rf "$TMPDIR"; stop_own_dockerd' EXIT
jest=(node_modules/.bin/jest --ci --passWithNoTests --cacheDirectory "$CONVEYOR_DATA/jest-cache")

# Containers the tests make are labelled conveyor.test=true or named conveyor-*.
test_containers() {
  { docker ps -aq --filter label=conveyor.test=true; docker ps -aq --filter name=conveyor-; } | sort -u
}
containers_before="$(test_containers)"

log "type check (tsc -p tsconfig.json --noEmit)"
if ! npx tsc -p tsconfig.json --noEmit; then problems+=("the type check failed"); fi

log "deployment files (deploy/lint.sh: NATS configs, Dockerfile, compose, Kubernetes)"
if ! bash deploy/lint.sh; then problems+=("deploy/lint.sh found errors in the deployment files"); fi

# run_jest NAME TIMEOUT ARGS...: a jest run that cannot hang the whole job. Jest writes its
# results file when the tests are done; a process that then does not exit holds an open
# handle (a connection or child process a test did not close), which is a failure too.
run_jest() {
  local name="$1" limit="$2" out="$results/$1.json" rc=0 grace=0; shift 2
  log "$name tests"
  timeout --kill-after=10s "$limit" "${jest[@]}" --json --outputFile "$out" "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ -f "$out" ]; then
      if [ "$grace" -ge 30 ]; then
        problems+=("jest did not exit 30 s after the $name tests finished: a test left a handle open")
        kill -TERM "$pid" 2>/dev/null || true
        break
      fi
      grace=$((grace + 1))
    fi
    sleep 1
  done
  wait "$pid" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    problems+=("the $name tests did not finish within $limit (a hanging test or an open handle)")
  elif [ "$rc" != 0 ] && [ ! -f "$out" ]; then
    problems+=("jest exited with $rc before writing the $name results")
  fi
}
run_jest unit "${CONVEYOR_UNIT_TIMEOUT:-5m}" --selectProjects unit
run_jest e2e "${CONVEYOR_E2E_TIMEOUT:-20m}" --selectProjects e2e --runInBand

# Nothing a test started may outlive it.
mapfile -t leaked_containers < <(comm -13 <(echo "$containers_before") <(test_containers) | sed '/^$/d')
if [ ${#leaked_containers[@]} -gt 0 ]; then
  echo "Containers left behind by the tests:"
  filters=()
  for id in "${leaked_containers[@]}"; do filters+=(--filter "id=$id"); done
  docker ps -a --format '  {{.ID}} {{.Names}} {{.Status}} {{.Labels}}' "${filters[@]}"
  docker rm -f "${leaked_containers[@]}" >/dev/null || true
  problems+=("the tests left ${#leaked_containers[@]} container(s) behind")
fi
mapfile -t leaked_nats < <(pgrep -f "nats-server -js -sd $TMPDIR/conveyor-nats-" || true)
if [ ${#leaked_nats[@]} -gt 0 ]; then
  echo "nats-servers left running by the tests:"
  ps -o pid,args -p "$(IFS=,; echo "${leaked_nats[*]}")" || true
  kill "${leaked_nats[@]}" 2>/dev/null || true
  problems+=("the tests left ${#leaked_nats[@]} nats-server(s) running")
fi

# Sum of both runs. A suite that could not run at all (e.g. it does not compile), a run jest
# calls unsuccessful for another reason, and a missing or unreadable results file each count as
# one failed test, so that "0 failed" always means nothing failed.
# shellcheck disable=SC2016 # JavaScript, not shell
counts="$(node -e '
const fs = require("fs");
let passed = 0, failed = 0;
for (const name of ["unit", "e2e"]) {
  const file = `${process.argv[1]}/${name}.json`;
  let r;
  try { r = JSON.parse(fs.readFileSync(file, "utf8")); } catch { failed += 1; continue; }
  const broken = r.numFailedTests + r.numRuntimeErrorTestSuites;
  passed += r.numPassedTests;
  failed += broken || (r.success ? 0 : 1);
}
console.log(`${passed} ${failed}`);' "$results")"
passed="${counts% *}" failed="${counts#* }"
[ "$((passed + failed))" -gt 0 ] || problems+=("no test ran")

# Before the summary, so that it stays the last line.
stop_own_dockerd

echo
for problem in "${problems[@]}"; do echo "FAILED: $problem"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#problems[@]} -eq 0 ]
