"""Counts and ids in human output: ``1 lottery``, ``2 lotteries`` (never ``1 lotteries``, nor a word with its plural in parentheses)."""

from __future__ import annotations

from typing import Iterable

#: the irregular plurals human output uses; the rest add "s"
_IRREGULAR = {"lottery": "lotteries", "summary": "summaries", "entry": "entries", "retry": "retries",
              "does": "do", "differs": "differ", "is": "are", "has": "have", "its": "their"}


def plural(n: int, word: str) -> str:
    """``word`` as it goes with ``n``: ``lottery`` for 1, ``lotteries`` otherwise."""
    if n == 1:
        return word
    return _IRREGULAR.get(word) or word + "s"


def count(n: int, word: str) -> str:
    """``1 lottery``, ``0 lotteries``, ``12 lotteries``."""
    return f"{n} {plural(n, word)}"


def id_ranges(ids: Iterable[int], limit: int | None = 40) -> str:
    """``3-7, 12, 20-21``: ids as the commands take them (at most ``limit`` runs, then how many more)."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    shown = runs if limit is None else runs[:limit]
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in shown)
    return text + (f", … ({count(len(runs) - len(shown), 'more run')})" if len(shown) < len(runs) else "")
