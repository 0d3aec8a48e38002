"""A hostile node cannot hold a run: each misbehaviour of a real HTTP server on 127.0.0.1 (tests/hostile_node.py)
against ``dualwrite`` as a subprocess under a hard outer timeout (a regression fails instead of hanging),
checking the exit code and the one line that says what happened."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualwrite import bridge
from dualwrite.backends import BackendConfig, ModuleAddresses, SimBackend
from dualwrite.backends.rpc import RpcBackend, SplitBackend
from dualwrite.demo import make_summary
from dualwrite.errors import ChainChanged
from tests.audit_world import World, sha3
from tests.chain_driver import console_script
from tests.envs import base_env
from tests.hostile_node import OUTER_TIMEOUT_S, HostileNode, Req, dw, one_line
from tests.hostile_node import world  # noqa: F401  (fixture)
from tests.rpc_node import InThreadNode

@pytest.fixture
def node(world: World):
    n = InThreadNode(world.path)
    yield n
    n.stop()


def addrs(node) -> list[str]:
    return ["--lottery-multi-address", node.addresses.lottery_multi, "--lottery-address", node.addresses.lottery]


def on_views(answer):
    return lambda req: answer(req) if req.path.endswith("/view") else None


# -- 1. a whole-answer deadline per request --------------------------------------------------------------


@pytest.mark.parametrize("announce", [True, False], ids=["trickle-with-length", "trickle-endless"])
def test_a_trickling_body_is_a_failed_read_after_the_call_timeout(world, node, announce: bool) -> None:
    def trickle(req: Req) -> bool:
        if announce:
            return req.trickle(0.05)
        req.handler.close_connection = True
        req.handler.head(200, {"Content-Type": "application/json", "x-supra-chain-id": "255"})
        req.handler.pour(lambda: b" ", 0.05)
        return True

    with HostileNode(node.url, on_views(trickle)) as h:
        base = ["--backend", "rpc", "--rpc-url", h.url, *addrs(node), "--call-timeout", "0.5", "--rpc-retries", "1"]
        t0 = time.monotonic()
        p = dw("verify", "1-3", "--jobs", "1", *base)
        took = time.monotonic() - t0
        assert p.returncode == 3, p.stdout + p.stderr
        assert "INCOMPLETE (some lotteries could not be checked)" in p.stdout
        assert "no whole answer within --call-timeout 0.5s" in p.stdout
        assert took < 20, took  # 2 attempts of 0.5 s, then the node is not asked again
        p = dw("verify", "--all", *base)
        line = one_line(p)
        assert p.returncode == 3 and "--call-timeout 0.5s" in line and h.url in line and "(after 2 attempts)" in line


def test_call_timeout_is_a_knob_like_every_other(tmp_path: Path) -> None:
    assert BackendConfig().call_timeout == 30.0
    assert BackendConfig.from_env({"DUALWRITE_CALL_TIMEOUT": "2.5"}).call_timeout == 2.5
    settings = tmp_path / "s.toml"
    settings.write_text("call_timeout = 0\n")
    p = dw("flags", "--backend", "rpc", "--rpc-url", "http://127.0.0.1:1", "--settings", str(settings))
    assert p.returncode == 2 and "call_timeout" in one_line(p)
    p = dw("cutover", "status", "--help")
    assert "--cli-timeout" in p.stdout and "--call-timeout" in p.stdout and "--timeout DURATION" in p.stdout


# -- 2. bounded memory ---------------------------------------------------------------------------------------


def _max_rss_mb(argv: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``argv`` under a fresh Python whose only child it is: its exit, output and peak RSS in MB."""
    probe = ("import json, resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(json.dumps([p.returncode, p.stdout, p.stderr,"
             " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n")
    r = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=base_env(),
                       timeout=OUTER_TIMEOUT_S)
    code, out, err, rss = json.loads(r.stdout)
    return subprocess.CompletedProcess(argv, code, out, err), rss


