#!/usr/bin/env bash
# Set up (a virtualenv in .venv with dualwrite) and run the main job on the embedded simulator:
# initialise, register expected hashes, finalise, watch them consumed; then the drift drill
# (finalise 100, tamper five, verify fails naming them, heal, verify passes). No chain, no network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
# byte-compile the package, as installing a wheel does (an editable install does not, and with
# PYTHONDONTWRITEBYTECODE=1 every command would compile it again: ~30 ms of each start-up)
.venv/bin/python -m compileall -q dualwrite >/dev/null
exec .venv/bin/dualwrite demo "$@"
