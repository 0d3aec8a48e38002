"""The corpus of real-looking Supra CLI / node outputs (``tests/cli_outputs/``), one case per form of supra-cli.md.

Each case is what a ``supra`` printed: ``stdout``, ``stderr``, ``exit``, and ``case.json``
(the form, ``view`` or ``run``, what dualwrite must make of it). Every case runs twice:
through the parser (``parse_view`` / ``parse_run``), and end to end through
``dualwrite --backend local`` as a real process with a replaying ``supra`` on PATH: exit 4 with
the code and name for aborts, 3 for other failures, 0 for committed transactions, never a
traceback. Then the re-send rule: a ``supra`` that reports "Timeout … might still succeed"
once leads to exactly one transaction.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dualwrite.backends.cli_output import find_abort, first_json, parse_run, parse_view
from dualwrite.errors import BackendError, ExitCode, MoveAbort, SubmissionUnknown, TransactionFailed
from dualwrite.sim.abort_styles import ABORT_STYLES, run_abort_message, view_abort_message
from dualwrite.sim.chain import Chain
from tests.chain_driver import console_script
from tests.envs import base_env

CORPUS = Path(__file__).parent / "cli_outputs"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.json").is_file())
WHERE = "local backend, test"
H9 = "0x" + "ab" * 32


def load(name: str) -> tuple[dict[str, Any], str, str, int]:
    d = CORPUS / name
    meta = json.loads((d / "case.json").read_text())
    return meta, (d / "stdout").read_text(), (d / "stderr").read_text(), int((d / "exit").read_text())


def test_corpus_covers_every_form() -> None:
    """Each form of supra-cli.md's "What it prints" has its case (a guard against a corpus that shrinks)."""
    assert len(CASES) >= 30
    forms = " ".join(load(n)[0]["form"] for n in CASES)
    for needle in ("v11.7", "v11.3.6", "VMError", "BAD_MAGIC", "unexpected end of input", "General", "gas prompt",
                   "[debug]", "v6", "block_header", "abort code", "might still succeed", "committed on chain",
                   "placeholder", "{\"Result\"", "{\"Error\"", "{\"message\"} with exit 0", "status Fail",
                   "status Pending"):
        assert needle in forms, needle


# -- through the parser -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_corpus_through_the_parser(name: str) -> None:
    meta, stdout, stderr, code = load(name)
    expect = meta["expect"]
    parse = parse_view if meta["command"] == "view" else parse_run
    if expect["exit"] == 0:
        out = parse(stdout, stderr, code, where=WHERE)
        if meta["command"] == "view":
            assert [int(x) for x in out[0]] == expect["pending"]
        else:
            assert out.status == "Success" and out.hash == expect["hash"]
            assert out.block_height == expect.get("block_height")
        return
    with pytest.raises(Exception) as info:
        parse(stdout, stderr, code, where=WHERE)
    e = info.value
    assert getattr(e, "exit_code", None) == expect.get("parser_exit", expect["exit"]), f"{name}: {type(e).__name__}: {e}"
    assert "\n" not in str(e)
    if "code" in expect:
        assert isinstance(e, MoveAbort)
        assert (e.code, e.name) == (expect["code"], expect["name"])
        if expect["module"]:
            assert e.module.endswith("::" + expect["module"]), e.module
        else:
            assert e.module == ""
        if "detail" in expect:
            assert e.detail == expect["detail"]
    else:
        assert not isinstance(e, MoveAbort)
        assert expect["text"] in str(e)
    if expect.get("parser_exit", expect["exit"]) == 3:
        assert isinstance(e, BackendError)
    if name == "run-timeout-might-still-succeed":
        assert isinstance(e, SubmissionUnknown) and e.txn_hash == "0x" + "5e" * 32
    if name == "run-fail-out-of-gas":
        assert isinstance(e, TransactionFailed) and e.status == "Fail"


