"""End to end: a real Prometheus on 127.0.0.1 scrapes a real ``dualwrite monitor`` process over the
simulator and evaluates a copy of the shipped rules (holds shortened); everything read back through
Prometheus's own HTTP API."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from tests.engines import engine_unavailable, wait_for
from tests.envs import base_env
from tests.monitor_helpers import Proc, free_port, state_file_gone

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "dualwrite.rules.yml"
DUALWRITE = [sys.executable, "-m", "dualwrite"]


def dw(state: Path, *args: str) -> str:
    r = CliRunner().invoke(cli, [*args, "--state", str(state)], catch_exceptions=False)
    assert r.exit_code == 0, f"dualwrite {' '.join(args)}: exit {r.exit_code}\n{r.stdout}{r.stderr}"
    return r.stdout


class Prom:
    """Prometheus's HTTP API, bounded requests."""

    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=3)

    def query(self, expr: str) -> float | None:
        r = self.client.get("/api/v1/query", params={"query": expr})
        r.raise_for_status()
        result = r.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str) -> list[dict]:
        r = self.client.get("/api/v1/alerts")
        r.raise_for_status()
        return [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] == name]

    def alert(self, name: str) -> str | None:
        states = [a["state"] for a in self.alerts(name)]
        return states[0] if states else None

    def equals(self, expr: str, want: float):
        def check():
            try:
                return self.query(expr) == want
            except httpx.HTTPError:
                return False
        return check


