"""Progress of long work on stderr: periodic plain lines when piped, one bar redrawn in place on a terminal.

Real processes: ``dualwrite`` runs as a subprocess with stderr a pipe (a CI log) or a pseudo-terminal
(``pty``), against the simulator or the local backend (a real ``supra`` per call, slow enough that a
run outlasts the interval). The library side is the per-row callback the commands hand it.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dualwrite.audit.heal import heal
from dualwrite.audit.verify import Checked, Unchecked, verify
from dualwrite.cli.progress import HIDE_CURSOR, SHOW_CURSOR, Progress
from dualwrite.sim.install import install_supra_script
from tests.audit_world import World, world  # noqa: F401  (fixture)
from tests.envs import base_env
from tests.test_cutover import write_jsonl

LINE = re.compile(r"^(?P<label>[a-z ]+): (?P<done>\d+)/(?P<total>\d+) \((?P<pct>\d+)%\)(?P<rest>.*)$")


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def progress_lines(stderr: str, label: str) -> list[re.Match]:
    out = [m for m in (LINE.match(x) for x in stderr.splitlines()) if m and m["label"] == label]
    assert out, f"no {label!r} progress line in stderr: {stderr!r}"
    return out


def assert_plain_progress(stderr: str, label: str, total: int, bad: str | None = None) -> list[re.Match]:
    """Periodic lines with done/total, rate and ETA, then one final line with the totals; no escape codes."""
    assert "\033" not in stderr and "\r" not in stderr, repr(stderr)
    lines = progress_lines(stderr, label)
    assert len(lines) >= 2, stderr  # at least one periodic line and the final one
    assert all(int(m["total"]) == total for m in lines)
    done = [int(m["done"]) for m in lines]
    assert done == sorted(done) and done[-1] == total
    *periodic, final = lines
    assert all(" in " not in m["rest"] for m in periodic)
    assert any("ETA " in m["rest"] and "/s" in m["rest"] for m in periodic), stderr
    assert re.search(r", [0-9.]+/s, in \d+:\d\d", final["rest"]), final.group(0)
    if bad:
        assert final["rest"].endswith(f"; {bad}"), final.group(0)
    return lines


@pytest.fixture
def local_env(world: World, tmp_path: Path) -> dict[str, str]:
    """The local backend: a real ``supra`` (dualwrite-supra) per call, on the world's state."""
    install_supra_script(tmp_path / "bin", "supra")
    return base_env(DUALWRITE_STATE=str(world.path), DUALWRITE_BACKEND="local",
                    DUALWRITE_SUPRA_BIN=str(tmp_path / "bin" / "supra"), DUALWRITE_PROGRESS="0.2")


def test_verify_piped_prints_periodic_progress_with_failures(world: World, local_env: dict[str, str]) -> None:
    world.init()
    world.finalize(*range(1, 9))
    world.tamper(3, "--set", "tickets_sold=5", "--fix-hash")
    world.tamper(6, "--delete")
    p = run(local_env, "verify", "1-8", "--jobs", "2")
    assert p.returncode == 1, p.stdout + p.stderr
    assert_plain_progress(p.stderr, "verify", 8, bad="failed 2")
    assert "FAILED: 8 lotteries" in p.stdout and "verify:" not in p.stdout  # stdout is the report only

    # --json: stdout stays one JSON document, the progress stays on stderr
    p = run(local_env, "verify", "1-8", "--json")
    assert json.loads(p.stdout)["failed"] == 2
    assert_plain_progress(p.stderr, "verify", 8, bad="failed 2")

    # off, and a run shorter than the interval prints nothing
    assert run({**local_env, "DUALWRITE_PROGRESS": "off"}, "verify", "1-8").stderr == ""
    assert run({**local_env, "DUALWRITE_PROGRESS": "60"}, "verify", "1-2").stderr == ""


def test_heal_apply_piped_prints_progress_once_the_plan_is_read(world: World, local_env: dict[str, str],
                                                                tmp_path: Path) -> None:
    world.init()
    world.finalize(*range(1, 6))
    for i in (2, 4):
        world.tamper(i, "--set", f"tickets_sold={i}", "--fix-hash")
    p = run(local_env, "heal", "1-5", "--apply", "--journal", str(tmp_path / "j.jsonl"))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = assert_plain_progress(p.stderr, "heal", 5)
    assert "2 healed, 0 not healed" in p.stdout
    assert ";" not in lines[-1]["rest"]  # nothing went wrong: no bad counts
    # before the plan is known, the line says what it is doing
    assert all(x.startswith(("heal: ", "heal: reading the chain")) for x in p.stderr.splitlines())


