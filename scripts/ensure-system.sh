#!/usr/bin/env bash
# Idempotent installation of everything mydocker-hub needs on a single Debian node:
# the Docker engine (started, in single-node Swarm mode), Node's configurable-http-proxy,
# and a Python virtual environment with the package. Each step checks before it acts.
#
#   scripts/ensure-system.sh            # hub only
#   scripts/ensure-system.sh --test     # plus test tools (Chromium, test extras)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MYDOCKER_VENV:-$here/.venv}
with_test=0
[ "${1:-}" = "--test" ] && with_test=1

log() { printf '\033[1m[mydocker-hub]\033[0m %s\n' "$*" >&2; }
need_root() {
  # need_root WHAT: stop with what to do when a step needs root and this is not root
  [ "$(id -u)" = 0 ] && return 0
  log "$* needs root: run this as root (e.g. sudo $0), or do it yourself and run this again"; exit 1
}

apt_updated=0
ensure_apt() {
  # ensure_apt PACKAGE...: install the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing the missing Debian packages ${missing[*]}"
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_daemon_config() {
  # every node: containers of different users must not talk to each other on the default bridge
  # (icc=false), and no process in a container may gain privileges (no-new-privileges: engines older
  # than API 1.44 ignore it in Swarm service specs, so the engine sets it on every container).
  # An admin's own daemon.json is left alone, with a warning for each missing setting; the file an
  # earlier version of this script wrote ({"icc": false} alone) is upgraded.
  local config=/etc/docker/daemon.json
  mkdir -p /etc/docker
  if [ ! -f "$config" ] || [ "$(tr -d ' \n' < "$config")" = '{"icc":false}' ]; then
    need_root "writing $config"
    printf '{\n  "icc": false,\n  "no-new-privileges": true\n}\n' > "$config"
    if docker info >/dev/null 2>&1 && ! docker info --format '{{json .SecurityOptions}}' | grep -q no-new-privileges; then
      log "$config written: restart the Docker engine to apply it (running servers restart with it)"
    fi
    return 0
  fi
  grep -q '"icc": *false' "$config" ||
    log "warning: $config does not set \"icc\": false; users' containers can reach each other"
  grep -q '"no-new-privileges": *true' "$config" ||
    log "warning: $config does not set \"no-new-privileges\": true; setuid programs in images can gain privileges"
}

ensure_docker_engine() {
  ensure_daemon_config
  if docker info >/dev/null 2>&1; then return 0; fi
  ensure_apt docker.io iptables ca-certificates
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] && [ -S /var/run/docker.sock ]; then
      log "the Docker engine does not answer this user: run this as root (e.g. sudo $0), or add the user to" \
        "the docker group"
      exit 1
    fi
    need_root "starting the Docker engine"
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
      systemctl start docker
    else
      log "starting dockerd (log: /var/log/dockerd.log)"
      # in a session of its own: a Ctrl-C that stops the hub started after this must not stop the engine
      setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; exit 1; }
  fi
}

ensure_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  case "$state" in
    inactive)
      log "initialising a single-node Swarm"
      docker swarm init --advertise-addr "${MYDOCKER_SWARM_ADDR:-127.0.0.1}" >/dev/null ;;
    active)
      if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
        log "this node is in a Swarm but cannot manage it (a worker, or a manager without quorum): run the hub" \
          "on a manager of that Swarm, or leave it (docker swarm leave --force) and run this again"
        exit 1
      fi ;;
    *)
      log "this node's Swarm is '$state' (left from before?): leave it (docker swarm leave --force) and run this again"
      exit 1 ;;
  esac
}

ensure_proxy() {
  if command -v configurable-http-proxy >/dev/null; then return 0; fi
  command -v npm >/dev/null || ensure_apt nodejs npm
  # its 5.x needs Node 20 or newer; Debian bookworm's Node is 18, for which 4.6 is the one
  local version=latest output
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || version="^4.6"
  log "installing configurable-http-proxy ($version)"
  if ! output=$(npm install -g "configurable-http-proxy@$version" 2>&1); then
    printf '%s\n' "$output" | tail -n 20 >&2
    log "npm could not install configurable-http-proxy (its messages are above): is the npm registry reachable?"
    exit 1
  fi
}

ensure_venv() {
  local extras=""
  [ $with_test = 1 ] && extras="[test]"
  if [ ! -x "$venv/bin/python" ] || [ ! -x "$venv/bin/pip" ]; then
    log "creating $venv"
    python3 -m venv --clear "$venv"  # --clear: what an interrupted first run left is made again
  fi
  local stamp="$venv/.installed$extras"
  if [ ! -f "$stamp" ] || [ "$here/setup.cfg" -nt "$stamp" ]; then
    log "installing mydocker-hub$extras into $venv"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -e "$here$extras"
    touch "$stamp"
  fi
}

ensure_test_tools() {
  # a real browser, and a real image registry and PostgreSQL server the tests start on loopback
  ensure_apt chromium fonts-dejavu-core docker-registry postgresql
}

ensure_apt debootstrap python3-venv git
ensure_docker_engine
ensure_swarm
ensure_proxy
[ $with_test = 1 ] && ensure_test_tools
ensure_venv
log "system ready"