def test_a_200_mb_view_answer_is_abandoned_at_its_limit(world, node) -> None:
    with HostileNode(node.url, on_views(lambda req: req.huge(200 * 1024 * 1024))) as h:
        p, rss = _max_rss_mb([console_script("dualwrite"), "verify", "--all", "--backend", "rpc", "--rpc-url", h.url,
                              *addrs(node)])
        line = one_line(p)
        assert p.returncode == 3
        assert "(POST rpc/v3/view)" in line and "4 MiB limit" in line and "209,715,200 bytes" in line, line
        assert rss < 200, f"peak RSS {rss:.0f} MB"


def test_an_endless_events_answer_is_abandoned_at_its_limit(world, node) -> None:
    def endless_events(req: Req) -> bool | None:
        return req.endless() if "/events/" in req.path else None

    with HostileNode(node.url, endless_events) as h:
        p, rss = _max_rss_mb([console_script("dualwrite"), "events", "--kind", "legacy", "--json", "--backend", "rpc",
                              "--rpc-url", h.url, *addrs(node)])
        line = one_line(p)
        assert p.returncode == 3 and "events LegacySummaryEvent (GET rpc/v3/events/" in line and "8 MiB" in line
        assert "stopped reading after" in line
        assert rss < 200, f"peak RSS {rss:.0f} MB"


# -- 3. the chain changes mid-run ----------------------------------------------------------------------------


def chain_flips_after(n: int | None):
    """A header rewrite naming chain 7 once the node (``state["h"]``) has answered more than ``state["after"]``
    requests (None: not yet; a test may set it mid-way)."""
    state = {"h": None, "after": n}

    def rewrite(headers: dict[str, str]) -> dict[str, str]:
        if state["after"] is not None and state["h"] is not None and state["h"].requests > state["after"]:
            headers = {k: v for k, v in headers.items() if k.lower() != "x-supra-chain-id"}
            headers["x-supra-chain-id"] = "7"
        return headers

    return state, rewrite


def test_verify_stops_when_the_node_answers_for_another_chain(world, node, tmp_path: Path) -> None:
    state, rewrite = chain_flips_after(4)
    with HostileNode(node.url, rewrite=rewrite) as h:
        state["h"] = h
        report = tmp_path / "r.json"
        p = dw("verify", "1-3", "--jobs", "1", "--report", str(report), "--backend", "rpc", "--rpc-url", h.url,
               *addrs(node))
        line = one_line(p)
        assert p.returncode == 3, p.stdout
        assert "says chain 7, but this run started on chain 255: stopped" in line and h.url in line
        assert "CLEAN" not in p.stdout and "FAILED" not in p.stdout and not report.exists()


def test_a_write_through_the_cli_is_refused_once_the_node_names_another_chain(world, node) -> None:
    flipped = {"on": False}

    def chain_id(req: Req) -> bool | None:
        if flipped["on"] and req.path.endswith("/transactions/chain_id"):
            return req.json(200, 7, {"x-supra-chain-id": "255"})  # the body alone names another chain
        return None

    with HostileNode(node.url, chain_id) as h:
        a = ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery)
        b = SplitBackend(SimBackend(BackendConfig(backend="sim", state=world.path)), RpcBackend(h.url, a))
        try:
            bridge.set_expected(b, 8, sha3(b"eight"))  # chain 255 at the start: sent
            assert b.chain_id == "255"
            flipped["on"] = True
            with pytest.raises(ChainChanged, match="the chain id endpoint says chain 7"):
                bridge.set_expected(b, 9, sha3(b"nine"))
            with pytest.raises(ChainChanged):  # and every later request of this run
                bridge.status(b, 8)
        finally:
            b.close()
    assert bridge.status(world.backend, 8).expected_hash == sha3(b"eight")
    assert bridge.status(world.backend, 9).expected_hash is None  # never sent