def test_find_abort_is_the_one_reader_of_abort_text() -> None:
    """The same function reads an RPC node's HTTP error body (JSON, escaped) and the CLI's text."""
    body = json.dumps({"message": "Failed to execute view function: ABORTED with sub status 6914 at location "
                                  "Module 0x1::legacy_bridge at code offset 3 in function f"})
    a = find_abort(body)
    assert (a.code, a.name, a.module) == (0x1B02, "E_HISTORY_MISMATCH", "0x1::legacy_bridge")
    a = find_abort(json.dumps({"message": 'Move abort in 0x1::legacy_bridge: E_HISTORY_MISMATCH(0x1b02): the "x" (y)'}))
    assert a.detail == 'the "x" (y)'
    assert find_abort("Move abort in 0x1::aptos_account: abort code 117").code == 117
    assert find_abort("ABORTED with sub status 0x1b02").code == 0x1B02  # hex is read as hex
    # the detail keeps its parentheses, and stops where the wrapper around it closes
    a = find_abort("Command Aborted Reason(Simulation failed with status: Move abort in 0x1::legacy_bridge: "
                   "E_HISTORY_MISMATCH(0x1b02): hash (sha3) differs (see runbook)) trailing")
    assert a.detail == "hash (sha3) differs (see runbook)"
    # fields between sub_status and location, one of them a string holding "location:" and braces
    a = find_abort('VMError { major_status: ABORTED, sub_status: Some(257), message: Some("x }) location: '
                   'Module(ModuleId { address: 0x2, name: Identifier(\\"decoy\\") })"), exec_state: None, '
                   'location: Module(ModuleId { address: 00ab, name: Identifier("history_bridge") }), indices: [] }')
    assert (a.code, a.name, a.module) == (0x101, "E_NOT_AUTHORIZED", "0x00ab::history_bridge")
    for not_abort in ("Move VM error: BAD_MAGIC and message None", 'Some("unexpected end of input")',
                      "VMError { major_status: FAILED_TO_DESERIALIZE_ARGUMENT, sub_status: None }",
                      "Executed successfully", ""):
        assert find_abort(not_abort) is None, not_abort


def test_first_json_prefers_the_document_that_ends_the_output() -> None:
    assert first_json('[debug] args [1,2]\n{"result": [3]}\n') == {"result": [3]}
    assert first_json("Chain_id = 6\n[\n  1\n]\n") == [1]
    assert first_json("[debug] only [1] here") == [1]  # no better candidate: the first that decodes
    assert first_json("no json at all [yes/no] >") is None


def test_output_nested_deeper_than_json_reads_is_a_backend_failure_not_a_crash() -> None:
    for junk in ("[" * 50_000, "[1, " * 20_000, '{"a":' * 5_000 + "1", '{"message": ' + "[" * 5_000):
        assert first_json(junk) is None
        assert find_abort(junk) is None
        with pytest.raises(BackendError) as e:
            parse_view(junk, "", 0, where=WHERE)
        assert "unreadable view output" in str(e.value) and len(str(e.value)) < 400
        with pytest.raises(BackendError):
            parse_run(junk, "", 0, where=WHERE)


# -- the simulator prints what operators meet -----------------------------------------------------


