"""Every attack of issue 14 items 4-6, as a table: the input, the exit code, the one line that names it.

Each case runs the real ``dualwrite`` in a subprocess (the attacks include /dev/zero on stdin and
memory bounds), and every case must: exit with its documented code (never 70), print one line on
stderr without a traceback, and stay within a bounded memory (``wait4``'s maximum RSS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from tests.envs import base_env

KEY_LINE = "b6e4f1a9c0d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8"  # a "private key", by mistake
MAX_RSS_MB = 300  # the 64 MiB input bound plus the interpreter, with room; 1.4 GB before the bounds


@dataclass
class Attack:
    name: str
    setup: Callable[[Path], tuple[list[str], dict[str, str]]]  # -> (argv after "dualwrite", extra env)
    code: int
    needle: str
    stdin: str | None = None  # a path to feed on stdin
    not_in_stderr: list[str] = field(default_factory=list)
    max_stderr: int = 600


def chain_with(tmp: Path, n: int = 8) -> Path:
    state = tmp / "state.sqlite"
    c = Chain(state)
    for fn, args, who in (("history::init_history", [], "lottery_multi"), ("history_bridge::init_bridge", [], "lottery"),
                          ("legacy_bridge::init_dual_write", ["bool:true", "bool:false"], "lottery_multi"),
                          ("legacy_bridge::enable_legacy_mirror", [], "lottery_multi")):
        c.run(f"{who}::{fn}", args, profile=who)
    for i in range(1, n + 1):
        c.finalize(make_summary(i))
    c.close()
    return state


def write(tmp: Path, name: str, data: bytes | str) -> str:
    p = tmp / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


def on_chain(*args: str) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    return lambda tmp: ([*args, "--state", str(chain_with(tmp))], {})


def deep_json(tmp: Path) -> str:
    return write(tmp, "deep.json", "[" * 100_000 + "]" * 100_000)


def journal_with(lines: list[str]) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def setup(tmp: Path):
        state = chain_with(tmp)
        j = write(tmp, "j.jsonl", "".join(ln + "\n" for ln in lines))
        return ["heal", "--apply", "--journal", j, "--state", str(state)], {}
    return setup


def corrupt_pages(tmp: Path) -> tuple[list[str], dict[str, str]]:
    import sqlite3

    state = chain_with(tmp)
    with sqlite3.connect(state) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = c.execute("PRAGMA page_size").fetchone()[0]
        roots = dict(c.execute("SELECT name, rootpage FROM sqlite_master"))
    with open(state, "r+b") as f:  # the history and legacy tables' pages: the file opens, reads fail
        for name in ("history", "legacy"):
            f.seek((roots[name] - 1) * page)
            f.write(b"\xde\xad\xbe\xef" * (page // 4))
    return ["diff", "1", "--state", str(state)], {}


def bad_byte_supra(tmp: Path) -> tuple[list[str], dict[str, str]]:
    """A real supra that prints one non-UTF-8 byte when asked about lottery 7, and is right otherwise."""
    state = chain_with(tmp)
    bindir = tmp / "bin"
    bindir.mkdir()
    (bindir / "supra").write_text(
        f"#!{sys.executable}\nimport sys\n"
        "if 'u64:7' in sys.argv and 'view' in sys.argv:\n"
        "    sys.stdout.buffer.write(b'{\"result\": [\"\\xff\"]}\\n'); sys.exit(0)\n"
        "from dualwrite.sim.supra_cli import main\nsys.argv[0] = 'supra'\nmain()\n")
    (bindir / "supra").chmod(0o755)
    return ["verify", "1-8", "--backend", "local", "--supra-bin", str(bindir / "supra")], {"DUALWRITE_STATE": str(state)}


def unwritable_journal(tmp: Path) -> tuple[list[str], dict[str, str]]:
    state = chain_with(tmp)
    blocker = write(tmp, "a-file", "x")  # a regular file where the journal's folder should be (root ignores modes)
    return ["heal", "--apply", "--journal", f"{blocker}/j.jsonl", "--state", str(state)], {}


def junit_sidecar_blocked(tmp: Path) -> tuple[list[str], dict[str, str]]:
    state = chain_with(tmp)
    (tmp / "out.xml.b3").mkdir()
    return ["verify", "--all", "--junit", str(tmp / "out.xml"), "--state", str(state)], {}


def evidence_sidecar_dir(tmp: Path) -> tuple[list[str], dict[str, str]]:
    f = write(tmp, "report.xml", "<testsuite/>")
    (tmp / "report.xml.b3").mkdir()
    return ["evidence", "check", f], {}


ATTACKS = [
    # -- item 5: bad input is never an internal error
    Attack("deep JSON (hash)", lambda t: (["hash", deep_json(t)], {}), 2, "nested too deeply"),
    Attack("deep JSON (encode)", lambda t: (["encode", deep_json(t)], {}), 2, "nested too deeply"),
    Attack("deep JSON (evidence check)", lambda t: (["evidence", "check", deep_json(t)], {}), 2, "nested too deeply"),
    Attack("5000-digit integer", lambda t: (["hash", write(t, "big.json", '{"id": ' + "9" * 5000 + "}")], {}), 2,
           "5000 digits"),
    Attack("5000-digit integer in an evidence file", lambda t: (["evidence", "check", write(
        t, "e.json", '{"dualwrite_evidence": ' + "1" * 5000 + ', "blake3": "00"}')], {}), 2, "5000 digits"),
    Attack("non-UTF-8 --ids-file", lambda t: (["verify", "--ids-file", write(t, "ids", b"1\n2\n\xff\xfe7\n")], {}), 2,
           "ids:3: (byte offset 4): not UTF-8"),
    Attack("--pending-grace 99999999999999999999d", on_chain("verify", "1", "--allow-pending", "--pending-grace",
                                                               "99999999999999999999d"), 2, "--pending-grace"),
    Attack("--pending-grace 10000000000000d", on_chain("verify", "1", "--allow-pending", "--pending-grace",
                                                        "999999999999d"), 2, "100 years"),
    Attack("evidence sidecar is a directory", evidence_sidecar_dir, 2, "is a directory"),
    Attack("journal line [1,2,3]", journal_with(["[1,2,3]"]), 2, "record 1 is a JSON list"),
    Attack("journal line 42", journal_with(["42"]), 2, "record 1 is a JSON int"),
    Attack("journal step without key", journal_with(['{"run": "r", "event": "step", "action": "mirror", '
                                                     '"status": "done"}']), 2, "a step without a 'key'"),
    Attack("journal line nested too deeply", journal_with(["[" * 50_000 + "]" * 50_000]), 2, "record 1 is not a record"),
    Attack("unwritable journal path", unwritable_journal, 2, "cannot create it"),
    Attack("corrupted SQLite page", corrupt_pages, 3, "damaged or unreadable (database disk image is malformed)"),
    Attack("supra prints a non-UTF-8 byte for one id", bad_byte_supra, 3, ""),  # stdout checked below
    # -- item 4: bounded inputs
    Attack("hash /dev/zero", lambda t: (["hash", "/dev/zero"], {}), 2, "over the 64 MiB limit"),
    Attack("hash - </dev/zero", lambda t: (["hash", "-"], {}), 2, "<stdin>: over the 64 MiB limit", stdin="/dev/zero"),
    Attack("encode - </dev/zero", lambda t: (["encode", "-"], {}), 2, "over the 64 MiB limit", stdin="/dev/zero"),
    Attack("decode - </dev/zero", lambda t: (["decode", "-"], {}), 2, "over the 64 MiB limit", stdin="/dev/zero"),
    Attack("decode /dev/zero", lambda t: (["decode", "/dev/zero"], {}), 2, "over the 64 MiB limit"),
    Attack("evidence check /dev/zero", lambda t: (["evidence", "check", "/dev/zero"], {}), 2, "not a regular file"),
    Attack("verify --ids-file /dev/zero", lambda t: (["verify", "--ids-file", "/dev/zero"], {}), 2,
           "a line over 4096 bytes"),
    Attack("verify 1-1000000", lambda t: (["verify", "1-1000000"], {}), 2, "more than 200000 lotteries in one run"),
    Attack("the cap is per run, not per range", lambda t: (["verify", "1-150000", "150001-250000"], {}), 2,
           "more than 200000 lotteries in one run"),
    Attack("the cap counts --ids-file too", lambda t: (["verify", "1-150000", "--ids-file",
                                                         write(t, "ids", "150001-200001\n")], {}), 2,
           "more than 200000"),
    Attack("an ids file of 20 MB of NULs", lambda t: (["verify", "--ids-file", write(t, "nul", b"\0" * 20_000_000)], {}),
           2, "nul:1", max_stderr=200),
    Attack("an ids file of NULs with newlines", lambda t: (["verify", "--ids-file", write(t, "nul", b"\0\n" * 1000)], {}),
           2, "a NUL byte", max_stderr=200),
    Attack("a key file passed as --ids-file", lambda t: (["verify", "--ids-file", write(
        t, "key", f"{KEY_LINE}\n")], {}), 2, "a 64-character value (not shown)", not_in_stderr=[KEY_LINE[:6]]),
    Attack("an ids file over 8 MiB", lambda t: (["verify", "--ids-file", write(t, "big", "7\n" * 5_000_000)], {}), 2,
           "over the 8 MiB limit"),
    # -- item 6: strict ids, JSON with a bad byte, contradictions
    Attack("id 1_0", lambda t: (["verify", "1_0"], {}), 2, "ASCII digits 0-9 only"),
    Attack("id +5", lambda t: (["verify", "+5"], {}), 2, "ASCII digits 0-9 only"),
    Attack("Arabic-Indic digits", lambda t: (["verify", "\u0663"], {}), 2, "ASCII digits 0-9 only"),
    Attack("id ' 7'", lambda t: (["verify", " 7"], {}), 2, "whitespace"),
    Attack("id with a tab", lambda t: (["heal", "1\t2"], {}), 2, "whitespace"),
    Attack("id of 5000 digits", lambda t: (["diff", "9" * 5000], {}), 2, "not shown"),
    Attack("ids-file line 1_0", lambda t: (["verify", "--ids-file", write(t, "ids", "1\n1_0\n")], {}), 2,
           "ids:2: (byte offset 2)"),
    Attack("a u8 as the string \"6\"", lambda t: (["encode", write(t, "u8.json", json.dumps(
        {**make_summary(1).to_move_json(), "status": "6"}))], {}), 2, "status: expected u8 as a JSON number"),
    Attack("JSON with one bad UTF-8 byte", lambda t: (["hash", write(t, "bad.json", json.dumps(
        make_summary(1).to_move_json()).encode().replace(b'"status"', b'"st\xffatus"'))], {}), 2,
        "looks like JSON but is not valid UTF-8 (byte 0xff"),
    Attack("tamper --delete --bytes 00", on_chain("sim", "tamper", "1", "--delete", "--bytes", "00"), 2,
           "--delete with --bytes"),
    Attack("tamper --set twice", on_chain("sim", "tamper", "1", "--set", "status=7", "--set", "status=8"), 2,
           "--set status given twice"),
    Attack("junit sidecar cannot be written", junit_sidecar_blocked, 2, "is a directory (nothing written)"),
    Attack("a malformed evidence key", lambda t: (["evidence", "check", write(t, "r.json", "{}")],
                                                  {"DUALWRITE_EVIDENCE_KEY": "secret-not-hex"}), 2,
           "DUALWRITE_EVIDENCE_KEY: expected 64 hex digits", not_in_stderr=["secret-not-hex"]),
]


def run_measured(argv: list[str], env: dict[str, str], stdin: str | None, cwd: Path) -> tuple[int, str, str, float]:
    """Run, and return (exit code, stdout, stderr, maximum RSS in MB) of that one process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(stdin or os.devnull, "rb") as inp:
        p = subprocess.Popen([sys.executable, "-m", "dualwrite", *argv], stdin=inp, stdout=out, stderr=err, env=env,
                             cwd=cwd)
        try:
            _, status, usage = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            raise
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), usage.ru_maxrss / 1024


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, tmp_path: Path) -> None:
    argv, extra = attack.setup(tmp_path)
    env = base_env(**extra)
    code, out, err, rss = run_measured(argv, env, attack.stdin, tmp_path)
    assert code == attack.code, f"exit {code}: {out[-500:]} {err[-500:]}"
    assert "Traceback" not in err and "internal error" not in err
    assert rss < MAX_RSS_MB, f"{rss:.0f} MB"
    if attack.needle:
        assert attack.needle in err, err[:1000]
        assert len(err.strip().splitlines()) == 1 and len(err) <= attack.max_stderr, err[:1000]
    for secret in attack.not_in_stderr:
        assert secret not in err and secret not in out
    if attack.name.startswith("supra prints"):  # that one id unchecked, the other seven checked and passed
        assert "7        unchecked" in out and "7 passed" in out and "1 unchecked" in out and "not UTF-8" in out, out
    if attack.name.startswith("junit"):  # both or neither
        assert not (tmp_path / "out.xml").exists()
    if attack.name.startswith("unwritable"):
        assert "a-file" in err


