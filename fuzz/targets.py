"""The fuzz targets: everything that parses input from outside, under one contract.

Contract: for any bytes, a parser returns, or raises one of the project's typed errors
(``DualwriteError`` subclasses, which the CLI turns into one line and an exit code). Any
other exception is a crash (it would reach the user as exit 70, "internal error"). A hang
or a memory blow-up is caught by libFuzzer (``-timeout``, ``-rss_limit_mb``, see driver.py).
Where a parse succeeds, the targets also check what must then hold (a strict BCS decode
re-encodes to exactly its input: it accepted only canonical bytes).

Each target reads a few leading bytes as choices (which struct, which file name, the exit
code) and the rest as the input; ``seeds.py`` writes the fixtures in that framing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from dualwrite.audit.heal import Journal
from dualwrite.backends.cli_output import parse_run, parse_view
from dualwrite.errors import DualwriteError
from dualwrite.evidence import check_evidence
from dualwrite.inputs import parse_struct_inputs
from dualwrite.structs import STRUCT_TYPES

MODELS = list(STRUCT_TYPES.values())
#: names the input readers see: the form is detected from the bytes, except that ``.bcs`` is binary
INPUT_NAMES = ("input.json", "input.bcs", "lotteries.jsonl", "summary.hex")
SEP = b"\x00\xff\x00"  # stdout / stderr separator in the cli_output framing


def bcs(data: bytes) -> None:
    """``MoveStruct.from_bcs`` for every declared struct, strict and lenient ULEB128."""
    if len(data) < 1:
        return
    model = MODELS[data[0] % len(MODELS)]
    lenient = bool(data[0] & 0x80)
    body = data[1:]
    try:
        value = model.from_bcs(body, lenient_uleb=lenient)
    except DualwriteError:
        return
    again = value.to_bcs()
    if not lenient:
        assert again == body, f"{model.__name__}: strict decode accepted non-canonical bytes {body.hex()}"
    assert model.from_bcs(again) == value, f"{model.__name__}: re-encoding does not decode to the same value"


def inputs(data: bytes) -> None:
    """``dualwrite hash/decode`` inputs: JSON, JSON Lines, view envelopes, hex text, ``.bcs``."""
    if len(data) < 1:
        return
    model = MODELS[(data[0] >> 2) % len(MODELS)]
    name = INPUT_NAMES[data[0] % len(INPUT_NAMES)]
    try:
        items = parse_struct_inputs(data[1:], name, model)
    except DualwriteError:
        return
    for _source, value, form in items:
        assert form in ("json", "jsonl", "envelope", "bcs", "hex"), form
        value.to_bcs()  # whatever was accepted is a value that encodes


def cli_output(data: bytes) -> None:
    """What the Supra CLI printed: ``parse_view`` and ``parse_run`` on (stdout, stderr, exit code)."""
    if len(data) < 1:
        return
    returncode = data[0] - 128 if data[0] & 0x80 else data[0] % 4
    out, _, err = data[1:].partition(SEP)
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    for parse in (parse_view, parse_run):
        try:
            parse(stdout, stderr, returncode, where="fuzz")
        except DualwriteError:
            pass


def _scratch(name: str) -> Path:
    """The readers take a path: one scratch file per target, in ``$DW_FUZZ_SCRATCH`` (driver.py points it
    into its work folder) or else a temporary folder removed at exit (in-process replays)."""
    global _SCRATCH
    if _SCRATCH is None:
        given = os.environ.get("DW_FUZZ_SCRATCH")
        if given:
            _SCRATCH = Path(given)
            _SCRATCH.mkdir(parents=True, exist_ok=True)
        else:
            _SCRATCH = Path(tempfile.mkdtemp(prefix="dw-fuzz-"))
            atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
    return _SCRATCH / name


_SCRATCH: Path | None = None


def journal(data: bytes) -> None:
    """The heal journal reader: every record, and the interrupted run a resume would continue."""
    path = _scratch("heal-journal.jsonl")
    path.write_bytes(data)
    j = Journal(path)
    try:
        records = j.records()
        assert isinstance(records, list)
        j.unfinished_run("sim (state fuzz.sqlite)")
    except DualwriteError:
        pass


def evidence(data: bytes) -> None:
    """``dualwrite evidence check`` of a JSON evidence file (no sidecar beside it)."""
    path = _scratch("verify-report.json")
    path.write_bytes(data)
    try:
        check_evidence(path)
    except DualwriteError:
        pass


def canary(data: bytes) -> None:
    """Not a parser: proves the harness, an untyped exception must come back as a crash."""
    if data[:4] == b"dwfz":
        raise ValueError("the canary's planted crash")


TARGETS = {"bcs": bcs, "inputs": inputs, "cli_output": cli_output, "journal": journal, "evidence": evidence}

#: run.py also takes these; they are not part of the fuzzing itself
HARNESS_CHECKS = {"canary": canary}

__all__ = ["HARNESS_CHECKS", "TARGETS", "SEP", "INPUT_NAMES", "MODELS"]