def test_prometheus_scrapes_the_monitor_and_fires_the_alerts(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        engine_unavailable("prometheus is not installed (apt-get install -y prometheus; scripts/test.sh does it)")
    state = tmp_path / "sim.sqlite"
    dw(state, "sim", "init", "--dual-write", "--abort-on-mismatch", "--mirror")
    summaries = tmp_path / "lotteries.jsonl"
    summaries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, 11)))
    dw(state, "sim", "finalize", str(summaries))

    # the monitor: a real process, checking every second
    mport, pport = free_port(), free_port()
    env = base_env(PYTHONPATH=str(ROOT))
    mon = Proc([*DUALWRITE, "monitor", "--listen", f"127.0.0.1:{mport}", "--interval", "1s", "--state", str(state)],
               env, tmp_path)
    # a test copy of the shipped rules with short holds (the expressions are the shipped ones)
    rules = RULES.read_text().replace("for: 10m", "for: 3s").replace("for: 5m", "for: 2s").replace("for: 30m", "for: 2s")
    rules = rules.replace("dual_write_last_success_timestamp_seconds > 600", "dual_write_last_success_timestamp_seconds > 4")
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        f"  - job_name: dualwrite\n    static_configs: [{{targets: ['127.0.0.1:{mport}']}}]\n")
    prom_proc = Proc([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                      f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{pport}"],
                     base_env(), tmp_path)
    prom = Prom(pport)
    try:
        wait_for(lambda: mon.p.poll() is not None or "serving http://127.0.0.1" in mon.log, 30, what="the monitor")
        assert mon.p.poll() is None, mon.log
        wait_for(prom.equals("up", 1), 60, what="Prometheus scraping the monitor")
        wait_for(prom.equals("dual_write_lotteries_checked", 10), 30, what="10 lotteries checked")
        assert prom.query("dual_write_mismatch") == 0
        assert prom.query("dual_write_last_check_success") == 1

        # tamper one legacy copy -> mismatch 1, the alert pending then firing
        dw(state, "sim", "tamper", "3", "--set", "tickets_sold=5", "--fix-hash")
        wait_for(prom.equals("dual_write_mismatch", 1), 30, what="dual_write_mismatch = 1")
        assert prom.query('dual_write_lotteries{state="field_drift"}') == 1
        wait_for(lambda: prom.alert("DualWriteMismatch") in ("pending", "firing"), 30, what="DualWriteMismatch active")
        wait_for(lambda: prom.alert("DualWriteMismatch") == "firing", 30, what="DualWriteMismatch firing")
        assert "dual_write_mismatch=1: lottery 3 (field_drift)" in mon.log
        # the ids are not only in the log: the monitor's /status has them, per state
        with httpx.Client(base_url=f"http://127.0.0.1:{mport}", timeout=3) as client:
            status = client.get("/status").json()
        assert status["result"]["ids"] == {"field_drift": "3"}
        assert status["result"]["dual_write_mismatch"] == {"count": 1, "ids": "3"}
        assert status["last_check"]["success"] is True and status["result"]["counts"]["ok"] == 9
        (firing,) = prom.alerts("DualWriteMismatch")
        assert firing["annotations"]["runbook_url"] == "README.md#dualwritemismatch"
        assert firing["annotations"]["summary"].startswith("1 lottery's legacy copy differs from the archive")

        # heal --apply -> back to 0, the alert resolved
        dw(state, "heal", "--apply", "--journal", str(tmp_path / "journal.jsonl"))
        wait_for(prom.equals("dual_write_mismatch", 0), 30, what="dual_write_mismatch back to 0")
        wait_for(lambda: prom.alert("DualWriteMismatch") is None, 30, what="DualWriteMismatch resolved")

        # the mirror switched off, then dual-write: each its alert; switched on again, resolved
        dw(state, "disable-mirror")
        wait_for(prom.equals("dual_write_mirror_enabled", 0), 30, what="dual_write_mirror_enabled = 0")
        wait_for(lambda: prom.alert("DualWriteMirrorDisabled") == "firing", 30, what="DualWriteMirrorDisabled firing")
        (firing,) = prom.alerts("DualWriteMirrorDisabled")
        assert firing["annotations"]["runbook_url"] == "README.md#dualwritemirrordisabled"
        assert prom.alert("DualWriteDisabled") is None
        dw(state, "enable-mirror")
        wait_for(lambda: prom.alert("DualWriteMirrorDisabled") is None, 30, what="DualWriteMirrorDisabled resolved")
        dw(state, "update-flags", "false", "true", "false")
        wait_for(lambda: prom.alert("DualWriteDisabled") == "firing", 30, what="DualWriteDisabled firing")
        (firing,) = prom.alerts("DualWriteDisabled")
        assert firing["labels"]["severity"] == "critical"
        assert firing["annotations"]["runbook_url"] == "README.md#dualwritedisabled"
        dw(state, "update-flags", "true", "true", "false")
        wait_for(lambda: prom.alert("DualWriteDisabled") is None, 30, what="DualWriteDisabled resolved")

        # a pending expectation older than 2 hours -> dual_write_pending 1, DualWritePending firing
        dw(state, "set", "11", "--summary", str(_summary_file(tmp_path, 11)))
        wait_for(prom.equals("dual_write_pending_expectations", 1), 30, what="one pending expectation")
        assert prom.query("dual_write_pending") == 0  # within the grace
        dw(state, "sim", "clock", "--advance", "3h")
        wait_for(prom.equals("dual_write_pending", 1), 30, what="dual_write_pending = 1")
        wait_for(lambda: prom.alert("DualWritePending") == "firing", 30, what="DualWritePending firing")

        # the node fails for a while: last good values stay, errors rise, no crash, stale alert; then back
        errors0 = prom.query("dual_write_check_errors_total")
        with state_file_gone(state):
            wait_for(prom.equals("dual_write_last_check_success", 0), 30, what="a failed check")
            wait_for(lambda: (prom.query("dual_write_check_errors_total") or 0) >= errors0 + 3, 30,
                     what="errors rising")
            assert prom.query("dual_write_pending") == 1 and prom.query("dual_write_lotteries_checked") == 11
            wait_for(lambda: prom.alert("DualWriteMonitorStale") == "firing", 30, what="DualWriteMonitorStale firing")
            assert mon.p.poll() is None and prom.query("up") == 1
        wait_for(prom.equals("dual_write_last_check_success", 1), 30, what="checks succeeding again")
        wait_for(lambda: prom.alert("DualWriteMonitorStale") is None, 30, what="DualWriteMonitorStale resolved")
        assert prom.query("dual_write_pending") == 1
        assert "check failed (keeping the last good values)" in mon.log

        # SIGTERM: a clean stop
        assert mon.stop() == 0, mon.log
        assert "received SIGTERM, stopping" in mon.log and re.search(r"INFO stopped\n", mon.log), mon.log
        assert "Traceback" not in mon.log
    finally:
        mon.stop()
        prom_proc.stop()
        prom.client.close()


def _summary_file(tmp_path: Path, lottery_id: int) -> Path:
    p = tmp_path / f"summary-{lottery_id}.json"
    p.write_text(json.dumps(make_summary(lottery_id).to_move_json()))
    return p
