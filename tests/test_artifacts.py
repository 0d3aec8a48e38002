"""What CI and people read: the JUnit XML (schema, times, messages, order), report files' modes, counts in words.

The JUnit files come from real ``verify`` runs (in-process on the simulator, and a subprocess on the
local backend, where each check takes real time) and are validated against ``tests/junit.xsd``, the
shape CI reporters read.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import tokenize
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.sim.install import install_supra_script
from dualwrite.sim.store import u64_to_sql
from tests.audit_world import World, world  # noqa: F401  (fixture)
from tests.envs import base_env
from tests.test_cutover import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = xmlschema.XMLSchema(str(Path(__file__).with_name("junit.xsd")))


def cases_of(path: Path) -> list[ET.Element]:
    SCHEMA.validate(str(path))  # raises, naming the element and the rule, when a CI reader would not take it
    (suite,) = ET.parse(path).getroot().findall("testsuite")
    return suite.findall("testcase")


def test_junit_is_valid_ordered_and_its_failures_show_both_values(world: World, tmp_path: Path) -> None:
    world.init(abort_on_mismatch=False)
    world.finalize(*range(1, 13))
    sold = make_summary(10).tickets_sold
    world.tamper(10, "--set", "tickets_sold=5", "--fix-hash")
    world.tamper(4, "--set", "status=7", "--set", "proceeds_accum=1", "--set", "vrf_status=3", "--set", "tags_mask=9",
                 "--set", "tickets_sold=6", "--fix-hash")
    world.expect(7, bytes(32))  # finalised: a stale expectation that will mismatch
    with sqlite3.connect(world.path) as db:  # lottery 3 cannot be read: an error, not a failure
        db.execute("UPDATE history SET bcs = x'00' WHERE lottery_id = ?", (u64_to_sql(3),))
    junit = tmp_path / "v.xml"
    r = world.verify("12", "11", "10", "7", "3", "4", "9", "1-2", "--junit", str(junit))
    assert r.code == 1, r.out + r.err

    cases = cases_of(junit)
    assert [c.get("name") for c in cases] == [f"lottery {i}" for i in (1, 2, 3, 4, 7, 9, 10, 11, 12)]
    assert all(re.fullmatch(r"\d+\.\d{3}", c.get("time")) for c in cases)
    by_id = {int(c.get("name").split()[1]): c for c in cases}
    fail = by_id[10].find("failure")
    assert fail.get("type") == "field_drift"
    assert fail.get("message") == f"field_drift: tickets_sold: history {sold}, legacy 5"
    many = by_id[4].find("failure").get("message")
    assert many.startswith("field_drift: status: history ") and many.endswith("; and 1 more field"), many
    assert many.count(": history ") == 4
    pending = by_id[7].find("failure").get("message")
    assert pending.startswith("pending: ") and f"expected 0x{'00' * 32}, archived 0x" in pending
    assert by_id[3].find("error") is not None and by_id[3].find("failure") is None
    assert all(by_id[i].find("failure") is None for i in (1, 2, 9, 11, 12))

    # the human table lists them in the same order
    table = [int(line.split()[0]) for line in r.out.splitlines() if line[:1].isdigit()]
    assert table == [3, 4, 7, 10]


def test_junit_times_are_each_lotterys_own_check(world: World, tmp_path: Path) -> None:
    """On the local backend every read is a real ``supra`` process: each case's time is that lottery's reads."""
    world.init()
    world.finalize(1, 2, 3)
    world.tamper(2, "--set", "tickets_sold=5", "--fix-hash")
    install_supra_script(tmp_path / "bin", "supra")
    env = base_env(DUALWRITE_STATE=str(world.path), DUALWRITE_BACKEND="local",
                   DUALWRITE_SUPRA_BIN=str(tmp_path / "bin" / "supra"), DUALWRITE_PROGRESS="off")
    junit = tmp_path / "v.xml"
    p = subprocess.run([sys.executable, "-m", "dualwrite", "verify", "1-3", "--jobs", "1", "--junit", str(junit)],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    cases = cases_of(junit)
    times = [float(c.get("time")) for c in cases]
    suite = float(ET.parse(junit).getroot().find("testsuite").get("time"))
    assert all(t >= 0.01 for t in times), times  # two or more supra processes each
    assert sum(times) <= suite + 0.003 * len(times)  # serial: the cases' times fit in the suite's


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_report_files_follow_the_umask(world: World, tmp_path: Path, umask: int) -> None:
    world.init(abort_on_missing=False)
    world.finalize(1, 2)
    src = write_jsonl(tmp_path / "l.jsonl", range(3, 6))
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "r.json"
    stale.write_text("old")
    stale.chmod(0o600)  # a file written by an older dualwrite: replaced with the mode a new file gets
    env = base_env(DUALWRITE_STATE=str(world.path), DUALWRITE_PROGRESS="off")

    def dw(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dualwrite", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False, preexec_fn=lambda: os.umask(umask))

    assert dw("verify", "1-2", "--report", str(out / "r.json"), "--junit", str(out / "j.xml")).returncode == 0
    assert dw("hash", str(src), "--out", str(out / "h.json")).returncode == 0
    assert dw("cutover", "plan", str(src), "--out", str(out / "plan.json")).returncode == 0
    want = 0o666 & ~umask
    files = sorted(p.name for p in out.iterdir())
    assert files == ["h.json", "j.xml", "j.xml.b3", "plan.json", "r.json"]  # and no temporary file left
    assert {name: oct(mode(out / name)) for name in files} == {name: oct(want) for name in files}
    assert CliRunner().invoke(cli, ["evidence", "check", *(str(out / n) for n in ("r.json", "j.xml", "h.json"))]
                              ).exit_code == 0


def test_counts_agree_with_their_number(world: World, tmp_path: Path) -> None:
    world.init(abort_on_missing=False)
    world.finalize(1)
    r = world.verify("1")
    assert r.code == 0 and "CLEAN: 1 lottery, 1 passed, 0 failed" in r.out
    world.finalize(2)
    world.tamper(2, "--set", "tickets_sold=5", "--fix-hash")
    r = world.verify("1-2")
    assert "1 field differs: tickets_sold" in r.out and "FAILED: 2 lotteries" in r.out

    src = write_jsonl(tmp_path / "one.jsonl", [3])
    r = world.dw("cutover", "plan", str(src))
    assert "plan: 1 lottery: 1 to register" in r.out and "1 transaction to send" in r.out, r.out
    assert "(1 summary, blake3" in r.out

    r = world.dw("set", "1", "0x01")
    assert r.code == 2 and "1 byte, an expected hash is 32" in r.err, r.err

    report = tmp_path / "r.json"
    assert world.verify("1", "--report", str(report)).code == 0
    report.write_text(report.read_text().replace('"ok": 1', '"ok": 2'))
    r = CliRunner().invoke(cli, ["evidence", "check", str(report)])
    assert r.exit_code == 1 and "1 evidence file does not match its digest" in r.output


def test_no_word_s_in_parentheses_in_the_source() -> None:
    """``field(s)``, ``line(s)`` in any string of the source: human output says the count's own number
    (``dualwrite.words``)."""
    hits = []
    for p in sorted((ROOT / "dualwrite").rglob("*.py")):
        with open(p, "rb") as f:
            for tok in tokenize.tokenize(f.readline):
                text = re.sub(r"\{[^{}]*\}", "", tok.string) if tok.type == tokenize.STRING else ""  # f-string code out
                if re.search(r"[a-z]\((s|es|ies)\)", text):
                    hits.append(f"{p.relative_to(ROOT)}:{tok.start[0]}: {tok.string[:60]}")
    assert hits == []
