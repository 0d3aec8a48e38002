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


HASH = "0x" + "ab" * 32


@pytest.mark.parametrize("argv, shows", [
    (["status", "5"], HASH), (["status", "5", "--json"], HASH), (["flags"], "abort_on_mismatch"),
    (["pending", "--json"], "[\n  5\n]"), (["set", "7", "0x" + "cd" * 32], "ArchiveDualWriteStartedEvent"),
    (["clear", "5"], "Success"), (["update-flags", "true", "false", "false"], "Success"),
])
def test_control_plane_commands_on_sim_import_no_model(tmp_path, argv: list[str], shows: str) -> None:
    """The runbook's control-plane calls on sim (shell loops, the drop-in script): no pydantic, no models,
    no HTTP, no subprocess machinery, so they start within the budget (benchmarks/startup.py)."""
    state = tmp_path / "s.sqlite"
    for prep in (["sim", "init", "--dual-write"], ["set", "5", HASH]):
        p = subprocess.run([sys.executable, "-m", "dualwrite", *prep, "--state", str(state)],
                           env=base_env(), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    out = _cli([*argv, "--state", str(state)])
    assert shows in out["out"]
    loaded = set(out["modules"])
    for heavy in ("pydantic", "pydantic_core", "dualwrite.structs", "dualwrite.bcs.struct", "httpx", "blake3",
                  "dualwrite.backends.runners", "dualwrite.backends.cli_output"):
        assert heavy not in loaded, f"{' '.join(argv)} imported {heavy}"
