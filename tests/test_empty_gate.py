"""A gate that checked nothing is not green: ``verify`` exits 5 (ExitCode.EMPTY) unless ``--allow-empty``.

On real simulator state (an initialised but empty archive), through the real click command, and
once as a real ``dualwrite`` process: the issue's own reproduction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from dualwrite.audit.verify import gate_exit_code, verify
from dualwrite.errors import ExitCode

from tests.audit_world import World, world  # noqa: F401
from tests.envs import base_env


def test_the_shared_rule() -> None:
    assert gate_exit_code(checked=0) is ExitCode.EMPTY == 5
    assert gate_exit_code(checked=0, allow_empty=True) is ExitCode.OK
    assert gate_exit_code(checked=3) is ExitCode.OK
    assert gate_exit_code(checked=3, failed=1) is ExitCode.MISMATCH
    assert gate_exit_code(checked=0, unchecked=2) is ExitCode.BACKEND  # could not check is not "nothing"
    assert gate_exit_code(checked=0, unchecked=2, allow_empty=True) is ExitCode.BACKEND


def test_verify_all_on_an_empty_archive_exits_5(world: World) -> None:
    world.init()
    r = world.verify("--all")
    assert r.code == 5, r.out + r.err
    last = r.out.splitlines()[-1]
    assert last.startswith("EMPTY: 0 lotteries checked") and "--allow-empty" in last
    assert "CLEAN" not in r.out


def test_allow_empty_passes_and_says_so(world: World) -> None:
    world.init()
    r = world.verify("--all", "--allow-empty")
    assert r.code == 0, r.out + r.err
    assert "0 lotteries checked" in r.out and "allow" in r.out


def test_json_and_junit_reports_say_how_many_were_checked(world: World, tmp_path: Path) -> None:
    world.init()
    junit, report = tmp_path / "v.xml", tmp_path / "v.json"
    r = world.verify("--all", "--json", "--junit", str(junit), "--report", str(report))
    assert r.code == 5
    doc = json.loads(r.out)
    assert doc["checked"] == 0 and doc["total"] == 0 and doc["empty"] is True
    assert doc["exit_code"] == 5 and doc["clean"] is False and doc["allow_empty"] is False
    assert r.err.count("\n") == 1 and "EMPTY: 0 lotteries checked" in r.err  # one line, on stderr
    assert json.loads(report.read_text())["data"]["checked"] == 0
    suite = ET.parse(junit).getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite.get("tests") == "0" and props["checked"] == "0" and props["empty"] == "failed"
    assert props["exit_code"] == "5"

    world.finalize(1, 2)
    r = world.verify("--all", "--json", "--junit", str(junit))
    assert r.code == 0 and json.loads(r.out)["checked"] == 2 and json.loads(r.out)["empty"] is False
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().find("testsuite").find("properties")}
    assert props["checked"] == "2" and "empty" not in props


def test_an_empty_ids_file_is_an_empty_gate_not_a_usage_error(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(1)
    ids = tmp_path / "ids.txt"
    ids.write_text("# nothing this time\n\n")
    assert world.verify("--ids-file", str(ids)).code == 5
    assert world.verify("--ids-file", str(ids), "--allow-empty").code == 0
    assert world.verify().code == 2  # no ids, no file, no --all: still a usage error


def test_unchecked_lotteries_are_not_empty(world: World) -> None:
    """Everything failed to be checked: exit 3 (backend), whatever --allow-empty says."""
    import sqlite3

    world.init()
    world.finalize(1)
    with sqlite3.connect(world.path) as db:
        db.execute("UPDATE history SET bcs = x'00' WHERE lottery_id = 1")
    assert world.verify("1").code == 3
    assert world.verify("1", "--allow-empty").code == 3


def test_library_report(world: World) -> None:
    world.init()
    rep = verify(world.backend, [])
    assert rep.empty and rep.exit_code is ExitCode.EMPTY
    assert verify(world.backend, [], allow_empty=True).exit_code is ExitCode.OK


def test_the_issue_reproduction_as_real_processes(tmp_path: Path) -> None:
    state = tmp_path / "e.sqlite"
    env = base_env()
    dw = [sys.executable, "-m", "dualwrite"]
    init = subprocess.run([*dw, "sim", "init", "--state", str(state)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert init.returncode == 0, init.stderr
    r = subprocess.run([*dw, "verify", "--all", "--state", str(state)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "EMPTY: 0 lotteries checked" in r.stdout
