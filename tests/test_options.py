"""Backend options where users put them (issue 8 item 5), and one schema for options, environment and
the ``--settings`` file (issue 14 item 3). Each test is the attack or the complaint of the issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from dualwrite.backends import BackendConfig, ModuleAddresses, SettingError, open_backend, replace
from dualwrite.cli.main import cli
from dualwrite.knobs import KNOBS
from dualwrite.sim.chain import Chain
from tests.argv_fakes import after, calls, recording_podman, recording_supra
from tests.envs import base_env


def dw(*args, env=None):
    r = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return r


def one_error_line(r, code: int = 2) -> str:
    assert r.exit_code == code, (r.exit_code, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualwrite: error: "), r.stderr
    assert "Traceback" not in r.output and "internal error" not in r.stderr
    return lines[0]


@pytest.fixture
def chains(tmp_path: Path) -> dict[str, Path]:
    """Four initialised chains; chain X has lottery 7 pending with hash 0xXX.. so a status shows which one answered."""
    out = {}
    for name in ("cmd", "group", "env", "settings"):
        p = tmp_path / f"{name}.sqlite"
        assert dw("sim", "init", "--dual-write", "--state", p).exit_code == 0
        h = {"cmd": "11", "group": "22", "env": "33", "settings": "44"}[name]
        assert dw("set", "7", "0x" + h * 32, "--state", p).exit_code == 0
        out[name] = p
    return out


def answered_by(r) -> str:
    assert r.exit_code == 0, r.output
    h = json.loads(r.stdout)["expected_hash"][2:4]
    return {"11": "cmd", "22": "group", "33": "env", "44": "settings"}[h]


# -- issue 8 item 5: options before and after the subcommand -------------------------------------------


def test_the_issue_command_works(chains):
    """`dualwrite --backend sim status 5 --json` answered "No such option '--backend'"."""
    r = dw("--backend", "sim", "--state", chains["cmd"], "status", "7", "--json")
    assert answered_by(r) == "cmd"
    assert json.loads(r.stdout)["backend"] == f"sim (state {chains['cmd']})"


def test_the_issue_command_as_a_real_process(chains, tmp_path):
    p = subprocess.run([sys.executable, "-m", "dualwrite", "--backend", "sim", "status", "7", "--json"],
                       env=base_env(DUALWRITE_STATE=str(chains["group"])), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["expected_hash"] == "0x" + "22" * 32


@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_options_before_after_and_both(chains, where):
    """Before the subcommand, after it, or both: where both, the command's own value wins."""
    if where == "before":
        r = dw("--state", chains["group"], "--backend", "sim", "status", "7", "--json")
        assert answered_by(r) == "group"
    elif where == "after":
        r = dw("status", "7", "--json", "--backend", "sim", "--state", chains["cmd"])
        assert answered_by(r) == "cmd"
    else:
        r = dw("--state", chains["group"], "--backend", "local", "status", "7", "--backend", "sim",
               "--state", chains["cmd"], "--json")
        assert answered_by(r) == "cmd"


def test_precedence_command_group_env_settings(chains, tmp_path):
    """command > group > environment > settings file > default."""
    s = tmp_path / "s.toml"
    s.write_text(f'state = "{chains["settings"]}"\n')
    env = {"DUALWRITE_STATE": str(chains["env"])}
    assert answered_by(dw("--settings", s, "status", "7", "--json")) == "settings"
    assert answered_by(dw("status", "7", "--json", "--settings", s, env=env)) == "env"
    assert answered_by(dw("--state", chains["group"], "status", "7", "--json", "--settings", s, env=env)) == "group"
    assert answered_by(dw("--state", chains["group"], "status", "7", "--json", "--state", chains["cmd"],
                          "--settings", s, env=env)) == "cmd"
    # a settings file named before the subcommand, another after it: the command's file is the one read
    s2 = tmp_path / "s2.toml"
    s2.write_text(f'state = "{chains["cmd"]}"\n')
    assert answered_by(dw("--settings", s, "status", "7", "--json", "--settings", s2)) == "cmd"
    # DUALWRITE_SETTINGS names the file when no option does
    assert answered_by(dw("status", "7", "--json", env={"DUALWRITE_SETTINGS": str(s)})) == "settings"


