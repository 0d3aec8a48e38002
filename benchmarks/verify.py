"""How fast ``verify`` checks lotteries, per backend, with 1 and 8 jobs, and how it scales.

Run: ``python benchmarks/verify.py [--count 1000] [--cli-count N] [--scale-count 10000]``.

It builds one simulator state (``--count`` finalised lotteries, five of them drifted),
then times ``dualwrite.audit.verify.verify`` — the call behind ``dualwrite verify`` — on:

- ``sim``: the embedded simulator in-process;
- ``local``: ``dualwrite-supra`` installed as ``supra`` (a real process per chain call);
- ``podman``: ``podman exec`` into a warm container of the simulator image whose
  /supra/configs is the benchmark's state directory (skipped, with a note, without podman);

- ``rpc``: the read-only ``rpc`` backend (httpx) against the emulated node ``dualwrite sim serve``
  (a separate process: client and node share the machine's cores) over ``--rpc-count``
  lotteries (default ``--scale-count``), ``--jobs 1`` and ``--jobs 16``, against ``local``;

each with ``--jobs 1`` and ``--jobs 8`` (subprocess backends verify ``--cli-count``
lotteries, default ``--count``: two CLI calls per lottery make them slow). Every run must
find exactly the five drifted lotteries. Then ``verify --all`` (paging through
``list_finalized`` included) on ``sim`` at ``--count`` and at ``--scale-count`` lotteries,
against the ideal linear ratio, and the same over RPC (``--jobs`` 4, the CLI's default; the legacy
archive listed from its events, as ``verify --all`` does). It prints a table and the ratios, and removes everything
it made (state, container). Sim figures are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dualwrite.audit.verify import VerifyReport, all_ids, verify
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.backends.base import Backend
from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from dualwrite.sim.install import install_supra_script
from dualwrite.sim.tamper import tamper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulated_node import serve  # noqa: E402  (the emulated RPC node, shared by the benchmarks)

REPO = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = REPO / ".ci" / "containers.conf"
STATE_NAME = "dualwrite-sim.sqlite"  # what the image's supra opens under $SUPRA_HOME=/supra/configs
DRIFTED = {3: {"assignments": ["status=7"], "fix_hash": True}, 5: {"new_bytes": "00"},
           8: {"non_canonical": True, "fix_hash": True}, 13: {"delete": True},
           21: {"finalized_at": 1}}


@dataclass
class Row:
    backend: str
    jobs: int
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def build_state(path: Path, count: int) -> None:
    """init, enable the mirror, finalise ``count`` lotteries (each its own transaction), drift five."""
    chain = Chain(path)
    try:
        for fn, profile in (("history::init_history", "lottery_multi"), ("history_bridge::init_bridge", "lottery"),
                            ("legacy_bridge::enable_legacy_mirror", "lottery_multi")):
            chain.run(f"{profile}::{fn}", [], profile=profile)
        chain.run("lottery_multi::legacy_bridge::init_dual_write", ["bool:true", "bool:false"],
                  profile="lottery_multi")
        for i in range(1, count + 1):
            chain.finalize(make_summary(i))
        for lid, how in DRIFTED.items():
            if lid <= count:
                tamper(chain, lid, **how)
    finally:
        chain.close()


def expected_failing(count: int) -> set[int]:
    return {i for i in DRIFTED if i <= count}


def timed(backend: Backend, ids: list[int], jobs: int, count: int) -> tuple[float, VerifyReport]:
    t0 = time.perf_counter()
    rep = verify(backend, ids, jobs=jobs)
    dt = time.perf_counter() - t0
    failing = {c.diff.lottery_id for c in rep.failing}
    if rep.unchecked or failing != expected_failing(count):
        raise SystemExit(f"{backend.describe()} jobs {jobs}: wrong result: failing {sorted(failing)}, "
                         f"unchecked {[u.error for u in rep.unchecked][:3]}")
    return dt, rep


def best_of(repeat: int, backend: Backend, ids: list[int], jobs: int, count: int) -> float:
    return min(timed(backend, ids, jobs, count)[0] for _ in range(repeat))


def verify_all(b: Backend, n: int, jobs: int = 1) -> float:
    """``verify --all`` in one call: every id of list_finalized (paged by 1000), then the diffs."""
    t = time.perf_counter()
    every = all_ids(b)
    assert len(every) == n
    rep = verify(b, every, jobs=jobs)
    assert {c.diff.lottery_id for c in rep.failing} == expected_failing(n)
    return time.perf_counter() - t


@contextmanager
def node(state: Path) -> Iterator[Backend]:
    """``dualwrite sim serve`` on ``state`` (its own process) and an ``rpc`` backend reading from it."""
    with serve(state) as n:
        b = open_backend(BackendConfig(backend="rpc", rpc_url=n.url, addresses=n.addresses))
        b.node_pid = n.pid
        try:
            yield b
        finally:
            b.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    if CONTAINERS_CONF.is_file() and "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


@contextmanager
def warm_container(configs: Path) -> Iterator[str]:
    """A long-running simulator container with ``configs`` at /supra/configs; removed afterwards."""
    from dualwrite.sim.image import DEFAULT_TAG, build_image

    env = podman_env()
    os.environ.setdefault("CONTAINERS_CONF", env.get("CONTAINERS_CONF", ""))
    if subprocess.run(["podman", "image", "exists", DEFAULT_TAG], env=env, check=False).returncode != 0:
        print(f"  building {DEFAULT_TAG} ...", flush=True)
        build_image("podman", DEFAULT_TAG)
    name = f"dw-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "run", "-d", "--name", name, "-v", f"{configs}:/supra/configs",
                    "-e", "SUPRA_HOME=/supra/configs", DEFAULT_TAG, "/supra/idle"],
                   env=env, check=True, capture_output=True, text=True, timeout=120)
    try:
        yield name
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=env, capture_output=True, timeout=120,
                       check=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000, help="lotteries to verify (default 1000)")
    p.add_argument("--cli-count", type=int, help="lotteries for the subprocess backends (default: --count)")
    p.add_argument("--scale-count", type=int, default=10000, help="the larger sim run for scaling (default 10000)")
    p.add_argument("--rpc-count", type=int, help="lotteries for the rpc backend (default: --scale-count)")
    p.add_argument("--repeat", type=int, default=3, help="sim timing runs, best kept (default 3)")
    p.add_argument("--skip", action="append", default=[], choices=["local", "podman", "scale", "rpc"],
                   help="leave a part out (repeatable)")
    a = p.parse_args()
    cli_count = min(a.cli_count or a.count, a.count)
    print(f"verify benchmark: python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{a.count} lotteries ({cli_count} on subprocess backends), five drifted", flush=True)
    rows: list[Row] = []
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="dualwrite-bench-verify-"))
    for k in ("DUALWRITE_BACKEND", "DUALWRITE_SUPRA_ABORT_STYLE", "DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS",
              "DUALWRITE_SIM_LOTTERY_ADDRESS"):
        os.environ.pop(k, None)
    try:
        configs = tmp / "configs"
        configs.mkdir()
        state = configs / STATE_NAME
        t0 = time.perf_counter()
        build_state(state, a.count)
        print(f"  built {a.count} lotteries in {time.perf_counter() - t0:.1f}s", flush=True)
        ids = list(range(1, a.count + 1))
        cli_ids = ids[:cli_count]

        sim = open_backend(BackendConfig(backend="sim", state=state))
        try:
            for jobs in (1, 8):
                rows.append(Row("sim", jobs, a.count, best_of(a.repeat, sim, ids, jobs, a.count)))
                print(f"  sim jobs {jobs}: {rows[-1].rate:,.0f}/s", flush=True)
        finally:
            sim.close()

        if "local" not in a.skip:
            bindir = tmp / "bin"
            install_supra_script(bindir, "supra")
            os.environ["DUALWRITE_STATE"] = str(state)  # the local supra inherits it
            local = open_backend(BackendConfig(backend="local", supra_bin=str(bindir / "supra")))
            try:
                for jobs in (1, 8):
                    dt, _ = timed(local, cli_ids, jobs, cli_count)
                    rows.append(Row("local", jobs, cli_count, dt, "dualwrite-supra as supra"))
                    print(f"  local jobs {jobs}: {rows[-1].rate:,.1f}/s", flush=True)
            finally:
                local.close()
                os.environ.pop("DUALWRITE_STATE", None)

        if "podman" not in a.skip:
            if shutil.which("podman") is None:
                notes.append("podman: skipped, podman is not on PATH")
                print("  podman: skipped (podman is not on PATH)", flush=True)
            else:
                with warm_container(configs) as name:
                    pod = open_backend(BackendConfig(backend="podman", container=name))
                    try:
                        for jobs in (1, 8):
                            dt, _ = timed(pod, cli_ids, jobs, cli_count)
                            rows.append(Row("podman", jobs, cli_count, dt, f"podman exec {name}"))
                            print(f"  podman jobs {jobs}: {rows[-1].rate:,.1f}/s", flush=True)
                    finally:
                        pod.close()

        scale: list[tuple[int, float]] = []
        rpc_scale: list[tuple[int, float]] = []
        big = tmp / "scale.sqlite"
        rpc_count = a.rpc_count or a.scale_count
        if "scale" not in a.skip or ("rpc" not in a.skip and rpc_count == a.scale_count):
            t0 = time.perf_counter()
            build_state(big, a.scale_count)
            print(f"  built {a.scale_count} lotteries in {time.perf_counter() - t0:.1f}s", flush=True)
        if "scale" not in a.skip:
            for path, n in ((state, a.count), (big, a.scale_count)):
                b = open_backend(BackendConfig(backend="sim", state=path))
                try:
                    scale.append((n, min(verify_all(b, n) for _ in range(a.repeat))))
                finally:
                    b.close()
        if "rpc" not in a.skip:
            rpc_state = big
            if rpc_count != a.scale_count:
                rpc_state = tmp / "rpc.sqlite"
                build_state(rpc_state, rpc_count)
            with node(rpc_state) as b:
                for jobs in (1, 16):
                    node0, client0 = cpu_seconds(b.node_pid), time.process_time()
                    dt, _ = timed(b, list(range(1, rpc_count + 1)), jobs, rpc_count)
                    node_ms = (cpu_seconds(b.node_pid) - node0) * 1000 / rpc_count
                    client_ms = (time.process_time() - client0) * 1000 / rpc_count
                    rows.append(Row("rpc", jobs, rpc_count, dt, "httpx -> sim serve"))
                    notes.append(f"rpc jobs {jobs}: CPU per lottery (two views): client {client_ms:.2f} ms, "
                                 f"node {node_ms:.2f} ms")
                    print(f"  rpc jobs {jobs}: {rows[-1].rate:,.0f}/s ({notes[-1].split(': ', 1)[1]})", flush=True)
            for path, n in ((state, a.count), (rpc_state, rpc_count)):
                with node(path) as b:
                    rpc_scale.append((n, min(verify_all(b, n, jobs=4) for _ in range(a.repeat))))
                    print(f"  rpc verify --all {n}: {rpc_scale[-1][1]:.2f}s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{'backend':<8} {'jobs':>4} {'lotteries':>9} {'seconds':>9} {'lotteries/s':>12}")
    for r in rows:
        print(f"{r.backend:<8} {r.jobs:>4} {r.count:>9} {r.seconds:>9.3f} {r.rate:>12,.1f}")
    for n, t in scale:
        print(f"{'sim all':<8} {1:>4} {n:>9} {t:>9.3f} {n / t:>12,.1f}   (verify --all: paging + diff)")
    for n, t in rpc_scale:
        print(f"{'rpc all':<8} {4:>4} {n:>9} {t:>9.3f} {n / t:>12,.1f}   (verify --all over RPC: paging, events, diff)")
    print()
    by = {(r.backend, r.jobs): r for r in rows}
    for name in ("sim", "local", "podman"):
        if (name, 1) in by and (name, 8) in by:
            print(f"{name}: jobs 8 / jobs 1 throughput = {by[(name, 8)].rate / by[(name, 1)].rate:.2f}x")
    if ("rpc", 1) in by and ("rpc", 16) in by:
        print(f"rpc: jobs 16 / jobs 1 throughput = {by[('rpc', 16)].rate / by[('rpc', 1)].rate:.2f}x")
    if ("rpc", 1) in by and ("local", 1) in by:
        best_local = max(r.rate for r in rows if r.backend == "local")
        best_rpc = max(r.rate for r in rows if r.backend == "rpc")
        print(f"rpc / local (the CLI path), jobs 1: {by[('rpc', 1)].rate / by[('local', 1)].rate:,.0f}x; "
              f"best against best: {best_rpc / best_local:,.0f}x (goal: >= 100x)")
    if len(rpc_scale) == 2:
        (n1, t1), (n2, t2) = rpc_scale
        print(f"rpc scaling: {n2}/{n1} lotteries took {t2 / t1:.2f}x the time (ideal linear: {n2 / n1:.0f}x); "
              f"verify --all on {n2}: {t2:.1f}s (goal: <= 20s)")
    if (("sim", 1) in by) and (("local", 1) in by):
        print(f"sim in-process / local per lottery: {by[('sim', 1)].rate / by[('local', 1)].rate:,.0f}x faster")
    if len(scale) == 2:
        (n1, t1), (n2, t2) = scale
        print(f"sim scaling: {n2}/{n1} lotteries took {t2 / t1:.2f}x the time (ideal linear: {n2 / n1:.0f}x)")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
