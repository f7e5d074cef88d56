#!/usr/bin/env bash
# Lints the deployment files with whatever linters this machine has; installs nothing.
#   NATS configs    nats-server -t            (Debian nats-server)
#   Dockerfile      hadolint if on PATH; dockerfile-utils lint (npm devDependency)
#   compose         docker compose config, else docker-compose config (Debian docker-compose)
#   Kubernetes      kubeconform if on PATH; always deploy/k8s/check-manifests.js
# A linter that is missing is reported as skipped; any error found makes the exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
ran() { echo "lint: $1: ok"; }
bad() { echo "lint: $1: FAILED" >&2; failed=1; }
skip() { echo "lint: $1: skipped ($2)"; }
check() { local what=$1; shift; if "$@"; then ran "$what"; else bad "$what"; fi; }

if command -v nats-server >/dev/null; then
  # auth.conf reads its passwords from the environment: check it with stand-ins.
  for f in deploy/nats/*.conf; do
    check "$f" env CONVEYOR_NATS_GATEWAY_PASS=lintGatewayPass CONVEYOR_NATS_DRIVER_PASS=lintDriverPass nats-server -t -c "$f"
  done
  # compose's nats.conf takes its server name from the environment, as in compose.yaml.
  check deploy/compose/nats.conf env SERVER_NAME=nats-1 nats-server -t -c deploy/compose/nats.conf
else
  skip "NATS configs" "nats-server not installed"
fi

if command -v hadolint >/dev/null; then
  check "Dockerfile (hadolint)" hadolint deploy/docker/Dockerfile
else
  skip "Dockerfile (hadolint)" "hadolint not installed; it is in neither Debian nor npm"
fi
if [ -x node_modules/.bin/dockerfile-utils ]; then
  check "Dockerfile (dockerfile-utils)" node_modules/.bin/dockerfile-utils lint deploy/docker/Dockerfile
else
  skip "Dockerfile (dockerfile-utils)" "run npm ci"
fi

# compose.yaml insists on the API tokens from the environment: check it with a stand-in.
export CONVEYOR_API_TOKENS="${CONVEYOR_API_TOKENS:-lint-stand-in-token-0123456789abcdef:admin}"
if docker compose version >/dev/null 2>&1; then
  check "compose.yaml" docker compose -f deploy/compose/compose.yaml config -q
elif command -v docker-compose >/dev/null; then
  check "compose.yaml" docker-compose -f deploy/compose/compose.yaml config -q
else
  skip "compose.yaml" "neither the compose plugin nor docker-compose (apt-get install docker-compose) is installed"
fi

if command -v kubeconform >/dev/null; then
  check "Kubernetes manifests (kubeconform)" kubeconform -strict -summary deploy/k8s/conveyor.yaml
else
  skip "Kubernetes manifests (kubeconform)" "kubeconform not installed; it is in neither Debian nor npm"
fi
if [ -d node_modules/js-yaml ]; then
  check "Kubernetes manifests (check-manifests.js)" node deploy/k8s/check-manifests.js
else
  skip "Kubernetes manifests (check-manifests.js)" "run npm ci"
fi

exit $failed
