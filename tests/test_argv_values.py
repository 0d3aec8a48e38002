"""Option values that start with ``-`` never reach the Supra CLI or podman as options (issue 12 item 2).

`dualwrite set 5 HASH --backend local --profile '--rpc-url=http://elsewhere'` ran
`supra move tool run ... --profile --rpc-url=http://elsewhere ...`. Every value dualwrite puts in an
argv (or in a function id) is refused when it starts with ``-``: one line naming the option,
variable or settings key, exit 2, and nothing run. Legitimate values reach the argv word for word.

Checked with a ``supra`` and a ``podman`` that record their argv (then do the real work), on
``local``, ``podman`` (exec and one-shot) and ``docker``; and, with the real engines, inside the
container (a recording supra bind-mounted over /supra/supra).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.knobs import KNOBS
from tests.argv_fakes import after, calls, recording_podman, recording_supra, recording_supra_in_image
from tests.engines import unique_name

FORWARDED = [k for k in KNOBS if k.argv]
HOSTILE = "--rpc-url=http://elsewhere"
H = "0x" + "ab" * 32


def dw(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_every_argv_setting_is_covered():
    """The list the refusal applies to: the issue's, and anything else dualwrite forwards."""
    assert {k.name for k in FORWARDED} == {
        "profile", "config", "rpc_url", "url", "lottery_multi_address", "lottery_address", "supra_bin", "container",
        "image", "configs_dir", "workspace_dir", "podman_bin"}


@pytest.fixture
def rig(tmp_path):
    state = tmp_path / "configs" / "dualwrite-sim.sqlite"
    assert dw("sim", "init", "--dual-write", "--state", state).exit_code == 0
    log = tmp_path / "argv.log"
    return {"state": state, "log": log, "supra": recording_supra(tmp_path / "bin" / "supra", log),
            "podman": recording_podman(tmp_path / "bin" / "podman", log), "tmp": tmp_path}


def _backend_args(rig, backend: str) -> list[str]:
    if backend == "local":
        return ["--backend", "local", "--supra-bin", rig["supra"]]
    if backend == "podman":
        return ["--backend", "podman", "--podman-bin", rig["podman"], "--image", "localhost/x:1",
                "--configs-dir", rig["tmp"] / "configs", "--workspace-dir", rig["tmp"] / "ws"]
    # docker: an engine that is not there -- refused values must be refused before it is even looked for (exit 2, not 3)
    return ["--backend", "docker", "--docker-host", f"unix://{rig['tmp'] / 'no-docker.sock'}"]


SOURCES = [(k, s) for k in FORWARDED for s in ("command", "group", "settings", "env") if s != "env" or k.env]


@pytest.mark.parametrize("backend", ["local", "podman", "docker"])
@pytest.mark.parametrize("knob,source", SOURCES, ids=[f"{k.name}-{s}" for k, s in SOURCES])
def test_a_value_starting_with_dash_is_refused(rig, backend, source, knob):
    env = {"DUALWRITE_STATE": str(rig["state"])}
    before, after_ = [], []
    if source == "command":  # --opt=VALUE: as a word of its own the value is refused before (test_cli_values.py)
        after_ = [f"{knob.option}={HOSTILE}"]
        where = f"{knob.option} '{HOSTILE}'"
    elif source == "group":
        before = [f"{knob.option}={HOSTILE}"]
        where = f"{knob.option} '{HOSTILE}'"
    elif source == "settings":
        s = rig["tmp"] / "s.toml"
        s.write_text(f"{knob.name} = {json.dumps(HOSTILE)}\n")
        after_ = ["--settings", s]
        where = f"--settings {s}: {knob.name} = '{HOSTILE}'"
    else:
        env[knob.env] = HOSTILE
        where = f"environment {knob.env}='{HOSTILE}'"
    base = _backend_args(rig, backend)
    if knob.option in base:  # the rig's own value for this option would win over the hostile one: drop it
        i = base.index(knob.option)
        del base[i:i + 2]
    r = dw(*before, "set", "5", H, *base, *after_, env=env)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dualwrite: error: {where}: starts with '-'"), r.stderr
    assert calls(rig["log"]) == [], "the CLI (or podman) was started"


