"""Run fuzz targets as subprocesses with a time budget and read libFuzzer's figures back.

Used by ``tests/test_fuzz.py`` (a short bounded run in CI) and ``scripts/fuzz.py`` (the long
run whose figures the README quotes). Each target runs in its own process (``run.py``) with
``-max_total_time`` (the budget), ``-timeout`` (one input taking longer is a hang: a failure),
``-rss_limit_mb`` (a memory blow-up is a failure) and ``-max_len``; the seeds from ``seeds.py``
are a read-only corpus, new inputs go to a corpus folder of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = HERE / "run.py"
DICT = HERE / "json.dict"
REGRESSIONS = HERE / "regressions"  # inputs that crashed once: replayed first, every run
JSON_TARGETS = {"inputs", "cli_output", "journal", "evidence"}
HANG_SECONDS = 10
RSS_LIMIT_MB = 1024
MAX_LEN = 65536


@dataclass
class FuzzResult:
    target: str
    seconds: int
    returncode: int
    executions: int = 0
    exec_per_s: int = 0
    coverage: int = 0  # libFuzzer "cov:": instrumented edges of dualwrite's code reached
    features: int = 0  # "ft:"
    corpus: int = 0
    peak_rss_mb: int = 0
    crashes: list[Path] = field(default_factory=list)
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes


def run_target(target: str, seconds: int, workdir: Path, seeds: Path, *, hang: int = HANG_SECONDS,
               rss_mb: int = RSS_LIMIT_MB) -> FuzzResult:
    corpus, artifacts = workdir / "corpus" / target, workdir / "artifacts" / target
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(RUN), target, f"-max_total_time={seconds}", f"-timeout={hang}",
            f"-rss_limit_mb={rss_mb}", f"-max_len={MAX_LEN}", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/"]
    if target in JSON_TARGETS:
        argv.append(f"-dict={DICT}")
    argv += [str(corpus), str(seeds / target)]
    if (REGRESSIONS / target).is_dir():
        argv.append(str(REGRESSIONS / target))
    # the wall-clock guard is generous: libFuzzer stops itself at max_total_time
    env = {**os.environ, "DW_FUZZ_SCRATCH": str(workdir / "scratch" / target)}  # files the readers take
    p = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace",
                       timeout=seconds + 4 * hang + 60)
    log = p.stderr + p.stdout  # atheris prints the uncaught exception's traceback on stdout
    kept = [ln for ln in log.splitlines() if not ln.startswith("INFO: Instrumenting ")]
    r = FuzzResult(target, seconds, p.returncode, log_tail="\n".join(kept[-60:]))
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", log, re.M))
    r.executions = int(stats.get("number_of_executed_units", 0))
    r.exec_per_s = int(stats.get("average_exec_per_sec", 0))
    r.peak_rss_mb = int(stats.get("peak_rss_mb", 0))
    last = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", log)
    if last:
        r.coverage, r.features, r.corpus = (int(x) for x in last[-1])
    r.crashes = sorted(p for p in artifacts.iterdir() if p.name.split("-")[0] in ("crash", "timeout", "oom", "leak"))
    return r
