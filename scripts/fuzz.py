"""The long fuzz run: every target of ``fuzz/`` for ``--seconds`` each; prints executions, coverage, crashes.

Run: ``python scripts/fuzz.py [--seconds 300] [--keep DIR] [TARGET...]`` (needs the test extra: atheris).

Seeds come from the fixtures (``fuzz/seeds.py``) plus ``fuzz/regressions/``; the corpus libFuzzer
grows is kept in ``--keep DIR`` (default: a temporary folder, removed unless something crashed).
Exit 1 when any target crashed, hung (``-timeout``) or blew its memory limit (``-rss_limit_mb``),
with the inputs left in DIR/artifacts/TARGET/ to replay: ``python fuzz/run.py TARGET FILE``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "fuzz"))

import driver  # noqa: E402
import seeds  # noqa: E402
import targets  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", metavar="TARGET", help=f"any of {', '.join(targets.TARGETS)} [default: all]")
    ap.add_argument("--seconds", type=int, default=300, help="per target [default: 300]")
    ap.add_argument("--keep", type=Path, help="keep the corpus and artifacts here")
    opts = ap.parse_args()
    names = opts.targets or list(targets.TARGETS)
    unknown = [n for n in names if n not in targets.TARGETS]
    if unknown:
        ap.error(f"unknown target {unknown[0]!r} (targets: {', '.join(targets.TARGETS)})")

    work = opts.keep or Path(tempfile.mkdtemp(prefix="dw-fuzz-"))
    seed_dir = work / "seeds"
    counts = seeds.write_seeds(seed_dir, names)
    print(f"atheris/libFuzzer, python {platform.python_version()}, {len(names)} targets x {opts.seconds} s, "
          f"-timeout={driver.HANG_SECONDS} -rss_limit_mb={driver.RSS_LIMIT_MB} -max_len={driver.MAX_LEN}")
    print(f"{'target':<12}{'seeds':>6}{'executions':>13}{'exec/s':>9}{'cov':>6}{'ft':>6}{'corpus':>8}"
          f"{'rss MB':>8}{'crashes':>9}")
    bad = 0
    t0 = time.monotonic()
    for name in names:
        r = driver.run_target(name, opts.seconds, work, seed_dir)
        crashes = len(r.crashes) + (0 if r.ok or r.crashes else 1)
        bad += crashes
        print(f"{name:<12}{counts[name]:>6}{r.executions:>13,}{r.exec_per_s:>9,}{r.coverage:>6}{r.features:>6}"
              f"{r.corpus:>8}{r.peak_rss_mb:>8}{crashes:>9}", flush=True)
        for c in r.crashes:
            print(f"    {c}")
        if not r.ok and not r.crashes:
            print("    (exit " + str(r.returncode) + " without an artifact)\n" + r.log_tail)
    print(f"crashes: {bad}; {time.monotonic() - t0:.0f} s in all; corpus and artifacts: "
          + (str(work) if opts.keep or bad else "removed"))
    if not opts.keep and not bad:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