def test_the_issue_attack_on_local(rig):
    for given, reason in ((["--profile", HOSTILE], "looks like an option, not a value"),
                          ([f"--profile={HOSTILE}"], "starts with '-'")):
        r = dw("set", "5", H, "--backend", "local", "--supra-bin", rig["supra"], *given,
               env={"DUALWRITE_STATE": str(rig["state"])})
        assert r.exit_code == 2 and "--profile" in r.stderr and reason in r.stderr, r.output
        assert calls(rig["log"]) == []


def test_legitimate_values_reach_the_supra_cli_word_for_word(rig):
    cfg = rig["tmp"] / "my config.toml"
    cfg.write_text("")
    env = {"DUALWRITE_STATE": str(rig["state"])}
    local = ["--backend", "local", "--supra-bin", rig["supra"]]
    r = dw("set", "5", H, *local, "--reads", "cli", "--profile", "default", "--config", cfg, "--rpc-url", "http://127.0.0.1:9/a b",
           "--expiration-secs", "60", "--max-gas", "7000", env=env)
    assert r.exit_code == 0, r.output
    (argv,) = calls(rig["log"])
    assert argv[:3] == ["move", "tool", "run"]
    assert after(argv, "--profile") == "default" and after(argv, "--config") == str(cfg)
    assert after(argv, "--rpc-url") == "http://127.0.0.1:9/a b" and after(argv, "--max-gas") == "7000"
    assert after(argv, "--expiration-secs") == "60" and after(argv, "--gas-unit-price") == "100"
    # named module addresses (and hex ones) go into the function id, nowhere else
    r = dw("status", "5", *local, "--lottery-multi-address", "lottery_multi", env=env)
    assert r.exit_code == 0, r.output
    assert after(calls(rig["log"])[-1], "--function-id") == "lottery_multi::legacy_bridge::dual_write_status"
    r = dw("status", "5", *local, "--lottery-multi-address", "0xbad::x", env=env)
    assert r.exit_code == 2 and "--lottery-multi-address" in r.stderr, r.output


def test_podman_argv_one_shot_and_exec(rig):
    """container, image, the mounted dirs, podman-bin and the volume suffix land where podman expects them."""
    env = {"DUALWRITE_STATE": str(rig["state"])}
    configs, ws = rig["tmp"] / "configs", rig["tmp"] / "ws"
    r = dw("--backend", "podman", "--podman-bin", rig["podman"], "status", "5", "--image", "localhost/x:1",
           "--configs-dir", configs, "--workspace-dir", ws, "--volume-suffix", ":Z", "--profile", "p1", env=env)
    assert r.exit_code == 0, r.output
    (argv,) = calls(rig["log"])
    assert argv[:2] == ["run", "--rm"]
    i = argv.index("localhost/x:1")
    assert argv[i + 1] == "/supra/supra" and argv[i + 2:i + 5] == ["move", "tool", "view"]
    assert f"{configs.resolve()}:/supra/configs:Z" in argv and f"{ws.resolve()}:/supra/move_workspace:Z" in argv
    assert "--profile" not in argv  # a view signs nothing
    rig["log"].unlink()
    r = dw("status", "5", "--backend", "podman", "--podman-bin", rig["podman"], "--container", "my_cli", env=env)
    assert r.exit_code == 0, r.output
    (argv,) = calls(rig["log"])
    assert argv[:4] == ["exec", "my_cli", "/supra/supra", "move"]


# -- the real engines ------------------------------------------------------------------------------------


@pytest.fixture
def recording_container(supra_container, tmp_path):
    """A simulator container whose /supra/supra records its argv in /supra/configs/argv.log, then runs."""
    configs = tmp_path / "configs"
    configs.mkdir()
    fake = recording_supra_in_image(tmp_path / "fake" / "supra", "/supra/configs/argv.log")
    c = supra_container(unique_name("dw-argv"), configs=configs, extra_args=["-v", f"{fake}:/supra/supra:ro"])
    assert dw("sim", "init", "--dual-write", "--state", c.state_db).exit_code == 0
    (configs / "cli.toml").write_text("")
    return c


