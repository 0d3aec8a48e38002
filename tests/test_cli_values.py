"""Option values and bad values (issue 20 items 7 and 15).

Item 7: ``verify --junit --all 1-3`` wrote a file called ``--all`` and checked only 1-3 (exit 0);
``verify --report --json 1`` wrote ``--json``. Every option that takes a value, of every command (the
walk below finds the ones added later too), refuses a value given as a word of its own that starts with
``-``: one line naming the option and the value, exit 2, nothing written; ``--opt=-x`` says it is meant.

Item 15: one wording for every bad value, click's parameters and the backend settings alike:
``WHERE 'VALUE': expected …`` (``status abc`` said "not a valid integer range", ``--backend simulator``
pydantic's "Input should be …").
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dualwrite.cli.main import COMMANDS, cli, load_command
from dualwrite.demo import make_summary
from tests.chain_driver import console_script
from tests.envs import base_env


def dw(*args, env=None, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input, catch_exceptions=False,
                              prog_name="dualwrite")


def one_line(r, code: int = 2) -> str:
    assert r.exit_code == code, (r.exit_code, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output and "internal error" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture
def sim(tmp_path: Path) -> dict:
    state = tmp_path / "sim.sqlite"
    env = base_env(DUALWRITE_STATE=str(state), DUALWRITE_BACKEND="sim")
    p = subprocess.run([console_script("dualwrite"), "sim", "init", "--dual-write", "--mirror"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return {"env": env, "tmp": tmp_path, "state": state}


def run(sim: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("dualwrite"), *argv], env=sim["env"], cwd=sim["tmp"], capture_output=True,
                          text=True, timeout=60)


# -- item 7: the two commands, as a user types them ------------------------------------------------


def test_verify_junit_does_not_eat_all(sim):
    p = run(sim, "verify", "--junit", "--all", "1-3")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stderr == ("dualwrite verify: usage error: --junit '--all': looks like an option, not a value; write "
                        "--junit=--all if it is the value (see --help)\n")
    assert p.stdout == "" and sorted(x.name for x in sim["tmp"].iterdir()) == ["sim.sqlite"]  # nothing written


def test_verify_report_does_not_eat_json(sim):
    p = run(sim, "verify", "--report", "--json", "1")
    assert p.returncode == 2 and "--report '--json': looks like an option" in p.stderr, p.stderr
    assert not (sim["tmp"] / "--json").exists()


def test_the_equals_form_says_it_is_meant(sim):
    p = run(sim, "verify", "--junit=--all", "1")
    assert p.returncode == 1, p.stderr  # lottery 1 is absent: the gate fails, and the file is written
    assert (sim["tmp"] / "--all").is_file() and (sim["tmp"] / "--all.b3").is_file()
    p = run(sim, "verify", "--report", "./-r.json", "1")  # or a path that does not start with '-'
    assert p.returncode == 1 and (sim["tmp"] / "-r.json").is_file()


def test_a_dash_alone_is_a_value_stdin(sim):
    summary = json.dumps(make_summary(7).to_move_json())
    r = dw("set", "7", "--summary", "-", env=sim["env"], input=summary)
    assert r.exit_code == 0, r.output
    assert "set_expected_hash(7, 0x" in r.stdout


def test_short_options_and_attached_values(sim):
    assert "--jobs '-5'" in one_line(dw("verify", "-j", "-5", "1", env=sim["env"]))  # named by its long name
    r = dw("verify", "-j4", "1", "--allow-empty", env=sim["env"])
    assert r.exit_code == 1, r.output  # -j4 is -j with 4: parsed, lottery 1 checked (absent)


def test_group_options_and_backend_options_too(sim):
    line = one_line(dw("--state", "--json", "status", "1"))
    assert line.startswith("dualwrite: usage error: --state '--json': looks like an option")
    line = one_line(dw("status", "1", "--backend", "--json"))
    assert line.startswith("dualwrite status: usage error: --backend '--json': looks like an option")


def test_podman_extra_args_takes_option_words(tmp_path):
    """The one exception: --podman-extra-args's words are podman options, so its value starts with '-'."""
    from tests.argv_fakes import calls, recording_podman

    state = tmp_path / "configs" / "dualwrite-sim.sqlite"
    assert dw("sim", "init", "--dual-write", "--state", state).exit_code == 0
    log = tmp_path / "podman.log"
    podman = recording_podman(tmp_path / "bin" / "podman", log)
    r = dw("status", "5", "--backend", "podman", "--podman-bin", podman, "--image", "localhost/x:1", "--configs-dir",
           tmp_path / "configs", "--workspace-dir", tmp_path / "ws", "--podman-extra-args", "--label a=1",
           env={"DUALWRITE_STATE": str(state)})
    assert r.exit_code == 0, r.output
    (argv,) = calls(log)
    assert argv[argv.index("localhost/x:1") - 2:argv.index("localhost/x:1")] == ["--label", "a=1"]


