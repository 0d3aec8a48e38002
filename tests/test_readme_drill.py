"""The README drill ("The drill by hand"), as an operator types it: real ``dualwrite`` processes.

Initialise with dual-write, ``abort_on_missing`` and the mirror on; register the 100
expected hashes; finalise 100 lotteries; drift five legacy copies in five different ways;
``verify --all`` exits 1 naming exactly those five (with JUnit and JSON reports);
``heal`` plans, ``heal --apply`` repairs and proves each repair; ``verify --all`` exits 0;
``evidence check`` verifies the reports' digests. Every step is a ``dualwrite`` subprocess,
except the 100 ``dualwrite set`` calls, which run the same click command in-process
(100 interpreter starts would cost ~30 s for a setup step). It does not use ``dualwrite demo``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.envs import base_env
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.demo import make_summary

N = 100
#: lottery -> (the README's tamper, the state verify must name)
DRIFTS = {
    3: (["--set", "tickets_sold=5", "--fix-hash"], "field_drift"),
    17: (["--delete"], "missing_legacy"),
    42: (["--non-canonical", "--fix-hash"], "non_canonical"),
    64: (["--bytes", "00"], "corrupt_legacy"),  # undecodable
    99: (["--set", "status=7"], "corrupt_legacy"),  # archive_hash stale
}

@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = base_env()
    e["DUALWRITE_STATE"] = str(tmp_path / "drill.sqlite")  # as the README: one env var, then plain commands
    e["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")  # the heal journal's default home
    return e


@pytest.mark.slow
def test_readme_drill(env: dict[str, str], tmp_path: Path) -> None:
    def dw(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "dualwrite", *args], check=False, env=env, capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
        assert p.returncode == expect, (f"dualwrite {' '.join(args)} exited {p.returncode}, not {expect}\n"
                                        f"{p.stdout}\n{p.stderr}")
        return p

    dw("sim", "init", "--dual-write", "--abort-on-mismatch", "--abort-on-missing", "--mirror")
    lotteries = tmp_path / "lotteries.jsonl"
    lotteries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, N + 1)))
    hashes = json.loads(dw("hash", "--json", str(lotteries)).stdout)
    assert len(hashes) == N
    runner = CliRunner(env={"DUALWRITE_STATE": env["DUALWRITE_STATE"]})
    for i in range(1, N + 1):
        r = runner.invoke(cli, ["set", str(i), "--summary", str(lotteries)])
        assert r.exit_code == 0, r.output
    assert len(json.loads(dw("pending", "--json").stdout)) == N

    p = dw("sim", "finalize", str(lotteries), "--json")
    assert [r["status"] for r in json.loads(p.stdout)] == ["finalized"] * N  # abort_on_missing: every hash was set
    assert json.loads(dw("pending", "--json").stdout) == []
    for lid, (args, _) in DRIFTS.items():
        dw("sim", "tamper", str(lid), *args)

    # the gate: exit 1, exactly those five, each with its state
    p = dw("verify", "--all", "--junit", "verify.xml", "--report", "verify.json", expect=1)
    rows = [parts for parts in map(str.split, p.stdout.splitlines()) if len(parts) > 2 and parts[2] == "FAIL"]
    assert {int(r[0]): r[1] for r in rows} == {lid: state for lid, (_, state) in DRIFTS.items()}
    assert f"FAILED: {N} lotteries, {N - 5} passed, 5 failed" in p.stdout
    report = json.loads((tmp_path / "verify.json").read_text())["data"]
    assert {x["lottery_id"]: x["state"] for x in report["lotteries"] if not x["passed"]} == {
        lid: state for lid, (_, state) in DRIFTS.items()}
    suite = ET.parse(tmp_path / "verify.xml").getroot().find("testsuite")
    assert suite.get("tests") == str(N) and suite.get("failures") == "5"
    assert sorted(int(c.get("name").split()[1]) for c in suite.findall("testcase") if c.find("failure") is not None) \
        == sorted(DRIFTS)

    # the plan, then the repair
    p = dw("heal")
    assert "plan (dry run; --apply executes it)" in p.stdout and "abort_on_missing on" in p.stdout
    for lid, (_, state) in DRIFTS.items():
        assert f"lottery {lid}: {state} -> repair" in p.stdout
    p = dw("heal", "--apply")
    for lid, (_, state) in DRIFTS.items():
        assert f"lottery {lid}: {state} -> HEALED (set_expected_hash, mirror); re-read diff: ok" in p.stdout
    assert "5 healed, 0 not healed" in p.stdout
    journal = tmp_path / "xdg-state" / "dualwrite" / "heal-journal.jsonl"
    assert journal.exists() and f"journal: {journal}" in p.stdout

    p = dw("verify", "--all")
    assert p.stdout.splitlines()[-1].startswith(f"CLEAN: {N} lotteries, {N} passed, 0 failed")
    assert "nothing to heal: no failing lottery" in dw("heal").stdout
    dw("evidence", "check", "verify.xml", "verify.json")
