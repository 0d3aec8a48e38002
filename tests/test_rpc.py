"""The RPC read path against the emulated node: real loopback servers, real httpx, no mock transport.

Every response a test's client receives is checked against ``tests/rpc_schema.json`` (written from
supra-cli.md, "RPC node"), so the emulator and the client cannot drift together.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dualwrite import abort_codes, bridge
from dualwrite.audit.verify import Policy, verify
from dualwrite.backends import BackendConfig, ModuleAddresses, open_backend
from dualwrite.backends.cli_output import find_abort
from dualwrite.backends.events import Checkpoint, EventIndex, event_type
from dualwrite.backends.rpc import RpcBackend, RpcClient, SplitBackend, redact_url
from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.errors import BackendUnavailable, InputError, MoveAbort
from dualwrite.sim.server import Faults, abort_message, parse_fault
from tests.audit_world import World, sha3
from tests.rpc_node import _every_response_checked  # noqa: F401  (autouse)
from tests.rpc_node import CHECKED, InThreadNode, ServeProcess, addr_env, check_response, schema_hook, validate


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path / "state.sqlite")
    yield w
    w.close()


@pytest.fixture
def node(world: World):
    n = InThreadNode(world.path)
    yield n
    n.stop()


def client_for(node: InThreadNode, **kw) -> RpcClient:
    c = RpcClient(node.url, **kw)
    schema_hook(c)
    return c


def rpc_backend(node: InThreadNode, **kw) -> RpcBackend:
    b = RpcBackend(node.url, ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery), **kw)
    schema_hook(b.client)
    return b


def addr_args(node) -> list[str]:
    return ["--lottery-multi-address", node.addresses.lottery_multi, "--lottery-address", node.addresses.lottery]


def dw(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def drifted_world(w: World) -> None:
    """Ten lotteries: finalised, mirrored, some tampered, one pending, one legacy-only (missing_history)."""
    w.init()
    for i in range(1, 11):
        w.expect(i, sha3(make_summary(i).to_bcs()))
    w.finalize(*range(1, 11))
    w.tamper(3, "--set", "tickets_sold=5", "--fix-hash")
    w.tamper(4, "--delete")
    w.tamper(5, "--bytes", "00")
    w.expect(12, sha3(make_summary(12).to_bcs()))  # pending, not finalised
    w.import_legacy(20, make_summary(20).to_bcs())
    w.call("history::rollback_legacy_summary_admin", "u64:20")  # legacy copy only


# -- the node's endpoints ------------------------------------------------------------------------------


def test_every_endpoint_answers_the_node_shapes_and_headers(world: World, node: InThreadNode) -> None:
    drifted_world(world)
    lm, lo = node.addresses.lottery_multi, node.addresses.lottery
    CHECKED.clear()
    with httpx.Client(base_url=node.url, event_hooks={"response": [check_response]}) as h:
        for v in ("v1", "v3"):
            r = h.post(f"/rpc/{v}/view", json={"function": f"{lm}::history::get_summary", "type_arguments": [],
                                               "arguments": ["1"]})
            assert r.status_code == 200
            validate("LotterySummary", r.json()["result"][0])
            assert r.json()["result"][0] == make_summary(1).to_move_json()
            assert h.get(f"/rpc/{v}/transactions/chain_id").json() == 255
            assert int(r.headers["x-supra-chain-id"]) == 255
        r = h.post("/rpc/v3/view", json={"function": f"{lo}::history_bridge::get_summary", "type_arguments": [],
                                         "arguments": ["1"]})
        validate("OptionLegacySummary", r.json()["result"][0])
        r = h.post("/rpc/v3/view", json={"function": f"{lm}::legacy_bridge::dual_write_status",
                                         "type_arguments": [], "arguments": ["12"]})
        validate("DualWriteStatus", r.json()["result"][0])
        assert r.json()["result"][0]["expected_hash"]["vec"] == ["0x" + sha3(make_summary(12).to_bcs()).hex()]

        latest = h.get("/rpc/v3/block").json()
        assert latest["header"]["height"] == world.chain.version()
        assert latest["header"]["timestamp"]["microseconds_since_unix_epoch"] == world.chain.block()["timestamp_us"]
        txn_hash = world.chain.block(5)["txn_hash"]
        b5 = h.get("/rpc/v3/block/height/5").json()
        assert [t["hash"] for t in b5["transactions"]] == [txn_hash]
        assert b5["header"]["parent"] == h.get("/rpc/v3/block/height/4").json()["header"]["hash"]
        for v in ("v1", "v3"):
            t = h.get(f"/rpc/{v}/transactions/{txn_hash}").json()
            assert t["status"] == "Success" and t["hash"] == txn_hash
            assert t["block_header"]["height"] == 5 and t["header"]["sender"]["Move"] == lm
            a = h.get(f"/rpc/{v}/accounts/{lm}").json()
            # the module account's key is rotated: its authentication key is its key's, not its address
            from dualwrite.sim.keys import authentication_key, chain_seed

            assert a["authentication_key"] == authentication_key(chain_seed(world.chain.store), lm) != lm
            assert a["sequence_number"] > 0
        ev = h.get(f"/rpc/v3/events/{lo}::history_bridge::LegacySummaryEvent", params={"limit": 3})
        assert len(ev.json()["data"]) == 3 and ev.headers["x-supra-cursor"]

        # errors: {"message"} with the node's status codes
        assert h.get("/rpc/v3/block/height/99999").status_code == 404
        assert h.get("/rpc/v3/transactions/0x" + "ab" * 32).status_code == 404
        assert h.get("/rpc/v3/accounts/0x1234").status_code == 404
        assert h.get("/rpc/v3/nothing").status_code == 404
        assert h.get("/rpc/v3/view").status_code == 405
        assert h.get(f"/rpc/v3/events/{lo}::history_bridge::LegacySummaryEvent",
                     params={"limit": 101}).status_code == 400
        assert h.get(f"/rpc/v3/events/{lo}::history_bridge::LegacySummaryEvent",
                     params={"start": "not-a-cursor"}).status_code == 400
        assert h.post("/rpc/v3/view", content=b"{not json").status_code == 400
        r = h.post("/rpc/v3/view", json={"function": f"{lm}::history::get_summary", "type_arguments": [],
                                         "arguments": [1, 2]})
        assert r.status_code == 400 and "NUMBER_OF_ARGUMENTS_MISMATCH" in r.json()["message"]
        r = h.post("/rpc/v3/view", json={"function": f"{lm}::nope::f", "type_arguments": [], "arguments": []})
        assert r.status_code == 400 and "LINKER_ERROR" in r.json()["message"]
    assert {"ViewResponse", "ChainId", "Block", "BlockWithTransactions", "Transaction", "Account",
            "EventsResponse", "ErrResp"} <= set(CHECKED)


def test_a_view_abort_is_400_with_the_node_text_and_becomes_move_abort(world: World, node: InThreadNode) -> None:
    world.init()
    lm = node.addresses.lottery_multi
    with httpx.Client(base_url=node.url, event_hooks={"response": [check_response]}) as h:
        r = h.post("/rpc/v3/view", json={"function": f"{lm}::history::list_finalized", "type_arguments": [],
                                         "arguments": ["0", "5000"]})
    assert r.status_code == 400
    validate("ViewAbort", r.json())
    assert r.json()["message"].startswith(
        f"Failed to execute view function: ABORTED with sub status {abort_codes.E_PAGINATION_LIMIT} "
        f"at location Module {lm}::history")
    b = rpc_backend(node)
    try:
        with pytest.raises(MoveAbort) as e:
            bridge.list_finalized(b, 0, 5000)
        assert (e.value.code, e.value.name, e.value.module) == (0x1501, "E_PAGINATION_LIMIT", f"{lm}::history")
        assert bridge.get_summary(b, 77) is None  # the table abort (E_KEY_NOT_FOUND) means "no summary"
    finally:
        b.close()


@pytest.mark.parametrize("code,module", [(c, "0x" + "ab" * 32 + "::legacy_bridge") for c in abort_codes.LOTTERY_CODES]
                         + [(abort_codes.E_NOT_AUTHORIZED, "0x" + "cd" * 32 + "::history_bridge"),
                            (abort_codes.E_KEY_NOT_FOUND, "vrf_hub::table")])
def test_every_abort_code_survives_the_node_text(code: int, module: str) -> None:
    text = abort_message(MoveAbort(code, module=module, detail="some detail (with parentheses)"))
    validate("ViewAbort", {"message": text})
    e = find_abort(text)
    assert (e.code, e.module, e.name) == (code, module, MoveAbort(code, module=module).name)
    assert e.name is not None


# -- events: paging, cursor, checkpoint -----------------------------------------------------------------


def test_events_page_to_the_end_with_the_cursor(world: World, node: InThreadNode) -> None:
    world.init()
    for i in range(250):
        world.expect(i, sha3(bytes([i % 256])))
    c = client_for(node)
    etype = event_type(ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery), "started")
    try:
        pages = list(c.events(etype))
        assert [len(d) for d, _ in pages] == [100, 100, 50]
        assert [bool(cur) for _, cur in pages] == [True, True, False]
        ids = [int(e["event"]["data"]["lottery_id"]) for d, _ in pages for e in d]
        assert ids == list(range(250))
        assert [int(e["event"]["sequence_number"]) for d, _ in pages for e in d] == list(range(250))
        # the cursor resumes exactly after the page it came with
        first, cursor = c.events_page(etype, limit=7)
        rest, _ = c.events_page(etype, limit=5, cursor=cursor)
        assert [e["event"]["data"]["lottery_id"] for e in rest] == [str(i) for i in range(7, 12)]
        # start_height inclusive, end_height exclusive
        h10 = first[0]["block_height"] + 10
        window, _ = c.events_page(etype, start_height=h10, end_height=h10 + 3, limit=100)
        assert [e["block_height"] for e in window] == [h10, h10 + 1, h10 + 2]
    finally:
        c.close()


def test_checkpoint_resume_reads_only_new_events(world: World, node: InThreadNode, tmp_path: Path) -> None:
    world.init()
    for i in range(1, 151):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(*range(1, 151))
    addrs = ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery)
    cp = tmp_path / "events.checkpoint"
    c = client_for(node)
    try:
        with pytest.raises(InputError, match="no such checkpoint"):
            EventIndex(c, addrs, checkpoint=cp)
        assert not cp.exists()  # a read never creates it
        first = EventIndex.init_checkpoint(c, addrs, cp)
        assert first.pages == 4  # 150 Started (2 pages) + 150 legacy (2 pages)
        assert len(first.legacy_ids()) == 150
        height = world.chain.version()
        assert Checkpoint.load(cp).next_height == height + 1

        world.finalize(*[s.id for s in [make_summary(151)]])
        world.expect(152, sha3(b"later"))
        again = EventIndex(c, addrs, checkpoint=cp)
        again.scan()
        assert again.pages == 2  # one short page per kind: only the new blocks were read
        assert again.legacy_ids()[-1] == 151 and len(again.legacy_ids()) == 151
        assert again.registered_at(152, sha3(b"later")) is not None
        assert again.registered_at(152, sha3(b"other")) is None  # not the expectation in force
        again.save()
        assert Checkpoint.load(cp).next_height == world.chain.version() + 1

        other = RpcClient("http://127.0.0.1:1/")
        try:
            with pytest.raises(InputError, match="made for"):
                EventIndex(other, addrs, checkpoint=cp)
        finally:
            other.close()
    finally:
        c.close()


# -- the CLI over RPC ---------------------------------------------------------------------------------


def report_core(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("started_at", "duration_s")}


def test_verify_all_over_rpc_finds_missing_history_and_matches_sim(world: World, node: InThreadNode) -> None:
    drifted_world(world)
    code, out, err = dw("verify", "--all", "--json", "--backend", "rpc", "--rpc-url", node.url, *addr_args(node))
    assert code == 1, err
    doc = json.loads(out)
    states = {r["lottery_id"]: r["state"] for r in doc["lotteries"]}
    assert states[20] == "missing_history"  # only in history_bridge: found through its LegacySummaryEvents
    assert states[3] == "field_drift" and states[4] == "missing_legacy" and states[5] == "corrupt_legacy"
    assert states[12] == "pending"
    # the same lotteries through the in-process simulator give the same verdicts
    code2, out2, _ = dw("verify", *map(str, states), "--json", "--state", str(world.path))
    sim = {r["lottery_id"]: r["state"] for r in json.loads(out2)["lotteries"]}
    assert sim == states and code2 == code


def test_pending_grace_over_rpc_counts_from_the_block_time(world: World, node: InThreadNode) -> None:
    world.init()
    world.expect(2, sha3(make_summary(2).to_bcs()))
    args = ["--backend", "rpc", "--rpc-url", node.url, *addr_args(node)]
    code, out, _ = dw("verify", "2", "--allow-pending", "--pending-grace", "2h", "--json", *args)
    assert code == 0 and "within the grace" in json.loads(out)["lotteries"][0]["note"]
    assert dw("sim", "clock", "--advance", "3h", "--state", str(world.path))[0] == 0
    code, out, _ = dw("verify", "2", "--allow-pending", "--pending-grace", "2h", "--json", *args)
    row = json.loads(out)["lotteries"][0]
    assert code == 1 and row["passed"] is False
    assert re.search(r"pending for 3h00m\d\ds, over the 2h00m00s grace", row["note"]), row["note"]
    assert dw("verify", "2", "--allow-pending", "--pending-grace", "4h", *args)[0] == 0


def test_the_rpc_backend_is_read_only_and_needs_addresses(world: World, node: InThreadNode) -> None:
    world.init()
    code, out, err = dw("set", "1", "ab" * 32, "--backend", "rpc", "--rpc-url", node.url, *addr_args(node))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "read-only" in line and "podman" in line and "local" in line
    code, out, err = dw("heal", "--apply", "--backend", "rpc", "--rpc-url", node.url, *addr_args(node))
    assert code == 2 and "read-only" in err and len(err.strip().splitlines()) == 1
    code, _, err = dw("flags", "--backend", "rpc", "--rpc-url", node.url)
    assert code == 2 and "--lottery-multi-address and --lottery-address" in err and len(err.strip().splitlines()) == 1
    code, _, err = dw("flags", "--backend", "rpc")
    assert code == 2 and "needs --rpc-url" in err
    for cmd in (["flags"], ["pending"], ["status", "1"], ["diff", "1"]):
        code, out, err = dw(*cmd, "--backend", "rpc", "--rpc-url", node.url, *addr_args(node))
        assert code in (0, 1) and f"rpc (RPC node {node.url}" in out, (cmd, out, err)


def test_provider_headers_are_sent_and_never_printed(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(1)
    secret = "sekrit-" + "x" * 20
    with ServeProcess(world.path, "--require-header", f"X-Api-Key: {secret}") as srv:
        addrs = ["--lottery-multi-address", world.chain.addresses.lottery_multi,
                 "--lottery-address", world.chain.addresses.lottery]
        base = ["--backend", "rpc", "--rpc-url", srv.url, *addrs]
        code, out, err = dw("verify", "1", *base)
        assert code == 3 and "401" in out + err
        report = tmp_path / "r.json"
        code, out, err = dw("verify", "1", "--report", str(report), *base, "--rpc-header", f"X-Api-Key: {secret}")
        assert code == 0, out + err
        assert "X-Api-Key (values hidden)" in out
        env = addr_env(world.chain.addresses, DUALWRITE_RPC_HEADERS=f"X-Api-Key: {secret}\nX-Other: 1")
        from tests.chain_driver import console_script

        p = subprocess.run([console_script("dualwrite"), "verify", "1", "--json", "--backend", "rpc", "--rpc-url",
                            srv.url], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        for text in (out, err, report.read_text(), p.stdout, p.stderr):
            assert secret not in text


def test_urls_are_printed_without_credentials() -> None:
    assert "sekrit" not in repr(BackendConfig(rpc_headers=("X-Api-Key: sekrit",)))
    assert redact_url("https://user:pw@node.example:8443/base/?key=abc#x") == "https://node.example:8443/base/"
    with pytest.raises(InputError, match="http:// or https://"):
        RpcClient("ftp://127.0.0.1/")


def test_reads_over_http_writes_through_the_cli(world: World, node: InThreadNode, tmp_path: Path) -> None:
    """--backend local --rpc-url: the (simulated) Supra CLI signs, the node answers the reads."""
    from dualwrite.sim.install import install_supra_script

    world.init()
    supra = install_supra_script(tmp_path / "bin", "supra")
    cfg = BackendConfig(backend="local", supra_bin=str(supra), rpc_url=node.url,
                        addresses=ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery))
    import os

    os.environ["DUALWRITE_STATE"] = str(world.path)  # what the installed CLI's chain is
    try:
        b = open_backend(cfg)
        try:
            assert isinstance(b, SplitBackend) and b.name == "local"
            assert f"reads over RPC node {node.url}" in b.describe()
            schema_hook(b.reader.client)
            h = sha3(make_summary(9).to_bcs())
            bridge.set_expected(b, 9, h)
            assert bridge.status(b, 9).expected_hash == h
            before = b.reader.client.requests
            assert bridge.pending(b) == [9]
            assert b.reader.client.requests == before + 1  # the read went over HTTP
            rep = verify(b, [9], policy=Policy(allow_pending=True))
            assert rep.checked[0].diff.pending_since is not None
        finally:
            b.close()
        cli_cfg = BackendConfig(backend="local", supra_bin=str(supra), rpc_url=node.url, reads="cli",
                                addresses=cfg.addresses)
        b = open_backend(cli_cfg)
        try:
            assert not isinstance(b, SplitBackend)  # --reads cli: the old way
        finally:
            b.close()
    finally:
        os.environ.pop("DUALWRITE_STATE", None)


# -- fault drills ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_faults_do_not_change_the_report(world: World) -> None:
    drifted_world(world)
    addrs = ["--lottery-multi-address", world.chain.addresses.lottery_multi,
             "--lottery-address", world.chain.addresses.lottery]
    reports = []
    port = str(_closed_port())  # the same URL each time, so the reports can be equal to the byte
    for faults in ([], ["--fault", "503=20%", "--fault", "latency=50ms", "--fault-seed", "7"],
                   ["--fault", "drop=10%", "--fault", "429=10%", "--fault", "retry-after=0", "--fault-seed", "3"]):
        with ServeProcess(world.path, "--port", port, *faults) as srv:
            code, out, err = dw("verify", "--all", "--json", "--jobs", "4", "--backend", "rpc", "--rpc-url", srv.url,
                                *addrs)
            assert code == 1, err
            reports.append(report_core(json.loads(out)))
    assert reports[1] == reports[0] and reports[2] == reports[0]
    assert reports[0]["counts"]["unchecked"] == 0


def test_retries_honour_retry_after_and_give_up_on_other_4xx(world: World) -> None:
    world.init()
    with InThreadNode(world.path, Faults(share_429=1.0, retry_after=0)) as n:
        c = RpcClient(n.url, retries=3)
        try:
            with pytest.raises(Exception, match="HTTP 429 after 3 retries"):
                c.view(f"{n.addresses.lottery_multi}::legacy_bridge::is_enabled", [])
            assert c.requests == 4 and c.retried == 3
        finally:
            c.close()
    with InThreadNode(world.path, Faults(share_429=1.0, retry_after=1)) as n:
        c = RpcClient(n.url, retries=1)
        try:
            import time

            t0 = time.monotonic()
            with pytest.raises(Exception, match="HTTP 429"):
                c.view(f"{n.addresses.lottery_multi}::legacy_bridge::is_enabled", [])
            assert time.monotonic() - t0 >= 1.0  # it waited the Retry-After before asking again
        finally:
            c.close()
    with InThreadNode(world.path) as n:
        c = RpcClient(n.url, retries=5)
        try:
            with pytest.raises(InputError):
                c.view(f"{n.addresses.lottery_multi}::legacy_bridge::is_enabled", ["1"])  # a 400: no retry
            assert c.requests == 1
        finally:
            c.close()
    with pytest.raises(InputError, match="unknown kind"):
        parse_fault("teapot=1", Faults())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_node_down_exits_3_naming_the_url(world: World) -> None:
    world.init()
    url = f"http://127.0.0.1:{_closed_port()}"
    addrs = ["--lottery-multi-address", world.chain.addresses.lottery_multi,
             "--lottery-address", world.chain.addresses.lottery]
    code, out, err = dw("verify", "--all", "--backend", "rpc", "--rpc-url", url, *addrs)
    assert code == 3 and url in err and "CLEAN" not in out
    code, out, err = dw("verify", "1-3", "--backend", "rpc", "--rpc-url", url, *addrs)
    assert code == 3 and url in out and "CLEAN" not in out
    b = RpcBackend(url, ModuleAddresses(world.chain.addresses.lottery_multi, world.chain.addresses.lottery),
                   retries=1)
    try:
        with pytest.raises(BackendUnavailable, match=re.escape(url)):
            bridge.flags(b)
    finally:
        b.close()


# -- sim serve and sim clock, as processes and commands ------------------------------------------------------


def test_sim_serve_prints_its_url_first_and_stops_on_signals(world: World) -> None:
    world.init()
    for sig in (signal.SIGINT, signal.SIGTERM):
        srv = ServeProcess(world.path)
        try:
            with httpx.Client(base_url=srv.url) as h:
                assert h.get("/rpc/v3/transactions/chain_id").json() == 255
        finally:
            assert srv.stop(sig) == 0
    missing = world.path.parent / "typo.sqlite"
    code, out, err = dw("sim", "serve", "--state", str(missing))
    assert code == 2 and "no such simulator state" in err and not missing.exists()


def test_sim_clock_shows_and_advances(world: World) -> None:
    world.init()
    code, out, _ = dw("sim", "clock", "--json", "--state", str(world.path))
    before = json.loads(out)
    code, out, _ = dw("sim", "clock", "--advance", "1h30m", "--json", "--state", str(world.path))
    after = json.loads(out)
    assert code == 0 and after["offset_s"] == before["offset_s"] + 5400
    assert after["latest_block"]["height"] == before["latest_block"]["height"] + 1
    ts = after["latest_block"]["timestamp"]["microseconds_since_unix_epoch"]
    assert ts >= before["latest_block"]["timestamp"]["microseconds_since_unix_epoch"] + 5400 * 10**6
    validate("BlockHeaderInfo", after["latest_block"])
    world.expect(1, sha3(b"x"))  # the next transaction's block is after the advanced clock
    assert world.chain.block()["timestamp_us"] > ts
    assert dw("sim", "clock", "--advance", "soon", "--state", str(world.path))[0] == 2


# -- dualwrite events ------------------------------------------------------------------------------------


def test_events_command_over_rpc_filters_pages_and_resumes(world: World, node: InThreadNode, tmp_path: Path) -> None:
    world.init()
    for i in range(1, 131):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(*range(1, 131))
    base = ["--backend", "rpc", "--rpc-url", node.url, *addr_args(node)]
    code, out, err = dw("events", "--json", *base)
    assert code == 0, err
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert len(rows) == 130 * 4  # started, legacy, completed, finalized: across several pages of each
    assert [r["block_height"] for r in rows] == sorted(r["block_height"] for r in rows)
    first_final = [r["kind"] for r in rows if r["lottery_id"] == 1]
    assert first_final == ["started", "legacy", "completed", "finalized"]
    code, out, _ = dw("events", "--json", "--lottery", "7", "--kind", "completed", *base)
    (row,) = [json.loads(ln) for ln in out.splitlines()]
    assert row["kind"] == "completed" and row["lottery_id"] == 7
    assert row["data"]["archive_hash"] == "0x" + sha3(make_summary(7).to_bcs()).hex()
    # a table for people, naming the backend
    code, out, _ = dw("events", "--lottery", "7", *base)
    assert out.startswith(f"backend: rpc (RPC node {node.url}") and "completed" in out and "legacy" in out
    # --limit stops mid-stream and says how to resume; the cursor continues exactly there
    code, out, err = dw("events", "--json", "--kind", "legacy", "--limit", "105", *base)
    assert len(out.splitlines()) == 105
    cursor = re.search(r"--cursor (\S+)\)", err)[1]
    code, out, err = dw("events", "--json", "--kind", "legacy", "--cursor", cursor, *base)
    assert [json.loads(ln)["lottery_id"] for ln in out.splitlines()] == list(range(106, 131))
    height = int(re.search(r"--from-height (\d+)", err)[1])
    assert height == world.chain.version() + 1
    # from a height: only what came after
    world.finalize(131)
    code, out, _ = dw("events", "--json", "--from-height", str(height), *base)
    assert {json.loads(ln)["lottery_id"] for ln in out.splitlines()} == {131}
    assert dw("events", "--cursor", cursor, *base)[0] == 2  # a cursor without its one kind
    code, _, err = dw("events", "--backend", "local", "--supra-bin", "/bin/true")
    assert code == 2 and "cannot read events" in err and "--rpc-url" in err


def test_events_checkpoint_is_explicit_and_incremental(world: World, node: InThreadNode, tmp_path: Path) -> None:
    world.init()
    world.expect(1, sha3(make_summary(1).to_bcs()))
    cp = tmp_path / "cp.json"
    base = ["--backend", "rpc", "--rpc-url", node.url, *addr_args(node)]
    code, _, err = dw("events", "--events-checkpoint", str(cp), *base)
    assert code == 2 and "--init-checkpoint" in err and not cp.exists()
    code, out, _ = dw("events", "--init-checkpoint", str(cp), *base)
    assert code == 0 and "1 registration," in out
    world.finalize(1)
    code, out, _ = dw("events", "--json", "--events-checkpoint", str(cp), *base)
    assert {json.loads(ln)["kind"] for ln in out.splitlines()} == {"legacy", "completed", "finalized"}
    code, out, _ = dw("events", "--json", "--events-checkpoint", str(cp), *base)
    assert out == ""  # nothing new since the checkpoint moved on
    assert Checkpoint.load(cp).legacy == {1: world.chain.version()}
    world.finalize(3)
    world.expect(4, sha3(b"four"))
    code, out, _ = dw("events", "--json", "--lottery", "3", "--events-checkpoint", str(cp), *base)
    assert {json.loads(ln)["lottery_id"] for ln in out.splitlines()} == {3}
    assert 4 in Checkpoint.load(cp).started  # learnt from the whole window, whatever was printed
    # verify reads the registrations it learnt (the pending age) and moves it on too
    world.expect(2, sha3(make_summary(2).to_bcs()))
    code, out, _ = dw("verify", "2", "--allow-pending", "--pending-grace", "1h", "--json",
                      "--events-checkpoint", str(cp), *base)
    assert code == 0 and "within the grace" in out
    assert 2 in Checkpoint.load(cp).started


@pytest.mark.slow
def test_events_follow_prints_new_events_until_interrupted(world: World, tmp_path: Path) -> None:
    from tests.chain_driver import console_script

    world.init()
    with ServeProcess(world.path) as srv:
        env = addr_env(world.chain.addresses)
        p = subprocess.Popen([console_script("dualwrite"), "events", "--json", "--follow", "--poll", "0.1",
                              "--backend", "rpc", "--rpc-url", srv.url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            for i in (1, 2, 3):
                world.expect(i, sha3(bytes([i])))
                line = _readline(p, 20)
                assert json.loads(line)["lottery_id"] == i
        finally:
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
        assert p.returncode in (0, 130), err
        assert "Traceback" not in err


def _readline(p: subprocess.Popen, deadline_s: float) -> str:
    import selectors
    import time

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline_s
    try:
        while time.monotonic() < end:
            if sel.select(timeout=end - time.monotonic()):
                return p.stdout.readline()
    finally:
        sel.close()
    raise AssertionError("no event line in time")
