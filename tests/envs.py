"""Settings that must not leak from the caller's environment into a test, and clean environments for subprocesses."""

from __future__ import annotations

import os

import pytest

#: every environment knob dualwrite, dualwrite-supra or the engines read
DW_ENV = (
    "DUALWRITE_BACKEND", "DUALWRITE_STATE", "DUALWRITE_CONTAINER", "DUALWRITE_IMAGE", "DUALWRITE_SUPRA_BIN",
    "DUALWRITE_PODMAN_BIN", "DUALWRITE_SETTINGS", "DUALWRITE_LOTTERY_MULTI_ADDRESS", "DUALWRITE_LOTTERY_ADDRESS",
    "DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS", "DUALWRITE_SIM_LOTTERY_ADDRESS", "DUALWRITE_SUPRA_ABORT_STYLE",
    "DUALWRITE_RPC_URL", "DUALWRITE_READS", "DUALWRITE_RPC_HEADERS", "DUALWRITE_EVENTS_CHECKPOINT",
    "DUALWRITE_CALL_TIMEOUT", "DUALWRITE_EVENTS_MAX_PAGES", "DUALWRITE_EVENTS_TIMEOUT",
    "DOCKER_HOST", "PODMAN_EXTRA_ARGS", "PODMAN_VOLUME_SUFFIX", "SUPRA_HOME", "DUALWRITE_DEBUG",
    "DUALWRITE_LOCK_DIR", "DUALWRITE_EVIDENCE_KEY", "DUALWRITE_CUTOVER_KILL_AT",
    "DUALWRITE_PRIVATE_KEY_FILE", "DUALWRITE_SENDER", "DUALWRITE_WRITES", "DUALWRITE_TX_TTL",
    "DUALWRITE_PROGRESS",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in DW_ENV:
        monkeypatch.delenv(k, raising=False)


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without dualwrite's knobs, plus ``extra``: for subprocesses."""
    env = {k: v for k, v in os.environ.items() if k not in DW_ENV}
    env.update(extra)
    return env
