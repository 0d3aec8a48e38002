"""The one sender over RPC: pipelined, never twice, never lost (issue 18, items 4 and 5).

Real ``dualwrite sim serve`` subprocesses on 127.0.0.1, real ``dualwrite`` subprocesses, a real SIGKILL at each
point of a send (the ``DUALWRITE_SEND_KILL_AT`` drill hook: journalled and not submitted, submitted and not
journalled, while waiting), then a resume; every registration is counted FROM THE CHAIN'S EVENTS.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from tests.chain_driver import console_script
from tests.envs import base_env
from tests.rpc_node import ServeProcess

N = 24


def dw(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("dualwrite"), *args], capture_output=True, text=True,
                          env=base_env(**(env or {})), timeout=timeout)


def started_per_lottery(state: Path) -> Counter:
    with Chain(state) as c:
        return Counter(int(e["data"]["lottery_id"]) for e in c.events("ArchiveDualWriteStartedEvent"))


@pytest.fixture
def chain(tmp_path: Path):
    """A chain with dual-write and the mirror on, N lotteries to register, the admin's key, a plan read over RPC."""
    state = tmp_path / "sim.sqlite"
    assert dw("sim", "init", "--state", str(state), "--dual-write", "--abort-on-mismatch", "--mirror").returncode == 0
    src = tmp_path / "l.jsonl"
    src.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, N + 1)))
    key = tmp_path / "admin.key"
    assert dw("sim", "key", "default", "--state", str(state), "--out", str(key)).returncode == 0
    with Chain(state) as c:
        lm, lottery = c.addresses.lottery_multi, c.addresses.lottery
    return {"state": state, "src": src, "key": key, "lm": lm, "lottery": lottery, "dir": tmp_path}


def rpc(c: dict, url: str) -> list[str]:
    return ["--backend", "rpc", "--rpc-url", url, "--lottery-multi-address", c["lm"], "--lottery-address", c["lottery"]]


def signed(c: dict, url: str) -> list[str]:
    return [*rpc(c, url), "--private-key-file", str(c["key"]), "--sender", c["lm"]]


def plan(c: dict, url: str) -> Path:
    out = c["dir"] / "plan.json"
    r = dw("cutover", "plan", str(c["src"]), "--out", str(out), *rpc(c, url))
    assert r.returncode == 0, r.stderr
    return out


def happened(counts: dict) -> dict:
    """The outcomes that happened (``--json`` counts every outcome, zeros too)."""
    return {k: v for k, v in counts.items() if v}


def journal(p: Path) -> list[dict]:
    return [json.loads(x) for x in Path(str(p) + ".journal.jsonl").read_text().splitlines() if x.strip().startswith("{")]


