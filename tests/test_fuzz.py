"""The coverage-guided fuzzer (atheris/libFuzzer, ``fuzz/``): a short bounded run in CI, and its contract.

Contract for every parser of outside input: return, or raise one of the project's typed
errors; never another exception, never a hang (``-timeout``), never a memory blow-up
(``-rss_limit_mb``). The long run is ``scripts/fuzz.py``; this one spends at most
``BUDGET_S`` seconds fuzzing in all, each target in its own libFuzzer process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import driver  # noqa: E402
import seeds  # noqa: E402
import targets  # noqa: E402

BUDGET_S = 50  # fuzzing seconds in all, split over the targets (the issue: ≤ 60 s)

pytest.importorskip("atheris", reason="atheris is in the test extra; the fuzz runs need it")


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz-seeds")
    counts = seeds.write_seeds(d)
    assert set(counts) == set(targets.TARGETS) and all(counts.values()), counts
    return d


def test_every_seed_keeps_the_contract(seed_dir: Path) -> None:
    """The fixtures themselves parse (or are refused with a typed error): the fuzzing starts from valid ground."""
    for name, target in targets.TARGETS.items():
        for f in sorted((seed_dir / name).iterdir()):
            target(f.read_bytes())


@pytest.mark.parametrize("name", sorted(p.name for p in (FUZZ / "regressions").iterdir()))
def test_inputs_that_crashed_once_are_typed_errors_now(name: str) -> None:
    """What the fuzzer found (deep JSON nesting, journal records that are not objects or lack a key)."""
    files = sorted((FUZZ / "regressions" / name).iterdir())
    assert files
    for f in files:
        targets.TARGETS[name](f.read_bytes())


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_harness_reports_a_crash(tmp_path: Path) -> None:
    """A planted untyped exception comes back as a failed run with the input saved: this test can fail."""
    seed = tmp_path / "seeds"
    (seed / "canary").mkdir(parents=True)
    (seed / "canary" / "s").write_bytes(seeds.SEEDS["canary"]()[0])
    r = driver.run_target("canary", 30, tmp_path / "work", seed)
    assert not r.ok and r.crashes, r.log_tail
    assert r.crashes[0].read_bytes()[:4] == b"dwfz"
    assert "ValueError" in r.log_tail


@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S + 240)
def test_short_fuzz_run_finds_no_crash(seed_dir: Path, tmp_path: Path) -> None:
    per_target = BUDGET_S // len(targets.TARGETS)
    failures = []
    for name in targets.TARGETS:
        r = driver.run_target(name, per_target, tmp_path, seed_dir)
        assert r.executions > 0 and r.coverage > 0, f"{name}: libFuzzer ran nothing\n{r.log_tail}"
        if not r.ok:
            found = ", ".join(f"{c.name} ({c.read_bytes()[:64].hex()}…)" for c in r.crashes)
            failures.append(f"{name}: exit {r.returncode}; {found or 'no artifact'}\n{r.log_tail}")
    assert not failures, "\n\n".join(failures)