def test_the_monitor_keeps_the_chain_it_started_on(world, node, caplog) -> None:
    from dualwrite.monitor.exporter import Monitor

    flipped = {"on": False}

    def rewrite(headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "x-supra-chain-id": "7"} if flipped["on"] else headers

    with HostileNode(node.url, rewrite=rewrite) as h:
        a = ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery)
        mon = Monitor(lambda: RpcBackend(h.url, a), interval=3600, jobs=1, backend_name="rpc")
        try:
            assert mon.check_once()
            good = mon.snapshot
            assert good.checked == 3 and mon.chain_id == "255"
            flipped["on"] = True
            with caplog.at_level(logging.ERROR, logger="dualwrite.monitor"):
                assert not mon.check_once()  # the kept backend sees chain 7
                assert not mon.check_once()  # a fresh backend is held to chain 255 too
            assert mon.snapshot is good and mon.status.last_success is False and mon.status.errors == 2
            msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(msgs) == 2 and all("keeping the last good values" in m and "says chain 7" in m
                                          and "keeps watching chain 255 only" in m for m in msgs), msgs
        finally:
            if mon._backend is not None:
                mon._backend.close()


# -- 4. endless paging ---------------------------------------------------------------------------------------


def event_page(req: Req, cursor: str, height: int = 5) -> bool:
    item = {"event": {"guid": {"creation_number": "0", "account_address": "0x1"}, "sequence_number": "0",
                      "type": req.path.rsplit("/", 1)[-1], "data": {"lottery_id": "1"}},
            "block_height": height, "transaction_hash": "0x" + "ab" * 32}
    return req.json(200, {"data": [item]}, {"x-supra-cursor": cursor, "x-supra-chain-id": "255"})


def test_a_repeated_cursor_stops_events_and_every_scan(world, node) -> None:
    def same_cursor(req: Req) -> bool | None:
        return event_page(req, "c1") if "/events/" in req.path else None

    with HostileNode(node.url, same_cursor) as h:
        base = ["--backend", "rpc", "--rpc-url", h.url, *addrs(node)]
        p = dw("events", "--kind", "legacy", *base)
        line = one_line(p)
        assert p.returncode == 3
        assert "the node gave cursor c1 a second time (it would page forever)" in line
        assert "at block height 5, cursor c1" in line and "--kind legacy --cursor" in line
        p = dw("verify", "--all", *base)  # the legacy listing is an events scan too
        assert p.returncode == 3 and "a second time" in one_line(p)


def test_an_endless_cursor_stops_at_the_page_and_time_budget(world, node) -> None:
    def fresh_cursor(req: Req) -> bool | None:
        if "/events/" not in req.path:
            return None
        req.handler.server.stopping.wait(0.02)
        return event_page(req, f"c{req.n}", height=req.n)

    with HostileNode(node.url, fresh_cursor) as h:
        base = ["--backend", "rpc", "--rpc-url", h.url, *addrs(node)]
        p = dw("events", "--kind", "started", "--events-max-pages", "30", *base)
        line = one_line(p)
        assert p.returncode == 3 and "more than 30 pages (--events-max-pages); stopped after 30 pages" in line
        assert "cursor c" in line and "at block height" in line
        p = dw("events", "--kind", "started", "--events-timeout", "0.5", *base)
        line = one_line(p)
        assert p.returncode == 3 and "longer than 0.5s (--events-timeout)" in line


# -- 5. a Retry-After longer than the budget ----------------------------------------------------------------------


def test_a_retry_after_longer_than_the_budget_says_so(world, node) -> None:
    with HostileNode(node.url, lambda req: req.json(429, {"message": "slow down"},
                                                    {"Retry-After": "100000", "x-supra-chain-id": "255"})) as h:
        p = dw("verify", "--all", "--backend", "rpc", "--rpc-url", h.url, *addrs(node))
        line = one_line(p)
        assert p.returncode == 3
        assert "asks to wait 100000s (Retry-After: 100000)" in line and "longer than the 60s a retry waits" in line
        assert "not retried" in line and "after 8 retries" not in line
        assert h.requests == 1


