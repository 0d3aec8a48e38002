"""Transactions built, signed, hashed and checked in-process (supra-cli.md, "RPC node": how the SDKs sign).

The layouts are declared once in ``dualwrite.layouts`` (``RawTransaction`` … ``SupraTransaction``) and encoded by
the project's own BCS codec; Ed25519 is PyNaCl's (imported when a key is first used, so a command that signs
nothing never loads it). Used by both sides: the RPC writer (``backends/rpc_write.py``) and the emulated
node (``sim/node.py``), so both compute the same bytes and the same hash.

- signing message: ``sha3_256(b"SUPRA::RawTransaction") || BCS(RawTransaction)``;
- submitted bytes: ``BCS(SupraTransaction)`` = variant 1 (Move) || ``BCS(SignedTransaction)``;
- **hash** (the spec does not say how the node computes it; this is dualwrite's choice, after Aptos with its
  own salt): ``sha3_256(sha3_256(b"SUPRA::SupraTransaction") || BCS(SupraTransaction))``, computed before
  submitting so it can be journalled first. A real node answers with its own digest: that answer wins.
- authentication key (Aptos-derived chains): ``sha3_256(public_key || 0x00)``; a fresh account's address is it.

The private key lives only in a ``Signer``: no repr, no pickling, no attribute that holds it as text.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import Any

from dualwrite import layouts as L
from dualwrite.bcs.types import from_bcs, to_bcs
from dualwrite.errors import InputError

SIGNING_SALT = hashlib.sha3_256(b"SUPRA::RawTransaction").digest()
HASH_SALT = hashlib.sha3_256(b"SUPRA::SupraTransaction").digest()
BCS_CONTENT_TYPE = "application/x.supra.signed_transaction+bcs"
ED25519_SCHEME = b"\x00"
KEY_FILE_MAX = 4096
_KEY_TEXT = re.compile(r"(?:ed25519-priv-)?(?:0[xX])?([0-9a-fA-F]{64})")


def auth_key(public_key: bytes) -> bytes:
    """The authentication key of an Ed25519 public key: ``sha3_256(public_key || 0x00)``."""
    return hashlib.sha3_256(bytes(public_key) + ED25519_SCHEME).digest()


def hex0x(data: bytes) -> str:
    return "0x" + bytes(data).hex()


class Signer:
    """An Ed25519 key: signs, and says its public key, authentication key and own address. Never shows the key."""

    __slots__ = ("_key", "public_key", "auth_key", "source")

    def __init__(self, seed: bytes, *, source: str = "key") -> None:
        from nacl.signing import SigningKey  # lazily: a command that signs nothing never loads it

        if len(seed) != 32:
            raise InputError(f"{source}: an Ed25519 private key is 32 bytes, got {len(seed)}")
        self._key = SigningKey(bytes(seed))
        self.public_key = bytes(self._key.verify_key)
        self.auth_key = auth_key(self.public_key)
        self.source = source

    @property
    def address(self) -> str:
        """The key's own account address (Aptos-style: its authentication key)."""
        return hex0x(self.auth_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def __repr__(self) -> str:
        return f"Signer(public_key={hex0x(self.public_key)}, source={self.source!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a Signer holds a private key: it is not pickled")


