"""``--backend podman|docker --rpc-url URL``: the Supra CLI in a real container signs the writes, the emulated
node answers the reads over HTTP (real loopback server, real httpx). The container starts at genesis
(``DUALWRITE_SIM_START=genesis``), so the deployment's first calls -- ``history::init_history`` and
``history_bridge::init_bridge``, and their wrong-signer aborts -- are drilled through the CLI in the image."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.sim.chain import Chain
from tests.engines import unique_name
from tests.rpc_node import ServeProcess
from tests.rpc_node import _every_response_checked  # noqa: F401  (autouse: every answer against the schema)

GAS = ["--gas-unit-price", "100", "--max-gas", "100000"]


def deploy_from_genesis(supra: Callable[..., tuple[int, str]]) -> None:
    """The deployment's first calls through /supra/supra in the container, wrong signers first."""
    view = ["move", "tool", "view", "--function-id", "lottery::history_bridge::is_initialized"]
    code, out = supra(*view)
    assert code == 0 and json.loads(out) == {"result": [False]}, out  # genesis: nothing initialised
    run = ["move", "tool", "run", *GAS, "--function-id"]
    code, out = supra(*run, "lottery_multi::history::init_history", "--profile", "lottery")
    assert code == 1 and "0x1b01" in out.lower(), out  # E_HISTORY_MISSING: init_history by a wrong signer
    code, out = supra(*run, "lottery::history_bridge::init_bridge", "--profile", "lottery_multi")
    assert code == 1 and "0x101" in out.lower(), out  # history_bridge E_NOT_AUTHORIZED
    assert supra(*run, "lottery_multi::history::init_history")[0] == 0
    assert supra(*run, "lottery::history_bridge::init_bridge", "--profile", "lottery")[0] == 0
    assert json.loads(supra(*view)[1]) == {"result": [True]}


def writes_and_reads_over_http(state_db, backend: list[str], describe: str) -> None:
    with Chain(state_db, create=False) as chain:
        lm, lo = chain.addresses.lottery_multi, chain.addresses.lottery
    with ServeProcess(state_db) as srv:
        base = [*backend, "--rpc-url", srv.url, "--lottery-multi-address", lm, "--lottery-address", lo]

        def dw(*args: str):
            r = CliRunner().invoke(cli, [*args, *base], catch_exceptions=False)
            return r.exit_code, r.stdout + r.stderr

        code, out = dw("init", "true", "false")
        assert code == 0, out
        assert f"{describe}; reads over RPC node {srv.url}" in out
        h = hashlib.sha3_256(b"lottery 5").hexdigest()
        assert dw("set", "5", h)[0] == 0
        code, out = dw("status", "5", "--json")
        assert code == 0 and f'"expected_hash": "0x{h}"' in out
        code, out = dw("pending", "--json")
        assert code == 0 and "5" in out
        # the read went to the node, not to the container: with the node gone it fails naming the URL
    code, out = dw("flags")
    assert code == 3 and srv.url in out


@pytest.mark.engine
def test_podman_writes_and_reads_over_http(supra_container) -> None:
    c = supra_container(unique_name("dw-rpc-split"), extra_args=["-e", "DUALWRITE_SIM_START=genesis"])

    def supra(*args: str) -> tuple[int, str]:
        p = c.supra(*args, check=False)
        return p.returncode, p.stdout + p.stderr

    deploy_from_genesis(supra)
    writes_and_reads_over_http(c.state_db, ["--backend", "podman", "--container", c.name],
                               f"podman (podman exec {c.name})")


@pytest.mark.engine
def test_docker_writes_and_reads_over_http(docker_engine, docker_container, monkeypatch) -> None:
    c = docker_container(unique_name("dw-drpc-split"), environment={"DUALWRITE_SIM_START": "genesis"})
    deploy_from_genesis(c.supra)
    monkeypatch.setenv("DOCKER_HOST", docker_engine.DOCKER_HOST)
    writes_and_reads_over_http(c.state_db, ["--backend", "docker", "--container", c.name],
                               f"docker (docker exec {c.name})")
