"""One JSON voice (issue 20 item 11).

Under ``--json`` a failure prints, besides its one line on stderr, one object on stdout:
``{"error": {"kind", "message", "exit_code"}}``, so a script never parses empty output; whatever
raised it (usage, a bad setting, a backend that cannot be reached, a chain abort, a bug-free refusal).
A command that had printed its JSON document already adds nothing (stdout stays one document).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.chain_driver import console_script
from tests.envs import base_env


@pytest.fixture
def sim(tmp_path: Path) -> dict:
    state = tmp_path / "sim.sqlite"
    env = base_env(DUALWRITE_STATE=str(state), DUALWRITE_BACKEND="sim")
    p = subprocess.run([console_script("dualwrite"), "sim", "init", "--dual-write", "--mirror"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return {"env": env, "tmp": tmp_path, "state": state}


def run(env: dict, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("dualwrite"), *argv], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def error_object(p: subprocess.CompletedProcess) -> dict:
    """stdout is exactly one line, one object, and it says what stderr's one line says."""
    assert p.stdout.count("\n") == 1, p.stdout
    doc = json.loads(p.stdout)
    assert set(doc) == {"error"} and set(doc["error"]) == {"kind", "message", "exit_code"}, doc
    err = doc["error"]
    assert err["exit_code"] == p.returncode
    (line,) = p.stderr.splitlines()
    assert line.endswith(err["message"]), (line, err["message"])
    return err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_kind_of_failure_is_an_object_on_stdout(sim):
    env = sim["env"]
    cases = [
        (["status", "abc", "--json"], 2, "usage_error", "LOTTERY_ID 'abc': expected a whole number"),
        (["verify", "--report", "--json", "1"], 2, "usage_error", "--report '--json': looks like an option"),
        (["verfy", "--json"], 2, "usage_error", "Did you mean 'verify'?"),
        (["status", "5", "--json", "--backend", "simulator"], 2, "input_error", "--backend 'simulator': expected one of"),
        (["set", "5", "0xabc", "--json"], 2, "input_error", "HASH: odd number of hex digits"),
        (["verify", "--json"], 2, "input_error", "give lottery ids"),
        (["status", "5", "--json", "--state", str(sim["tmp"] / "nope.sqlite")], 3, None, "nope.sqlite"),
        (["pending", "--json", "--backend", "rpc", "--rpc-url", f"http://127.0.0.1:{_closed_port()}",
          "--rpc-retries", "0", "--lottery-multi-address", "0x1", "--lottery-address", "0x2"], 3, None, "127.0.0.1"),
        (["mirror", "5", "--json", "--profile", "nobody"], 4, "move_abort", "Move abort"),
    ]
    for argv, code, kind, needle in cases:
        p = run(env, *argv)
        assert p.returncode == code, (argv, p.returncode, p.stdout, p.stderr)
        err = error_object(p)
        assert needle in err["message"], (argv, err)
        if kind:
            assert err["kind"] == kind, (argv, err)
        else:
            assert err["kind"].startswith("backend"), (argv, err)


def test_without_json_stdout_stays_empty(sim):
    p = run(sim["env"], "status", "abc")
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1


def test_a_document_already_printed_is_the_only_thing_on_stdout(sim, tmp_path):
    """evidence check --json prints its array, then fails (exit 1): stdout stays that one document."""
    report = tmp_path / "r.json"
    assert run(sim["env"], "verify", "1", "--allow-empty", "--report", str(report)).returncode == 1
    report.write_text(report.read_text().replace('"total"', '"totaI"'))
    p = run(sim["env"], "evidence", "check", str(report), "--json")
    assert p.returncode == 1, p.stderr
    (doc,) = json.loads(p.stdout)
    assert doc["ok"] is False and "error" not in p.stdout