def test_apply_over_rpc_pipelined_in_order_each_once(chain) -> None:
    c = chain
    with ServeProcess(c["state"]) as node:
        p = plan(c, node.url)
        r = dw("cutover", "apply", str(p), *signed(c, node.url), "--in-flight", "8", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert happened(doc["counts"]) == {"sent": N} and doc["in_flight"] == 8
    assert started_per_lottery(c["state"]) == Counter({i: 1 for i in range(1, N + 1)})
    recs = journal(p)
    started = [x for x in recs if x.get("status") == "started"]
    # write-ahead: each transaction's hash, sequence number and expiry were journalled before it was submitted
    assert len(started) == N and all(isinstance(x["transaction_hash"], str) and isinstance(x["expiration_secs"], int)
                                     for x in started)
    seqs = [x["sequence_number"] for x in started]
    assert seqs == list(range(seqs[0], seqs[0] + N))  # consecutive numbers, in plan order
    assert [x["lottery_id"] for x in started] == list(range(1, N + 1))
    done = {x["lottery_id"]: x["transaction_hash"] for x in recs if x.get("status") == "done"}
    assert done == {x["lottery_id"]: x["transaction_hash"] for x in started}
    with Chain(c["state"]) as ch:  # the chain executed them in the plan's order
        heights = [ch.transaction(done[i])["block_header"]["height"] for i in range(1, N + 1)]
    assert heights == sorted(heights)


@pytest.mark.parametrize("phase", ["started", "submitted", "waiting"])
def test_kill_9_at_each_point_then_resume_registers_each_exactly_once(chain, phase: str) -> None:
    c = chain
    with ServeProcess(c["state"]) as node:
        p = plan(c, node.url)
        r = dw("cutover", "apply", str(p), *signed(c, node.url), "--in-flight", "4",
               env={"DUALWRITE_SEND_KILL_AT": f"{phase}:6"})
        assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
        begun = [x for x in journal(p) if x.get("status") == "started"]
        assert begun and not any(x.get("event") == "run_end" for x in journal(p))
        if phase == "started":
            # journalled, never submitted: the resume waits for the node's clock to pass its expiry — moved on here
            assert dw("sim", "clock", "--advance", "2m", "--state", str(c["state"])).returncode == 0
        r = dw("cutover", "apply", str(p), *signed(c, node.url), "--in-flight", "4", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        counts = happened(doc["counts"])
        assert doc["resumed"] and sum(counts.values()) == N, counts
        assert counts.get("landed_earlier", 0) + counts.get("settled_earlier", 0) >= 5, counts
    # from the chain's events: every registration happened, exactly once
    assert started_per_lottery(c["state"]) == Counter({i: 1 for i in range(1, N + 1)})


def test_accepted_but_dropped_transactions_are_healed_by_gap_repair(chain) -> None:
    c = chain
    with ServeProcess(c["state"], "--fault", "txn-drop=15%", "--fault-seed", "7") as node:
        p = plan(c, node.url)
        r = dw("cutover", "apply", str(p), *signed(c, node.url), "--in-flight", "6", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert happened(doc["counts"]) == {"sent": N} and doc["gap_repairs"] >= 1, doc
        repairs = [x for x in journal(p) if x.get("gap_repair")]
        assert len(repairs) == doc["gap_repairs"]
        for x in repairs:  # signed again with the number of the one the node lost
            first = next(y for y in journal(p) if y.get("lottery_id") == x["lottery_id"] and y.get("status") == "started")
            assert x["sequence_number"] == first["sequence_number"] and x["transaction_hash"] != first["transaction_hash"]
    assert started_per_lottery(c["state"]) == Counter({i: 1 for i in range(1, N + 1)})


def test_a_resume_whose_journal_names_another_chain_id_is_refused(chain) -> None:
    c = chain
    with ServeProcess(c["state"]) as node:
        p = plan(c, node.url)
        r = dw("cutover", "apply", str(p), *signed(c, node.url), "--in-flight", "4",
               env={"DUALWRITE_SEND_KILL_AT": "started:3"})
        assert r.returncode == -signal.SIGKILL
        jp = Path(str(p) + ".journal.jsonl")
        jp.write_text(jp.read_text().replace('"chain_id": 255', '"chain_id": 7'))
        before = started_per_lottery(c["state"])
        r = dw("cutover", "apply", str(p), *signed(c, node.url))
        assert r.returncode == 2 and "chain 7" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert started_per_lottery(c["state"]) == before  # nothing was sent


def test_an_abort_in_the_pipeline_hides_no_outcome(chain) -> None:
    c = chain
    with ServeProcess(c["state"]) as node:
        p = plan(c, node.url)
        # signed by an account that is not @lottery_multi: every set_expected_hash aborts on chain (0x1b..)
        op_key = c["dir"] / "operator.key"
        assert dw("sim", "key", "operator", "--state", str(c["state"]), "--out", str(op_key)).returncode == 0
        with Chain(c["state"]) as ch:
            operator = ch.addresses.profiles()["operator"]
        as_operator = [*rpc(c, node.url), "--private-key-file", str(op_key), "--sender", operator]
        r = dw("cutover", "apply", str(p), *as_operator, "--in-flight", "8", "--keep-going", "--json")
        assert r.returncode == 4, r.stderr
        doc = json.loads(r.stdout)
        assert happened(doc["counts"]) == {"aborted": N}
        assert [x["lottery_id"] for x in doc["lotteries"]] == list(range(1, N + 1))
        assert all("E_HISTORY_NOT_AUTHORIZED" in x["detail"] and x["transaction_hash"] for x in doc["lotteries"])
        # without --keep-going the first abort stops sending; what was in flight still gets its real outcome
        r = dw("cutover", "apply", str(p), *as_operator, "--in-flight", "8", "--json")
        doc = json.loads(r.stdout)
        assert r.returncode == 4 and set(happened(doc["counts"])) <= {"aborted", "not_reached", "settled_earlier"}, doc
        assert 1 <= doc["counts"]["aborted"] <= 8 and sum(doc["counts"].values()) == N, doc["counts"]
    assert started_per_lottery(c["state"]) == Counter()


def test_heal_over_rpc_killed_while_waiting_resumes_by_hash(chain, tmp_path: Path) -> None:
    c = chain
    ids = list(range(1, 13))
    for i in ids:  # finalised with a registered hash, then the legacy copies drift
        assert dw("set", str(i), "--summary", str(c["src"]), "--state", str(c["state"])).returncode == 0
    sub = tmp_path / "some.jsonl"
    sub.write_text("".join(c["src"].read_text().splitlines(keepends=True)[: len(ids)]))
    assert dw("sim", "finalize", str(sub), "--state", str(c["state"])).returncode == 0
    for i in ids:
        assert dw("sim", "tamper", str(i), "--set", "tickets_sold=5", "--fix-hash", "--state", str(c["state"])).returncode == 0
    before = started_per_lottery(c["state"])
    hj = tmp_path / "heal.jsonl"
    env = {"DUALWRITE_LOCK_DIR": str(tmp_path / "locks")}
    with ServeProcess(c["state"]) as node:
        r = dw("heal", "--apply", *signed(c, node.url), "--journal", str(hj), "--in-flight", "4",
               env={**env, "DUALWRITE_SEND_KILL_AT": "waiting:7"})
        assert r.returncode == -signal.SIGKILL, r.stderr
        r = dw("heal", "--apply", *signed(c, node.url), "--journal", str(hj), "--in-flight", "4", "--json", env=env)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert rep["resumed"]
        r = dw("verify", *[str(i) for i in ids], *rpc(c, node.url))
        assert r.returncode == 0, r.stdout
    after = started_per_lottery(c["state"])
    # each lottery's repair registered its hash exactly once over both runs (nothing begun was sent again)
    assert {i: after[i] - before[i] for i in ids} == {i: 1 for i in ids}
