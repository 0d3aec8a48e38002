"""dualwrite: make the dual-write migration of the Supra lottery archive verifiable, gated and healable.

The names below are loaded on first use (PEP 562): ``import dualwrite.cli.main`` must not pay for
building the pydantic models of every struct, which is most of a command's start-up otherwise.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dualwrite.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    DecodeError,
    DualwriteError,
    EncodeError,
    ExitCode,
    FieldError,
    InputError,
    MismatchFound,
    MoveAbort,
    SettingError,
    TransactionFailed,
)

if TYPE_CHECKING:  # pragma: no cover
    from dualwrite.hashing import decode_summary, encode_summary, expected_hash
    from dualwrite.structs import DualWriteStatus, LegacySummary, LotterySummary

__version__ = "0.1.0"

_LAZY = {
    "decode_summary": "dualwrite.hashing",
    "encode_summary": "dualwrite.hashing",
    "expected_hash": "dualwrite.hashing",
    "DualWriteStatus": "dualwrite.structs",
    "LegacySummary": "dualwrite.structs",
    "LotterySummary": "dualwrite.structs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dualwrite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "DecodeError",
    "DualWriteStatus",
    "DualwriteError",
    "EncodeError",
    "ExitCode",
    "FieldError",
    "InputError",
    "LegacySummary",
    "LotterySummary",
    "MismatchFound",
    "MoveAbort",
    "SettingError",
    "TransactionFailed",
    "decode_summary",
    "encode_summary",
    "expected_hash",
]
