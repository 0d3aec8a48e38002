"""Writes over RPC against the ``local`` CLI path, side by side, in one run.

Run: ``python benchmarks/rpc_writes.py [--n 300] [--cli-n 20] [--window 1,8,32] [--json]``.

It makes a simulator state, writes the admin's key (``dualwrite sim key``), starts the emulated node
(``dualwrite sim serve``, its own process, on 127.0.0.1) and times ``legacy_bridge::set_expected_hash``:

- ``rpc run``           ``Backend.run`` over RPC, one after the other (sequence number, sign, submit, wait by hash);
- ``rpc window W``      the ``RpcWriter`` primitives with W transactions in flight (consecutive sequence numbers:
                        prepare+submit W ahead, wait for the oldest): the node's ceiling for a pipelined sender;
- ``local (baseline)``  ``Backend.run`` through the ``local`` backend: ``dualwrite-supra`` installed as ``supra``,
                        a process per transaction, on the same kind of chain (a sample: it is slow).

Per row: transactions, seconds, transactions/s, median and p90 latency of one transaction (for a window,
submit to commit seen), and the ratio to the baseline's rate. Client and node share this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from dualwrite.backends import BackendConfig, open_backend

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def dw(*args: str, env: dict | None = None) -> str:
    exe = shutil.which("dualwrite", path=str(Path(sys.executable).parent)) or "dualwrite"
    r = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"dualwrite {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def start_node(state: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("dualwrite", path=str(Path(sys.executable).parent)) or "dualwrite"
    p = subprocess.Popen([exe, "sim", "serve", "--state", str(state)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    url = p.stdout.readline().strip()
    if not url.startswith("http://"):
        p.kill()
        raise SystemExit("sim serve did not start")
    return p, url


def row(name: str, n: int, seconds: float, lat_ms: list[float]) -> dict:
    return {"name": name, "txns": n, "seconds": round(seconds, 3), "tps": round(n / seconds, 1),
            "median_ms": round(statistics.median(lat_ms), 2), "p90_ms": round(pct(lat_ms, 90), 2)}


def bench_run(backend, first_id: int, n: int) -> tuple[float, list[float]]:
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        backend.run("legacy_bridge::set_expected_hash", [f"u64:{first_id + i}", "hex:" + "ab" * 32])
        lat.append((time.perf_counter() - t) * 1000)
    return time.perf_counter() - t0, lat


def bench_window(writer, first_id: int, n: int, window: int) -> tuple[float, list[float]]:
    lat = []
    seq = writer.next_sequence_number()
    expiry = int(writer.node_time()) + 300
    inflight: deque = deque()
    t0 = time.perf_counter()
    for i in range(n):
        t = writer.prepare("legacy_bridge::set_expected_hash", [f"u64:{first_id + i}", "hex:" + "cd" * 32], seq + i,
                           expiration_secs=expiry)
        writer.submit(t)
        inflight.append((t, time.perf_counter()))
        if len(inflight) >= window:
            done, at = inflight.popleft()
            writer.wait(done.hash, done.expiration_secs)
            lat.append((time.perf_counter() - at) * 1000)
    while inflight:
        done, at = inflight.popleft()
        writer.wait(done.hash, done.expiration_secs)
        lat.append((time.perf_counter() - at) * 1000)
    return time.perf_counter() - t0, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="transactions per RPC row")
    ap.add_argument("--cli-n", type=int, default=20, help="transactions through the local CLI (baseline)")
    ap.add_argument("--window", default="1,8,32", help="in-flight windows of the primitive rows")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dw-bench-rpcw-") as tmp:
        tmp_path = Path(tmp)
        state = tmp_path / "sim.sqlite"
        dw("sim", "init", "--state", str(state), "--dual-write")
        info = json.loads(dw("sim", "info", "--state", str(state), "--json"))
        lm, lo = info["modules"]["lottery_multi"], info["modules"]["lottery"]
        key = tmp_path / "admin.key"
        dw("sim", "key", "default", "--state", str(state), "--out", str(key))
        node, url = start_node(state)
        try:
            cfg = BackendConfig(rpc_url=url, private_key_file=str(key), sender=lm, lottery_multi_address=lm,
                                lottery_address=lo)
            b = open_backend(cfg)
            try:
                w = b.tx_writer()
                bench_run(b, 10_000_000, 5)  # warm-up: connections, the checks
                say(f"rpc run x{a.n}")
                rows.append(row("rpc run (sequential)", a.n, *bench_run(b, 1, a.n)))
                for k, win in enumerate(int(x) for x in a.window.split(",")):
                    say(f"rpc window {win} x{a.n}")
                    rows.append(row(f"rpc window {win} (primitives)", a.n,
                                    *bench_window(w, 1_000_000 * (k + 1), a.n, win)))
            finally:
                b.close()
        finally:
            node.terminate()
            node.wait(20)
        # the baseline: the local CLI path, a process per transaction, on its own chain of the same shape
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        target = shutil.which("dualwrite-supra", path=str(Path(sys.executable).parent))
        os.symlink(target, bin_dir / "supra")
        cli_state = tmp_path / "cli.sqlite"
        dw("sim", "init", "--state", str(cli_state), "--dual-write")
        os.environ["DUALWRITE_STATE"] = str(cli_state)
        cb = open_backend(BackendConfig(backend="local", supra_bin=str(bin_dir / "supra")))
        try:
            bench_run(cb, 10_000_000, 2)
            say(f"local x{a.cli_n}")
            base = row("local CLI (baseline)", a.cli_n, *bench_run(cb, 1, a.cli_n))
        finally:
            cb.close()
    for r in rows:
        r["x_baseline"] = round(r["tps"] / base["tps"], 1)
    base["x_baseline"] = 1.0
    rows.append(base)
    if a.json:
        print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, indent=2))
        return
    print(f"writes over RPC vs the local CLI path ({os.cpu_count()} CPUs, client and node on this machine)")
    print(f"{'row':<30}{'txns':>6}{'s':>8}{'tx/s':>9}{'median ms':>11}{'p90 ms':>9}{'x local':>9}")
    for r in rows:
        print(f"{r['name']:<30}{r['txns']:>6}{r['seconds']:>8.2f}{r['tps']:>9.1f}{r['median_ms']:>11.2f}"
              f"{r['p90_ms']:>9.2f}{r['x_baseline']:>9.1f}")


if __name__ == "__main__":
    main()