def test_a_secret_option_value_is_never_shown():
    line = one_line(dw("status", "1", "--rpc-header", "-X-Api-Key: sekrit"))
    assert "--rpc-header" in line and "sekrit" not in line and "Api-Key" not in line


def _value_options(cmd: click.Command, path: list[str]):
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.is_flag and not p.count:
            yield path, p
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _value_options(sub, [*path, name])


def every_value_option():
    out = [([], p) for p in cli.params if isinstance(p, click.Option) and not p.is_flag]
    for name in sorted(COMMANDS):
        out += list(_value_options(load_command(name), [name]))
    return out


def test_every_value_option_of_every_command_refuses_an_option_as_its_value():
    """The walk finds every option that takes a value (those added after this test too) and gives it
    '--json' as the next word: each is refused before anything runs, naming the option."""
    options = every_value_option()
    assert len(options) > 150  # the backend options on every chain-facing command, and the commands' own
    for path, opt in options:
        name = next(o for o in opt.opts if o.startswith("--"))
        if name == "--podman-extra-args":  # its words are podman options by design (the next test)
            continue
        r = dw(*path, name, "--json")
        line = one_line(r)
        secret = name in ("--rpc-header", "--require-header")  # header values carry provider keys
        shown = "a value starting with '-' (not shown)" if secret else "'--json'"
        assert f"{name} {shown}: looks like an option, not a value; write {name}=" in line, (path, line)
        assert json.loads(r.stdout)["error"]["kind"] == "usage_error"  # --json was there: the error object too


# -- item 15: one wording for every bad value ----------------------------------------------------------


@pytest.mark.parametrize("argv,line", [
    (["status", "abc"], "dualwrite status: usage error: LOTTERY_ID 'abc': expected a whole number from 0 to "
                        "18446744073709551615 (see --help)"),
    (["status", "5", "--backend", "simulator"], "dualwrite: error: --backend 'simulator': expected one of: sim, local, "
                                                "docker, docker-compose, podman, auto, rpc"),
    (["--backend", "simulator", "status", "5"], "dualwrite: error: --backend 'simulator': expected one of: sim, local, "
                                                "docker, docker-compose, podman, auto, rpc"),
    (["verify", "--show", "bad", "1"], "dualwrite verify: usage error: --show 'bad': expected one of: failing, all "
                                       "(see --help)"),
    (["verify", "--jobs", "0", "1"], "dualwrite verify: usage error: --jobs '0': expected a whole number from 1 to 64 "
                                     "(see --help)"),
    (["status", "5", "--max-gas", "0"], "dualwrite: error: --max-gas '0': expected a whole number from 1 to "
                                        "18446744073709551615"),
    (["status", "5", "--rpc-timeout", "x"], "dualwrite: error: --rpc-timeout 'x': expected a number of seconds from "
                                            "0.1 to 86400"),
    (["events", "--limit", "0"], "dualwrite events: usage error: --limit '0': expected a whole number, at least 1 "
                                 "(see --help)"),
    (["init", "maybe", "true"], "dualwrite init: usage error: ABORT_ON_MISMATCH 'maybe': expected one of: true, false, "
                                "1, 0 (see --help)"),
    (["hash", "--out", "/", "x"], "dualwrite hash: usage error: --out '/': is a directory (see --help)"),
])
def test_one_wording_for_bad_values(argv, line):
    r = dw(*argv)
    got = one_line(r)
    assert got == line
    for other in ("Input should be", "Invalid value for", "not a valid integer", "is not in the range"):
        assert other not in got


def test_every_choice_and_number_parameter_is_worded():
    """Every parameter of every loaded command (click's Choice, IntRange, INT, FloatRange) fails in the one
    wording: its name, the value, what it expected."""
    seen = 0
    for name in sorted(COMMANDS):
        cmd = load_command(name)
        stack = [cmd]
        while stack:
            c = stack.pop()
            stack += list(getattr(c, "commands", {}).values())
            for p in c.params:
                if isinstance(p, click.Option) and p.is_flag:
                    continue
                if not isinstance(p.type, (click.Choice, click.types._NumberParamTypeBase)):
                    continue
                with pytest.raises(click.BadParameter) as info:
                    p.type.convert("x-bad", p, click.Context(c))
                where = next((o for o in p.opts if o.startswith("--")), None) if isinstance(p, click.Option) \
                    else p.human_readable_name
                assert info.value.format_message().startswith(f"{where} 'x-bad': expected "), info.value.format_message()
                seen += 1
    assert seen >= 20
