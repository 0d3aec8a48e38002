"""What one ``dualwrite monitor`` cycle costs, and whether a scrape waits for it.

Run: ``python benchmarks/monitor.py [--count 1000] [--scale-count 10000] [--scrapes 200] [--repeat 3]``.

Builds simulator states of ``--count`` and ``--scale-count`` finalised lotteries (five drifted),
then, side by side in this process:

- a monitor cycle (``dualwrite.monitor.run_check``: the flags, mirror and bridge views, then
  ``verify`` over ``all_ids``) against the named baseline ``verify(all_ids)`` alone — the same
  check ``dualwrite verify --all`` runs — at both sizes (ratio cycle/verify, and 10k/1k against
  the ideal linear 10×);
- scrape latency of ``/metrics`` on a live exporter (``Monitor`` on 127.0.0.1) while idle against
  while a ``--scale-count`` cycle runs back to back (p50 / p99 / max): the exporter serves the
  last snapshot, so a scrape never waits for a cycle — only for the GIL.

- over RPC (the ``rpc`` backend, httpx, against the emulated node ``dualwrite sim serve`` in its own
  process, ``--scale-count`` lotteries, jobs 4): the named baseline is a cycle on a fresh backend
  (a full check: every lottery's views, every event page from block 0) against the monitor's later,
  incremental cycles, which keep the backend, read only the new blocks' events and only the
  lotteries they touched (plus pending and failing ones): with nothing new, and after 100 new
  lotteries were finalised.

Every cycle must find exactly the five drifted lotteries. Sim figures: best of ``--repeat``;
RPC figures: best of 2. ``--no-rpc`` skips the RPC part.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dualwrite.audit.verify import Policy, all_ids, verify
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.monitor import Monitor, run_check
from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulated_node import serve  # noqa: E402  (the emulated RPC node, shared by the benchmarks)
from verify import DRIFTED, build_state  # noqa: E402  (the verify benchmark's state builder)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cycle_figures(state: Path, count: int, repeat: int) -> tuple[float, float]:
    b = open_backend(BackendConfig(backend="sim", state=state))
    try:
        snap = run_check(b)
        assert snap.checked == count and len(snap.mismatch_ids) == len([i for i in DRIFTED if i <= count]), snap
        t_verify = best(lambda: verify(b, all_ids(b), policy=Policy(allow_pending=True)), repeat)
        t_cycle = best(lambda: run_check(b), repeat)
    finally:
        b.close()
    return t_cycle, t_verify


def scrape_latencies(mon: Monitor, n: int, until_checks: int = 0, limit_s: float = 120) -> list[float]:
    """``n`` scrapes, and more until the monitor has finished ``until_checks`` checks (bounded by ``limit_s``)."""
    host, port = mon.address
    out: list[float] = []
    deadline = time.monotonic() + limit_s
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as c:
        while len(out) < n or (mon.status.checks < until_checks and time.monotonic() < deadline):
            t0 = time.perf_counter()
            r = c.get("/metrics")
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200 and "dual_write_mismatch 5.0" in r.text
    return out


def rpc_figures(state: Path, count: int) -> None:
    with serve(state) as n:
        cfg = BackendConfig(backend="rpc", rpc_url=n.url, addresses=n.addresses)
        fresh_times, fresh_pages = [], 0
        for _ in range(2):
            t0 = time.perf_counter()
            b = open_backend(cfg)
            try:
                snap = run_check(b, jobs=4)
                fresh_pages = b.index.pages
            finally:
                b.close()
            fresh_times.append(time.perf_counter() - t0)
            assert snap.checked == count and snap.mismatch == len(DRIFTED), snap
        mon = Monitor(lambda: open_backend(cfg), jobs=4, full_every=1000)
        assert mon.check_once() and mon.snapshot.full  # the first cycle: full, like the baseline
        quiet, busy = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            assert mon.check_once() and not mon.snapshot.full
            quiet.append((time.perf_counter() - t0, mon.last_rechecked))
        next_id = count + 1
        for _ in range(2):  # a busy minute: 100 new lotteries finalised since the last cycle
            with Chain(state) as c:
                for i in range(next_id, next_id + 100):
                    c.finalize(make_summary(i))
            next_id += 100
            t0 = time.perf_counter()
            assert mon.check_once() and not mon.snapshot.full
            busy.append((time.perf_counter() - t0, mon.last_rechecked))
        assert mon.snapshot.checked == next_id - 1 and mon.snapshot.mismatch == len(DRIFTED)
        mon.stop()
    f = min(fresh_times)
    q, b = min(quiet), min(busy)
    print(f"\nover RPC (sim serve, {count} lotteries, jobs 4)          {'cycle s':>8}  {'lotteries read':>14}  {'vs baseline':>11}")
    print(f"  baseline: full cycle, fresh backend ({fresh_pages} event pages) {f:>8.2f}  {count:>14}  {1:>10.2f}x")
    print(f"  monitor: incremental, nothing new            {q[0]:>8.2f}  {q[1]:>14}  {q[0] / f:>10.3f}x")
    print(f"  monitor: incremental, 100 newly finalised    {b[0]:>8.2f}  {b[1]:>14}  {b[0] / f:>10.3f}x")
    print("  (every --full-every N cycles, default 60, a cycle is full again: the baseline's cost)")

def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--scale-count", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-rpc", action="store_true")
    a = ap.parse_args()
    logging.getLogger("dualwrite.monitor").setLevel(logging.ERROR)  # the drifted ids, once per cycle, are not figures
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="dw-bench-monitor-") as tmp:
        small, big = Path(tmp) / "small.sqlite", Path(tmp) / "big.sqlite"
        t0 = time.perf_counter()
        build_state(small, a.count)
        build_state(big, a.scale_count)
        print(f"built {a.count} + {a.scale_count} lotteries in {time.perf_counter() - t0:.1f}s")

        rows = [(n, *cycle_figures(s, n, a.repeat)) for n, s in ((a.count, small), (a.scale_count, big))]
        print(f"\n{'lotteries':>10}  {'monitor cycle s':>15}  {'baseline verify --all s':>23}  {'cycle/verify':>12}")
        for n, tc, tv in rows:
            print(f"{n:>10}  {tc:>15.3f}  {tv:>23.3f}  {tc / tv:>11.2f}x")
        (n1, c1, _), (n2, c2, _) = rows
        print(f"growth {n1} -> {n2}: {c2 / c1:.1f}x (linear: {n2 / n1:.1f}x); "
              f"{n2 / c2:,.0f} lotteries/s per cycle")

        cfg = BackendConfig(backend="sim", state=big)
        idle = Monitor(lambda: open_backend(cfg), interval=3600)  # one check, then idle for the run
        idle.start("127.0.0.1", 0)
        try:
            assert idle.wait_checks(1, 120)
            quiet = scrape_latencies(idle, a.scrapes)
        finally:
            idle.stop()
        busy = Monitor(lambda: open_backend(cfg), interval=0)  # cycles back to back
        busy.start("127.0.0.1", 0)
        try:
            assert busy.wait_checks(1, 120)
            c0 = busy.status.checks
            loaded = scrape_latencies(busy, a.scrapes, until_checks=c0 + 2)
            cycles = busy.status.checks - c0
        finally:
            busy.stop(120)
        print(f"\nscrape /metrics (ms; idle {len(quiet)}, busy {len(loaded)} scrapes)  {'p50':>7} {'p99':>7} {'max':>7}")
        for label, xs in (("baseline: exporter idle", quiet), (f"during {a.scale_count}-lottery cycles", loaded)):
            print(f"  {label:<34} {pct(xs, .5) * 1e3:>7.2f} {pct(xs, .99) * 1e3:>7.2f} {max(xs) * 1e3:>7.2f}")
        print(f"  p50 ratio busy/idle: {pct(loaded, .5) / pct(quiet, .5):.1f}x; max busy "
              f"{max(loaded) * 1e3:.1f} ms vs a cycle of {rows[1][1] * 1e3:.0f} ms "
              f"({cycles} cycles ran during the scrapes): a scrape never waits for a cycle")
        if not a.no_rpc:
            rpc_figures(big, a.scale_count)


if __name__ == "__main__":
    main()