def _check_in_container(c, backend_args: list[str], env: dict[str, str] | None = None) -> None:
    log = c.configs / "argv.log"
    r = dw("set", "5", H, *backend_args, "--profile", "default", "--config", "/supra/configs/cli.toml",
           "--rpc-url", "http://127.0.0.1:9", "--reads", "cli", env=env)
    assert r.exit_code == 0, r.output
    (argv,) = calls(log)
    assert after(argv, "--profile") == "default" and after(argv, "--config") == "/supra/configs/cli.toml"
    assert after(argv, "--rpc-url") == "http://127.0.0.1:9"
    for opt in ("--profile", "--config", "--rpc-url", "--url", "--container"):
        r = dw("set", "5", H, *backend_args, f"{opt}={HOSTILE}", env=env)  # as a word of its own: refused earlier
        assert r.exit_code == 2 and f"{opt} '{HOSTILE}': starts with '-'" in r.stderr, r.output
    assert len(calls(log)) == 1, "a refused value reached the container"


@pytest.mark.engine
def test_podman_exec_real_engine(recording_container):
    _check_in_container(recording_container, ["--backend", "podman", "--container", recording_container.name])


@pytest.mark.engine
def test_docker_exec_real_engine(docker_engine, docker_container, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    fake = recording_supra_in_image(tmp_path / "fake" / "supra", "/supra/configs/argv.log")
    c = docker_container(unique_name("dw-dargv"), configs=configs, binds={str(fake): "/supra/supra"})
    assert dw("sim", "init", "--dual-write", "--state", c.state_db).exit_code == 0
    (configs / "cli.toml").write_text("")
    _check_in_container(c, ["--backend", "docker", "--container", c.name],
                        env={"DOCKER_HOST": docker_engine.DOCKER_HOST})


@pytest.mark.engine
def test_podman_one_shot_real_engine(podman_env, podman_image, tmp_path):
    """One-shot: the recording supra is mounted by --podman-extra-args (whose words are podman options by design)."""
    configs, ws = tmp_path / "configs", tmp_path / "ws"
    assert dw("sim", "init", "--dual-write", "--state", configs / "dualwrite-sim.sqlite").exit_code == 0
    (configs / "cli.toml").write_text("")
    fake = recording_supra_in_image(tmp_path / "fake" / "supra", "/supra/configs/argv.log")
    args = ["--backend", "podman", "--image", podman_image, "--configs-dir", configs, "--workspace-dir", ws,
            "--podman-extra-args", f"-v {fake}:/supra/supra:ro"]

    class C:
        pass

    c = C()
    c.configs = configs
    _check_in_container(c, args)
    r = dw("status", "5", *[a for a in args if a != podman_image and a != "--image"], "--image", "-x")
    assert r.exit_code == 2 and "--image '-x'" in r.stderr, r.output


@pytest.mark.engine
def test_docker_one_shot_real_engine_refuses_before_running(docker_engine, tmp_path):
    configs = tmp_path / "configs"
    assert dw("sim", "init", "--state", configs / "dualwrite-sim.sqlite").exit_code == 0
    env = {"DOCKER_HOST": docker_engine.DOCKER_HOST}
    image = docker_engine.image
    base = ["--backend", "docker", "--configs-dir", configs, "--workspace-dir", tmp_path / "ws"]
    r = dw("status", "5", *base, "--image", image, "--config", "/supra/configs/missing.toml", env=env)
    assert r.exit_code == 3 and "missing.toml" in r.stderr, r.output  # the value reached the CLI in the container
    for opt, value in (("--image", "-x"), ("--profile", HOSTILE), ("--config", HOSTILE)):
        r = dw("status", "5", *base, "--image", image, f"{opt}={value}", env=env) if opt != "--image" else \
            dw("status", "5", *base, f"{opt}={value}", env=env)
        assert r.exit_code == 2 and f"{opt} '{value}': starts with '-'" in r.stderr, r.output
