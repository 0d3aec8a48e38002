"""dualwrite: make the dual-write migration of the Supra lottery archive verifiable, gated and healable."""

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
    TransactionFailed,
)
from dualwrite.hashing import decode_summary, encode_summary, expected_hash
from dualwrite.structs import DualWriteStatus, LegacySummary, LotterySummary

__version__ = "0.1.0"

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
    "TransactionFailed",
    "decode_summary",
    "encode_summary",
    "expected_hash",
]
