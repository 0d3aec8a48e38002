"""Several real ``dualwrite-supra`` processes writing to one state file at once: no write is lost."""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from dualwrite.sim.chain import Chain
from tests.chain_driver import GAS_FLAGS, Subprocess, console_script

LB = "lottery_multi::legacy_bridge::"
WORKERS = 4
CALLS = 25


def _argv(supra: str, fid: str, args: list[str]) -> list[str]:
    return [supra, "move", "tool", "run", "--function-id", fid, "--args", *args, *GAS_FLAGS]


def test_concurrent_set_expected_hash_loses_nothing(tmp_path):
    state = tmp_path / "state.sqlite"
    d = Subprocess(state)
    chain = Chain(state)
    try:
        chain.run(LB + "init_dual_write", ["bool:true", "bool:false"])
        chain.run(LB + "set_expected_hash", ["u64:999999", "hex:00"])  # one Started event before the burst
        v0 = chain.version()
        env = d.env()
        start = threading.Barrier(WORKERS)

        def worker(w: int) -> list[tuple[int, int, subprocess.CompletedProcess]]:
            start.wait()
            out = []
            for k in range(CALLS):
                lid = 1000 * (w + 1) + k
                argv = _argv(d.supra, LB + "set_expected_hash", [f"u64:{lid}", f"hex:{lid:064x}"])
                proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env,
                                      stdin=subprocess.DEVNULL, timeout=120)
                out.append((lid, proc.returncode, proc))
            return out

        with ThreadPoolExecutor(WORKERS) as pool:
            results = [r for rs in pool.map(worker, range(WORKERS)) for r in rs]

        for lid, rc, proc in results:
            assert rc == 0, (lid, proc.stderr)
            assert "Traceback" not in proc.stderr
        txns = [json.loads(p.stdout) for _, _, p in results]
        assert all(t["status"] == "Success" for t in txns)
        assert sorted(t["block_height"] for t in txns) == list(range(v0 + 1, v0 + 1 + WORKERS * CALLS))

        ids = [1000 * (w + 1) + k for w in range(WORKERS) for k in range(CALLS)]
        pending = [int(x) for x in chain.view(LB + "pending_expected_hashes")[0]]
        assert pending[0] == 999999
        burst = pending[1:]
        assert len(burst) == len(set(burst)) == WORKERS * CALLS
        assert set(burst) == set(ids)
        # only appends happened: each worker's ids keep its submission order
        for w in range(WORKERS):
            mine = [i for i in burst if i // 1000 == w + 1]
            assert mine == sorted(mine)
        for lid in ids[::7]:
            assert chain.view(LB + "dual_write_status", [f"u64:{lid}"])[0]["expected_hash"] == {"vec": [f"0x{lid:064x}"]}

        started = chain.events("ArchiveDualWriteStartedEvent")
        assert [int(e["sequence_number"]) for e in started] == list(range(1 + WORKERS * CALLS))
        assert sorted(int(e["data"]["lottery_id"]) for e in started[1:]) == sorted(ids)
        # each event's sequence number is the one its own transaction printed
        by_version = {e["version"]: e for e in started}
        for t in txns:
            (ev,) = t["output"]["Move"]["events"]
            assert by_version[t["block_height"]]["sequence_number"] == ev["sequence_number"]
            assert by_version[t["block_height"]]["data"] == ev["data"]
        assert chain.version() == v0 + WORKERS * CALLS
        (n_txn,) = chain.store.conn.execute("SELECT COUNT(*) FROM transactions").fetchone()
        assert n_txn == v0 + WORKERS * CALLS
    finally:
        chain.close()
        d.close()


def test_concurrent_first_use_of_a_fresh_state_file(tmp_path):
    """Processes racing to create the file (`sim init`, the one command that creates a state): all succeed,
    each step done exactly once; then processes racing for the control: one init wins, the others abort 0x1201."""
    state = tmp_path / "fresh" / "state.sqlite"
    dualwrite = console_script("dualwrite")
    go = threading.Barrier(WORKERS)

    def creator(w: int) -> subprocess.CompletedProcess:
        go.wait()
        return subprocess.run([dualwrite, "sim", "init", "--state", str(state), "--json"], check=False,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)

    with ThreadPoolExecutor(WORKERS) as pool:
        created = list(pool.map(creator, range(WORKERS)))
    assert all(p.returncode == 0 for p in created), [p.stderr for p in created]
    history = [s["result"] for p in created for s in json.loads(p.stdout)["steps"]
               if s["function"] == "history::init_history"]
    assert sorted(history) == ["already initialised"] * (WORKERS - 1) + ["ok"]  # (init_bridge again is a no-op)
    d = Subprocess(state)
    env = d.env()
    start = threading.Barrier(WORKERS)

    def worker(w: int) -> subprocess.CompletedProcess:
        start.wait()
        argv = _argv(d.supra, LB + "init_dual_write", ["bool:true", "bool:false"])
        return subprocess.run(argv, check=False, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=120)

    with ThreadPoolExecutor(WORKERS) as pool:
        procs = list(pool.map(worker, range(WORKERS)))
    assert all("Traceback" not in p.stderr for p in procs), [p.stderr for p in procs]
    ok = [p for p in procs if p.returncode == 0]
    failed = [p for p in procs if p.returncode != 0]
    assert len(ok) == 1, [p.stderr for p in procs]
    assert all(p.returncode == 1 and "E_ALREADY_INITIALIZED(0x1201)" in p.stderr for p in failed)
    chain = Chain(state)
    try:
        assert chain.version() == 1 + WORKERS + 1  # init_history once, init_bridge (a no-op after the first) each time, one init
        assert chain.view(LB + "is_enabled") == [True]
    finally:
        chain.close()
        d.close()
