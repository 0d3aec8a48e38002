"""What the cutover costs: plan, apply (against bare ``set`` calls), and resume after a kill at 50 %.

Run: ``python benchmarks/cutover.py [--plan-count 10000] [--count 1000] [--local-count 1000] [--cli-sample 40]``.

1. **plan** ``--plan-count`` summaries over RPC (``--backend rpc`` against the emulated node
   ``dualwrite sim serve``, httpx) and on ``sim`` (20 % already archived — a diff each —, 10 % already
   set — a status read each —, the rest to register), in-process and as the ``dualwrite cutover plan``
   command; baseline: ``dualwrite hash`` of the same file (reading and hashing alone). Goal ≤ 15 s.
   Also on ``local`` with nothing on chain yet (only the bulk reads: the pending list, the finalised pages).
2. **apply** ``--count`` planned sets on ``sim`` and ``--local-count`` on ``local`` (``dualwrite-supra`` as
   ``supra``, a process per chain call), each on a fresh chain, against the same number of bare
   ``set_expected_hash`` calls on the same backend (``bridge.set_expected``: the floor, no re-check,
   no journal) and against the shell loop the README used to show, ``dualwrite set ID HASH`` per
   lottery (timed on ``--cli-sample`` lotteries, scaled). Goal: apply ≤ 1.2× the bare calls. On ``local``
   also with the reads (plan, re-checks) over HTTP from ``sim serve``, the writes through ``supra``.
   The journal's ``started`` records are synced ahead in groups of 64 on in-process backends (one fsync
   per lottery on the others): see ``dualwrite/cutover/journal.py``.
3. **resume**: ``dualwrite cutover apply`` killed with SIGKILL right after its send number count/2
   (sent, not journalled), then the resumed run timed; the chain's Started events prove nothing was
   sent twice.

It prints a table of figures and the ratios, and removes everything it made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from dualwrite import bridge
from dualwrite.backends import BackendConfig, ModuleAddresses, open_backend
from dualwrite.cutover import Plan, apply, make_plan
from dualwrite.cutover.apply import KILL_AT_ENV
from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from dualwrite.sim.install import install_supra_script

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulated_node  # noqa: E402  (the emulated RPC node, shared by the benchmarks)

KNOBS = ("DUALWRITE_BACKEND", "DUALWRITE_STATE", "DUALWRITE_SETTINGS", "DUALWRITE_SUPRA_BIN", KILL_AT_ENV)


def h(i: int) -> str:
    return hashlib.sha3_256(make_summary(i).to_bcs()).hexdigest()


def init_chain(path: Path, *, archived: range = range(0), preset: range = range(0)) -> None:
    chain = Chain(path)
    try:
        for fn, profile in (("history::init_history", "lottery_multi"), ("history_bridge::init_bridge", "lottery"),
                            ("legacy_bridge::enable_legacy_mirror", "lottery_multi")):
            chain.run(f"{profile}::{fn}", [], profile=profile)
        chain.run("lottery_multi::legacy_bridge::init_dual_write", ["bool:true", "bool:false"], profile="lottery_multi")
        for i in [*archived, *preset]:
            chain.run("lottery_multi::legacy_bridge::set_expected_hash", [f"u64:{i}", f"hex:{h(i)}"],
                      profile="lottery_multi")
        for i in archived:
            chain.finalize(make_summary(i))
    finally:
        chain.close()


def started(path: Path) -> Counter:
    chain = Chain(path)
    try:
        return Counter(int(e["data"]["lottery_id"]) for e in chain.events("ArchiveDualWriteStartedEvent"))
    finally:
        chain.close()


def write_jsonl(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, n + 1)))
    return path


def dw(*args: str, env: dict | None = None, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "dualwrite", *args], capture_output=True, text=True,
                       env=env or dict(os.environ), check=False)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        raise SystemExit(f"dualwrite {' '.join(args)}: exit {p.returncode}\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")
    return dt, p


@contextmanager
def serve(state: Path):
    """``dualwrite sim serve`` on ``state`` (its own process): the emulated RPC node; yields (url, address options)."""
    with emulated_node.serve(state) as n:
        yield n.url, ["--lottery-multi-address", n.addresses.lottery_multi, "--lottery-address", n.addresses.lottery]


def cfg_for(backend: str, state: Path, supra: Path | None) -> BackendConfig:
    if backend == "sim":
        return BackendConfig(backend="sim", state=state)
    return BackendConfig(backend="local", supra_bin=str(supra))


def use_state(state: Path) -> None:
    os.environ["DUALWRITE_STATE"] = str(state)  # the local supra (and every dualwrite child) inherits it


def bench_plan(work: Path, n: int, supra: Path, rows: list) -> dict:
    state = work / "plan.sqlite"
    archived, preset = range(1, n // 5 + 1), range(n // 5 + 1, n // 5 + n // 10 + 1)
    init_chain(state, archived=archived, preset=preset)
    src = write_jsonl(work / "plan-input.jsonl", n)
    use_state(state)
    t_hash, _ = dw("hash", "--json", str(src))
    b = open_backend(cfg_for("sim", state, None))
    try:
        t = time.perf_counter()
        p = make_plan(b, [str(src)])
        t_lib = time.perf_counter() - t
    finally:
        b.close()
    assert p.counts["done"] == len(archived) and p.counts["already_set"] == len(preset), p.counts
    t_cli, _ = dw("cutover", "plan", str(src), "--out", str(work / "plan10k.json"))
    with serve(state) as (url, addrs):
        t_rpc, _ = dw("cutover", "plan", str(src), "--backend", "rpc", "--rpc-url", url, *addrs,
                      "--out", str(work / "plan10k-rpc.json"))
    rpc_plan = Plan.load(work / "plan10k-rpc.json")
    assert rpc_plan.counts == p.counts, (rpc_plan.counts, p.counts)
    rows += [("plan", "rpc", n, t_rpc, "`dualwrite cutover plan --backend rpc` -> sim serve (httpx)"),
             ("plan", "sim", n, t_lib, "in-process (make_plan)"),
             ("plan", "sim", n, t_cli, "`dualwrite cutover plan` (process)"),
             ("hash (baseline)", "sim", n, t_hash, "`dualwrite hash --json` (process)")]
    # local, nothing on chain yet: only the bulk reads go through supra processes
    lstate = work / "plan-local.sqlite"
    init_chain(lstate)
    use_state(lstate)
    t_local, _ = dw("cutover", "plan", str(src), "--backend", "local", "--supra-bin", str(supra),
                    "--out", str(work / "plan10k-local.json"))
    rows.append(("plan", "local", n, t_local, "`dualwrite cutover plan`, nothing on chain (bulk reads only)"))
    return {"lib": t_lib, "cli": t_cli, "hash": t_hash, "local": t_local, "rpc": t_rpc}


def bench_apply(work: Path, backend: str, n: int, supra: Path, cli_sample: int, rows: list) -> dict:
    src = write_jsonl(work / f"apply-{backend}.jsonl", n)
    # the floor: bare set_expected_hash calls on the same backend, no re-check, no journal
    bare_state = work / f"bare-{backend}.sqlite"
    init_chain(bare_state)
    use_state(bare_state)
    b = open_backend(cfg_for(backend, bare_state, supra))
    try:
        t = time.perf_counter()
        for i in range(1, n + 1):
            bridge.set_expected(b, i, bytes.fromhex(h(i)))
        t_bare = time.perf_counter() - t
    finally:
        b.close()
    # the shell loop: `dualwrite set ID HASH` per lottery (a sample, scaled to n)
    loop_state = work / f"loop-{backend}.sqlite"
    init_chain(loop_state)
    use_state(loop_state)
    extra = [] if backend == "sim" else ["--backend", "local", "--supra-bin", str(supra)]
    t = time.perf_counter()
    for i in range(1, cli_sample + 1):
        dw("set", str(i), "0x" + h(i), *extra)
    t_loop = (time.perf_counter() - t) / cli_sample * n
    # the cutover: plan, then apply with the re-check and the journal (library, then the command)
    st = work / f"apply-{backend}.sqlite"
    init_chain(st)
    use_state(st)
    b = open_backend(cfg_for(backend, st, supra))
    try:
        t = time.perf_counter()
        plan = make_plan(b, [str(src)]).write(work / f"plan-{backend}.json")
        t_plan = time.perf_counter() - t
        t = time.perf_counter()
        res = apply(b, plan, journal=work / f"plan-{backend}.journal.jsonl")
        t_apply = time.perf_counter() - t
    finally:
        b.close()
    assert res.count()["sent"] == n, res.count()
    assert set(started(st).values()) == {1} and len(started(st)) == n
    out = {"bare": t_bare, "loop": t_loop, "plan": t_plan, "apply": t_apply}
    if backend == "local":
        # the same, with the plan's and the re-checks' reads over HTTP from the emulated node
        st2 = work / "apply-local-rpc.sqlite"
        init_chain(st2)
        use_state(st2)
        with serve(st2) as (url, addrs):
            rcfg = BackendConfig(backend="local", supra_bin=str(supra), rpc_url=url,
                                 addresses=ModuleAddresses(
                                     addrs[1], addrs[3]))
            b = open_backend(rcfg)
            try:
                t = time.perf_counter()
                plan = make_plan(b, [str(src)], cfg=rcfg).write(work / "plan-local-rpc.json")
                t_plan_rpc = time.perf_counter() - t
                t = time.perf_counter()
                res = apply(b, plan, journal=work / "plan-local-rpc.journal.jsonl")
                t_apply_rpc = time.perf_counter() - t
            finally:
                b.close()
        assert res.count()["sent"] == n, res.count()
        assert set(started(st2).values()) == {1} and len(started(st2)) == n
        rows += [("cutover plan", "local+rpc", n, t_plan_rpc, "reads over HTTP from sim serve"),
                 ("cutover apply", "local+rpc", n, t_apply_rpc, "re-check over HTTP, set through supra")]
        out.update(plan_rpc=t_plan_rpc, apply_rpc=t_apply_rpc)
    rows += [("bare set_expected_hash", backend, n, t_bare, "bridge.set_expected loop (floor)"),
             ("`dualwrite set` loop", backend, n, t_loop, f"a process per lottery ({cli_sample} timed, scaled)"),
             ("cutover plan", backend, n, t_plan, "make_plan + write"),
             ("cutover apply", backend, n, t_apply, "status re-read + set + journal per lottery (library)")]
    return out


def bench_resume(work: Path, backend: str, n: int, supra: Path, rows: list) -> dict:
    st = work / f"resume-{backend}.sqlite"
    init_chain(st)
    use_state(st)
    src = write_jsonl(work / f"resume-{backend}.jsonl", n)
    extra = [] if backend == "sim" else ["--backend", "local", "--supra-bin", str(supra)]
    plan = work / f"resume-{backend}.json"
    dw("cutover", "plan", str(src), "--out", str(plan), *extra)
    half = n // 2
    t_first, p = dw("cutover", "apply", str(plan), *extra, env={**os.environ, KILL_AT_ENV: f"submitted:{half}"},
                    check=False)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    t_resume, p = dw("cutover", "apply", str(plan), "--json", *extra)
    counts = json.loads(p.stdout)["counts"]
    events = started(st)
    repeated = sum(1 for v in events.values() if v > 1)
    assert counts.get("landed_earlier") == 1 and counts.get("settled_earlier") == half - 1, counts
    assert len(events) == n and repeated == 0
    rows += [("apply killed at 50 %", backend, half, t_first, "SIGKILL after send #%d, before its journal record" % half),
             ("resume", backend, n - half, t_resume,
              f"{counts.get('settled_earlier')} skipped by the journal, 1 found on chain, "
              f"{counts.get('sent')} sent; repeated: {repeated}")]
    return {"first": t_first, "resume": t_resume, "repeated": repeated}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan-count", type=int, default=10_000)
    ap.add_argument("--count", type=int, default=1000, help="apply/resume on sim")
    ap.add_argument("--local-count", type=int, default=1000, help="apply/resume on local (0: skip local)")
    ap.add_argument("--cli-sample", type=int, default=40, help="`dualwrite set` processes timed per backend")
    args = ap.parse_args()
    for k in KNOBS:
        os.environ.pop(k, None)
    work = Path(tempfile.mkdtemp(prefix="dw-bench-cutover-"))
    rows: list = []
    try:
        bindir = work / "bin"
        supra = install_supra_script(bindir, "supra")
        res_plan = bench_plan(work, args.plan_count, supra, rows)
        res = {"sim": bench_apply(work, "sim", args.count, supra, args.cli_sample, rows)}
        resume = {"sim": bench_resume(work, "sim", args.count, supra, rows)}
        if args.local_count:
            res["local"] = bench_apply(work, "local", args.local_count, supra, args.cli_sample, rows)
            resume["local"] = bench_resume(work, "local", args.local_count, supra, rows)
    finally:
        os.environ.pop("DUALWRITE_STATE", None)
        shutil.rmtree(work, ignore_errors=True)

    print(f"cutover benchmark — Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"{'what':<24} {'backend':<8} {'n':>6} {'seconds':>9} {'ms/lottery':>11}  note")
    for what, backend, n, secs, note in rows:
        print(f"{what:<24} {backend:<8} {n:>6} {secs:>9.3f} {secs / n * 1000:>11.3f}  {note}")
    print()
    p = res_plan
    print(f"plan {args.plan_count} over RPC on the emulator: {p['rpc']:.2f} s as a command (goal <= 15 s: "
          f"{'met' if p['rpc'] <= 15 else 'MISSED'}); on sim {p['lib']:.2f} s in-process, {p['cli']:.2f} s as a command; "
          f"{p['rpc'] / p['hash']:.2f}x (rpc) and {p['cli'] / p['hash']:.2f}x (sim) `dualwrite hash` of the same file; "
          f"local with bulk reads only {p['local']:.2f} s")
    for backend, r in res.items():
        ratio = r["apply"] / r["bare"]
        total = (r["plan"] + r["apply"]) / r["bare"]
        print(f"apply on {backend}: {ratio:.2f}x the bare set_expected_hash calls (plan + apply {total:.2f}x; "
              f"goal <= 1.2x: {'met' if ratio <= 1.2 else 'MISSED'}); {r['apply'] / r['loop']:.3f}x the "
              f"`dualwrite set` shell loop (plan + apply {(r['plan'] + r['apply']) / r['loop']:.3f}x)")
    if "apply_rpc" in res.get("local", {}):
        r = res["local"]
        print(f"apply on local with reads over RPC: {r['apply_rpc'] / r['bare']:.2f}x the bare calls (plan + apply "
              f"{(r['plan_rpc'] + r['apply_rpc']) / r['bare']:.2f}x; goal <= 1.2x: "
              f"{'met' if r['apply_rpc'] / r['bare'] <= 1.2 else 'MISSED'})")
    for backend, r in resume.items():
        print(f"resume on {backend}: {r['resume']:.2f} s to finish the second half, {r['resume'] / r['first']:.2f}x the "
              f"killed run's first half (both `dualwrite cutover apply` processes); {r['repeated']} lotteries sent twice")
    return 0


if __name__ == "__main__":
    sys.exit(main())
