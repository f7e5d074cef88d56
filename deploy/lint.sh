#!/usr/bin/env bash
# Lints the deployment files with whatever linters this machine has; installs nothing.
#   NATS configs    nats-server -t            (Debian nats-server)
#   Dockerfile      hadolint if on PATH; dockerfile-utils lint (npm devDependency)
#   compose         docker compose config, else docker-compose config (Debian docker-compose)
#   Kubernetes      kubeconform if on PATH; always deploy/k8s/check-manifests.js
#   NATS images     every nats image named in deploy/ is of the line setup.sh installs (2.15)
#   shell scripts   bash -n always; shellcheck if on PATH (deploy/local/*.sh, deploy/git/post-receive)
# A linter that is missing is reported as skipped; any error found makes the exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
# nats-server's minor line deploy/local/setup.sh installs (Debian forky's); every NATS image of
# the deployment files is of it.
nats_line=2.15
ran() { echo "lint: $1: ok"; }
bad() { echo "lint: $1: FAILED" >&2; failed=1; }
skip() { echo "lint: $1: skipped ($2)"; }
check() { local what=$1; shift; if "$@"; then ran "$what"; else bad "$what"; fi; }

for f in deploy/local/*.sh deploy/git/post-receive deploy/image/*.sh; do
  check "$f (bash -n)" bash -n "$f"
  if command -v shellcheck >/dev/null; then check "$f (shellcheck)" shellcheck -x "$f"; fi
done

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
  check "Kubernetes manifests (check-manifests.js)" env NATS_IMAGE_LINE="$nats_line" node deploy/k8s/check-manifests.js
else
  skip "Kubernetes manifests (check-manifests.js)" "run npm ci"
fi

# The NATS server the deployment files run is of the minor line deploy/local/setup.sh installs
# (the apps refuse one before 2.11.0): no `nats:<tag>` image of another line anywhere in deploy/,
# and compose names one of this line (the Helm values' image: check-manifests.js, above).
nats_images() {
  local wrong
  # `nats:` then a tag (not `nats://`, not a YAML key); the line's tags are 2.15, 2.15.1, 2.15-alpine...
  wrong="$(grep -rnoE "(^|[^[:alnum:]_./-])nats:[[:alnum:]][^[:space:]\"',]*" deploy | grep -vE "nats:${nats_line//./\\.}([.-][^[:space:]]*)?$" || true)"
  if [ -n "$wrong" ]; then
    echo "NATS images of another line than $nats_line:" >&2
    echo "$wrong" >&2
    return 1
  fi
  grep -qE "^[[:space:]]*image:[[:space:]]*[\"']?nats:${nats_line//./\\.}([.-]|[\"']?$)" deploy/compose/compose.yaml \
    || { echo "deploy/compose/compose.yaml names no nats:$nats_line image" >&2; return 1; }
}
check "NATS images (nats:$nats_line)" nats_images

exit $failed
