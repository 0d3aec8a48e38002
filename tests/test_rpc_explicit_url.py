"""An explicit RPC URL is never ignored: on ``sim`` the reads go to it (the emulated node of the same state,
whose module addresses it learns) or one line says why not; ``sim serve --env`` / ``--env-file`` give a
client everything it needs once the node listens, without blocking the shell that reads them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from dualwrite.demo import make_summary
from tests.audit_world import World
from tests.chain_driver import console_script
from tests.envs import base_env
from tests.hostile_node import OUTER_TIMEOUT_S, HostileNode, dw, one_line
from tests.hostile_node import world  # noqa: F401  (fixture)
from tests.rpc_node import InThreadNode

def _gone(pid: int, deadline_s: float = 20) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_on_sim_an_rpc_url_carries_the_reads_and_the_addresses_are_learnt(world: World, tmp_path: Path) -> None:
    with InThreadNode(world.path) as node, HostileNode(node.url) as counted:  # passes everything on, counting
        p = dw("flags", "--state", str(world.path), "--rpc-url", counted.url)
        assert p.returncode == 0, p.stderr
        assert f"reads over RPC node {counted.url}" in p.stdout
        assert any(s.endswith("/view") for s in counted.seen)  # the views went over HTTP, not in-process
        lotteries = tmp_path / "lotteries.jsonl"
        lotteries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in (1, 2, 4)))
        before = counted.requests
        p = dw("cutover", "plan", str(lotteries), "--state", str(world.path), "--rpc-url", counted.url,
               "--out", str(tmp_path / "plan.json"))
        assert p.returncode == 0, p.stderr
        assert counted.requests > before
        # --reads cli keeps them in-process, as asked
        before = counted.requests
        assert dw("flags", "--state", str(world.path), "--rpc-url", counted.url, "--reads", "cli").returncode == 0
        assert counted.requests == before


def test_on_sim_a_url_that_is_not_this_state_says_why_not(world: World, tmp_path: Path) -> None:
    other = World(tmp_path / "other.sqlite")
    other.init()
    try:
        with InThreadNode(other.path) as node:
            p = dw("flags", "--state", str(world.path), "--rpc-url", node.url)
            line = one_line(p)
            assert p.returncode == 2
            assert f"serves simulator state {os.path.realpath(other.path)}, not this run's" in line
    finally:
        other.close()
    with InThreadNode(world.path) as node:
        real_node = HostileNode(node.url, lambda req: req.json(404, {"message": "no such endpoint"})
                                if req.path.startswith("/dualwrite/") else None)
        with real_node:
            p = dw("flags", "--state", str(world.path), "--rpc-url", real_node.url)
            line = one_line(p)
            assert p.returncode == 2 and "is not `dualwrite sim serve`" in line and "--reads cli" in line
        p = dw("flags", "--state", str(world.path), "--rpc-url", node.url, "--lottery-address", "0x" + "ee" * 32)
        assert p.returncode == 2 and "--lottery-address 0x" in one_line(p) and "has that module at" in p.stderr
    # a node other than the emulator cannot tell the addresses: required, and the line says where to find them
    p = dw("flags", "--backend", "rpc", "--rpc-url", "http://127.0.0.1:9")
    assert p.returncode == 2 and "sim serve --env" in one_line(p)


def test_sim_serve_env_for_eval_returns_once_listening_and_keeps_serving(world: World, tmp_path: Path) -> None:
    """The documented pattern: set -a; eval "$(dualwrite sim serve --env &)"; set +a; ...; kill $PID."""
    script = ('set -e; set -a; eval "$("$DW" sim serve --env --state "$STATE" &)"; set +a\n'
              '"$DW" verify --all --backend rpc --json > "$OUT"\n'
              'echo "$DUALWRITE_SIM_SERVE_PID" > "$PIDFILE"; echo "$DUALWRITE_RPC_URL"\n'
              'kill "$DUALWRITE_SIM_SERVE_PID"\n')
    out, pidfile = tmp_path / "verify.json", tmp_path / "pid"
    env = base_env(DW=console_script("dualwrite"), STATE=str(world.path), OUT=str(out), PIDFILE=str(pidfile))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=OUTER_TIMEOUT_S)
    assert p.returncode == 0, p.stderr
    url = p.stdout.strip()
    doc = json.loads(out.read_text())
    assert doc["checked"] == 3 and f"RPC node {url}" in doc["backend"]
    assert _gone(int(pidfile.read_text())), "the server did not stop on SIGTERM"
    assert "serving simulator state" in p.stderr and "Traceback" not in p.stderr


def test_sim_serve_env_file_is_written_once_listening_and_removed_on_stop(world: World, tmp_path: Path) -> None:
    envfile = tmp_path / "node.env"
    proc = subprocess.Popen([console_script("dualwrite"), "sim", "serve", "--state", str(world.path),
                             "--env-file", str(envfile)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=base_env())
    try:
        end = time.monotonic() + 30
        while not envfile.exists() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.02)
        values = dict(line.split("=", 1) for line in envfile.read_text().splitlines())
        assert set(values) == {"DUALWRITE_RPC_URL", "DUALWRITE_LOTTERY_MULTI_ADDRESS", "DUALWRITE_LOTTERY_ADDRESS",
                               "DUALWRITE_STATE", "DUALWRITE_SIM_SERVE_PID"}
        assert values["DUALWRITE_SIM_SERVE_PID"] == str(proc.pid)
        assert values["DUALWRITE_LOTTERY_MULTI_ADDRESS"] == world.chain.addresses.lottery_multi
        p = dw("verify", "--all", "--backend", "rpc", "--json", env=base_env(**values))  # the file is the whole setup
        assert p.returncode == 0 and json.loads(p.stdout)["checked"] == 3, p.stderr
        assert proc.stdout.readline().strip() == values["DUALWRITE_RPC_URL"]  # stdout still starts with the URL
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0 and not envfile.exists()
    p = dw("sim", "serve", "--state", str(world.path), "--env-file", str(tmp_path / "nope" / "node.env"))
    assert p.returncode == 2 and "does not exist" in one_line(p)
