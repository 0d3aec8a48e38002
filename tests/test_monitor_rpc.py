"""The monitor over the RPC read path: a real emulated node (``dualwrite sim serve``, its own process)
that goes down, comes back answering 503 to everything, then comes back healthy — and the event
scan of each cycle reading only the blocks since the last one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dualwrite.backends import BackendConfig, ModuleAddresses, open_backend
from dualwrite.sim.chain import Chain
from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.monitor import Monitor
from tests.engines import wait_for
from tests.envs import base_env
from tests.audit_world import sha3
from tests.monitor_helpers import Proc, free_port, value

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def dw(state: Path, *args: str) -> str:
    r = CliRunner().invoke(cli, [*args, "--state", str(state)], catch_exceptions=False)
    assert r.exit_code == 0, f"dualwrite {' '.join(args)}: exit {r.exit_code}\n{r.stdout}{r.stderr}"
    return r.stdout


def node(state: Path, port: int, tmp: Path, *faults: str) -> Proc:
    argv = [sys.executable, "-m", "dualwrite", "sim", "serve", "--state", str(state), "--port", str(port)]
    for f in faults:
        argv += ["--fault", f]
    p = Proc(argv, base_env(PYTHONPATH=str(ROOT)), tmp)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url + "/rpc/v3/block", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_for(lambda: p.p.poll() is not None or answers(), 30, what="the emulated node")
    assert p.p.poll() is None, p.log
    return p


def test_monitor_over_rpc_survives_the_node_failing_and_reads_events_incrementally(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    dw(state, "sim", "init", "--dual-write", "--abort-on-mismatch", "--mirror")
    lotteries = tmp_path / "l.jsonl"
    lotteries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, 11)))
    dw(state, "sim", "finalize", str(lotteries))
    info = json.loads(dw(state, "sim", "info", "--json"))
    port = free_port()
    cfg = BackendConfig(backend="rpc", rpc_url=f"http://127.0.0.1:{port}", rpc_retries=1, rpc_timeout=2,
                        addresses=ModuleAddresses(info["modules"]["lottery_multi"], info["modules"]["lottery"]))
    serving = node(state, port, tmp_path)
    mon = Monitor(lambda: open_backend(cfg), interval=0.2, backend_name="rpc", full_every=6)
    mon.start("127.0.0.1", 0)
    host, mport = mon.address
    scrape = httpx.Client(base_url=f"http://{host}:{mport}", timeout=5)

    def metric(name: str, **labels: str) -> float:
        return value(scrape.get("/metrics").text, name, **labels)

    try:
        assert mon.wait_checks(2, 60), mon.status
        assert metric("dual_write_lotteries_checked") == 10 and metric("dual_write_mismatch") == 0
        # cycle by cycle (a second monitor, driven by hand): every 4th cycle full, the others incremental
        hand = Monitor(lambda: open_backend(cfg), backend_name="rpc", full_every=4)
        assert hand.check_once() and hand.snapshot.full and hand.last_rechecked == 10
        assert hand.check_once() and not hand.snapshot.full
        assert hand.last_rechecked == 0 and hand.snapshot.checked == 10  # no event touched any lottery
        # drift through the modules (evented): the next cycle reads that lottery, and only that one
        s12 = make_summary(12)
        call(state, "history::import_legacy_summary_admin", "u64:12", f"hex:{s12.to_bcs().hex()}",
             f"hex:{sha3(s12.to_bcs()).hex()}")
        call(state, "legacy_bridge::disable_legacy_mirror")
        call(state, "history::update_legacy_classification_admin", "u64:12", "u8:3", "u64:9")
        assert hand.check_once() and not hand.snapshot.full and hand.last_rechecked == 1
        assert hand.snapshot.mismatch_ids == (12,) and hand.snapshot.failing_states == {12: "field_drift"}
        assert hand.snapshot.checked == 11 and not hand.snapshot.mirror_enabled
        # a change outside the modules (no event) is missed by an incremental cycle, found by the full one
        dw(state, "sim", "tamper", "4", "--set", "tickets_sold=5", "--fix-hash")
        assert hand.check_once() and not hand.snapshot.full and hand.snapshot.mismatch_ids == (12,)
        assert hand.check_once() and hand.snapshot.full and hand.snapshot.mismatch_ids == (4, 12)
        assert hand.stop()
        # the exporter thread sees the same
        wait_for(lambda: metric("dual_write_mismatch") == 2, 30, what="both drifts in the exporter")
        assert metric("dual_write_lotteries", state="field_drift") == 2 and metric("dual_write_mirror_enabled") == 0

        dw(state, "set", "11", "--summary", str(_one(tmp_path, 11)))
        wait_for(lambda: metric("dual_write_pending_expectations") == 1, 30, what="the new expectation (from events)")
        assert metric("dual_write_pending") == 0 and metric("dual_write_pending_age_unknown") == 0
        dw(state, "sim", "clock", "--advance", "3h")
        wait_for(lambda: metric("dual_write_pending") == 1, 30, what="pending over 2h by the node's clock")
        assert metric("dual_write_pending_oldest_age_seconds") >= 3 * 3600

        # the node goes away, then answers 503 to everything, then comes back
        assert serving.stop() == 0
        errors0 = metric("dual_write_check_errors_total")
        wait_for(lambda: metric("dual_write_check_errors_total") >= errors0 + 2, 60, what="errors, node down")
        assert metric("dual_write_last_check_success") == 0
        serving = node(state, port, tmp_path, "503=100%")
        errors1 = metric("dual_write_check_errors_total")
        wait_for(lambda: metric("dual_write_check_errors_total") >= errors1 + 2, 60, what="errors, node answering 503")
        during = scrape.get("/metrics").text
        assert value(during, "dual_write_last_check_success") == 0
        assert value(during, "dual_write_mismatch") == 2 and value(during, "dual_write_pending") == 1  # last good
        assert scrape.get("/healthz").json()["checker_alive"] is True
        assert serving.stop() == 0
        serving = node(state, port, tmp_path)
        wait_for(lambda: metric("dual_write_last_check_success") == 1, 60, what="good checks, node back")
        assert metric("dual_write_mismatch") == 2 and metric("dual_write_pending") == 1
        assert metric("dual_write_lotteries_checked") == 12
    finally:
        scrape.close()
        assert mon.stop(30)
        serving.stop()


def call(state: Path, function: str, *args: str) -> None:
    """An entry function of the modules, signed by its module's admin, as a transaction on the chain."""
    home = "lottery" if function.startswith("history_bridge") else "lottery_multi"
    with Chain(state) as c:
        c.run(f"{home}::{function}", list(args), profile=home)


def _one(tmp_path: Path, lottery_id: int) -> Path:
    p = tmp_path / f"s{lottery_id}.json"
    p.write_text(json.dumps(make_summary(lottery_id).to_move_json()))
    return p