def test_the_bounds_leave_real_inputs_alone(tmp_path: Path) -> None:
    """What the limits must not refuse: 200,000 ids in one run (as a range), long JSON Lines, u64 as strings."""
    from dualwrite.audit.verify import IdSet, parse_ids

    assert len(parse_ids(["1-200000"])) == 200_000
    ids = IdSet()
    parse_ids(["1-100000"], into=ids)
    parse_ids(["50000-150000"], into=ids)  # overlaps count once
    assert len(ids) == 150_000
    lines = "\n".join(json.dumps(make_summary(i).to_move_json()) for i in range(1, 2001))
    p = subprocess.run([sys.executable, "-m", "dualwrite", "hash", "--json", write(tmp_path, "l.jsonl", lines)],
                       capture_output=True, text=True, env=base_env(), check=False)
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 2000


def test_read_only_state_file_refuses_set(tmp_path: Path) -> None:
    state = chain_with(tmp_path)
    Chain(state).close()
    for extra in Path(str(state) + "-wal"), Path(str(state) + "-shm"):
        extra.unlink(missing_ok=True)
    immutable = os.geteuid() == 0  # root writes through file modes: make the file immutable instead
    if immutable:
        if not shutil.which("chattr"):
            pytest.skip("root without chattr: no way to make a file read-only")
        subprocess.run(["chattr", "+i", str(state)], check=True)
    else:
        state.chmod(0o444)
    try:
        code, out, err, _ = run_measured(["set", "5", "0x" + "11" * 32, "--state", str(state)], base_env(), None, tmp_path)
        assert code == 2, out + err
        assert "read-only" in err and "nothing was changed" in err and "Traceback" not in err
        code, out, err, _ = run_measured(["status", "1", "--state", str(state)], base_env(), None, tmp_path)
        assert code == 0, err  # reading still works
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(state)], check=True)
