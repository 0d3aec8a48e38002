"""A reader that goes away (issue 20 item 8): ``dualwrite heal | head -1`` printed ``internal error:
BrokenPipeError`` and exited 70. Every command whose reader closes the pipe stops quietly with exit
141 (what a shell reports for a tool killed by SIGPIPE), nothing on stderr.

The real thing: ``dualwrite`` as a process whose stdout is a pipe (shrunk to one page, so every command
here writes more than it holds) and a reader that takes one line, byte by byte, and closes its end.
Whatever the command writes after that fails with EPIPE, deterministically.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

from dualwrite.demo import make_summary
from tests.chain_driver import console_script
from tests.envs import base_env

N = 300  # lotteries: every command below prints well over a page about them
PENDING = 1500  # `pending --json`: ~8 bytes an id


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """N finalised lotteries whose legacy copies were never written (mirror off: heal has N plans, verify N
    failures), PENDING more registered and pending, their summaries in lotteries.jsonl, and a cutover plan."""
    tmp = tmp_path_factory.mktemp("pipes")
    state = tmp / "sim.sqlite"
    env = base_env(DUALWRITE_STATE=str(state), DUALWRITE_BACKEND="sim")
    dw = console_script("dualwrite")
    summaries = tmp / "lotteries.jsonl"
    summaries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, N + 1)))
    later = tmp / "later.jsonl"
    later.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(N + 1, N + PENDING + 1)))
    for argv in (["sim", "init", "--dual-write"], ["sim", "finalize", str(summaries)],
                 ["cutover", "plan", str(later), "--out", str(tmp / "later.plan.json")],
                 ["cutover", "apply", str(tmp / "later.plan.json")]):
        p = subprocess.run([dw, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (argv, p.stdout, p.stderr)
    return {"env": env, "dw": dw, "tmp": tmp, "summaries": summaries}


def read_one_line_then_close(argv: list[str], env: dict, cwd: Path) -> tuple[bytes, int, str]:
    """Run ``argv`` with stdout a one-page pipe; read one line from it, close it, wait."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(argv, stdin=devnull, stdout=w, stderr=subprocess.PIPE, env=env, cwd=cwd)
    os.close(w)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(r, 1)
        if not chunk:
            break
        line += chunk
    os.close(r)  # the reader goes away, as `head -1` does
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return line, proc.returncode, err.decode("utf-8", "replace")


CASES = {
    "heal": ["heal"],
    "verify --all": ["verify", "--all"],
    "events": ["events"],
    "events --json": ["events", "--json"],
    "pending": ["pending", "--json"],
    "hash": ["hash", "{summaries}"],
    "cutover plan --json": ["cutover", "plan", "{summaries}", "--json"],
    "sim events": ["sim", "events"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_reader_that_closes_after_one_line_ends_the_command_quietly(world, name):
    argv = [world["dw"], *[a.format(summaries=world["summaries"]) for a in CASES[name]]]
    line, code, err = read_one_line_then_close(argv, world["env"], world["tmp"])
    assert line, "the command printed nothing"
    assert err == "", err  # no 'internal error: BrokenPipeError', no 'Exception ignored ... BrokenPipeError'
    assert code == 141, (code, err)


def test_a_reader_gone_before_the_first_byte(world):
    """The pipe closed before the command wrote anything: the first write fails, the same quiet exit."""
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([world["dw"], "hash", str(world["summaries"])], stdout=w, stderr=subprocess.PIPE,
                          env=world["env"], timeout=120)
    os.close(w)
    assert (proc.returncode, proc.stderr) == (141, b"")


def test_the_same_commands_into_a_file_exit_as_usual(world, tmp_path):
    """Not a pipe: each command's own exit code, and more output than the pipe above holds."""
    for name, argv in CASES.items():
        with open(tmp_path / "out", "w+b") as out:
            p = subprocess.run([world["dw"], *[a.format(summaries=world["summaries"]) for a in argv]], stdout=out,
                               stderr=subprocess.PIPE, env=world["env"], timeout=120)
            assert p.returncode in (0, 1) and b"error" not in p.stderr, (name, p.returncode, p.stderr)
            assert out.tell() > 2 * 4096, name  # more than the one-page pipe holds
