"""Shared pytest configuration for dualwrite's tests."""

import sys
from pathlib import Path

# `tests.engines` must import however pytest is started (`pytest` puts tests/
# itself on sys.path, not the repository root).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.engines import *  # noqa: E402,F401,F403
from tests.envs import _clean_env  # noqa: E402,F401  (autouse: no test sees the caller's dualwrite settings)

import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory):
    """No test reads or writes the developer's own simulator state or heal journal."""
    base = tmp_path_factory.mktemp("userdirs")
    saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME", "XDG_STATE_HOME", "DUALWRITE_STATE",
                                            "DUALWRITE_BACKEND", "SUPRA_HOME", "DUALWRITE_SETTINGS")}
    os.environ["XDG_DATA_HOME"] = str(base / "data")
    os.environ["XDG_STATE_HOME"] = str(base / "state")
    for k in ("DUALWRITE_STATE", "DUALWRITE_BACKEND", "SUPRA_HOME", "DUALWRITE_SETTINGS"):
        os.environ.pop(k, None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
