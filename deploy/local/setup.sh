#!/usr/bin/env bash
# Shared set-up for deploy/local/up.sh and test/run.sh: installs what a fresh Debian 12 machine
# lacks (Debian packages, node_modules), builds the TypeScript, and starts the Docker engine
# and builds the default build image when they are missing.
#
#   source deploy/local/setup.sh; conveyor_setup; ensure_dockerd; ensure_build_image
#   bash deploy/local/setup.sh            # the same, as one command
#
# Everything is idempotent: a step whose result is already there is skipped.

CONVEYOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONVEYOR_DATA="$CONVEYOR_ROOT/.data"
CONVEYOR_LOGS="$CONVEYOR_DATA/logs"
CONVEYOR_PIDS="$CONVEYOR_DATA/pids"
CONVEYOR_BUILD_IMAGE="${CONVEYOR_DEFAULT_IMAGE:-conveyor/build:latest}"

log() { printf '[conveyor] %s\n' "$*"; }
warn() { printf '[conveyor] WARNING: %s\n' "$*" >&2; }
die() { printf '[conveyor] ERROR: %s\n' "$*" >&2; exit 1; }

# Debian packages the system needs, as "package:probe" where the probe is a command name, or
# "dpkg" when only the package itself will do (busybox must be the static build: the build
# image has no libc, and a plain busybox would satisfy `command -v`).
CONVEYOR_PACKAGES=(docker.io:dockerd git:git busybox-static:dpkg curl:curl procps:pgrep faketime:faketime)

# The oldest nats-server the apps accept (libs/jetstream checks it at connect): fenced run
# transitions need the wildcard expected-sequence check (2.11) and message TTLs (2.11).
CONVEYOR_NATS_MIN="2.11.0"

ensure_packages() {
  local entry pkg probe missing=()
  for entry in "${CONVEYOR_PACKAGES[@]}"; do
    pkg="${entry%%:*}" probe="${entry#*:}"
    if [ "$probe" = dpkg ]; then
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    else
      command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them: apt-get install -y ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  ensure_nats_server
  # Debian 12's own nodejs is 18, too old for NestJS 11: Node.js must come with the machine.
  command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is needed and was not found on PATH"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is needed; found $(node -v)"
}

# True when version $1 >= version $2 (dotted numbers).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# Debian 12's nats-server (2.9.10) is unmaintained and too old; Debian's `forky` suite has the
# current line (a static binary that runs on bookworm). A `forky` source on the mirror this
# machine already uses, pinned at priority 1 so that nothing else is ever taken from it. The
# package is downloaded and its binary unpacked to /usr/local (not installed with dpkg: its
# post-install script needs forky's systemd-sysusers and would leave dpkg half-configured,
# breaking every later apt-get install on the machine).
ensure_nats_server() {
  local have=""
  command -v nats-server >/dev/null 2>&1 && have="$(nats_server_version)"
  if [ -n "$have" ] && version_at_least "$have" "$CONVEYOR_NATS_MIN"; then return 0; fi
  [ "$(id -u)" = 0 ] || die "nats-server $CONVEYOR_NATS_MIN or newer is needed (found: ${have:-none}); run as root, or install it from Debian forky"
  local mirror
  mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
  [ -n "$mirror" ] || mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*debian\)\/\? bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)"
  [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
  log "installing nats-server from Debian forky (found: ${have:-none}; need >= $CONVEYOR_NATS_MIN)"
  cat >/etc/apt/sources.list.d/conveyor-forky.sources <<SRC
Types: deb
URIs: $mirror
Suites: forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >/etc/apt/preferences.d/conveyor-forky <<PIN
Package: *
Pin: release n=forky
Pin-Priority: 1
PIN
  local dir
  dir="$(mktemp -d)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  (cd "$dir" && chmod 755 . && apt-get download -q nats-server/forky) || die "could not download nats-server from Debian forky"
  dpkg -x "$dir"/nats-server_*.deb "$dir/root" || die "could not unpack the nats-server package"
  install -m 0755 "$(find "$dir/root" -type f -name nats-server | head -n 1)" /usr/local/bin/nats-server
  rm -rf "$dir"
  hash -r
  have="$(nats_server_version)"
  version_at_least "$have" "$CONVEYOR_NATS_MIN" || die "nats-server $have was installed, but $CONVEYOR_NATS_MIN or newer is needed"
  log "nats-server $have installed in /usr/local/bin"
}

