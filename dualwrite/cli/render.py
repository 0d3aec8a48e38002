"""Rendering shared by the commands: JSON for programs, aligned text for people."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

import click


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


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