def test_group_options_reach_the_sim_commands(tmp_path):
    p = tmp_path / "g.sqlite"
    r = dw("--state", p, "sim", "init", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == str(p), r.output
    r = dw("--state", tmp_path / "other.sqlite", "sim", "info", "--json", "--state", p)
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == str(p), r.output


def test_group_help_lists_every_backend_option():
    r = dw("--help")
    assert r.exit_code == 0
    for k in KNOBS:
        assert k.option in r.stdout, k.option
    assert "--settings" in r.stdout


def test_every_backend_option_is_accepted_before_the_subcommand(tmp_path):
    """Each option the commands take is also a group option: a bad value before the subcommand is refused
    by the same check as after it, naming the option (so the group really parsed it)."""
    for k in KNOBS:
        if k.kind in ("flag", "lines"):  # a flag has no value; any text is a line
            continue
        bad = {"int": "x", "float": "x", "choice": "bogus", "args": "'unclosed"}.get(k.kind, "-x")
        if k.name == "volume_suffix":
            bad = "rw"
        if not k.argv and k.kind in ("text", "path") and k.name != "volume_suffix":
            continue  # free text (docker_host, state): nothing to refuse
        given = [f"{k.option}={bad}"] if bad.startswith("-") else [k.option, bad]  # as a word of its own, '-x'
        before = one_error_line(dw(*given, "status", "1"))                      # is refused before the rule
        after_ = one_error_line(dw("status", "1", *given))
        assert before == after_ and k.option in before, (before, after_)


def test_flag_given_before_the_subcommand_reaches_the_cli(tmp_path):
    log = tmp_path / "argv.log"
    supra = recording_supra(tmp_path / "bin" / "supra", log)
    state = tmp_path / "c.sqlite"
    dw("sim", "init", "--dual-write", "--state", state)
    r = dw("--backend", "local", "--supra-bin", supra, "--assume-yes", "--profile", "alice", "clear", "5",
           env={"DUALWRITE_STATE": str(state)})
    assert r.exit_code == 4, r.output  # alice is not the admin: the chain aborts, after the argv was recorded
    (argv,) = calls(log)
    assert "--assume-yes" in argv and after(argv, "--profile") == "alice"


# -- issue 14 item 3: the settings file goes through the options' checks -------------------------------


@pytest.fixture
def local(tmp_path):
    """A chain and a recording supra for the local backend."""
    state = tmp_path / "chain.sqlite"
    assert dw("sim", "init", "--dual-write", "--state", state).exit_code == 0
    log = tmp_path / "argv.log"
    supra = recording_supra(tmp_path / "bin" / "supra", log)
    return {"env": {"DUALWRITE_STATE": str(state)}, "log": log, "supra": supra, "state": state}


def settings(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "settings.toml"
    p.write_text(text)
    return p


def test_internal_url_flag_is_not_a_setting(local, tmp_path):
    """`url_flag = "--function-id"` made `clear 505` run mirror_summary_admin(505)."""
    s = settings(tmp_path, 'url_flag = "--function-id"\nrpc_url = "lottery_multi::history::mirror_summary_admin"\n')
    line = one_error_line(dw("clear", "505", "--backend", "local", "--supra-bin", local["supra"], "--settings", s,
                             env=local["env"]))
    assert "unknown key 'url_flag'" in line and str(s) in line
    assert calls(local["log"]) == [], "nothing may reach the CLI"
    with pytest.raises(SettingError, match="url_flag: not a backend setting"):
        BackendConfig(url_flag="--function-id")


def test_the_v6_url_flag_comes_from_the_url_setting(local, tmp_path):
    s = settings(tmp_path, 'url = "http://127.0.0.1:9"\nreads = "cli"\n')  # reads through the CLI, not over HTTP
    r = dw("status", "5", "--backend", "local", "--supra-bin", local["supra"], "--settings", s, env=local["env"])
    assert r.exit_code == 0, r.output
    (argv,) = calls(local["log"])
    assert after(argv, "--url") == "http://127.0.0.1:9" and "--rpc-url" not in argv
    assert after(argv, "--function-id").endswith("::legacy_bridge::dual_write_status")


@pytest.mark.parametrize("text,key", [
    ("max_gas = 0", "max_gas"), ("timeout = 0", "timeout"), ("retries = -1", "retries"),
    ("gas_unit_price = 0", "gas_unit_price"), ("retries = 11", "retries"), ("expiration_secs = 0", "expiration_secs"),
    ('timeout = "x"', "timeout"), ("timeout = nan", "timeout"), ("timeout = inf", "timeout"),
    ("[profile]\nname = 'x'", "profile"), ('addresses = "0x1"', "addresses"), ("max_gas = true", "max_gas"),
    ("max_gas = 1.5", "max_gas"), ('max_gas = "1_000"', "max_gas"), ("profile = 5", "profile"),
    ('backend = "bogus"', "backend"), ("assume_yes = 1", "assume_yes"), ("podman_extra_args = 3", "podman_extra_args"),
    ("podman_extra_args = [1, 2]", "podman_extra_args"), ('podman_extra_args = "\'unclosed"', "podman_extra_args"),
    ('volume_suffix = "rw -v /:/host"', "volume_suffix"), ('profile = "a\\u0000b"', "profile"),
    ('lottery_multi_address = "0xZZ"', "lottery_multi_address"), ("nonsense = 1", "nonsense"),
    ('state = ""', "state"), ("rpc_timeout = 0", "rpc_timeout"), ("rpc_retries = -1", "rpc_retries"),
    ('reads = "http"', "reads"), ("rpc_headers = 5", "rpc_headers"),
])
def test_bad_settings_exit_2_naming_the_key(local, tmp_path, text, key):
    s = settings(tmp_path, text + "\n")
    backend = [] if key == "backend" else ["--backend", "local"]  # an option would win over the file's value
    line = one_error_line(dw("status", "5", *backend, "--supra-bin", local["supra"], "--settings", s,
                             env=local["env"] if key != "state" else None))
    assert f"--settings {s}: " in line and (f"{key} = " in line or f"key {key!r}" in line), line
    assert calls(local["log"]) == []


def test_a_bad_provider_header_setting_is_named_never_echoed(local, tmp_path):
    s = settings(tmp_path, 'rpc_headers = ["X-Api-Key: sekrit-123", 7]\n')
    line = one_error_line(dw("status", "5", "--settings", s, env=local["env"]))
    assert "rpc_headers" in line and "sekrit" not in line


@pytest.mark.parametrize("args,option", [
    (["--max-gas", "0"], "--max-gas"), (["--timeout", "0"], "--timeout"), (["--retries=-1"], "--retries"),
    (["--timeout", "x"], "--timeout"), (["--max-gas", "1_0"], "--max-gas"), (["--max-gas", "٣"], "--max-gas"),
    (["--max-gas", str(2**64)], "--max-gas"), (["--rpc-timeout", "0"], "--rpc-timeout"), (["--reads", "x"], "--reads"),
])
def test_the_options_refuse_what_the_settings_refuse(local, args, option):
    line = one_error_line(dw("status", "5", "--backend", "local", "--supra-bin", local["supra"], *args, env=local["env"]))
    assert line.startswith(f"dualwrite: error: {option} ")
    assert calls(local["log"]) == []


def test_one_schema_for_options_settings_environment_and_python(local, tmp_path):
    """max_gas 0 and an unsplittable PODMAN_EXTRA_ARGS: refused from every source with the same reason."""
    reason = "expected a whole number from 1 to"
    s = settings(tmp_path, "max_gas = 0\n")
    assert reason in one_error_line(dw("--max-gas", "0", "status", "5", env=local["env"]))
    assert reason in one_error_line(dw("status", "5", "--settings", s, env=local["env"]))
    with pytest.raises(SettingError, match=reason):
        BackendConfig(max_gas=0)
    reason = "like a shell would"
    assert reason in one_error_line(dw("status", "5", env={**local["env"], "PODMAN_EXTRA_ARGS": "'x"}))
    assert "environment PODMAN_EXTRA_ARGS" in one_error_line(dw("status", "5", env={**local["env"], "PODMAN_EXTRA_ARGS": "'x"}))
    assert reason in one_error_line(dw("status", "5", "--podman-extra-args", "'x", env=local["env"]))
    with pytest.raises(SettingError, match=reason):
        BackendConfig(podman_extra_args="'x")


def test_podman_extra_args_are_words_not_characters(tmp_path):
    """`podman_extra_args = "--privileged"` was split into characters; a string is split like a shell would,
    a list is taken as is, and the words reach `podman run` whole (a recording podman, the CLI part run for real)."""
    state = tmp_path / "configs" / "dualwrite-sim.sqlite"
    assert dw("sim", "init", "--dual-write", "--state", state).exit_code == 0
    log = tmp_path / "podman.log"
    podman = recording_podman(tmp_path / "bin" / "podman", log)
    common = ["--backend", "podman", "--podman-bin", podman, "--image", "localhost/x:1", "--configs-dir",
              tmp_path / "configs", "--workspace-dir", tmp_path / "ws"]
    env = {"DUALWRITE_STATE": str(state)}
    for text, words in [('podman_extra_args = "--privileged"', ["--privileged"]),
                        ("podman_extra_args = \"--label 'a b=1' -e X=1\"", ["--label", "a b=1", "-e", "X=1"]),
                        ('podman_extra_args = ["--label", "c d=2"]', ["--label", "c d=2"])]:
        log.unlink(missing_ok=True)
        r = dw("status", "5", *common, "--settings", settings(tmp_path, text + "\n"), env=env)
        assert r.exit_code == 0, r.output
        (argv,) = calls(log)
        image_at = argv.index("localhost/x:1")
        assert argv[image_at - len(words):image_at] == words, argv
    assert BackendConfig(podman_extra_args="--privileged").podman_extra_args == ("--privileged",)


def test_python_api_construction_still_works(tmp_path):
    """README's `BackendConfig(backend="podman", image="supra:v9")`, the tests' `BackendConfig(backend="sim", state=p)`."""
    cfg = BackendConfig(backend="podman", image="supra:v9")
    assert cfg.image == "supra:v9" and cfg.max_gas == 500_000 and cfg.configs_dir == Path("configs")
    cfg = BackendConfig(addresses=ModuleAddresses("0x1", "lottery"))
    assert cfg.addresses == ModuleAddresses("0x1", "lottery") and cfg.lottery_multi_address == "0x1"
    with pytest.raises(AttributeError, match="immutable"):
        cfg.max_gas = 5  # frozen
    p = tmp_path / "api.sqlite"
    Chain(p).close()
    b = open_backend(BackendConfig(backend="sim", state=p))
    assert b.describe() == f"sim (state {p})"
    b.close()
    assert replace(cfg, max_gas=7).max_gas == 7
    with pytest.raises(SettingError, match="max_gas: expected a whole number from 1 to"):
        replace(cfg, max_gas=0)


def test_a_knob_is_a_field_an_option_and_a_settings_key():
    """Adding a setting is one line in dualwrite/knobs.py: field, group option, command option, key follow."""
    assert set(BackendConfig.fields()) == {k.name for k in KNOBS}
    assert set(BackendConfig().as_dict()) == {k.name for k in KNOBS}
    assert set(BackendConfig.json_schema()["properties"]) == {k.name for k in KNOBS}
    group_opts = {o for p in cli.params for o in p.opts}
    import click

    status = cli.get_command(click.Context(cli), "status")  # subcommands load lazily
    status_opts = {o for p in status.params for o in p.opts}
    for k in KNOBS:
        assert k.option in group_opts and k.option in status_opts, k.option