def load_key_file(path: str | os.PathLike) -> Signer:
    """The private key in ``path``: 32 bytes of hex on one line, with or without ``0x`` (AIP-80's
    ``ed25519-priv-0x…`` too). Refused, naming the file and never its content: a file that group or others
    may read or write (as ssh refuses one), an unreadable one, a malformed one."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputError(f"--private-key-file {name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--private-key-file {name}: is a directory") from None
    except OSError as e:
        raise InputError(f"--private-key-file {name}: cannot read it ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"--private-key-file {name}: not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise InputError(f"--private-key-file {name}: permissions {mode:04o} are too open: a private key file "
                             f"must not be accessible by group or others (chmod 600 {name})")
        try:
            data = os.read(fd, KEY_FILE_MAX + 1)
        except OSError as e:
            raise InputError(f"--private-key-file {name}: cannot read it ({e.strerror})") from None
    finally:
        os.close(fd)
    malformed = InputError(f"--private-key-file {name}: not an Ed25519 private key (expected one line of 64 hex "
                           f"digits, with or without 0x)")
    if len(data) > KEY_FILE_MAX:
        raise malformed
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise malformed from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    m = _KEY_TEXT.fullmatch(lines[0]) if len(lines) == 1 else None
    if m is None:
        raise malformed
    return Signer(bytes.fromhex(m[1]), source=f"--private-key-file {name}")


def write_key_file(path: str | os.PathLike, seed: bytes, *, force: bool = False) -> None:
    """Write a key file (mode 0600, created so: never readable by others, not even for a moment)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(os.fspath(path), flags, 0o600)
    except FileExistsError:
        raise InputError(f"--out {os.fspath(path)}: exists (pass --force to overwrite it)") from None
    except OSError as e:
        raise InputError(f"--out {os.fspath(path)}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # an existing file overwritten with --force keeps no wider mode
        os.write(fd, ("0x" + seed.hex() + "\n").encode())
    finally:
        os.close(fd)


# -- building ----------------------------------------------------------------------------------------------


def entry_function(function_id: str, args: list[str]) -> dict[str, Any]:
    """``0xADDR::module::function`` and its CLI-form arguments (``u64:5``, ``hex:ab``, ``bool:true``) as an
    ``EntryFunction``: each argument checked against the function's Move signature (the three modules' ABI,
    ``dualwrite.sim.chain.FUNCTIONS``, from onchain.md) and BCS-encoded on its own."""
    from dualwrite.sim.accounts import normalize_address
    from dualwrite.sim.chain import FUNCTIONS, parse_cli_arg

    parts = function_id.split("::")
    if len(parts) != 3 or not parts[0].startswith("0x"):
        raise InputError(f"{function_id!r}: a transaction needs a 0xADDRESS::module::function id")
    addr, module, name = parts
    fn = FUNCTIONS.get((module, name))
    if fn is None or fn.is_view:
        raise InputError(f"{module}::{name}: not an entry function of legacy_bridge, history or history_bridge")
    if len(args) != len(fn.params):
        from dualwrite.words import count

        raise InputError(f"{module}::{name} takes {count(len(fn.params), 'argument')}, got {len(args)}")
    encoded = [to_bcs(p, parse_cli_arg(a, p, i), f"{name} argument {i + 1}")
               for i, (a, p) in enumerate(zip(args, fn.params))]
    return {"module": {"address": bytes.fromhex(normalize_address(addr, "function id")[2:]), "name": module},
            "function": name, "ty_args": [], "args": encoded}


def raw_transaction(sender: str, sequence_number: int, payload: dict[str, Any], *, max_gas_amount: int,
                    gas_unit_price: int, expiration_timestamp_secs: int, chain_id: int) -> dict[str, Any]:
    raw = {"sender": bytes.fromhex(sender[2:]), "sequence_number": sequence_number,
           "payload": {"EntryFunction": payload}, "max_gas_amount": max_gas_amount, "gas_unit_price": gas_unit_price,
           "expiration_timestamp_secs": expiration_timestamp_secs, "chain_id": chain_id}
    return L.RAW_TRANSACTION.check(raw, "RawTransaction")


def signing_message(raw: dict[str, Any]) -> bytes:
    return SIGNING_SALT + to_bcs(L.RAW_TRANSACTION, raw, "RawTransaction")


def signed(raw: dict[str, Any], public_key: bytes, signature: bytes) -> dict[str, Any]:
    """The ``SupraTransaction`` value (variant Move) of a signed raw transaction."""
    return {"Move": {"raw_txn": raw, "authenticator": {"Ed25519": {"public_key": public_key, "signature": signature}}}}


def sign(signer: Signer, raw: dict[str, Any]) -> tuple[bytes, str]:
    """The submitted bytes (``BCS(SupraTransaction)``) and their hash."""
    body = to_bcs(L.SUPRA_TRANSACTION, signed(raw, signer.public_key, signer.sign(signing_message(raw))),
                  "SupraTransaction")
    return body, txn_hash(body)


def txn_hash(body: bytes) -> str:
    """dualwrite's transaction hash of submitted bytes (see the module docstring)."""
    return hex0x(hashlib.sha3_256(HASH_SALT + bytes(body)).digest())


def decode(body: bytes) -> dict[str, Any]:
    """Submitted bytes back to the ``SupraTransaction`` value; ``DecodeError`` with the byte offset."""
    return from_bcs(L.SUPRA_TRANSACTION, body, "SupraTransaction")


def encode(value: dict[str, Any]) -> bytes:
    return to_bcs(L.SUPRA_TRANSACTION, value, "SupraTransaction")


def verify(value: dict[str, Any]) -> bool:
    """Whether the Ed25519 signature of a ``SupraTransaction`` value is valid for its raw transaction."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    move = value["Move"]
    auth = move["authenticator"]["Ed25519"]
    if len(auth["public_key"]) != 32 or len(auth["signature"]) != 64:
        return False
    try:
        VerifyKey(auth["public_key"]).verify(signing_message(move["raw_txn"]), auth["signature"])
    except (BadSignatureError, ValueError):
        return False
    return True


__all__ = ["BCS_CONTENT_TYPE", "Signer", "auth_key", "decode", "encode", "entry_function", "load_key_file",
           "raw_transaction", "sign", "signed", "signing_message", "txn_hash", "verify", "write_key_file"]
