"""One-shot mode creates ./configs and ./move_workspace only for a call that runs (real Podman)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs import base_env

MISSING_IMAGE = "localhost/dualwrite-no-such-image:0"


def dualwrite(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], cwd=cwd, env=base_env(**env), capture_output=True,
                          text=True, timeout=180, check=False)


@pytest.mark.engine
def test_a_failed_one_shot_call_leaves_no_mount_folders(podman_env: dict[str, str], tmp_path: Path) -> None:
    env = {"CONTAINERS_CONF": podman_env["CONTAINERS_CONF"]}
    p = dualwrite(tmp_path, env, "flags", "--backend", "podman", "--image", MISSING_IMAGE)
    assert p.returncode == 3 and "is not in local storage" in p.stderr, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == []  # neither ./configs nor ./move_workspace

    nested = tmp_path / "a" / "b"
    p = dualwrite(tmp_path, env, "flags", "--backend", "podman", "--image", MISSING_IMAGE,
                  "--configs-dir", str(nested / "configs"), "--workspace-dir", str(nested / "ws"))
    assert p.returncode == 3
    assert not (tmp_path / "a").exists()  # the parents it made are gone too

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "profile.toml").write_text("x")
    p = dualwrite(tmp_path, env, "flags", "--backend", "podman", "--image", MISSING_IMAGE)
    assert p.returncode == 3
    assert (tmp_path / "configs" / "profile.toml").exists()  # the operator's own folder is never touched
    assert not (tmp_path / "move_workspace").exists()
