"""Rendering shared by the commands: JSON for programs, aligned text for people."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

import click


#: whether this run has printed its JSON document: an error after it goes to stderr only (a second
#: document on stdout would break a ``json.load`` of the first)
_written = [False]


def emit_json(obj: Any) -> None:
    emit_json_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def emit_json_text(text: str) -> None:
    """A JSON document already rendered (``cutover plan --json`` prints the plan file's own bytes)."""
    _written[0] = True
    click.echo(text, nl=False)


def emit_error_json(kind: str, message: str, exit_code: int) -> None:
    """Under --json, a failure is also one object on stdout, on one line (also a JSON Lines record), so a
    script reads ``{"error": {"kind", "message", "exit_code"}}`` instead of empty output."""
    if not _written[0]:
        _written[0] = True
        click.echo(json.dumps({"error": {"kind": kind, "message": message, "exit_code": exit_code}},
                              ensure_ascii=False))


def shorten_hex(h: str, keep: int = 16) -> str:
    body = h[2:] if h.startswith("0x") else h
    if len(body) <= 2 * keep + 3:
        return h
    return f"0x{body[:keep]}…{body[-keep:]} ({len(body) // 2} bytes)"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
