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


from tests.chain_driver import console_script
from tests.envs import base_env
from tests.test_cli_values import sim  # noqa: F401  (fixture: an initialised simulator)


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


# -- every command speaks JSON; one name for one thing; every count, zeros too ---------------------------


def test_metrics_json_is_the_samples(sim):
    p = run(sim["env"], "metrics", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["backend"] == f"sim (state {sim['state']})"
    samples = {(s["name"], tuple(sorted(s["labels"].items()))): s["value"] for s in doc["samples"]}
    assert samples[("dual_write_enabled", ())] == 1 and samples[("dual_write_mirror_enabled", ())] == 1
    assert samples[("dual_write_lotteries", (("state", "ok"),))] == 0  # every state, zeros too
    text = run(sim["env"], "metrics").stdout  # the same numbers as the text format
    assert "dual_write_enabled 1.0" in text and len(doc["samples"]) == sum(
        1 for ln in text.splitlines() if ln and not ln.startswith("#"))


def test_demo_json_is_a_summary(tmp_path):
    p = run(base_env(), "demo", "--json", "--drill-count", "10", "--state", str(tmp_path / "d.sqlite"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # the story went to stderr
    assert "[8] verify --all again" in p.stderr
    assert doc["ok"] is True and doc["state"] == str(tmp_path / "d.sqlite")
    tampered = sorted(t["lottery_id"] for t in doc["drill"]["tampered"])
    assert doc["verify_before"]["exit_code"] == 1 and doc["verify_before"]["failing"] == tampered
    assert sorted(doc["heal"]["healed"]) == tampered and doc["heal"]["not_healed"] == []
    assert doc["verify_after"] == {"exit_code": 0, "checked": 15, "passed": 15}


def test_one_name_for_the_backend_and_every_count(sim, tmp_path):
    """cutover apply said "target" where cutover status, verify and heal say "backend"; apply counted only
    the outcomes that happened. Now each names it "backend" and counts every outcome the README names."""
    from dualwrite.audit.diff import State
    from dualwrite.audit.heal.plan import VERDICTS
    from dualwrite.cutover.apply import Outcome
    from dualwrite.cutover.status import Progress
    from dualwrite.demo import make_summary

    env, where = sim["env"], f"sim (state {sim['state']})"
    lotteries = tmp_path / "lotteries.jsonl"
    lotteries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in (1, 2, 3)))
    plan = tmp_path / "plan.json"
    assert run(env, "cutover", "plan", str(lotteries), "--out", str(plan)).returncode == 0
    applied = json.loads(run(env, "cutover", "apply", str(plan), "--json").stdout)
    status = json.loads(run(env, "cutover", "status", str(plan), "--json").stdout)
    verified = json.loads(run(env, "verify", "1-3", "--json").stdout)
    healed = json.loads(run(env, "heal", "1-3", "--json").stdout)
    for doc in (applied, status, verified, healed):
        assert doc["backend"] == where and "target" not in doc, doc
    assert applied["counts"] == {**{o.value: 0 for o in Outcome}, "sent": 3}
    assert status["counts"] == {**{p.value: 0 for p in Progress}, "pending": 3}
    assert set(verified["counts"]) == {s.value for s in State} | {"unchecked"}
    assert healed["counts"] == {**dict.fromkeys(VERDICTS, 0), "waiting": 3, "healed": 0, "not_healed": 0}