# -- 6. redirects are not followed, and the error says where they point -----------------------------------------


def test_a_redirect_is_not_followed_and_names_the_url_to_give(world, node) -> None:
    def redirect(req: Req) -> bool:
        return req.json(301, b"", {"Location": f"http://user:pw@127.0.0.1:{h.port}/new{req.path}?key=s3cret"})

    with HostileNode(node.url, redirect) as h:
        p = dw("verify", "--all", "--backend", "rpc", "--rpc-url", h.url, *addrs(node))
        line = one_line(p)
        assert p.returncode == 3
        assert (f"the node answered a redirect (HTTP 301) to http://127.0.0.1:{h.port}/new/rpc/v3/view; redirects are "
                f"not followed: give that URL (--rpc-url http://127.0.0.1:{h.port}/new/)") in line
        assert "pw" not in p.stdout + p.stderr and "s3cret" not in p.stdout + p.stderr
        assert not [s for s in h.seen if "/new/" in s]  # never followed


def test_cutover_apply_stops_when_the_chain_changes_and_sends_nothing_after(world, node, tmp_path: Path) -> None:
    """On sim with its reads over the emulated node: the plan is made on chain 255; mid-apply the node starts
    answering for chain 7; apply stops (exit 3) and no lottery is registered after the change."""
    lotteries = tmp_path / "lotteries.jsonl"
    lotteries.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(4, 12)))
    flip, rewrite = chain_flips_after(None)
    with HostileNode(node.url, rewrite=rewrite) as h:
        flip["h"] = h
        base = ["--state", str(world.path), "--rpc-url", h.url]
        p = dw("cutover", "plan", str(lotteries), "--out", str(tmp_path / "plan.json"), *base)
        assert p.returncode == 0, p.stderr
        flip["after"] = h.requests + 12  # some way into the apply: a few sends go out on chain 255 first
        p = dw("cutover", "apply", str(tmp_path / "plan.json"), "--json", *base)
        assert p.returncode == 3, p.stdout + p.stderr
        assert "says chain 7, but this run started on chain 255" in p.stdout + p.stderr
    registered = [i for i in range(4, 12) if bridge.status(world.backend, i).expected_hash is not None]
    assert 0 < len(registered) < 8 and registered == list(range(4, 4 + len(registered)))  # in order, then stopped


def test_heal_apply_stops_when_the_chain_changes_and_repairs_nothing_after(world, node) -> None:
    """heal --apply on sim with its reads over the emulated node: planned on chain 255; mid-repair the node
    starts answering for chain 7; heal stops (exit 3, one line naming both chains), and the lotteries after
    the change are left as they were (not one error line per lottery while it goes on)."""
    drifted = list(range(4, 12))
    world.finalize(*drifted)
    for i in drifted:
        world.tamper(i, "--set", "tickets_sold=5", "--fix-hash")
    flip, rewrite = chain_flips_after(None)
    with HostileNode(node.url, rewrite=rewrite) as h:
        flip["h"] = h
        base = ["--state", str(world.path), "--rpc-url", h.url]
        p = dw("heal", *map(str, drifted), *base)  # the dry run: the plan's reads, counted
        assert p.returncode == 0 and "lottery 11: field_drift -> repair" in p.stdout, p.stdout + p.stderr
        plan_reads = h.requests
        flip["after"] = h.requests + plan_reads + 12  # a few lotteries into the repair
        p = dw("heal", *map(str, drifted), "--apply", *base)
        assert p.returncode == 3, p.stdout + p.stderr
        said = [ln for ln in (p.stdout + p.stderr).splitlines() if "says chain 7" in ln]
        assert len(said) == 1 and "but this run started on chain 255" in said[0], p.stdout + p.stderr
    healed = [i for i in drifted if world.state_of(i).value == "ok"]
    assert 0 < len(healed) < len(drifted) and healed == drifted[:len(healed)]  # in order, then stopped
