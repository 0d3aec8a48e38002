"""Typed errors and the exit codes every command maps them to.

The library raises these; the CLI turns each into one line on stderr and its
documented exit code. Messages name *where* (file, field path, byte offset,
argument) and *what*, so a person at 3 a.m. can act on them without a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    MISMATCH = 1  # a check found a mismatch or drift
    BAD_INPUT = 2  # bad input or usage
    BACKEND = 3  # a backend failed or could not be reached
    ABORTED = 4  # the chain aborted the transaction
    EMPTY = 5  # a gate checked nothing (pytest's "no tests collected"): green would be a lie
    INCOMPLETE = 6  # cutover status: nothing wrong, but not every planned lottery is archived and ok yet
    BUSY = 75  # another heal holds the journal or chain lock: nothing was done, try again (sysexits EX_TEMPFAIL)
    INTERNAL = 70  # a bug: one line, the traceback only with DUALWRITE_DEBUG=1


class DualwriteError(Exception):
    """Base of every error dualwrite raises on purpose."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(DualwriteError):
    """Bad input: a file, an argument or a value that cannot be used."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source

    def with_source(self, source: str) -> "InputError":
        """Name the file or argument the bad value came from (once)."""
        if self.source is None:
            self.source = source
            if not self.message.startswith(source):
                self.message = f"{source}: {self.message}"
                self.args = (self.message,)
        return self


class SettingError(InputError, ValueError):
    """A backend setting (``BackendConfig(...)``) that fails its rule. ``key`` names the setting (None for
    a rule across settings, such as rpc_url and url together), ``reason`` says why; ``unknown`` is set when
    the key is not a setting at all. Exit 2 like any ``InputError``, and a ``ValueError`` too: raised inside
    a pydantic validator it becomes a ``ValidationError``, and ``except ValueError`` keeps catching it."""

    def __init__(self, key: str | None, reason: str, *, unknown: bool = False) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason
        self.unknown = unknown


class DecodeError(InputError):
    """BCS bytes that are not a canonical encoding of the expected type."""

    def __init__(self, reason: str, *, offset: int, path: str) -> None:
        super().__init__(f"{path} at byte offset {offset}: {reason}")
        self.reason = reason
        self.offset = offset
        self.path = path


class EncodeError(InputError):
    """A value that cannot be encoded (out of range, wrong type)."""

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.path = path


class FieldError(InputError):
    """A JSON/model value that fails validation, with its field path."""

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.path = path


class BackendError(DualwriteError):
    """The backend (CLI, container engine, simulator store) failed or was unreachable."""

    exit_code = ExitCode.BACKEND
    transient = False


class BackendUnavailable(BackendError):
    """The thing to talk to is not there: no binary, no engine, no container, no image."""


class BackendTimeout(BackendError):
    transient = True


class TransientBackendError(BackendError):
    """A failure worth retrying (container not ready, engine busy)."""

    transient = True


class ChainChanged(BackendError):
    """The node answered for another chain than the one it answered for at the start of this run
    (``x-supra-chain-id``, or the chain id endpoint): the run stops (exit 3), it never reports on
    two chains at once. Nothing from the other chain's answer is used; every later request of the
    same client fails the same way."""


class SubmissionUnknown(BackendError):
    """A run whose outcome the CLI did not see (``… might still succeed``): it may have been
    submitted and may still commit, so it is looked up (by hash, or by re-reading the state it
    was to change) and never simply sent again."""

    transient = False

    def __init__(self, message: str, *, txn_hash: str | None = None, lookup_window: float | None = None) -> None:
        super().__init__(message)
        self.txn_hash = txn_hash
        self.lookup_window = lookup_window  # seconds worth waiting for the change to show


class SubmitRefused(BackendError):
    """The node refused a transaction at submission (a 4xx answer): it was not accepted, so it will never
    commit. ``status`` is the node's reason code where it names one (``SEQUENCE_NUMBER_TOO_OLD``,
    ``TRANSACTION_EXPIRED``, ``BAD_CHAIN_ID``, ``INVALID_SIGNATURE``, ``INVALID_AUTH_KEY``…), else ``""``."""

    def __init__(self, message: str, *, status: str = "", txn_hash: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.txn_hash = txn_hash


class SequenceTooOld(SubmitRefused):
    """The sequence number is below the account's: that number is used (by this or another transaction)."""


class SequenceTooNew(SubmitRefused):
    """The sequence number is too far above the account's for the node to park it."""


class ExpiredAtSubmit(SubmitRefused):
    """Past its expiry when it reached the node: refused, never commits."""


class ChainIdRefused(SubmitRefused):
    """The node's chain id is not the transaction's."""


class MempoolFull(TransientBackendError):
    """The node's mempool is full (HTTP 503 on submit): not accepted; worth sending again later."""

    def __init__(self, message: str, *, txn_hash: str | None = None) -> None:
        super().__init__(message)
        self.txn_hash = txn_hash


class TxnExpired(BackendError):
    """A submitted transaction the node does not know, and the node's clock has passed its expiry: it never
    committed and never will (its absence is final), so it may be sent again, with a new sequence number."""

    def __init__(self, message: str, *, txn_hash: str, expiration_secs: int, node_time: float) -> None:
        super().__init__(message)
        self.txn_hash = txn_hash
        self.expiration_secs = expiration_secs
        self.node_time = node_time


class KeyMismatch(InputError):
    """The private key is not the one the node has for the account it is to sign as (exit 2: nothing sent)."""


class WrongChain(InputError):
    """The node is not on the chain the key, the plan or the journal names (exit 2: nothing was sent)."""


class MoveAbort(DualwriteError):
    """The chain aborted the transaction; nothing it did stays."""

    exit_code = ExitCode.ABORTED

    def __init__(self, code: int, *, module: str = "", name: str | None = None, detail: str = "") -> None:
        from dualwrite.abort_codes import abort_name

        self.code = code
        self.module = module
        self.name = name or abort_name(code, module)
        label = f"{self.name} ({code:#x})" if self.name else f"{code:#x}"
        where = f" in {module}" if module else ""
        text = f"Move abort{where}: {label}"
        if detail:
            text += f": {detail}"
        super().__init__(text)
        self.detail = detail


class TransactionFailed(DualwriteError):
    """A submitted transaction whose status is not Success and no abort code is known."""

    exit_code = ExitCode.ABORTED

    def __init__(self, status: str, *, txn_hash: str | None = None, detail: str = "") -> None:
        self.status = status
        self.txn_hash = txn_hash
        text = f"transaction status {status}"
        if txn_hash:
            text += f" (hash {txn_hash})"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class MismatchFound(DualwriteError):
    """A check ran and found a mismatch or drift (exit 1); the report says which."""

    exit_code = ExitCode.MISMATCH


class HealBusy(DualwriteError):
    """Another heal holds the journal or the chain: this one did nothing."""

    exit_code = ExitCode.BUSY
