"""Rules shared by the append-only JSON Lines journals (heal, cutover)."""

from __future__ import annotations

import json


def is_torn(line: str, err: json.JSONDecodeError) -> bool:
    """A record cut short by a crash mid-write: the start of an object that stops early — not other garbage.

    The action after a torn record never ran, so a journal reader may skip it; anything else is damage."""
    t = line.rstrip()
    return t.startswith("{") and (not t.endswith("}") or err.pos >= len(t))