nats_server_version() {
  nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p'
}

# `npm ci` when node_modules is missing or older than package-lock.json. npm keeps its own copy
# of the lock in node_modules/.package-lock.json, refreshed by every install.
ensure_node_modules() {
  local stamp="$CONVEYOR_ROOT/node_modules/.package-lock.json"
  [ -f "$stamp" ] || stamp="$CONVEYOR_ROOT/node_modules"
  if [ ! -d "$CONVEYOR_ROOT/node_modules" ] || [ "$CONVEYOR_ROOT/package-lock.json" -nt "$stamp" ]; then
    log "installing node modules (npm ci)"
    (cd "$CONVEYOR_ROOT" && npm ci --no-audit --no-fund) || die "npm ci failed"
  fi
}

# Compiles apps and libs into dist/ (tsc, then tsc-alias rewrites @conveyor/* to relative paths).
# Returns non-zero, with the reason printed, when the build fails.
build_dist() {
  log "building (npm run build)"
  if ! (cd "$CONVEYOR_ROOT" && npm run --silent build); then
    printf '[conveyor] ERROR: the build failed (npm run build)\n' >&2
    return 1
  fi
  # A compiled app must find the libs without the TypeScript path map.
  local unresolved
  unresolved="$(grep -rl --include='*.js' 'require("@conveyor/' "$CONVEYOR_ROOT/dist" 2>/dev/null | head -n 3 || true)"
  if [ -n "$unresolved" ]; then
    printf '[conveyor] ERROR: dist still requires @conveyor/* after tsc-alias: %s\n' "$unresolved" >&2
    return 1
  fi
}

conveyor_setup() {
  mkdir -p "$CONVEYOR_LOGS" "$CONVEYOR_PIDS"
  ensure_packages
  ensure_node_modules
  build_dist || exit 1
}

# True when the process in pidfile $1 is alive and its command line contains $2.
pid_alive() {
  local pidfile="$1" expect="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expect"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts `dockerd` on its unix socket only (never a TCP address) when no engine answers.
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$CONVEYOR_LOGS" "$CONVEYOR_PIDS"
  local pidfile="$CONVEYOR_PIDS/dockerd.pid" logfile="$CONVEYOR_LOGS/dockerd.log"
  if ! pid_alive "$pidfile" dockerd; then
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (apt-get install -y docker.io)"
    log "starting dockerd (log: $logfile)"
    # setsid: the engine must outlive this shell and ignore its terminal's hang-up.
    setsid dockerd --host unix:///var/run/docker.sock --pidfile "$pidfile" </dev/null >>"$logfile" 2>&1 &
  fi
  local waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge 60 ]; then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "the Docker engine did not answer within 60 s (log: $logfile)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd is ready"
}

# stop_started NAME EXPECT: stops the process in .data/pids/NAME.pid if its command line contains
# EXPECT (a recycled pid must not be killed), SIGTERM first, SIGKILL after a bounded wait.
stop_started() {
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

# Builds the default build image locally (no registry is reachable) when it is missing.
ensure_build_image() {
  if docker image inspect "$CONVEYOR_BUILD_IMAGE" >/dev/null 2>&1; then return 0; fi
  local script="$CONVEYOR_ROOT/deploy/image/build.sh"
  if [ -f "$script" ]; then
    log "building the build image $CONVEYOR_BUILD_IMAGE"
    bash "$script" --tag "$CONVEYOR_BUILD_IMAGE"
  else
    warn "$CONVEYOR_BUILD_IMAGE is missing and $script does not exist; builds will fail"
  fi
}

# The C toolchain image the example project builds in (Debian minbase + gcc + make, ~1 min once).
ensure_c_build_image() {
  if docker image inspect conveyor/build-c:latest >/dev/null 2>&1; then return 0; fi
  log "building the C build image conveyor/build-c:latest (debootstrap from the Debian mirror, about a minute)"
  bash "$CONVEYOR_ROOT/deploy/image/build-c.sh" || die "could not build conveyor/build-c:latest (see above)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  conveyor_setup
  ensure_dockerd
  ensure_build_image
fi
