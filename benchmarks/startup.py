"""Whole-process start-up of ``dualwrite``, against a bare ``python -c pass``.

Run: ``python benchmarks/startup.py [--runs 21] [--before REV]``.

Every figure is the median wall time of ``--runs`` whole processes (spawn, interpreter start,
imports, the command, exit), measured side by side in this one run with the baseline
``python -c pass`` of the same interpreter, and printed with the ratio. The commands:
``dualwrite --help``, and ``dualwrite status 5``, ``flags``, ``pending --json`` and ``set 5 HASH``
(a transaction; the drop-in script's loop) on ``sim`` (a state made by ``sim init --dual-write``
in a temporary folder); ``python -c 'import click'`` is the floor any click CLI pays.

The package is measured from two copies of its source: one byte-compiled (``.pyc`` beside it,
as ``pip install`` leaves an installed package) and one not (a source checkout run with
``PYTHONDONTWRITEBYTECODE=1``, as this machine's environment sets it and many container
images do, compiles every module on every start). Both run with ``PYTHONDONTWRITEBYTECODE=1``
so neither changes during the run. With ``--before REV`` the same is measured for that git
revision (e.g. the commit before lazy loading). Then one ``-X importtime`` run of ``status``
says where the remaining time goes, by package. The issue's budget: ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import compileall
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
ENTRY = "import sys; from dualwrite.cli.main import main; sys.argv[0] = 'dualwrite'; main()"  # the console script


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


def env_for(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if src is not None:
        env["PYTHONPATH"] = str(src)  # wins over the editable install's finder (appended to meta_path)
    return env


def copy_package(tree: Path, dest: Path, *, compiled: bool) -> Path:
    shutil.copytree(tree / "dualwrite", dest / "dualwrite", ignore=shutil.ignore_patterns("__pycache__"))
    if compiled:
        compileall.compile_dir(str(dest / "dualwrite"), quiet=1)
    return dest


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
    worktree: Path | None = None
    try:
        trees = {"after": REPO}
        if opts.before:
            worktree = tmp / "before-tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), opts.before],
                           check=True, capture_output=True, timeout=120)
            trees = {"before": worktree, "after": REPO}
        srcs = {(tag, pyc): copy_package(tree, tmp / f"{tag}-{'pyc' if pyc else 'src'}", compiled=pyc)
                for tag, tree in trees.items() for pyc in (True, False)}

        states = {}
        for tag in trees:  # each revision makes its own state file (the schema may differ between them)
            states[tag] = tmp / f"{tag}.sqlite"
            init = subprocess.run([sys.executable, "-c", ENTRY, "sim", "init", "--dual-write", "--state",
                                   str(states[tag])], env=env_for(srcs[tag, True]), cwd=tmp, capture_output=True,
                                  text=True, timeout=60)
            if init.returncode != 0:
                raise SystemExit(f"sim init ({tag}) failed: {init.stderr}")
        commands = {"--help": lambda tag: ["--help"],
                    "status 5 (sim)": lambda tag: ["status", "5", "--state", str(states[tag])],
                    "flags (sim)": lambda tag: ["flags", "--state", str(states[tag])],
                    "pending (sim)": lambda tag: ["pending", "--json", "--state", str(states[tag])],
                    "set 5 HASH (sim)": lambda tag: ["set", "5", "0x" + "ab" * 32, "--state", str(states[tag])]}

        base = median_ms([sys.executable, "-c", "pass"], env_for(None), opts.runs, tmp)
        click_ms = median_ms([sys.executable, "-c", "import click"], env_for(None), opts.runs, tmp)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {opts.runs} whole-process runs; "
              f"budget {BUDGET_MS:.0f} ms")
        print(f"{'':<32}{'ms':>8}{'× pass':>8}")
        print(f"{'python -c pass':<32}{base:8.1f}{1:8.2f}")
        print(f"{'python -c import click':<32}{click_ms:8.1f}{click_ms / base:8.2f}")
        for label, args in commands.items():
            for (tag, pyc), src in srcs.items():
                ms = median_ms([sys.executable, "-c", ENTRY, *args(tag)], env_for(src), opts.runs, tmp)
                verdict = "ok" if ms <= BUDGET_MS else "OVER"
                name = f"{label} {tag}, {'.pyc' if pyc else 'no .pyc'}"
                print(f"{name:<32}{ms:8.1f}{ms / base:8.2f}   {verdict}", flush=True)

        print("\nwhere `status 5` (after, .pyc) spends its import time (self time by package, ms, one -X importtime run):")
        spent = where_time_goes([sys.executable, "-c", ENTRY, *commands["status 5 (sim)"]("after")],
                                env_for(srcs["after", True]), tmp)
        total = sum(spent.values())
        for name, ms in sorted(spent.items(), key=lambda kv: -kv[1])[:14]:
            print(f"  {name:<34}{ms:7.1f}  {100 * ms / total:4.0f}%")
        print(f"  {'(all imports)':<34}{total:7.1f}")
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
