"""Shell completion and "did you mean" (issue 20 item 15).

``--backend <TAB>`` offers the backends; command names complete from the lazy table without importing
a command module; the README's lines turn completion on. A mistyped command, of the top group or of a
sub-group (sim, cutover, evidence), gets the nearest names. Completion runs the real ``dualwrite`` as
bash would call it (``_DUALWRITE_COMPLETE=bash_complete``, ``COMP_WORDS``, ``COMP_CWORD``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.knobs import BACKEND_CHOICES, READS_CHOICES
from tests.chain_driver import console_script
from tests.envs import base_env

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def complete(line: str) -> list[str]:
    """What bash's completion function gets for the command line ``line`` (the cursor at its end)."""
    words = line.split(" ")
    env = base_env(_DUALWRITE_COMPLETE="bash_complete", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    p = subprocess.run([console_script("dualwrite")], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return [ln.split(",", 1)[1] for ln in p.stdout.splitlines()]


def test_backend_tab_offers_the_backends():
    assert complete("dualwrite status 5 --backend ") == list(BACKEND_CHOICES)
    assert complete("dualwrite --backend p") == ["podman"]  # before the subcommand too
    assert complete("dualwrite verify --all --backend docker") == ["docker", "docker-compose"]
    assert complete("dualwrite pending --reads ") == list(READS_CHOICES)


def test_commands_subcommands_and_options_complete():
    assert complete("dualwrite ver") == ["verify"]
    assert complete("dualwrite cutover ") == ["apply", "plan", "status"]
    assert complete("dualwrite sim in") == ["info", "init", "install-supra"]
    assert {"--all", "--allow-pending", "--allow-empty"} <= set(complete("dualwrite verify --al"))
    assert complete("dualwrite verify --show ") == ["failing", "all"]


def test_completing_a_command_name_imports_no_command_module():
    code = ("import json, os, sys\n"
            "os.environ.update(_DUALWRITE_COMPLETE='bash_complete', COMP_WORDS='dualwrite ', COMP_CWORD='1')\n"
            "from dualwrite.cli.main import cli\n"
            "try:\n    cli.main(prog_name='dualwrite')\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code], env=base_env(), capture_output=True, text=True, timeout=60)
    names = [ln.split(",", 1)[1] for ln in p.stdout.splitlines()]
    assert "verify" in names and "cutover" in names and len(names) >= 20
    loaded = json.loads(p.stderr.strip().splitlines()[-1])
    assert not [m for m in loaded if m.endswith("_cmds")], "completing a command name imported a command module"


@pytest.mark.parametrize("shell,needle", [("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete")])
def test_the_readme_says_how_to_turn_completion_on_and_it_works(shell, needle):
    line = {"bash": 'eval "$(_DUALWRITE_COMPLETE=bash_source dualwrite)"',
            "zsh": 'eval "$(_DUALWRITE_COMPLETE=zsh_source dualwrite)"',
            "fish": "_DUALWRITE_COMPLETE=fish_source dualwrite | source"}[shell]
    assert line in README
    var = re.search(r"_DUALWRITE_COMPLETE=(\w+)", line).group(1)
    p = subprocess.run([console_script("dualwrite")], env=base_env(_DUALWRITE_COMPLETE=var), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and needle in p.stdout, p.stdout[:300]


@pytest.mark.parametrize("argv,said", [
    (["verfy"], "dualwrite: usage error: No such command 'verfy'. Did you mean 'verify'? (see --help)"),
    (["cutovr", "plan"], "dualwrite: usage error: No such command 'cutovr'. Did you mean 'cutover'? (see --help)"),
    (["sim", "inot"], "dualwrite sim: usage error: No such command 'inot'. Did you mean 'init' or 'info'? (see --help)"),
    (["cutover", "aply", "p.json"], "dualwrite cutover: usage error: No such command 'aply'. Did you mean 'apply'? "
                                    "(see --help)"),
    (["evidence", "chek"], "dualwrite evidence: usage error: No such command 'chek'. Did you mean 'check'? (see --help)"),
    (["frobnicate"], "dualwrite: usage error: No such command 'frobnicate'. (see --help)"),
])
def test_a_mistyped_command_gets_did_you_mean(argv, said):
    p = subprocess.run([console_script("dualwrite"), *argv], env=base_env(), capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stderr) == (2, said + "\n")
