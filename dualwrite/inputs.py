"""Reading summaries from whatever operators have at hand, with the form auto-detected.

Accepted: a JSON summary object; a JSON array or JSON Lines of summaries; a view
result envelope (``{"result": [summary]}`` / ``{"Result": [...]}``), also with an
``Option`` inside (``{"result": [{"vec": [value]}]}``); binary ``.bcs``; hex text
(``0x`` optional, whitespace and ``_`` allowed). ``-`` reads standard input. A UTF-8
byte order mark is ignored; a JSON object with a duplicate key is refused.
Every summary keeps a source label (``file.json[2]``, ``file.jsonl:5``) for messages.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualwrite.bcs import parse_hex
from dualwrite.errors import FieldError, InputError
from dualwrite.structs import LotterySummary, MoveStruct

HEX_CHARS = set("0123456789abcdefABCDEFxX_ \t\r\n")
#: control characters that neither JSON nor hex text contains (all below 0x20 but tab, LF, CR)
_TEXT_ONLY_CONTROLS = frozenset(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")


@dataclass(frozen=True)
class SummaryInput:
    source: str
    summary: LotterySummary
    form: str  # json | jsonl | envelope | bcs | hex


def read_source(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror})") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice is ambiguous evidence: refuse it rather than keep the last."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InputError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def _json_loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:  # found by fuzz/: "[[[[…" a few thousand deep is not a summary, nor a bug
        raise InputError("JSON nested deeper than any summary (refused)") from None


def _option_value(obj: Any) -> list[Any] | None:
    """The values of a Move ``Option`` in JSON (``{"vec": []}`` / ``{"vec": [v]}``), else None."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get("vec"), list):
        return obj["vec"]
    return None


def _from_json_value(obj: Any, label: str, form: str, model: type[MoveStruct]) -> list[tuple[str, MoveStruct, str]]:
    if isinstance(obj, dict):
        for key in ("result", "Result"):
            if key in obj and len(obj) == 1:
                res = obj[key]
                items = res if isinstance(res, list) else [res]
                flat: list[Any] = []
                for it in items:
                    if isinstance(it, list):
                        flat.extend(it)
                    elif _option_value(it) is not None:  # e.g. history_bridge::get_summary
                        flat.extend(_option_value(it))  # type: ignore[arg-type]
                    else:
                        flat.append(it)
                return [
                    (f"{label}[{i}]", model.from_move_json(o, f"{label}: {model.__name__}"), "envelope")
                    for i, o in enumerate(flat)
                ]
        option = _option_value(obj)
        if option is not None:  # an Option<struct> as a view renders it: none or one value
            return [(label, model.from_move_json(o, f"{label}: {model.__name__}"), form) for o in option]
        for key in ("message", "Error"):
            if key in obj and len(obj) == 1:
                raise InputError(f"{label}: an error envelope, not a summary: {obj[key]}")
        return [(label, model.from_move_json(obj, f"{label}: {model.__name__}"), form)]
    if isinstance(obj, list):
        out = []
        for i, o in enumerate(obj):
            out.extend(_from_json_value(o, f"{label}[{i}]", form, model))
        return out
    raise InputError(f"{label}: expected a JSON object or array, got {type(obj).__name__}")


def parse_struct_inputs(raw: bytes, name: str, model: type[MoveStruct]) -> list[tuple[str, MoveStruct, str]]:
    """Decode every value of ``model`` in one file's bytes, detecting the form."""
    try:
        return _parse(raw, name, model)
    except InputError as e:
        raise e.with_source(name) from None


def _parse(raw: bytes, name: str, model: type[MoveStruct]) -> list[tuple[str, MoveStruct, str]]:
    if name.endswith(".bcs"):
        return [(name, model.from_bcs(raw), "bcs")]
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark, as Windows editors write, is not content
    except UnicodeDecodeError:
        return [(name, model.from_bcs(raw), "bcs")]
    if not _TEXT_ONLY_CONTROLS.isdisjoint(text):
        # JSON and hex text never hold these; BCS holds them everywhere (and may be all
        # ASCII, even start with "{" when a lottery id is 123)
        return [(name, model.from_bcs(raw), "bcs")]
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{name}: empty input")
    if stripped[0] in "{[":
        try:
            obj = _json_loads(stripped)
        except json.JSONDecodeError as first:
            # split on newlines only: str.splitlines would also split at U+2028, legal inside JSON strings
            lines = [(i + 1, ln) for i, ln in enumerate(text.split("\n")) if ln.strip()]
            whole = InputError(f"{name}: invalid JSON at line {first.lineno} column {first.colno}: {first.msg}")
            if len(lines) < 2:
                raise whole from None
            try:
                json.loads(lines[0][1])
            except (json.JSONDecodeError, RecursionError):
                # not JSON Lines either (a pretty-printed document with an error in it):
                # the error in the document as a whole is the one that points at the fault
                raise whole from None
            out = []
            for lineno, line in lines:
                try:
                    obj = _json_loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{name}:{lineno}: invalid JSON Lines record at column {e.colno}: {e.msg}") from None
                except InputError as e:  # a duplicate key
                    raise InputError(f"{name}:{lineno}: {e.message}") from None
                out.extend(_from_json_value(obj, f"{name}:{lineno}", "jsonl", model))
            return out
        return _from_json_value(obj, name, "json", model)
    if set(stripped) <= HEX_CHARS:
        try:
            data = parse_hex(stripped, name)
        except FieldError as e:
            raise InputError(f"{name}: {e.reason}") from None
        return [(name, model.from_bcs(data), "hex")]
    bad = next(i for i, c in enumerate(stripped) if c not in HEX_CHARS)
    raise InputError(
        f"{name}: not a summary in any accepted form (JSON, JSON Lines, view envelope, .bcs, hex): "
        f"unexpected character {stripped[bad]!r} at position {bad}"
    )


def load_summaries(names: list[str]) -> list[SummaryInput]:
    """All summaries of all named inputs, in order; the first bad input raises, naming itself."""
    out: list[SummaryInput] = []
    for name in names:
        items = parse_struct_inputs(read_source(name), name, LotterySummary)
        if not items:
            raise InputError(f"{name}: no summary in it (an empty array or result)")
        out.extend(SummaryInput(src, s, form) for src, s, form in items)  # type: ignore[arg-type]
    return out
