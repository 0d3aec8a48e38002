#!/usr/bin/env bash
# Set up everything the tests need, from a fresh clone, and run the whole suite:
# Podman (with this repo's containers.conf) for the engine tests, a virtualenv in .venv with
# dualwrite and its test extras, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  bash .ci/setup-podman.sh
else
  echo "test.sh: not root or no apt-get: Podman not installed here; engine tests will skip" >&2
fi
export CONTAINERS_CONF="$repo/.ci/containers.conf"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
export PATH="$repo/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
