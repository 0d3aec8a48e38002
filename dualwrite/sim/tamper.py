"""Drills: corrupt a legacy copy the ways real drift happens, so diff and heal can be proven."""

from __future__ import annotations

import hashlib
from typing import Any

from dualwrite.bcs import BYTES, parse_hex
from dualwrite.errors import DecodeError, FieldError, InputError
from dualwrite.structs import LegacySummary, LotterySummary


def non_canonical_bytes(summary: LotterySummary) -> bytes:
    """The same fields, with the first byte vector's length as a two-byte ULEB128 (``L|0x80, 0x00``).

    This is what an import of non-minimal bytes leaves behind: equal fields, other bytes, other hash.
    """
    canonical = summary.to_bcs()
    offset = 0
    for name, mtype in LotterySummary.__layout__.fields:
        if mtype is BYTES:
            n = len(getattr(summary, name))
            if n < 0x80:
                return canonical[:offset] + bytes([n | 0x80, 0x00]) + canonical[offset + 1 :]
            raise InputError("non-canonical drill needs a first byte vector shorter than 128 bytes")
        offset += mtype.size  # the fields before the first vector are fixed-width integers
    raise InputError("LotterySummary has no byte vector")  # pragma: no cover


def _assign(summary: LotterySummary, assignments: list[str]) -> LotterySummary:
    types = dict(LotterySummary.__layout__.fields)
    update: dict[str, Any] = {}
    for a in assignments:
        name, sep, value = a.partition("=")
        if not sep or name not in types:
            raise InputError(f"--set {a!r}: expected FIELD=VALUE with FIELD one of LotterySummary's fields")
        mtype = types[name]
        if getattr(mtype, "bits", None) and not mtype.json_as_string:  # a u8..u32 typed on the command line
            if not (value.isascii() and value.isdigit() and len(value) <= 10):
                raise InputError(f"--set {name}={value[:20]!r}: expected {mtype.name} in ASCII decimal digits")
            value = int(value)  # type: ignore[assignment]
        try:
            update[name] = mtype.from_json(value, f"--set {name}")
        except FieldError as e:
            raise InputError(str(e)) from None
    return summary.model_copy(update=update)


def _refuse_contradictions(new_bytes: str | None, assignments: list[str], non_canonical: bool,
                           finalized_at: int | None, fix_hash: bool, delete: bool) -> None:
    """A drill does exactly what it says: options that cancel or override each other are refused."""
    if delete:
        others = [o for o, given in (("--bytes", new_bytes is not None), ("--set", bool(assignments)),
                                     ("--non-canonical", non_canonical), ("--finalized-at", finalized_at is not None),
                                     ("--fix-hash", fix_hash)) if given]
        if others:
            raise InputError(f"--delete with {', '.join(others)}: a deleted copy has no bytes to change; give one or the other")
    seen: dict[str, str] = {}
    for a in assignments:
        name, _, value = a.partition("=")
        if name in seen:
            raise InputError(f"--set {name} given twice ({name}={seen[name][:20]} and {name}={value[:20]}): give it once")
        seen[name] = value


def tamper(chain, lottery_id: int, *, new_bytes: str | None = None, assignments: list[str] = (),
           non_canonical: bool = False, finalized_at: int | None = None, fix_hash: bool = False,
           delete: bool = False) -> dict[str, Any]:
    _refuse_contradictions(new_bytes, list(assignments), non_canonical, finalized_at, fix_hash, delete)
    current = chain.legacy_raw(lottery_id)
    if current is None:
        raise InputError(f"lottery {lottery_id}: no legacy copy to tamper with")
    if delete:
        chain.write_legacy_raw(lottery_id, None)
        return {"lottery_id": lottery_id, "action": "deleted"}
    data = current.summary_bcs
    actions = []
    if new_bytes is not None:
        try:
            data = parse_hex(new_bytes, "--bytes")
        except FieldError as e:
            raise InputError(str(e)) from None
        actions.append("bytes replaced")
    if assignments or non_canonical:
        try:
            summary = LotterySummary.from_bcs(data, lenient_uleb=True)
        except DecodeError as e:
            raise InputError(f"lottery {lottery_id}: legacy bytes do not decode, cannot change fields ({e})") from None
        if assignments:
            summary = _assign(summary, list(assignments))  # type: ignore[arg-type]
            actions.append("fields changed: " + ", ".join(a.partition("=")[0] for a in assignments))
        data = non_canonical_bytes(summary) if non_canonical else summary.to_bcs()  # type: ignore[arg-type]
        if non_canonical:
            actions.append("re-encoded non-canonically")
    archive_hash = hashlib.sha3_256(data).digest() if fix_hash else current.archive_hash
    if fix_hash:
        actions.append("archive_hash recomputed")
    new = LegacySummary(summary_bcs=data, archive_hash=archive_hash,
                        finalized_at=current.finalized_at if finalized_at is None else finalized_at)
    if finalized_at is not None:
        actions.append("finalized_at changed")
    if not actions:
        raise InputError("nothing to tamper: give --bytes, --set, --non-canonical, --finalized-at or --delete")
    chain.write_legacy_raw(lottery_id, new)
    return {"lottery_id": lottery_id, "action": "; ".join(actions), "archive_hash": "0x" + archive_hash.hex(),
            "summary_bcs": "0x" + data.hex(), "finalized_at": str(new.finalized_at)}
