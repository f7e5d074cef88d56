#!/usr/bin/env bash
# Builds conveyor/build-c:latest, a build image with a C toolchain (gcc, libc6-dev, make), locally
# from Debian packages with debootstrap: no image registry is needed, only the Debian mirror this
# machine already uses. Idempotent: an existing image is kept unless --force is given. Root only.
#
#   deploy/image/build-c.sh [--force] [--tag NAME:TAG]
#   CONVEYOR_DEBIAN_MIRROR=http://mirror/debian deploy/image/build-c.sh
set -euo pipefail

tag="conveyor/build-c:latest"
force=0
suite="${CONVEYOR_C_IMAGE_SUITE:-bookworm}"
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --tag) shift; tag="${1:?--tag needs a value}" ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-c.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

if ! docker info >/dev/null 2>&1; then
  echo "build-c.sh: cannot reach the Docker engine (is dockerd running?)" >&2
  exit 1
fi
if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "build-c.sh: image $tag already exists ($(docker image inspect -f '{{.Id}}' "$tag")); nothing to do (use --force to rebuild)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-c.sh: debootstrap needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null || { echo "build-c.sh: could not install debootstrap" >&2; exit 1; }
fi

# The mirror this machine's apt already uses (deb822 sources first, then sources.list).
mirror="${CONVEYOR_DEBIAN_MIRROR:-}"
[ -n "$mirror" ] || mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
[ -n "$mirror" ] || mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*debian\)\/\? .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

previous="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"
echo "build-c.sh: debootstrap $suite (minbase, gcc, libc6-dev, make) from $mirror ..."
if ! debootstrap --variant=minbase --include=gcc,libc6-dev,make "$suite" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1; then
  tail -n 20 "$workdir/debootstrap.log" >&2
  echo "build-c.sh: debootstrap failed" >&2
  exit 1
fi
# What a build never reads: apt's lists and caches, documentation, other languages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
mkdir -p "$rootfs/workspace" "$rootfs/home/build"
chmod 0755 "$rootfs/workspace"
grep -q '^build:' "$rootfs/etc/passwd" || echo 'build:x:1000:1000:build:/home/build:/bin/sh' >>"$rootfs/etc/passwd"
grep -q '^build:' "$rootfs/etc/group" || echo 'build:x:1000:' >>"$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/build"

gcc_version="$(chroot "$rootfs" gcc -dumpfullversion 2>/dev/null || echo unknown)"
id="$(tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'WORKDIR /workspace' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' \
  --change "LABEL conveyor.image=build-c conveyor.gcc=$gcc_version" \
  --message "conveyor C build image: Debian $suite minbase with gcc $gcc_version" \
  - "$tag")"

if ! out="$(docker run --rm --network none "$tag" /bin/sh -c 'printf "int main(void){return 0;}" > /tmp/t.c && gcc -o /tmp/t /tmp/t.c && /tmp/t && echo ok')" || [ "$out" != ok ]; then
  echo "build-c.sh: image $tag was imported but cannot compile and run a C program" >&2
  exit 1
fi
if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
  docker image rm "$previous" >/dev/null 2>&1 && echo "build-c.sh: removed the previous image $previous" || true
fi
echo "build-c.sh: built $tag ($id): Debian $suite, gcc $gcc_version, make"
