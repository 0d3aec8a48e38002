"""One wording for a bad value, wherever it comes from: a click argument or option, a backend setting
(option, environment variable, settings file), an id list.

``WHERE VALUE: REASON``, the reason saying what was expected: ``--backend 'simulator': expected one of:
sim, local, docker, docker-compose, podman, auto, rpc``, ``LOTTERY_ID 'abc': expected a whole number
from 0 to 18446744073709551615``, ``--jobs '0': expected a whole number from 1 to 64``. The value is
shown by ``excerpt``: short tokens whole, anything longer only by its length (a key file passed by
mistake is never printed). Imports nothing: the CLI uses it at start-up.
"""

from __future__ import annotations

from typing import Any, Iterable


def excerpt(text: str) -> str:
    """What a message may show of a bad token: short ones whole, long ones (a key file passed by
    mistake) only by their length, never their content."""
    if len(text) <= 24 and text.isprintable():
        return repr(text)
    return f"a {len(text)}-character value (not shown)"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def expected_number(whole: bool, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                    hi_open: bool = False, unit: str = "") -> str:
    """``expected a whole number from 1 to 64``, ``expected a number of seconds of at least 0.1``…"""
    what = ("a whole number" if whole else "a number") + (f" of {unit}" if unit else "")
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"expected {what} from {_num(lo)} to {_num(hi)}"
    bounds = []
    if lo is not None:
        bounds.append(f"more than {_num(lo)}" if lo_open else f"at least {_num(lo)}")
    if hi is not None:
        bounds.append(f"less than {_num(hi)}" if hi_open else f"at most {_num(hi)}")
    return f"expected {what}" + (f", {' and '.join(bounds)}" if bounds else "")


def expected_choices(choices: Iterable[Any]) -> str:
    return "expected one of: " + ", ".join(map(str, choices))


def bad_value(where: str, shown: str, reason: str) -> str:
    """The one line: ``--jobs '0': expected a whole number from 1 to 64``."""
    return f"{where} {shown}: {reason}"


__all__ = ["bad_value", "excerpt", "expected_choices", "expected_number"]
