#!/usr/bin/env bash
# Build mydocker-hub's images on the local engine, in dependency order, skipping those already up to date.
#
#   images/build.sh [--local-base | --base IMAGE] [--ca-bundle FILE] [--force] [NAME ... | all]
#
#   --local-base      build mydocker/debian-base:bookworm with debootstrap (build-base.sh) and use it as base
#   --base IMAGE      base image of the root images (default: each Dockerfile's upstream default)
#   --ca-bundle FILE  CA certificates pip (and npm) trust during the build (TLS-intercepting proxies);
#                     also MYDOCKER_BUILD_CA_BUNDLE. Used only while building: the images do not keep it.
#   --force           rebuild even when up to date
#   NAME              a directory of images/ (default: minimal ssh); "all" builds every one
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=""
ca=${MYDOCKER_BUILD_CA_BUNDLE:-}
force=0
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) "$here/build-base.sh"; base=${MYDOCKER_LOCAL_BASE:-mydocker/debian-base:bookworm} ;;
    --base) base=$2; shift ;;
    --ca-bundle) ca=$2; shift ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    all) names+=(minimal jupyterlab ssh vscode desktop) ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done
[ ${#names[@]} -gt 0 ] || names=(minimal ssh)

# the image of this directory that an image is built on (built first, and passed as BASE_IMAGE): the
# mydocker/<name> its Dockerfile's BASE_IMAGE defaults to, or that it is FROM; none for a root image
parent_of() {
  local parent
  parent=$(sed -nE \
    -e 's#^[[:space:]]*ARG[[:space:]]+BASE_IMAGE=["'"'"']?mydocker/([a-z0-9._-]+).*#\1#Ip' \
    -e 's#^[[:space:]]*FROM[[:space:]]+mydocker/([a-z0-9._-]+).*#\1#Ip' \
    "$here/$1/Dockerfile")
  echo "${parent%%$'\n'*}"
}

declare -A done_names=() building=()
build_one() {
  local name=$1 parent dir context hash existing started ca_hash base_id
  [ -n "${done_names[$name]:-}" ] && return 0
  if [ -n "${building[$name]:-}" ]; then echo "[images] images/$name is built on itself (BASE_IMAGE)" >&2; exit 2; fi
  building[$name]=1
  dir="$here/$name"
  [ -f "$dir/Dockerfile" ] || { echo "[images] no images/$name/Dockerfile" >&2; exit 2; }
  parent=$(parent_of "$name")
  local args=()
  if [ -n "$parent" ]; then
    build_one "$parent"
    args+=(--build-arg "BASE_IMAGE=mydocker/$parent:latest")
    base_id=$(docker image inspect -f '{{.Id}}' "mydocker/$parent:latest")
  else
    if [ -n "$base" ]; then
      args+=(--build-arg "BASE_IMAGE=$base")
      base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || echo "$base")
    else
      base_id=upstream
    fi
  fi
  ca_hash=none
  [ -n "$ca" ] && ca_hash=$(sha256sum < "$ca" | cut -c1-16)
  hash=$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$base_id $ca_hash") | sha256sum | cut -c1-16)
  existing=$(docker image inspect -f '{{ index .Config.Labels "org.mydocker.build-hash" }}' "mydocker/$name:latest" 2>/dev/null || true)
  if [ $force = 0 ] && [ "$existing" = "$hash" ]; then
    echo "[images] mydocker/$name:latest up to date"
    done_names[$name]=1
    return 0
  fi
  context=$(mktemp -d)
  cp -a "$dir/." "$context/"
  if [ -n "$ca" ]; then cp "$ca" "$context/build-ca.crt"; else : > "$context/build-ca.crt"; fi
  started=$(date +%s)
  echo "[images] building mydocker/$name:latest" >&2
  if ! DOCKER_BUILDKIT=0 docker build -q "${args[@]}" --label "org.mydocker.build-hash=$hash" \
      -t "mydocker/$name:latest" "$context" >/dev/null 2>"$context/.build.log"; then
    cat "$context/.build.log" >&2
    rm -rf "$context"
    echo "[images] FAILED mydocker/$name:latest" >&2
    exit 1
  fi
  rm -rf "$context"
  echo "[images] built mydocker/$name:latest in $(( $(date +%s) - started )) s"
  done_names[$name]=1
}

for name in "${names[@]}"; do build_one "$name"; done
