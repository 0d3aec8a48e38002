#!/usr/bin/env bash
# Set up everything the tests need, from a fresh clone, and run the whole suite:
# Podman (with this repo's containers.conf) and a Docker Engine for the engine tests, a virtualenv
# in .venv with dualwrite and its test extras, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # the system packages the tests use: shellcheck (the drop-in script's lint), Prometheus and
  # promtool (the shipped alert rules, the monitor scraped by a real server), Debian's Docker Engine
  # (docker.io: no service is started; the tests start their own dockerd, which runs its own
  # containerd) and mmdebstrap (the image's base from Debian's packages); then Podman
  bash .ci/setup-system.sh shellcheck:shellcheck promtool:prometheus prometheus:prometheus \
    dockerd:docker.io mmdebstrap:mmdebstrap
  bash .ci/setup-podman.sh
else
  echo "test.sh: not root or no apt-get: system packages not installed here; the tests that need them will skip" >&2
fi
export CONTAINERS_CONF="$repo/.ci/containers.conf"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# byte-compile the package, as installing a wheel does (an editable install does not, and with
# PYTHONDONTWRITEBYTECODE=1 every command would compile it again: ~30 ms of each start-up)
.venv/bin/python -m compileall -q dualwrite >/dev/null
export PATH="$repo/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
