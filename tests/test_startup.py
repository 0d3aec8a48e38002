"""Lazy subcommands: every entry of ``COMMANDS`` loads, ``--help`` lists them all without importing any.

Start-up speed itself is measured by ``benchmarks/startup.py`` (whole processes against
``python -c pass``), not here; these tests pin what makes it fast, in real processes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from dualwrite.cli.main import COMMANDS, cli, load_command

from tests.envs import base_env


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_table_entry_loads_with_its_own_short_help(name: str) -> None:
    cmd = load_command(name)
    assert isinstance(cmd, click.Command) and cmd.name == name
    # the table's short help is the command's own: --help shows it without importing the module
    assert COMMANDS[name][1] == cmd.get_short_help_str(limit=10_000)
    r = CliRunner().invoke(cli, [name, "--help"])
    assert r.exit_code == 0, r.output
    assert f"Usage: cli {name}" in r.output or f"Usage: dualwrite {name}" in r.output


def _run(code: str) -> str:
    p = subprocess.run([sys.executable, "-c", code], env=base_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _cli(argv: list[str]) -> dict:
    """Run ``dualwrite ARGV`` in a fresh interpreter: its stdout, and every module it imported."""
    return json.loads(_run(
        "import io, json, sys, contextlib\n"
        "from dualwrite.cli.main import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        f"        cli.main({argv!r}, prog_name='dualwrite')\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "print(json.dumps({'out': buf.getvalue(), 'modules': sorted(sys.modules)}))\n"))


def test_help_lists_every_command_and_imports_no_command_module() -> None:
    out = _cli(["--help"])
    listed = {line.split()[0] for line in out["out"].split("Commands:", 1)[1].splitlines() if line[:3].strip()}
    assert listed == set(COMMANDS)
    for name, (_, short) in COMMANDS.items():
        assert short.split()[0] in out["out"]
    loaded = set(out["modules"])
    assert not {m for m in loaded if m.endswith("_cmds")}, "--help imported a command module"
    for heavy in ("pydantic", "docker", "sqlite3", "httpx", "dualwrite.structs", "dualwrite.sim.chain", "blake3"):
        assert heavy not in loaded, f"--help imported {heavy}"


def test_a_command_imports_only_its_own_module() -> None:
    """`dualwrite hash --help` loads codec_cmds; nothing of the bridge, audit, sim or docker."""
    loaded = set(json.loads(_run(
        "import json, sys\n"
        "from dualwrite.cli.main import cli\n"
        "try:\n"
        "    cli.main(['encode', '--help'], prog_name='dualwrite')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n").splitlines()[-1]))
    assert "dualwrite.cli.codec_cmds" in loaded
    for other in ("dualwrite.cli.bridge_cmds", "dualwrite.cli.audit_cmds", "dualwrite.cli.sim_cmds",
                  "dualwrite.cli.demo_cmds", "dualwrite.sim.chain", "docker"):
        assert other not in loaded


def test_importing_the_package_builds_no_model() -> None:
    loaded = set(json.loads(_run("import json, sys, dualwrite; print(json.dumps(sorted(sys.modules)))")))
    assert "pydantic" not in loaded and "dualwrite.structs" not in loaded
    # the public names still resolve, on first use
    _run("import dualwrite; assert dualwrite.LotterySummary.__name__ == 'LotterySummary';"
         "assert dualwrite.expected_hash and dualwrite.ExitCode.EMPTY == 5;"
         "from dualwrite import DualWriteStatus, decode_summary")


def test_an_unknown_command_is_still_a_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "dualwrite", "no-such-command"], env=base_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "No such command" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [["status", "5"], ["status", "5", "--json"], ["flags"], ["pending", "--json"]])
def test_control_plane_reads_on_sim_import_no_model(tmp_path, argv: list[str]) -> None:
    """`status`, `flags`, `pending` on sim: the answer, without pydantic, the models or HTTP (start-up budget)."""
    state = tmp_path / "s.sqlite"
    init = subprocess.run([sys.executable, "-m", "dualwrite", "sim", "init", "--dual-write", "--state", str(state)],
                          env=base_env(), capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    set_ = subprocess.run([sys.executable, "-m", "dualwrite", "set", "5", "0x" + "ab" * 32, "--state", str(state)],
                          env=base_env(), capture_output=True, text=True, timeout=60)
    assert set_.returncode == 0, set_.stderr
    out = _cli([*argv, "--state", str(state)])
    if argv[0] == "status":
        assert "0x" + "ab" * 32 in out["out"]
    elif argv[0] == "flags":
        assert "abort_on_mismatch" in out["out"]
    else:
        assert json.loads(out["out"]) == [5]
    loaded = set(out["modules"])
    for heavy in ("pydantic", "pydantic_core", "dualwrite.structs", "dualwrite.bcs.struct", "httpx", "blake3",
                  "dualwrite.backends.runners", "dualwrite.backends.cli_output"):
        assert heavy not in loaded, f"{' '.join(argv)} imported {heavy}"