def test_cutover_apply_piped_prints_progress(world: World, tmp_path: Path) -> None:
    world.init(abort_on_missing=False)
    write_jsonl(tmp_path / "l.jsonl", range(1, 11))
    env = base_env(DUALWRITE_STATE=str(world.path), DUALWRITE_PROGRESS="0.2")
    p = run(env, "cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(tmp_path / "plan.json"))
    assert p.returncode == 0, p.stdout + p.stderr
    p = run(env, "cutover", "apply", str(tmp_path / "plan.json"), "--max-tps", "8")  # ~1.2 s
    assert p.returncode == 0, p.stdout + p.stderr
    assert_plain_progress(p.stderr, "cutover apply", 10)
    assert "sent 10" in p.stdout


def read_pty(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, str]:
    """Run with stderr on a pseudo-terminal; returns (exit code, all the terminal got, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    got = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(30)
    os.close(master)
    return proc.returncode, bytes(got), out.decode()


def test_terminal_bar_hides_the_cursor_once_not_per_redraw(world: World) -> None:
    world.init()
    world.finalize(*range(1, 401))
    world.tamper(9, "--set", "tickets_sold=5", "--fix-hash")
    env = base_env(DUALWRITE_STATE=str(world.path))
    code, tty, out = read_pty([sys.executable, "-m", "dualwrite", "verify", "1-400"], env)
    assert code == 1 and "FAILED: 400 lotteries" in out
    text = tty.decode()
    assert text.count(HIDE_CURSOR) == 1 and text.count(SHOW_CURSOR) == 1, repr(text[:400])
    assert text.startswith(HIDE_CURSOR) and text.endswith(SHOW_CURSOR + "\r\n")  # the pty maps \n to \r\n
    body = text[len(HIDE_CURSOR):-len(SHOW_CURSOR + "\r\n")]
    redraws = body.split("\r")[1:]
    assert redraws and body.startswith("\r") and "\n" not in body
    assert all("\033" not in r for r in redraws)
    assert redraws[-1].rstrip().startswith("verify [" + "#" * 24 + "] 400/400 (100%)")
    assert redraws[-1].rstrip().endswith("; failed 1")
    assert len(redraws) <= 2 + 10 * 30  # at most ten redraws a second, not one per lottery


def test_progress_lines_come_from_a_timer_so_a_stuck_row_still_reports() -> None:
    buf = io.StringIO()
    with Progress("heal", None, lambda o: o, file=buf, interval=0.05, tty=False) as tick:
        deadline = time.monotonic() + 10
        while "reading the chain" not in buf.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)  # the "planning" phase: no row yet, the timer still speaks
        tick.total = 3
        tick(None)
        tick("errors")
        n = buf.getvalue().count("\n")
        while buf.getvalue().count("\n") < n + 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # a row that never ends: lines keep coming, the count does not move
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("heal: reading the chain (0:00)")
    assert lines[-2].startswith("heal: 2/3 (66%)") and lines[-2].endswith("; errors 1") and "ETA" in lines[-2]
    assert lines[-1].startswith("heal: 2/3 (66%)") and " in 0:00" in lines[-1] and lines[-1].endswith("; errors 1")


def test_library_calls_back_once_per_row_outcome(world: World, tmp_path: Path) -> None:
    """The hook the commands use: verify's results and heal's outcomes, one call each, nothing printed."""
    world.init()
    world.finalize(1, 2, 3)
    world.tamper(2, "--set", "tickets_sold=5", "--fix-hash")
    seen: list[object] = []
    rep = verify(world.backend, [1, 2, 3, 4], progress=seen.append)
    assert sorted(r.lottery_id if isinstance(r, Unchecked) else r.diff.lottery_id for r in seen) == [1, 2, 3, 4]
    assert all(isinstance(r, (Checked, Unchecked)) for r in seen) and [r.passed for r in seen] == [True, False, True, False]
    assert len(rep.checked) == 4

    plans, outcomes = [], []
    rep = heal(world.backend, [1, 2, 3], apply=True, journal=tmp_path / "j.jsonl", progress=outcomes.append,
               on_plan=plans.append)
    assert len(plans) == 1 and [lp.lottery_id for lp in plans[0].lotteries] == [1, 2, 3]
    assert [o.lottery_id for o in outcomes] == [1, 2, 3] and outcomes == rep.outcomes
    assert [o.healed for o in outcomes] == [True, True, True]
