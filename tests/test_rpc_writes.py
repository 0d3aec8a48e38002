"""Writes over RPC: transactions signed in-process and submitted to the emulated node over real HTTP on 127.0.0.1.

Every write command end to end through the ``dualwrite`` CLI (a subprocess) against ``dualwrite sim serve`` (a
subprocess), with no Supra CLI on the machine, checked from the chain's events; the key checks (mode, another
account's key, the key's own unknown address); the node's refusals (chain id, sequence number too old, expiry)
and parking; the txn-drop, mempool-full and commit-delay drills; the submitted bytes decoded by a small BCS
reader written here and their signature checked with the ``cryptography`` package (not PyNaCl, which signed);
and the key, in hex with and without 0x, searched for in everything a run writes and in a CLI child's argv and
environment.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dualwrite import txn as T
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.backends.rpc_write import RpcWriter
from dualwrite.errors import (
    ChainIdRefused,
    ExpiredAtSubmit,
    KeyMismatch,
    MempoolFull,
    MoveAbort,
    SequenceTooOld,
    TxnExpired,
    WrongChain,
)
from dualwrite.sim.chain import Chain
from dualwrite.sim.keys import account_seed, chain_seed
from dualwrite.sim.server import Faults
from tests.chain_driver import console_script
from tests.envs import base_env
from tests.rpc_node import InThreadNode, ServeProcess, _every_response_checked  # noqa: F401

HASH_A = "ab" * 32
HASH_B = "cd" * 32


def _init(state: Path, *extra: str) -> dict:
    r = subprocess.run([console_script("dualwrite"), "sim", "init", "--state", str(state), *extra],
                       capture_output=True, text=True, env=base_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    with Chain(state) as c:
        return {"lottery_multi": c.addresses.lottery_multi, "lottery": c.addresses.lottery}


def _key(state: Path, profile: str, out: Path) -> tuple[Path, bytes]:
    r = subprocess.run([console_script("dualwrite"), "sim", "key", profile, "--state", str(state), "--out", str(out)],
                       capture_output=True, text=True, env=base_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    return out, bytes.fromhex(out.read_text().strip()[2:])


def _dw(url: str, addrs: dict, *args: str, key: Path | None = None, sender: str | None = None,
        env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    argv = [console_script("dualwrite"), *args, "--rpc-url", url]
    if key is not None:
        argv += ["--private-key-file", str(key)]
    if sender is not None:
        argv += ["--sender", sender]
    e = base_env(DUALWRITE_LOTTERY_MULTI_ADDRESS=addrs["lottery_multi"], DUALWRITE_LOTTERY_ADDRESS=addrs["lottery"],
                 **(env or {}))
    return subprocess.run(argv, capture_output=True, text=True, env=e, timeout=120, cwd=cwd)


def _events(state: Path, name: str | None = None) -> list[dict]:
    with Chain(state) as c:
        return c.events(name)


def _writer(url: str, addrs: dict, key: Path, sender: str | None, **kw) -> tuple[object, RpcWriter]:
    cfg = BackendConfig(rpc_url=url, private_key_file=str(key), sender=sender, lottery_multi_address=addrs["lottery_multi"],
                        lottery_address=addrs["lottery"], **kw)
    b = open_backend(cfg)
    return b, b.tx_writer()


@pytest.fixture
def world(tmp_path: Path):
    state = tmp_path / "sim.sqlite"
    addrs = _init(state, "--dual-write", "--mirror")
    key, seed = _key(state, "default", tmp_path / "admin.key")
    return state, addrs, key, seed


# -- every write command, end to end, no Supra CLI -----------------------------------------------------------


def test_every_write_command_over_rpc_with_no_supra_cli(tmp_path: Path) -> None:
    from dualwrite.demo import make_summary

    state = tmp_path / "sim.sqlite"
    addrs = _init(state)  # history and bridge only: init_dual_write goes over RPC
    key, seed = _key(state, "default", tmp_path / "admin.key")
    summaries = tmp_path / "l.jsonl"
    summaries.write_text(json.dumps(make_summary(7).to_move_json()) + "\n")
    r = subprocess.run([console_script("dualwrite"), "sim", "finalize", str(summaries), "--state", str(state)],
                       capture_output=True, text=True, env=base_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    lm = addrs["lottery_multi"]
    summary_hash = hashlib.sha3_256(make_summary(7).to_bcs()).hexdigest()
    nothing = tmp_path / "empty-bin"
    nothing.mkdir()
    # no supra anywhere: PATH holds only the interpreter's own directory without a supra, and --backend local
    # names a binary that does not exist (writes over RPC never open the CLI)
    env = {"PATH": f"{nothing}:{Path(sys.executable).parent}"}
    with ServeProcess(state) as node:
        steps = [
            (["init", "true", "false"], "init_dual_write", None, 0),
            (["update-flags", "true", "true", "false"], "update_flags", None, 0),
            (["set", "9", HASH_A], "set_expected_hash", "ArchiveDualWriteStartedEvent", 1),
            (["clear", "9"], "clear_expected_hash", None, 0),
            (["enable-mirror"], "enable_legacy_mirror", None, 0),
            (["set", "7", summary_hash], "set_expected_hash", "ArchiveDualWriteStartedEvent", 1),
            (["mirror", "7"], "mirror_summary_admin", "LegacySummaryEvent", 1),
            (["disable-mirror"], "disable_legacy_mirror", None, 0),
        ]
        for args, fn, event, n_events in steps:
            before = len(_events(state, event)) if event else 0
            r = _dw(node.url, addrs, *args, "--backend", "local", "--supra-bin", "no-such-supra", "--json",
                    key=key, sender=lm, env=env)
            assert r.returncode == 0, (args, r.stderr)
            out = json.loads(r.stdout)
            assert out["status"] == "Success" and out["signed_by"] == lm, out
            assert f"signing as {lm}" in r.stderr
            with Chain(state) as c:
                t = c.transaction(out["transaction_hash"])
            assert t is not None and t["payload"]["Move"]["function"].endswith(f"::{fn}")
            assert t["header"]["sender"] == lm
            if event:
                assert len(_events(state, event)) == before + n_events, args
        # the flags and the mirror as the commands left them, read back from the chain
        with Chain(state) as c:
            assert c.view(f"{lm}::legacy_bridge::is_mirror_enabled") == [False]
            flags = c.view(f"{lm}::legacy_bridge::dual_write_flags")[0]
            assert flags["abort_on_mismatch"] is True and flags["enabled"] is True
            assert c.sequence_number(lm) == len(steps) + 1  # + sim init's init_history
        # a failed transaction is the same typed abort as on the CLI path: exit 4, its name and module
        r = _dw(node.url, addrs, "init", "true", "false", key=key, sender=lm, env=env)
        assert r.returncode == 4, r.stderr
        assert "E_ALREADY_INITIALIZED (0x1201)" in r.stderr and f"{lm}::legacy_bridge" in r.stderr
        # without a key the rpc backend stays read-only (exit 2, one line)
        r = _dw(node.url, addrs, "set", "10", HASH_A, "--backend", "rpc", env=env)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "read-only" in r.stderr


# -- keys ------------------------------------------------------------------------------------------------------


def test_key_file_open_to_others_is_refused_in_one_line(world, tmp_path: Path) -> None:
    state, addrs, key, _ = world
    key.chmod(0o644)
    with ServeProcess(state) as node:
        r = _dw(node.url, addrs, "set", "5", HASH_A, key=key, sender=addrs["lottery_multi"])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(key) in lines[0] and "0644" in lines[0], r.stderr
    assert _events(state, "ArchiveDualWriteStartedEvent") == []


@pytest.mark.parametrize("content", ["", "0x1234\n", "zz" * 32, ("ab" * 32 + "\n") * 2, "\xff" * 40])
def test_malformed_key_file_names_the_file_never_its_content(tmp_path: Path, content: str) -> None:
    f = tmp_path / "bad.key"
    f.write_bytes(content.encode("latin-1"))
    f.chmod(0o600)
    with pytest.raises(Exception) as e:
        T.load_key_file(f)
    text = str(e.value)
    assert str(f) in text and "not an Ed25519 private key" in text
    assert not content.strip() or content.strip()[:8] not in text


def test_key_of_another_account_is_refused_before_sending(world, tmp_path: Path) -> None:
    state, addrs, _, _ = world
    other, _ = _key(state, "operator", tmp_path / "operator.key")
    lm = addrs["lottery_multi"]
    with ServeProcess(state) as node:
        r = _dw(node.url, addrs, "set", "5", HASH_A, key=other, sender=lm)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert lines[-1].count("\n") == 0 and lm in lines[-1] and "refusing to sign" in lines[-1], r.stderr
        assert len([ln for ln in lines if not ln.startswith("signing as")]) == 1
        # without --sender: the key's own address, which no account on this chain has
        r = _dw(node.url, addrs, "set", "5", HASH_A, key=other)
        assert r.returncode == 2 and "does not exist" in r.stderr
    with Chain(state) as c:
        assert c.sequence_number(lm) == 3 and _events(state, "ArchiveDualWriteStartedEvent") == []


# -- the node's rules, through the writer's primitives ------------------------------------------------------------


def test_chain_id_sequence_numbers_parking_and_expiry(world, tmp_path: Path) -> None:
    state, addrs, key, _ = world
    lm = addrs["lottery_multi"]
    with InThreadNode(state) as node:
        b, w = _writer(node.url, addrs, key, lm)
        try:
            # the chain a plan names is checked before anything is sent
            _, other = _writer(node.url, addrs, key, lm)
            other.expect_chain_id = 1
            with pytest.raises(WrongChain):
                other.next_sequence_number()
            other.close()
            n = w.next_sequence_number()
            assert w.chain_id == 255 and w.sender == lm
            # a transaction signed for another chain is refused by the node
            bad = w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"], n)
            forged = T.decode(bad.body)
            forged["Move"]["raw_txn"]["chain_id"] = 7
            body = T.encode(T.signed(forged["Move"]["raw_txn"], w._signer.public_key,
                                     w._signer.sign(T.signing_message(forged["Move"]["raw_txn"]))))
            with pytest.raises(ChainIdRefused):
                w.submit(type(bad)(T.txn_hash(body), lm, n, bad.expiration_secs, bad.function, bad.args, 7, body))
            # parked above, executed in order once the gap fills
            later = w.prepare("legacy_bridge::set_expected_hash", ["u64:2", f"hex:{HASH_B}"], n + 1)
            assert w.submit(later) == later.hash
            assert w.lookup(later.hash).status == "Pending"
            first = w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"], n)
            assert w.submit(first) == first.hash
            # the same bytes again: the same answer while it waits; once it has executed (the node may be
            # that quick), refused as too old, naming it committed; either way nothing runs twice
            try:
                assert w.submit(first) == first.hash
            except SequenceTooOld as again:
                assert "committed already" in str(again) and first.hash in str(again)
            r1, r2 = w.wait(first.hash, first.expiration_secs), w.wait(later.hash, later.expiration_secs)
            assert r1.block_height < r2.block_height
            started = [e["data"]["lottery_id"] for e in _events(state, "ArchiveDualWriteStartedEvent")]
            assert started == ["1", "2"]
            # below the account's number: refused
            with pytest.raises(SequenceTooOld):
                w.submit(w.prepare("legacy_bridge::clear_expected_hash", ["u64:1"], n))
            # expired at submit: refused; a parked one that expires is dropped and never commits
            with pytest.raises(ExpiredAtSubmit):
                w.submit(w.prepare("legacy_bridge::clear_expected_hash", ["u64:1"], n + 2,
                                   expiration_secs=int(w.node_time()) - 1))
            gap = w.prepare("legacy_bridge::clear_expected_hash", ["u64:2"], n + 3,
                            expiration_secs=int(w.node_time()) + 5)
            w.submit(gap)
            with Chain(state) as c:
                c.advance_clock(10)  # what `dualwrite sim clock --advance 10s` does
            with pytest.raises(TxnExpired) as e:
                w.wait(gap.hash, gap.expiration_secs)
            assert e.value.txn_hash == gap.hash and e.value.node_time >= gap.expiration_secs
            w.run("legacy_bridge::clear_expected_hash", ["u64:1"])  # n + 2: fills the gap; n + 3 stays dropped
            assert w.next_sequence_number() == n + 3 and w.lookup(gap.hash) is None
            # a failed transaction: the typed abort, and its sequence number is used
            with pytest.raises(MoveAbort) as abort:
                w.run("legacy_bridge::init_dual_write", ["bool:true", "bool:false"])
            assert abort.value.name == "E_ALREADY_INITIALIZED" and abort.value.code == 0x1201
            assert abort.value.module.endswith("::legacy_bridge") and w.next_sequence_number() == n + 4
        finally:
            b.close()


def test_node_faults_drop_full_mempool_and_commit_delay(world) -> None:
    state, addrs, key, _ = world
    lm = addrs["lottery_multi"]
    with InThreadNode(state, Faults(share_txn_drop=1.0)) as node:
        b, w = _writer(node.url, addrs, key, lm, tx_ttl=2)
        try:
            t = w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"], w.next_sequence_number())
            assert w.submit(t) == t.hash  # accepted and answered, never executed
            started = time.monotonic()
            with pytest.raises(TxnExpired):
                w.wait(t.hash, t.expiration_secs)  # the node's clock passes it (the node keeps producing blocks)
            assert time.monotonic() - started < 10
        finally:
            b.close()
    with InThreadNode(state, Faults(share_mempool_full=1.0)) as node:
        b, w = _writer(node.url, addrs, key, lm)
        try:
            with pytest.raises(MempoolFull):
                w.submit(w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"],
                                   w.next_sequence_number()))
        finally:
            b.close()
    with InThreadNode(state, Faults(commit_delay=0.5)) as node:
        b, w = _writer(node.url, addrs, key, lm)
        try:
            t = w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"], w.next_sequence_number())
            w.submit(t)
            assert w.lookup(t.hash).status == "Pending"
            assert w.wait(t.hash, t.expiration_secs).status == "Success"
        finally:
            b.close()
    assert [e["data"]["lottery_id"] for e in _events(state, "ArchiveDualWriteStartedEvent")] == ["1"]


def test_json_submit_and_simulate_forms(world) -> None:
    state, addrs, key, seed = world
    lm = addrs["lottery_multi"]
    with InThreadNode(state) as node:
        b, w = _writer(node.url, addrs, key, lm)
        try:
            t = w.prepare("legacy_bridge::set_expected_hash", ["u64:3", f"hex:{HASH_A}"], w.next_sequence_number())
            value = T.decode(t.body)
            doc = json.loads(json.dumps(__import__("dualwrite.layouts", fromlist=["x"]).SUPRA_TRANSACTION.to_json(value)))
            # the node's own example form: numbers as JSON numbers, arguments as byte arrays, sender without 0x
            raw = doc["Move"]["raw_txn"]
            raw["sender"] = raw["sender"][2:]
            raw["sequence_number"] = int(raw["sequence_number"])
            raw["payload"]["EntryFunction"]["args"] = [list(bytes.fromhex(a[2:])) for a in
                                                        raw["payload"]["EntryFunction"]["args"]]
            with httpx.Client(base_url=node.url, timeout=10) as h:
                zeroed = json.loads(json.dumps(doc))
                zeroed["Move"]["authenticator"]["Ed25519"]["signature"] = "0x" + "00" * 64
                sim = h.post("/rpc/v3/transactions/simulate", json=zeroed)
                assert sim.status_code == 200 and sim.json()["status"] == "Success", sim.text
                assert w.lookup(t.hash) is None  # a simulation commits nothing
                assert h.post("/rpc/v3/transactions/simulate", json=doc).status_code == 400  # a valid signature
                r = h.post("/rpc/v1/transactions/submit", json=doc)
                assert r.status_code == 200 and r.json() == t.hash, r.text
                assert w.wait(t.hash, t.expiration_secs).status == "Success"
                v1 = h.get(f"/rpc/v1/transactions/{t.hash}").json()
                assert v1["status"] == "Success" and v1["header"]["sequence_number"] == t.sequence_number
                assert h.get("/rpc/v3/transactions/estimate_gas_price").json()["mean_gas_price"] >= 1
                assert h.get("/rpc/v3/transactions/parameters").json()["max_transaction_time_to_live_seconds"] > 0
                broken = h.post("/rpc/v3/transactions/submit", content=t.body[:-3],
                                headers={"Content-Type": T.BCS_CONTENT_TYPE})
                assert broken.status_code == 400 and "byte offset" in broken.json()["message"]
        finally:
            b.close()


# -- an implementation other than the one that signed ---------------------------------------------------------------


class _Bcs:
    """A minimal BCS reader for the SupraTransaction layout, written from supra-cli.md here (not the codec)."""

    def __init__(self, data: bytes) -> None:
        self.d, self.i = data, 0

    def take(self, n: int) -> bytes:
        out = self.d[self.i:self.i + n]
        assert len(out) == n
        self.i += n
        return out

    def uleb(self) -> int:
        v = s = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                return v

    def vec(self) -> bytes:
        return self.take(self.uleb())

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")


def test_submitted_bytes_decode_and_verify_with_another_implementation(world) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    state, addrs, key, seed = world
    lm = addrs["lottery_multi"]
    with InThreadNode(state) as node:
        b, w = _writer(node.url, addrs, key, lm)
        try:
            n = w.next_sequence_number()
            t = w.prepare("legacy_bridge::set_expected_hash", ["u64:42", f"hex:{HASH_A}"], n)
            r = _Bcs(t.body)
            assert r.uleb() == 1  # SupraTransaction::Move
            raw_start = r.i
            assert r.take(32).hex() == lm[2:]
            assert r.u64() == n
            assert r.uleb() == 2  # TransactionPayload::EntryFunction
            assert r.take(32).hex() == lm[2:] and r.vec() == b"legacy_bridge" and r.vec() == b"set_expected_hash"
            assert r.uleb() == 0  # no type arguments
            assert r.uleb() == 2
            assert r.vec() == (42).to_bytes(8, "little")
            assert r.vec() == bytes([32]) + bytes.fromhex(HASH_A)  # vector<u8>, BCS-encoded on its own
            max_gas, price, expiry = r.u64(), r.u64(), r.u64()
            assert (max_gas, price, expiry) == (500_000, 100, t.expiration_secs)
            assert r.take(1) == bytes([255])  # chain id
            raw = t.body[raw_start:r.i]
            assert r.uleb() == 0  # Authenticator::Ed25519
            public_key, signature = r.vec(), r.vec()
            assert r.i == len(t.body) and len(public_key) == 32 and len(signature) == 64
            message = hashlib.sha3_256(b"SUPRA::RawTransaction").digest() + raw
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)  # raises if invalid
            own = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
            assert own == public_key
            assert hashlib.sha3_256(public_key + b"\x00").hexdigest() == w._signer.auth_key.hex()
            assert t.hash == "0x" + hashlib.sha3_256(hashlib.sha3_256(b"SUPRA::SupraTransaction").digest()
                                                     + t.body).hexdigest()
            # and the node takes those very bytes
            assert w.submit(t) == t.hash and w.wait(t.hash, t.expiration_secs).status == "Success"
        finally:
            b.close()


# -- the key never shows -------------------------------------------------------------------------------------------


_RECORDING_SUPRA = """\
#!{python}
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
os.execv({target!r}, [{target!r}, *sys.argv[1:]])
"""


def test_the_key_never_appears_in_output_files_or_a_child_process(world, tmp_path: Path) -> None:
    import shutil

    state, addrs, key, seed = world
    lm = addrs["lottery_multi"]
    forms = [seed.hex(), "0x" + seed.hex(), seed.hex().upper()]
    work = tmp_path / "work"
    work.mkdir()
    streams = []
    with ServeProcess(state) as node:
        for args in (["set", "5", HASH_A], ["clear", "5"], ["init", "true", "false"], ["status", "5"]):
            r = _dw(node.url, addrs, *args, key=key, sender=lm, cwd=work,
                    env={"DUALWRITE_LOCK_DIR": str(tmp_path / "locks")})
            streams += [r.stdout, r.stderr]
        r = _dw(node.url, addrs, "set", "6", HASH_B, "--json", cwd=work,
                env={"DUALWRITE_PRIVATE_KEY_FILE": str(key), "DUALWRITE_SENDER": lm})
        assert r.returncode == 0, r.stderr
        streams += [r.stdout, r.stderr]
        node.stop()
        streams += [node.proc.stdout.read() if not node.proc.stdout.closed else "", ""]
    # a CLI backend's child: neither the key nor its file's path in its argv or environment
    log = tmp_path / "supra.log"
    supra = tmp_path / "bin" / "supra"
    supra.parent.mkdir()
    supra.write_text(_RECORDING_SUPRA.format(python=sys.executable, log=str(log),
                                             target=shutil.which("dualwrite-supra", path=str(Path(sys.executable).parent))))
    supra.chmod(0o755)
    r = subprocess.run([console_script("dualwrite"), "set", "8", HASH_A, "--backend", "local", "--supra-bin", str(supra),
                        "--writes", "cli", "--state", str(state)], capture_output=True, text=True, timeout=60, cwd=work,
                       env=base_env(DUALWRITE_STATE=str(state), DUALWRITE_PRIVATE_KEY_FILE=str(key)))
    assert r.returncode == 0, r.stderr
    streams += [r.stdout, r.stderr]
    child = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert child and all("DUALWRITE_PRIVATE_KEY_FILE" not in c["env"] for c in child)
    assert not any(str(key) in json.dumps(c) for c in child)
    streams.append(log.read_text())
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != key]
    assert any(p.name.startswith("sim.sqlite") for p in files)
    blobs = [p.read_bytes() for p in files] + [s.encode() for s in streams]
    for form in forms:
        for blob in blobs:
            assert form.encode() not in blob and form.lower().encode() not in blob.lower()
    assert account_seed(chain_seed(Chain(state).store), lm) == seed  # the state holds the seed it derives from


# -- start-up: signing costs a sim command nothing ------------------------------------------------------------


def test_sim_control_plane_does_not_import_nacl_or_httpx(world) -> None:
    state, _, _, _ = world
    code = ("import sys, contextlib, io\nfrom dualwrite.cli.main import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        cli.main(['status', '5', '--state', {str(state)!r}], prog_name='dualwrite')\n"
            "    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nacl', 'httpx', 'cryptography')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=base_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# -- cutover apply and heal --apply over RPC (through Backend.run), and what they write holds no key ---------------


def test_cutover_apply_and_heal_apply_over_rpc_write_no_key(tmp_path: Path) -> None:
    from tests.audit_world import World

    state = tmp_path / "sim.sqlite"
    w = World(state)
    w.init(abort_on_missing=False)
    from dualwrite.demo import make_summary

    lines = tmp_path / "l.jsonl"
    lines.write_text("".join(json.dumps(make_summary(i).to_move_json()) + "\n" for i in range(1, 7)))
    for i in (1, 2):  # archived through the normal flow, then lottery 2's legacy copy drifts
        w.expect(i, hashlib.sha3_256(make_summary(i).to_bcs()).digest())
        w.finalize(i)
    w.tamper(2, "--set", "tickets_sold=5", "--fix-hash")
    addrs = {"lottery_multi": w.chain.addresses.lottery_multi, "lottery": w.chain.addresses.lottery}
    key, seed = _key(state, "default", tmp_path / "admin.key")
    lm = addrs["lottery_multi"]
    plan, journal, heal_journal = tmp_path / "plan.json", tmp_path / "plan.journal.jsonl", tmp_path / "heal.jsonl"
    env = {"DUALWRITE_LOCK_DIR": str(tmp_path / "locks")}
    streams = []
    with ServeProcess(state) as node:
        r = _dw(node.url, addrs, "cutover", "plan", str(lines), "--out", str(plan), key=key, sender=lm, env=env)
        assert r.returncode == 0, r.stderr
        r = _dw(node.url, addrs, "cutover", "apply", str(plan), "--journal", str(journal), "--json", key=key,
                sender=lm, env=env)
        assert r.returncode == 0, r.stderr
        streams += [r.stdout, r.stderr]
        assert json.loads(r.stdout)["counts"].get("sent") == 4, r.stdout
        assert f"signing as {lm}" in r.stderr
        r = _dw(node.url, addrs, "heal", "2", "--apply", "--journal", str(heal_journal), "--json", key=key, sender=lm,
                env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"signing as {lm}" in r.stderr and lm in json.loads(r.stdout)["plan"]["backend"]
        streams += [r.stdout, r.stderr]
    for i in range(3, 7):  # each registration exactly once, signed by the admin over RPC
        started = [e for e in _events(state, "ArchiveDualWriteStartedEvent") if e["data"]["lottery_id"] == str(i)]
        assert len(started) == 1
        with Chain(state) as c:
            assert c.transaction(started[0]["transaction_hash"])["header"]["sequence_number"] is not None
    assert w.state_of(2).name.lower() == "ok"
    blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != key] + [s.encode() for s in streams]
    assert any(b"sequence_number" in b or b"hash" in b for b in blobs)
    for form in (seed.hex(), "0x" + seed.hex()):
        assert not any(form.encode() in b.lower() for b in blobs)


def test_write_settings_refused_in_one_line_before_anything_is_sent(world, tmp_path: Path) -> None:
    state, addrs, key, _ = world
    lm = addrs["lottery_multi"]
    with ServeProcess(state) as node:
        # --writes rpc without a key, or without a node
        r = _dw(node.url, addrs, "set", "5", HASH_A, "--writes", "rpc")
        assert r.returncode == 2 and "--private-key-file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        r = subprocess.run([console_script("dualwrite"), "set", "5", HASH_A, "--writes", "rpc", "--private-key-file",
                            str(key)], capture_output=True, text=True, env=base_env(), timeout=60)
        assert r.returncode == 2 and "--rpc-url" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        # a ttl beyond what the node accepts
        r = _dw(node.url, addrs, "set", "5", HASH_A, "--tx-ttl", "7200", key=key, sender=lm)
        assert r.returncode == 2 and "--tx-ttl 7200" in r.stderr and "3600" in r.stderr, r.stderr
        # writes over RPC read over RPC too
        r = _dw(node.url, addrs, "set", "5", HASH_A, "--reads", "cli", key=key, sender=lm)
        assert r.returncode == 2 and "--reads cli" in r.stderr
        # a key file that is not there
        r = _dw(node.url, addrs, "set", "5", HASH_A, key=tmp_path / "nope.key", sender=lm)
        assert r.returncode == 2 and "nope.key: no such file" in r.stderr
    assert _events(state, "ArchiveDualWriteStartedEvent") == []


def test_a_restarted_node_keeps_its_keys_and_v1_says_unexecuted(world) -> None:
    state, addrs, key, _ = world
    lm = addrs["lottery_multi"]
    for lottery in (1, 2):  # two node processes on one state: the same key signs for the same account
        with InThreadNode(state, Faults(commit_delay=0.3)) as node:
            b, w = _writer(node.url, addrs, key, lm)
            try:
                t = w.prepare("legacy_bridge::set_expected_hash", [f"u64:{lottery}", f"hex:{HASH_A}"],
                              w.next_sequence_number())
                w.submit(t)
                with httpx.Client(base_url=node.url, timeout=10) as h:
                    assert h.get(f"/rpc/v1/transactions/{t.hash}").json()["status"] == "Unexecuted"
                assert w.wait(t.hash, t.expiration_secs).status == "Success"
            finally:
                b.close()
    assert [e["data"]["lottery_id"] for e in _events(state, "ArchiveDualWriteStartedEvent")] == ["1", "2"]


def test_a_node_answering_its_own_hash_is_authoritative(world) -> None:
    state, addrs, key, _ = world
    with InThreadNode(state, Faults(own_hash=True)) as node:
        b, w = _writer(node.url, addrs, key, addrs["lottery_multi"])
        try:
            t = w.prepare("legacy_bridge::set_expected_hash", ["u64:1", f"hex:{HASH_A}"], w.next_sequence_number())
            answer = w.submit(t)
            assert answer != t.hash and w.node_hash_differs == 1
            assert w.lookup(t.hash) is None and w.wait(answer, t.expiration_secs).status == "Success"
            r = b.run("legacy_bridge::set_expected_hash", ["u64:2", f"hex:{HASH_A}"])  # run waits on the node's answer
            assert r.status == "Success" and w.node_hash_differs == 2
            with Chain(state) as c:
                assert c.transaction(r.hash)["header"]["sender"] == addrs["lottery_multi"]
        finally:
            b.close()
