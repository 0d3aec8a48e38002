"""Counts in human output: ``1 lottery``, ``2 lotteries`` (never ``1 lotteries``, nor a word with its plural in parentheses)."""

from __future__ import annotations

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
