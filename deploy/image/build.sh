#!/usr/bin/env bash
# Builds the default build image (conveyor/build:latest) locally from Debian's busybox-static:
# no image registry is needed. Idempotent: an existing image is kept unless --force is given.
#
#   deploy/image/build.sh [--force] [--tag NAME:TAG]
#   BUSYBOX=/path/to/static/busybox deploy/image/build.sh   # use another static busybox
set -euo pipefail

tag="${CONVEYOR_DEFAULT_IMAGE:-conveyor/build:latest}"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --tag) shift; tag="${1:?--tag needs a value}" ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

if ! docker info >/dev/null 2>&1; then
  echo "build.sh: cannot reach the Docker engine (is dockerd running? try: dockerd > /tmp/dockerd.log 2>&1 &)" >&2
  exit 1
fi

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "build.sh: image $tag already exists ($(docker image inspect -f '{{.Id}}' "$tag")); nothing to do (use --force to rebuild)"
  exit 0
fi

busybox="${BUSYBOX:-}"
if [ -z "$busybox" ]; then
  for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ]; then busybox="$candidate"; break; fi
  done
fi
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
  echo "build.sh: no busybox found; install it with: apt-get install -y busybox-static" >&2
  exit 1
fi
# A dynamically linked busybox would not run in an image without a libc.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox is dynamically linked; install the static one with: apt-get install -y busybox-static" >&2
  exit 1
fi

previous="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"
mkdir -p "$rootfs"/{bin,usr/bin,etc,root,home/build,tmp,var/tmp,workspace}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0755 "$rootfs/workspace"
chmod 0700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"

applets=0
for applet in $("$busybox" --list); do
  case "$applet" in busybox|*/*) continue ;; esac
  ln -s busybox "$rootfs/bin/$applet"
  applets=$((applets + 1))
done
# Scripts with "#!/usr/bin/env sh" are common.
ln -s ../../bin/env "$rootfs/usr/bin/env"

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
build:x:1000:1000:build:/home/build:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
build:x:1000:
nogroup:x:65534:
GROUP

tar_owner=(--numeric-owner)
if [ "$(id -u)" = 0 ]; then
  chown -R 0:0 "$rootfs"
  chown 1000:1000 "$rootfs/home/build"
else
  # Without root the files cannot be chowned; store them as root-owned in the archive.
  tar_owner+=(--owner=0 --group=0)
  echo "build.sh: not root: /home/build will be owned by root in the image" >&2
fi

# Read busybox's banner whole: piping it into `head` would kill it with SIGPIPE under pipefail.
banner="$("$busybox" 2>&1 || true)"
version="$(printf '%s\n' "$banner" | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p')"
id="$(tar -C "$rootfs" "${tar_owner[@]}" -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'WORKDIR /workspace' \
  --change 'ENV PATH=/bin:/usr/bin' \
  --change "LABEL conveyor.image=build conveyor.busybox=${version:-unknown}" \
  --message "conveyor build image from $busybox" \
  - "$tag")"

# Smoke test without network: the image must run a shell command.
if ! out="$(docker run --rm --network none "$tag" /bin/sh -c 'echo ok')" || [ "$out" != ok ]; then
  echo "build.sh: image $tag was imported but does not run /bin/sh" >&2
  exit 1
fi
# A rebuild leaves the old image untagged; drop it unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
  docker image rm "$previous" >/dev/null 2>&1 && echo "build.sh: removed the previous image $previous" || true
fi
echo "build.sh: built $tag ($id) from $busybox (BusyBox ${version:-unknown}, $applets applets, users root and build(1000))"
