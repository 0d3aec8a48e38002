"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/run.py TARGET [libFuzzer flags] [CORPUS_DIR...]``.

dualwrite's modules are imported under ``atheris.instrument_imports`` so libFuzzer sees their
branch coverage; flags and corpus folders go to libFuzzer as they are (driver.py picks them).
An exception other than the project's typed errors escapes the target: libFuzzer reports it
as a crash and writes the input to ``<artifact_prefix>crash-<sha1>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["dualwrite", "targets"]):
    import targets


def main() -> None:
    known = {**targets.TARGETS, **targets.HARNESS_CHECKS}
    if len(sys.argv) < 2 or sys.argv[1] not in known:
        sys.exit(f"usage: run.py {{{'|'.join(targets.TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = known[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
