"""The cutover drill: plan, apply, kill -9 at several points, resume, finalise, prove — in real processes.

On the simulator with 1,000 lotteries (50 already set, 30 already archived, one conflict), then the
same drill smaller through ``local`` (``dualwrite-supra`` as ``supra``: a process per chain call)
and ``podman`` (``podman exec`` into a warm container whose state file the host shares).
Every ``apply`` is a real ``dualwrite`` process; the kills are real SIGKILLs, at the three points
of a send (journalled but not sent, sent but not journalled, journalled) and once from outside.
At the end the journal and the chain's events show each planned set exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from dualwrite.sim.install import install_supra_script
from tests.engines import unique_name, wait_for
from tests.envs import base_env
from tests.test_cutover import nonzero

KILL_AT = "DUALWRITE_CUTOVER_KILL_AT"


def h(i: int) -> str:
    return hashlib.sha3_256(make_summary(i).to_bcs()).hexdigest()


def dualwrite(env: dict[str, str], *args: str, timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**env, **extra_env}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def out_json(p: subprocess.CompletedProcess) -> Any:
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"exit {p.returncode}, not JSON:\n{p.stdout}\n{p.stderr}") from None


def write_jsonl(path: Path, ids) -> Path:
    path.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in ids))
    return path


def prepare(state: Path, n: int, preset: range, archived: range, conflict: int) -> None:
    """On the host: the bridge on (abort on mismatch, not on missing), some set, some archived, one conflict."""
    chain = Chain(state)
    try:
        from dualwrite.sim.genesis import DEPLOY_STEPS, run_steps

        run_steps(chain, DEPLOY_STEPS)  # a container started on the folder has deployed its chain already
        chain.run("lottery_multi::legacy_bridge::enable_legacy_mirror", [], profile="lottery_multi")
        chain.run("lottery_multi::legacy_bridge::init_dual_write", ["bool:true", "bool:false"], profile="lottery_multi")
        for i in [*preset, *archived]:
            chain.run("lottery_multi::legacy_bridge::set_expected_hash", [f"u64:{i}", f"hex:{h(i)}"],
                      profile="lottery_multi")
        for i in archived:
            chain.finalize(make_summary(i))
        chain.run("lottery_multi::legacy_bridge::set_expected_hash", [f"u64:{conflict}", "hex:" + "ee" * 32],
                  profile="lottery_multi")
    finally:
        chain.close()


def started_events(state: Path) -> Counter:
    chain = Chain(state)
    try:
        return Counter(int(e["data"]["lottery_id"]) for e in chain.events("ArchiveDualWriteStartedEvent"))
    finally:
        chain.close()


def journal_sends(journal: Path) -> Counter:
    """Per lottery: sends the journal proves landed (done), plus unjournalled ones found on chain later."""
    c: Counter = Counter()
    for line in journal.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a record torn by a kill
        if rec.get("event") == "step" and (rec["status"] == "done" or rec.get("landed_earlier")):
            c[rec["lottery_id"]] += 1
    return c


def drill(env: dict[str, str], backend: list[str], state: Path, tmp: Path, *, n: int, preset: range, archived: range,
          conflict: int, kills: list[str], external_kill: bool, prepared: bool = False) -> None:
    if not prepared:
        prepare(state, n, preset, archived, conflict)
    src = write_jsonl(tmp / "lotteries.jsonl", range(1, n + 1))
    plan = tmp / "plan.json"
    journal = Path(str(plan) + ".journal.jsonl")

    # 1. the plan: each lottery's state now
    p = dualwrite(env, "cutover", "plan", str(src), "--out", str(plan), *backend)
    assert p.returncode == 0, p.stdout + p.stderr
    counts = json.loads(plan.read_text())["data"]["counts"]
    to_register = n - len(preset) - len(archived) - 1
    assert counts == {"register": to_register, "already_set": len(preset), "conflict": 1, "done": len(archived),
                      "archived_mismatch": 0, "to_send": to_register}, counts

    # 2. apply, killed with SIGKILL at each point of a send in turn, then resumed
    for spec in kills:
        p = dualwrite(env, "cutover", "apply", str(plan), *backend, **{KILL_AT: spec})
        assert p.returncode == -signal.SIGKILL, f"{spec}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    if external_kill:
        lines_before = len(journal.read_text().splitlines())
        proc = subprocess.Popen([sys.executable, "-m", "dualwrite", "cutover", "apply", str(plan), "--max-tps", "100",
                                 *backend], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(journal.read_text().splitlines()) >= lines_before + 40, 120,
                     what="the resumed apply to journal 20 sends")
        finally:
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL
    p = dualwrite(env, "cutover", "apply", str(plan), "--json", *backend)
    assert p.returncode == 0, p.stdout + p.stderr
    res = out_json(p)
    assert res["resumed"] and res["counts"].get("sent", 0) > 0
    p = dualwrite(env, "cutover", "apply", str(plan), "--json", *backend)
    assert nonzero(out_json(p)["counts"]) == {"settled_earlier": to_register, "no_action": n - to_register}

    # 3. each planned set exactly once: in the journal and in the chain's events
    planned = set(range(1, n + 1)) - set(preset) - set(archived) - {conflict}
    sends = journal_sends(journal)
    assert set(sends) == planned and set(sends.values()) == {1}, {k: v for k, v in sends.items() if v != 1}
    # every sent-but-not-journalled lottery was found on chain by the next run, not sent again
    landed = [json.loads(ln) for ln in journal.read_text().splitlines() if '"landed_earlier": true' in ln]
    assert len(landed) >= sum(1 for k in kills if k.startswith("submitted")), landed
    events = started_events(state)
    assert all(events[i] == 1 for i in range(1, n + 1)), {i: events[i] for i in range(1, n + 1) if events[i] != 1}

    # 4. the conflict: never overwritten by this plan; a --replace plan says so and replaces it
    p = dualwrite(env, "cutover", "plan", str(src), "--replace", "--out", str(tmp / "replace.json"), *backend)
    assert p.returncode == 0 and "REPLACES the pending hash" in p.stdout, p.stdout + p.stderr
    p = dualwrite(env, "cutover", "apply", str(tmp / "replace.json"), "--json", *backend)
    assert p.returncode == 0 and out_json(p)["counts"]["replaced"] == 1, p.stdout + p.stderr

    # 5. finalise everything not archived yet; the dashboard says done, and exit 0
    rest = write_jsonl(tmp / "rest.jsonl", [i for i in range(1, n + 1) if i not in archived])
    p = dualwrite(env, "sim", "finalize", str(rest), "--state", str(state))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr
    p = dualwrite(env, "cutover", "status", str(plan), "--json", *backend)
    st = out_json(p)
    assert p.returncode == 0 and st["complete"] and st["counts"]["consumed_ok"] == n, st
    p = dualwrite(env, "cutover", "status", str(tmp / "replace.json"), "--watch", "--timeout", "60s", *backend)
    assert p.returncode == 0 and "DONE" in p.stdout, p.stdout + p.stderr
    events = started_events(state)
    assert events[conflict] == 2 and all(events[i] == 1 for i in range(1, n + 1) if i != conflict)


@pytest.mark.slow
def test_cutover_drill_sim(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    env = base_env(DUALWRITE_STATE=str(state))
    drill(env, [], state, tmp_path, n=1000, preset=range(1, 51), archived=range(51, 81), conflict=100,
          kills=["started:100", "submitted:150", "done:200", "submitted:1"], external_kill=True)


@pytest.mark.slow
def test_cutover_drill_local(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    install_supra_script(bindir, "supra")
    state = tmp_path / "state.sqlite"
    env = base_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", DUALWRITE_STATE=str(state))
    drill(env, ["--backend", "local"], state, tmp_path, n=12, preset=range(1, 3), archived=range(3, 5), conflict=6,
          kills=["started:2", "submitted:2"], external_kill=False)


@pytest.mark.slow
def test_cutover_drill_local_with_reads_over_rpc(tmp_path: Path) -> None:
    """Writes through dualwrite-supra, every read (plan, the re-checks, status) over HTTP from ``sim serve``."""
    bindir = tmp_path / "bin"
    install_supra_script(bindir, "supra")
    state = tmp_path / "state.sqlite"
    prepare(state, 12, range(1, 3), range(3, 5), 6)
    with Chain(state) as c:
        addrs = ["--lottery-multi-address", c.addresses.lottery_multi, "--lottery-address", c.addresses.lottery]
    env = base_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", DUALWRITE_STATE=str(state))
    serve = subprocess.Popen([sys.executable, "-m", "dualwrite", "sim", "serve", "--state", str(state)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = serve.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        backend = ["--backend", "local", "--rpc-url", url, *addrs]
        drill(env, backend, state, tmp_path, n=12, preset=range(1, 3), archived=range(3, 5), conflict=6,
              kills=["submitted:3"], external_kill=False, prepared=True)
        target = json.loads((tmp_path / "plan.json").read_text())["data"]["target"]
        assert target["backend"] == "local" and target["rpc_url"] == url and isinstance(target["chain_id"], int)
        assert "reads over RPC node" in target["describe"]
        # a plan read through the read-only rpc backend applies through a writer reading the same node
        p = dualwrite(env, "cutover", "plan", str(tmp_path / "lotteries.jsonl"), "--backend", "rpc", "--rpc-url", url,
                      *addrs, "--out", str(tmp_path / "rpc-plan.json"))
        assert p.returncode == 0, p.stderr
        p = dualwrite(env, "cutover", "apply", str(tmp_path / "rpc-plan.json"), "--json", *backend)
        assert p.returncode == 0 and nonzero(out_json(p)["counts"]) == {"no_action": 12}, p.stdout + p.stderr
        # the same plan through the CLI's own reads (no node): the same chain, reached another way: accepted
        p = dualwrite(env, "cutover", "apply", str(tmp_path / "plan.json"), "--backend", "local", *addrs, "--json")
        assert p.returncode == 0 and out_json(p)["counts"].get("settled_earlier") == 7, p.stdout + p.stderr
        # other module addresses are another chain: refused, whichever way the reads go
        other = ["--lottery-multi-address", "0x" + "ab" * 32, "--lottery-address", c.addresses.lottery]
        for extra in ([], ["--rpc-url", url]):
            p = dualwrite(env, "cutover", "apply", str(tmp_path / "plan.json"), "--backend", "local", *other, *extra)
            assert p.returncode == 2 and "made for another target" in p.stderr and "lottery_multi address" in p.stderr, \
                p.stderr
    finally:
        serve.terminate()
        serve.wait(timeout=30)


@pytest.mark.slow
def test_status_chain_unreadable_exits_3(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    install_supra_script(bindir, "supra")
    state = tmp_path / "state.sqlite"
    env = base_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", DUALWRITE_STATE=str(state))
    prepare(state, 3, range(0), range(0), 3)
    src = write_jsonl(tmp_path / "l.jsonl", [1, 2])
    p = dualwrite(env, "cutover", "plan", str(src), "--out", str(tmp_path / "plan.json"), "--backend", "local")
    assert p.returncode == 0, p.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "supra").write_text("#!/bin/sh\nexit 1\n")
    (broken / "supra").chmod(0o755)
    p = dualwrite(env, "cutover", "status", str(tmp_path / "plan.json"), "--backend", "local",
                  "--supra-bin", str(broken / "supra"))
    assert p.returncode == 3, p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


@pytest.mark.engine
@pytest.mark.slow
def test_cutover_drill_podman(supra_container, tmp_path: Path) -> None:
    c = supra_container(unique_name("dw-cutover"))
    drill(base_env(), ["--backend", "podman", "--container", c.name], c.state_db, tmp_path, n=8, preset=range(1, 2),
          archived=range(2, 3), conflict=4, kills=["submitted:2"], external_kill=False)


@pytest.mark.slow
def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal (a real pty as stderr) apply shows a bar with the rate and ETA; piped, nothing for work
    shorter than the progress interval (tests/test_progress.py has the periodic lines of longer work)."""
    import pty

    state = tmp_path / "state.sqlite"
    env = base_env(DUALWRITE_STATE=str(state), COLUMNS="120")
    prepare(state, 0, range(0), range(0), 999)
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 301))
    plan = tmp_path / "plan.json"
    assert dualwrite(env, "cutover", "plan", str(src), "--out", str(plan)).returncode == 0
    master, slave = pty.openpty()
    out_file = tmp_path / "stdout.txt"
    with open(out_file, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dualwrite", "cutover", "apply", str(plan), "--max-tps", "400"],
                                env=env, stdout=out, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    try:
        while True:  # drain the terminal while the bar draws (a full pty would block the writer)
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the writer exited and everything was read
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        rc = proc.wait(timeout=120)
    bar = b"".join(chunks).decode("utf-8", "replace")
    p = subprocess.CompletedProcess(proc.args, rc, out_file.read_text(), "")
    assert p.returncode == 0, p.stdout
    assert "cutover apply [" in bar and "300/300" in bar and "/s" in bar and "ETA" in bar, bar[-500:]
    assert "sent 300" in p.stdout and "cutover apply [" not in p.stdout
    # piped stderr: no bar
    plan2 = tmp_path / "plan2.json"
    write_jsonl(tmp_path / "l2.jsonl", range(301, 321))
    assert dualwrite(env, "cutover", "plan", str(tmp_path / "l2.jsonl"), "--out", str(plan2)).returncode == 0
    p = dualwrite(env, "cutover", "apply", str(plan2))
    assert p.returncode == 0 and p.stderr == "", p.stderr
