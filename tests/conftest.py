"""Shared pytest configuration for dualwrite's tests."""

import sys
from pathlib import Path

# `tests.engines` must import however pytest is started (`pytest` puts tests/
# itself on sys.path, not the repository root).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.engines import *  # noqa: E402,F401,F403
