"""Whole-process start-up of ``dualwrite``, against a bare ``python -c pass``.

Run: ``python benchmarks/startup.py [--runs 21] [--before REV]``.

Every figure is the median wall time of ``--runs`` whole processes (spawn, interpreter start,
imports, the command, exit), measured here side by side with the baseline ``python -c pass``
of the same interpreter, and printed with the ratio. The commands: ``dualwrite --help`` and
``dualwrite status 5`` on ``sim`` (a state made by ``dualwrite sim init --dual-write`` in a
temporary folder), plus ``python -c 'import click'`` as the floor every click CLI pays.
With ``--before REV`` the same commands also run from a ``git worktree`` of REV (e.g. the
commit before lazy loading), so before and after are measured in one run. Then one
``-X importtime`` run of ``status`` says where the remaining time goes, by top-level package.
The budget the issue sets: ``--help`` and ``status`` ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_MS = 100.0


def median_ms(argv: list[str], env: dict[str, str], runs: int, cwd: Path) -> float:
    """``cwd`` is a scratch folder: ``python -c`` puts the working directory first on sys.path."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise SystemExit(f"{argv}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
    return statistics.median(times) * 1000


def entry(src: Path | None) -> list[str]:
    """How a user starts dualwrite: the console script's own code (``src`` goes in through PYTHONPATH)."""
    code = "import sys; from dualwrite.cli.main import main; sys.argv[0] = 'dualwrite'; main()"
    return [sys.executable, "-c", code]


def env_for(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    if src is not None:
        env["PYTHONPATH"] = str(src)  # wins over the editable install's finder (appended to meta_path)
    return env


def where_time_goes(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Self time of every imported module, summed by top-level package (ms), from ``-X importtime``."""
    p = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    out: dict[str, float] = defaultdict(float)
    for line in p.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line, or the command's own output
        name = parts[2].strip()
        top = name.split(".")[0]
        if top == "dualwrite":
            top = ".".join(name.split(".")[:3 if name.startswith("dualwrite.cli.") else 2])
        out[top] += int(parts[0]) / 1000
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--before", metavar="REV", help="also measure this git revision (a temporary worktree)")
    opts = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dw-startup-"))
    before_src: Path | None = None
    try:
        state = tmp / "s.sqlite"
        init = subprocess.run([*entry(None), "sim", "init", "--dual-write", "--state", str(state)],
                              env=env_for(None), cwd=tmp, capture_output=True, text=True, timeout=60)
        if init.returncode != 0:
            raise SystemExit(f"sim init failed: {init.stderr}")
        if opts.before:
            before_src = tmp / "before"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before_src), opts.before],
                           check=True, capture_output=True, timeout=120)

        commands = {"--help": ["--help"], "status 5 (sim)": ["status", "5", "--state", str(state)]}
        base = median_ms([sys.executable, "-c", "pass"], env_for(None), opts.runs, tmp)
        click_ms = median_ms([sys.executable, "-c", "import click"], env_for(None), opts.runs, tmp)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {opts.runs} whole-process runs")
        print(f"{'command':<22}{'ms':>9}{'× pass':>9}   budget {BUDGET_MS:.0f} ms")
        print(f"{'python -c pass':<22}{base:9.1f}{1:9.2f}")
        print(f"{'python -c import click':<22}{click_ms:9.1f}{click_ms / base:9.2f}")
        for label, args in commands.items():
            for tag, src in (("before", before_src), ("after", None)):
                if tag == "before" and src is None:
                    continue
                ms = median_ms([*entry(src), *args], env_for(src), opts.runs, tmp)
                verdict = "ok" if ms <= BUDGET_MS else "OVER"
                print(f"{(label + (' ' + tag if before_src else '')):<22}{ms:9.1f}{ms / base:9.2f}   {verdict}")

        print("\nwhere `status 5` spends its import time now (self time by package, ms, one -X importtime run):")
        spent = where_time_goes([*entry(None), *commands["status 5 (sim)"]], env_for(None), tmp)
        total = sum(spent.values())
        for name, ms in sorted(spent.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {name:<34}{ms:7.1f}  {100 * ms / total:4.0f}%")
        print(f"  {'(all imports)':<34}{total:7.1f}")
    finally:
        if before_src is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_src)],
                           capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
