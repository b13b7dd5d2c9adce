#!/usr/bin/env bash
# Build a local Debian base image (no registry needed): debootstrap a minimal bookworm root filesystem
# and `docker import` it as mydocker/debian-base:bookworm (about one minute). Idempotent; --force rebuilds.
set -euo pipefail
tag=${MYDOCKER_LOCAL_BASE:-mydocker/debian-base:bookworm}
suite=bookworm
if [ "${1:-}" != "--force" ] && docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "[images] debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" >/dev/null
# the same apt sources and clean state as the upstream debian:$suite-slim image
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "[images] built $tag" >&2
