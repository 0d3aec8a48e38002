#!/usr/bin/env bash
# Install Podman (with runc) for dualwrite's engine tests, idempotently, and
# check that it can run a container with the project's containers.conf.
#
# Usage:
#   bash .ci/setup-podman.sh            # installs if needed, prints the export
#   eval "$(bash .ci/setup-podman.sh --print-env)"   # also sets it in this shell
#
# Callers must set CONTAINERS_CONF=<repo>/.ci/containers.conf for every podman
# command (the tests' fixtures do it themselves): the system defaults fail
# here (crun / raising RLIMIT_NOFILE is refused: "error setting rlimit type 7").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
conf="$here/containers.conf"
print_env_only=0
[[ "${1:-}" == "--print-env" ]] && print_env_only=1

log() { echo "setup-podman: $*" >&2; }

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    log "podman/runc missing and not root: install them with apt-get as root"
    exit 1
  fi
  log "installing podman and runc with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq podman runc >&2
fi

export CONTAINERS_CONF="$conf"
runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || true)"
if [[ "$runtime" != "runc" ]]; then
  log "podman does not use runc with $conf (got '${runtime:-podman info failed}')"
  podman info >&2 || true
  exit 1
fi
log "$(podman --version), runtime runc, storage $(podman info --format '{{.Store.GraphRoot}}')"

if [[ $print_env_only == 1 ]]; then
  printf 'export CONTAINERS_CONF=%q\n' "$conf"
else
  echo "Podman is ready. Set this for every podman command:"
  printf '  export CONTAINERS_CONF=%q\n' "$conf"
fi
