"""Reads never create state (issue 12 item 3).

`dualwrite verify --all --state /tmp/typo.sqlite` created a 57 KB state file there. Only `sim init`
creates a simulator state; every other command, read or write, on a state file that is not there
says so in one line naming the path (exit 3, like a container or a supra that is not there) and
leaves nothing behind: no state, no folder, no journal, no report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from tests.envs import base_env

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "summaries" / "lottery-1.json")


def dw(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


COMMANDS = [
    ("verify", "--all"), ("verify", "1-3"), ("status", "5"), ("flags",), ("pending",), ("diff", "1"),
    ("heal",), ("heal", "1", "--apply"), ("set", "5", "0x" + "ab" * 32), ("clear", "5"), ("init", "true", "false"),
    ("enable-mirror",), ("mirror", "1"), ("sim", "info"), ("sim", "events"), ("sim", "finalize", FIXTURE),
    ("sim", "tamper", "1", "--delete"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_mistyped_state_path_creates_nothing(tmp_path, args):
    typo = tmp_path / "typo-dir" / "typo.sqlite"
    journal = tmp_path / "journal" / "heal.jsonl"
    extra = ["--journal", journal] if args[0] == "heal" else []
    r = dw(*args, *extra, "--state", typo)
    assert r.exit_code == 3, r.output
    lines = r.stderr.strip().splitlines()
    assert lines == [f"dualwrite: error: simulator state {typo} does not exist (nothing was created; "
                     f"`dualwrite sim init --state {typo}` creates it)"], r.stderr
    assert tree(tmp_path) == [], "a command on a missing state created something"


def test_the_issue_attack_verify_all_at_a_typo(tmp_path):
    """As a real process, the exact command of the issue, with a report asked for: nothing is written."""
    typo = tmp_path / "typo.sqlite"
    p = subprocess.run([sys.executable, "-m", "dualwrite", "verify", "--all", "--state", str(typo),
                        "--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml")],
                       env=base_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and str(typo) in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert tree(tmp_path) == []


def test_the_default_state_is_not_created_by_a_read(tmp_path):
    """No --state: the per-user default (XDG_DATA_HOME) is named, and not created."""
    data = tmp_path / "data"
    r = dw("status", "5", env={"XDG_DATA_HOME": str(data)})
    assert r.exit_code == 3 and str(data / "dualwrite" / "sim.sqlite") in r.stderr, r.output
    assert not data.exists()


def test_sim_init_creates_it_and_then_reads_work(tmp_path):
    state = tmp_path / "new" / "dir" / "s.sqlite"
    assert dw("sim", "init", "--state", state).exit_code == 0
    assert state.is_file()
    r = dw("verify", "--all", "--state", state)
    assert r.exit_code in (0, 5), r.output  # nothing finalised: clean or "checked nothing", never a new file
    assert dw("status", "1", "--state", state).exit_code == 0


def test_a_file_that_is_not_a_state_is_left_alone(tmp_path):
    """An empty file (or any non-state file) at --state: refused, not turned into a chain."""
    f = tmp_path / "empty.sqlite"
    f.write_bytes(b"")
    r = dw("status", "5", "--state", f)
    assert r.exit_code == 2 and "not a dualwrite simulator state" in r.stderr, r.output
    assert f.read_bytes() == b"" and tree(tmp_path) == ["empty.sqlite"]
    d = tmp_path / "adir"
    d.mkdir()
    r = dw("flags", "--state", d)
    assert r.exit_code == 2 and f"simulator state {d}: is not a file" in r.stderr, r.output


def test_local_backend_dualwrite_supra_creates_nothing(tmp_path):
    """The local backend through dualwrite-supra (what stands in for a chain) refuses the same way."""
    bindir = tmp_path / "bin"
    assert dw("sim", "install-supra", bindir).exit_code == 0
    typo = tmp_path / "typo.sqlite"
    env = {"DUALWRITE_STATE": str(typo), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    for args in (("status", "5"), ("set", "5", "0x" + "cd" * 32), ("verify", "--all")):
        r = dw(*args, "--backend", "local", env=env)
        assert r.exit_code == 3 and str(typo) in r.stderr, r.output
    assert not typo.exists()


def test_heal_dry_run_creates_no_journal(tmp_path):
    """A dry run reads: no journal, no journal folder, at an explicit path or at the default one."""
    state = tmp_path / "s.sqlite"
    assert dw("sim", "init", "--dual-write", "--mirror", "--state", state).exit_code == 0
    assert dw("sim", "finalize", FIXTURE, "--state", state).exit_code == 0
    assert dw("sim", "tamper", "1", "--delete", "--state", state).exit_code == 0
    before = tree(tmp_path)
    journal = tmp_path / "j" / "heal.jsonl"
    r = dw("heal", "--journal", journal, "--state", state)
    assert r.exit_code == 0 and "plan (dry run" in r.stdout, r.output
    xdg = tmp_path / "xdg-state"
    r = dw("heal", "--state", state, env={"XDG_STATE_HOME": str(xdg)})
    assert r.exit_code == 0, r.output
    assert not journal.parent.exists() and not xdg.exists()
    assert [p for p in tree(tmp_path) if not p.startswith("s.sqlite")] == \
        [p for p in before if not p.startswith("s.sqlite")]
    # --apply writes it (the journal is what makes a heal resumable)
    r = dw("heal", "--apply", "--journal", journal, "--state", state)
    assert r.exit_code == 0 and journal.is_file(), r.output