def test_sim_view_abort_default_is_the_v11_7_node_form(tmp_path: Path) -> None:
    state = tmp_path / "chain.sqlite"
    assert dualwrite(["sim", "init", "--state", str(state)], {}).returncode == 0
    env = base_env(DUALWRITE_STATE=str(state))
    p = subprocess.run([console_script("dualwrite-supra"), "move", "tool", "view", "--function-id",
                        "lottery_multi::history::get_summary", "--args", "u64:99"],
                       capture_output=True, text=True, env=env, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    message = json.loads(p.stdout)["message"]
    c = Chain(state)
    try:
        lm = c.addresses.lottery_multi
    finally:
        c.close()
    assert message.startswith("Failed to execute view function: ABORTED with sub status 2 at location Module ")
    a = find_abort(message)
    assert (a.code, a.name) == (2, "E_KEY_NOT_FOUND") and a.module.endswith("::table")
    assert lm  # the chain has its addresses; history's own aborts name them (below)
    p = subprocess.run([console_script("dualwrite-supra"), "move", "tool", "view", "--function-id",
                        "lottery_multi::history::list_finalized", "--args", "u64:0", "u64:1001"],
                       capture_output=True, text=True, env=env, timeout=60, check=False)
    message = json.loads(p.stdout)["message"]
    assert message == f"Failed to execute view function: ABORTED with sub status {0x1501} at location Module {lm}::history"
    bad = subprocess.run([console_script("dualwrite-supra"), "move", "tool", "view", "--function-id",
                          "lottery_multi::legacy_bridge::dual_write_flags"], capture_output=True, text=True,
                         env={**env, "DUALWRITE_SUPRA_ABORT_STYLE": "nope"}, timeout=60, check=False)
    assert bad.returncode == 1 and "DUALWRITE_SUPRA_ABORT_STYLE='nope'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("style", ABORT_STYLES)
def test_every_abort_style_reads_back(style: str) -> None:
    e = MoveAbort(0x101, module="0x9b1f::history_bridge", detail='caller (0x1) is not "admin"')
    for text in (view_abort_message(e, style), run_abort_message(e, style)):
        a = find_abort(text)
        assert a is not None and a.code == 0x101, text
        if style != "node-v11.3" or text.startswith("Command"):
            assert (a.name, a.module) == ("E_NOT_AUTHORIZED", "0x9b1f::history_bridge"), text


# -- end to end: dualwrite --backend local with a replaying supra ---------------------------------

REPLAY = """#!/bin/sh
# a supra that prints one recorded case (tests/cli_outputs/<case>): stdout, stderr, exit code
printf '%s\\n' "$*" >> "$REPLAY_LOG"
cat "$REPLAY_CASE/stdout"
cat "$REPLAY_CASE/stderr" >&2
exit "$(cat "$REPLAY_CASE/exit")"
"""


@pytest.fixture(scope="module")
def replay_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("replay-bin")
    (d / "supra").write_text(REPLAY)
    (d / "supra").chmod(0o755)
    return d


def dualwrite(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], capture_output=True, text=True,
                          env=base_env(**env), timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_corpus_end_to_end_through_local(name: str, replay_bin: Path, tmp_path: Path) -> None:
    meta, *_ = load(name)
    expect = meta["expect"]
    log = tmp_path / "calls.log"
    env = {"PATH": f"{replay_bin}{os.pathsep}{os.environ['PATH']}", "REPLAY_CASE": str(CORPUS / name),
           "REPLAY_LOG": str(log)}
    args = ["pending"] if meta["command"] == "view" else ["set", "9", H9]
    p = dualwrite([*args, "--backend", "local", "--json", "--retries", "0", "--timeout", "5"], env)
    why = f"{name}: exit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
    assert "Traceback" not in p.stderr + p.stdout, why
    assert p.returncode == expect["exit"], why
    calls = log.read_text().splitlines()
    if p.returncode == ExitCode.OK:
        out = json.loads(p.stdout)
        if meta["command"] == "view":
            assert out == expect["pending"], why
        else:
            assert out["status"] == "Success" and out["transaction_hash"] == expect["hash"], why
            assert out["block_height"] == expect.get("block_height"), why
        return
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualwrite: error: "), why
    if "code" in expect:
        assert f"{expect['name']} ({expect['code']:#x})" in lines[0], why
        if expect["module"]:
            assert f"::{expect['module']}" in lines[0], why
    else:
        assert expect["text"] in lines[0], why
    if meta["command"] == "run":
        assert [c for c in calls if c.startswith("move tool run")] == [calls[0]], why  # never sent twice


# -- the re-send rule -----------------------------------------------------------------------------

LOST_REPORT = """#!{python}
# a supra over dualwrite-supra whose first `run` reports the CLI's wait timeout instead of its outcome;
# with LOST_COMMITS=1 that run really went out (it committed), else it never did
import os, subprocess, sys
real = {real!r}
log = os.environ["LOST_LOG"]
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:4]) + "\\n")
marker = log + ".reported"
if sys.argv[1:4] == ["move", "tool", "run"] and not os.path.exists(marker):
    open(marker, "w").close()
    txn_hash = "0x" + "00" * 32
    if os.environ.get("LOST_COMMITS") == "1":
        p = subprocess.run([real, *sys.argv[1:]], capture_output=True, text=True)
        txn_hash = __import__("json").loads(p.stdout)["hash"]
        if os.environ.get("LOST_TXN_DIR"):  # what the node would answer for that hash
            with open(os.path.join(os.environ["LOST_TXN_DIR"], txn_hash + ".json"), "w") as f:
                f.write(p.stdout)
    sys.stderr.write("account: 0x1\\nError: API error: {text}".replace("HASH", txn_hash) + "\\n")
    sys.exit(1)
os.execv(real, [real, *sys.argv[1:]])
"""
TIMEOUT_TEXT = ("Timeout of 30s after calling wait_for_transaction reached. Warning, transaction (HASH) "
                "might still succeed.")


def lost_report_supra(tmp_path: Path, text: str = TIMEOUT_TEXT) -> Path:
    d = tmp_path / "lost-bin"
    d.mkdir()
    (d / "supra").write_text(LOST_REPORT.format(python=sys.executable, real=console_script("dualwrite-supra"),
                                                text=text))
    (d / "supra").chmod(0o755)
    return d


def started_events(state: Path, lottery_id: int) -> list[dict]:
    c = Chain(state)
    try:
        return [e for e in c.events("ArchiveDualWriteStartedEvent", lottery_id)]
    finally:
        c.close()


@pytest.mark.slow
def test_timeout_then_committed_means_exactly_one_transaction(tmp_path: Path) -> None:
    state = tmp_path / "chain.sqlite"
    log = tmp_path / "calls.log"
    env = {"PATH": f"{lost_report_supra(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DUALWRITE_STATE": str(state),
           "LOST_LOG": str(log), "LOST_COMMITS": "1"}
    assert dualwrite(["sim", "init", "--state", str(state)], env).returncode == 0
    assert dualwrite(["init", "true", "false", "--backend", "sim", "--state", str(state)], env).returncode == 0
    p = dualwrite(["set", "9", H9, "--backend", "local", "--json"], env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "Success" and out["confirmed_by"] == "state"
    assert out["transaction_hash"] == started_events(state, 9)[0]["transaction_hash"]
    assert "might still succeed" in out["vm_status"]
    calls = log.read_text().splitlines()
    assert calls.count("move tool run") == 1 and "move tool view" in calls  # looked up, not re-sent
    assert len(started_events(state, 9)) == 1  # exactly one transaction
    # in human form the note says what happened
    p = dualwrite(["set", "10", H9, "--backend", "local"], {**env, "LOST_LOG": str(tmp_path / "calls2.log")})
    assert p.returncode == 0 and "NOT re-sent" in p.stderr and "Traceback" not in p.stderr
    assert len(started_events(state, 10)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("text", [TIMEOUT_TEXT, "error sending request for url (http://127.0.0.1:27001/rpc/v3/"
                                                "transactions/submit): connection refused"])
def test_lost_report_that_did_not_commit_is_not_resent(tmp_path: Path, text: str) -> None:
    """Not committed (yet): exit 3 after the lookup window, one run, nothing changed; a transient text does not
    make a run worth sending twice either."""
    state = tmp_path / "chain.sqlite"
    log = tmp_path / "calls.log"
    env = {"PATH": f"{lost_report_supra(tmp_path, text)}{os.pathsep}{os.environ['PATH']}",
           "DUALWRITE_STATE": str(state), "LOST_LOG": str(log)}
    assert dualwrite(["sim", "init", "--state", str(state)], env).returncode == 0
    assert dualwrite(["init", "true", "false", "--backend", "sim", "--state", str(state)], env).returncode == 0
    p = dualwrite(["clear", "3", "--backend", "local", "--timeout", "5"], env)  # clear of nothing: state already "clear"
    assert p.returncode == 0 and "NOT re-sent" in p.stderr
    log.unlink()
    Path(str(log) + ".reported").unlink()
    p = dualwrite(["set", "9", H9, "--backend", "local", "--timeout", "1", "--retries", "2"], env)
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "not re-sent" in lines[0] and "Traceback" not in p.stderr
    assert log.read_text().splitlines().count("move tool run") == 1
    assert started_events(state, 9) == []


class _TxnNode(http.server.BaseHTTPRequestHandler):
    """GET /rpc/v3/transactions/{hash}: the transactions the lost-report supra committed (404 until then)."""

    txn_dir: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        prefix = "/rpc/v3/transactions/"
        name = self.path[len(prefix):] if self.path.startswith(prefix) else ""
        path = self.txn_dir / f"{name}.json"
        if not name or "/" in name or not path.is_file():
            body, code = json.dumps({"message": f"Transaction not found: {name}"}).encode(), 404
        else:
            body, code = path.read_bytes(), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def txn_node(tmp_path: Path):
    d = tmp_path / "node-txns"
    d.mkdir()
    handler = type("Handler", (_TxnNode,), {"txn_dir": d})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", d
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


@pytest.mark.slow
def test_timeout_then_committed_looked_up_by_hash(tmp_path: Path, txn_node) -> None:
    """With --rpc-url and the hash in the CLI's output, the node is asked for that transaction: no state read, one txn."""
    url, txn_dir = txn_node
    state = tmp_path / "chain.sqlite"
    log = tmp_path / "calls.log"
    env = {"PATH": f"{lost_report_supra(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DUALWRITE_STATE": str(state),
           "LOST_LOG": str(log), "LOST_COMMITS": "1", "LOST_TXN_DIR": str(txn_dir)}
    assert dualwrite(["sim", "init", "--state", str(state)], env).returncode == 0
    assert dualwrite(["init", "true", "false", "--backend", "sim", "--state", str(state)], env).returncode == 0
    p = dualwrite(["set", "9", H9, "--backend", "local", "--rpc-url", url, "--reads", "cli", "--json"], env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    (started,) = started_events(state, 9)
    assert out["confirmed_by"] == "hash" and out["transaction_hash"] == started["transaction_hash"]
    assert out["events"] and out["events"][0]["type"].endswith("::ArchiveDualWriteStartedEvent")
    assert log.read_text().splitlines() == ["move tool run"]  # asked the node, read no state, sent once


@pytest.mark.slow
def test_hash_unknown_to_the_node_falls_back_to_the_state(tmp_path: Path, txn_node) -> None:
    url, _ = txn_node  # the node never learns the hash (404): the window closes, the state is read once
    state = tmp_path / "chain.sqlite"
    log = tmp_path / "calls.log"
    env = {"PATH": f"{lost_report_supra(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DUALWRITE_STATE": str(state),
           "LOST_LOG": str(log)}
    assert dualwrite(["sim", "init", "--state", str(state)], env).returncode == 0
    assert dualwrite(["init", "true", "false", "--backend", "sim", "--state", str(state)], env).returncode == 0
    p = dualwrite(["set", "9", H9, "--backend", "local", "--rpc-url", url, "--reads", "cli", "--timeout", "2"], env)
    assert p.returncode == 3, p.stderr
    assert "looked up by hash" in p.stderr and "HTTP 404" in p.stderr and "not re-sent" in p.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "move tool run" and set(calls[1:]) == {"move tool view"}, p.stderr  # (a slow view is retried)
    assert started_events(state, 9) == []


@pytest.mark.slow
@pytest.mark.parametrize("style", ["node", "node-v11.3", "vmerror"])
def test_states_derived_from_view_aborts_match_the_sim_in_every_style(tmp_path: Path, style: str) -> None:
    """A summary that does not exist (the table lookup aborts) reads as missing through a CLI, whatever form
    the abort takes: verify over ``--backend local`` says what it says over the in-process simulator."""
    from tests.audit_world import World

    world = World(tmp_path / "chain.sqlite").init()
    world.finalize(1, 2)
    world.chain.close()
    supra_dir = tmp_path / "bin"
    assert dualwrite(["sim", "install-supra", str(supra_dir)], {}).returncode == 0
    env = {"PATH": f"{supra_dir}{os.pathsep}{os.environ['PATH']}", "DUALWRITE_STATE": str(world.path),
           "DUALWRITE_SUPRA_ABORT_STYLE": style}
    want = dualwrite(["verify", "1-3", "--backend", "sim", "--state", str(world.path), "--json"], env)
    got = dualwrite(["verify", "1-3", "--backend", "local", "--json"], env)
    assert (got.returncode, want.returncode) == (want.returncode, want.returncode), got.stderr
    rows = lambda p: {x["lottery_id"]: x["state"] for x in json.loads(p.stdout)["lotteries"]}  # noqa: E731
    assert rows(got) == rows(want) and rows(got)[3] != "unchecked", got.stdout


# -- the same bodies on the RPC path ----------------------------------------------------------------

NODE_BODY_CASES = [n for n in CASES if load(n)[0]["command"] == "view"
                   and isinstance(first_json(load(n)[1]), dict) and set(first_json(load(n)[1])) & {"result", "message"}]


class _ViewNode(http.server.BaseHTTPRequestHandler):
    """POST /rpc/v3/view answering one recorded body: 200 for a result, 400 (as nodes v11.7+ do) for a message."""

    body: bytes = b"{}"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        code = 200 if b'"result"' in self.body else 400
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-supra-chain-id", "6")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def view_node():
    handler = type("Handler", (_ViewNode,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


def _outcome(call) -> tuple:
    try:
        return ("ok", call())
    except MoveAbort as e:
        return ("abort", e.code, e.name, e.module.rsplit("::", 1)[-1] if e.module else "")
    except BackendError as e:
        return ("backend", int(e.exit_code))


@pytest.mark.parametrize("name", NODE_BODY_CASES)
def test_node_bodies_read_the_same_over_rpc(name: str, view_node) -> None:
    """Every view body of the corpus, as an RPC node's HTTP answer, is what it is on the CLI path."""
    from dualwrite.backends.rpc import RpcClient

    handler, url = view_node
    _, stdout, stderr, code = load(name)
    handler.body = json.dumps(first_json(stdout)).encode()
    client = RpcClient(url, retries=0)
    try:
        over_rpc = _outcome(lambda: client.view("0x1::legacy_bridge::pending_expected_hashes", []))
    finally:
        client.close()
    over_cli = _outcome(lambda: parse_view(stdout, stderr, code, where=WHERE))
    assert over_rpc == over_cli
