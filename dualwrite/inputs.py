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
import os
import stat
import sys
from dataclasses import dataclass
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


#: the largest summary input read (one file or stdin): ~100,000 summaries as Move JSON Lines
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: the most digits a JSON integer may have: u256, Move's widest, has 78
MAX_INT_DIGITS = 80


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def read_bounded(name: str, limit: int, what: str = "input") -> bytes:
    """A whole file (``-``: stdin) of at most ``limit`` bytes; past it, an error before reading it all.

    A regular file's size is known up front; a pipe or device (``/dev/zero``) is read up to the
    limit and then refused, so memory stays bounded whatever is at the other end.
    """
    label = "<stdin>" if name == "-" else name
    try:
        f = sys.stdin.buffer if name == "-" else open(name, "rb")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror})") from None
    try:
        try:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise InputError(f"{label}: is a directory")
            if stat.S_ISREG(st.st_mode) and st.st_size > limit:
                raise InputError(f"{label}: {st.st_size} bytes, over the {_mib(limit)} limit for {what}")
        except (OSError, ValueError):
            pass  # no descriptor (a test's stdin): the bounded read below still holds
        data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{label}: cannot read ({e.strerror})") from None
    finally:
        if name != "-":
            f.close()
    if len(data) > limit:
        raise InputError(f"{label}: over the {_mib(limit)} limit for {what} (stopped reading there)")
    return data


def read_source(name: str) -> bytes:
    return read_bounded(name, MAX_INPUT_BYTES, "a summary input")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice is ambiguous evidence: refuse it rather than keep the last."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InputError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise InputError(f"an integer of {len(digits.lstrip('-'))} digits (Move's widest, u256, has 78)")
    return int(digits)


def _json_loads(text: str) -> Any:
    """``json.loads`` that refuses, as bad input, what would otherwise crash: nesting too deep for the
    parser, integers too long to convert, a key twice."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_bounded_int)
    except RecursionError:
        raise InputError("JSON nested too deeply (a summary nests a few levels)") from None


def json_loads_strict(text: str, where: str) -> Any:
    """The same, for other files dualwrite reads (evidence, journals): errors name ``where``."""
    try:
        return _json_loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except InputError as e:
        raise InputError(f"{where}: {e.message}") from None


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


def _looks_like_json(raw: bytes) -> bool:
    """Starts like a JSON document and is almost all printable text (BCS is mostly small bytes)."""
    head = raw.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if head not in (b"{", b"["):
        return False
    sample = raw[:4096]
    text_like = sum(1 for b in sample if b >= 0x20 or b in (9, 10, 13))
    return text_like >= 0.95 * len(sample)


def parse_struct_inputs(raw: bytes, name: str, model: type[MoveStruct]) -> list[tuple[str, MoveStruct, str]]:
    """Decode every value of ``model`` in one file's bytes, detecting the form."""
    try:
        return _parse(raw, name, model)
    except InputError as e:
        raise e.with_source(name) from None
    except RecursionError:  # arrays nested just shallow enough for the parser, too deep to walk
        raise InputError(f"{name}: JSON nested too deeply (a summary nests a few levels)") from None


def _parse(raw: bytes, name: str, model: type[MoveStruct]) -> list[tuple[str, MoveStruct, str]]:
    if name.endswith(".bcs"):
        return [(name, model.from_bcs(raw), "bcs")]
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark, as Windows editors write, is not content
    except UnicodeDecodeError as bad:
        try:
            return [(name, model.from_bcs(raw), "bcs")]
        except InputError as as_bcs:
            if _looks_like_json(raw):
                raise InputError(
                    f"{name}: looks like JSON but is not valid UTF-8 (byte {raw[bad.start]:#04x} at offset "
                    f"{bad.start}); read as BCS it does not decode either ({as_bcs.message})") from None
            raise
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
                _json_loads(lines[0][1])
            except (json.JSONDecodeError, InputError):
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
