"""``--backend podman --rpc-url URL``: the Supra CLI in a real Podman container signs the writes, the
emulated node answers the reads over HTTP (real loopback server, real httpx)."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.sim.chain import Chain
from tests.engines import unique_name
from tests.rpc_node import ServeProcess
from tests.rpc_node import _every_response_checked  # noqa: F401  (autouse: every answer against the schema)


@pytest.mark.engine
def test_podman_writes_and_reads_over_http(supra_container) -> None:
    c = supra_container(unique_name("dw-rpc-split"))
    gas = ["--gas-unit-price", "100", "--max-gas", "100000"]
    Chain(c.state_db).close()  # the chain exists before a CLI talks to it (dualwrite-supra never creates one)
    c.supra("move", "tool", "run", "--function-id", "lottery_multi::history::init_history", *gas)
    c.supra("move", "tool", "run", "--function-id", "lottery::history_bridge::init_bridge", "--profile", "lottery", *gas)
    with Chain(c.state_db) as chain:
        lm, lo = chain.addresses.lottery_multi, chain.addresses.lottery
    with ServeProcess(c.state_db) as srv:
        base = ["--backend", "podman", "--container", c.name, "--rpc-url", srv.url,
                "--lottery-multi-address", lm, "--lottery-address", lo]

        def dw(*args: str):
            r = CliRunner().invoke(cli, [*args, *base], catch_exceptions=False)
            return r.exit_code, r.stdout + r.stderr

        code, out = dw("init", "true", "false")
        assert code == 0, out
        assert f"podman (podman exec {c.name}); reads over RPC node {srv.url}" in out
        h = hashlib.sha3_256(b"lottery 5").hexdigest()
        assert dw("set", "5", h)[0] == 0
        code, out = dw("status", "5", "--json")
        assert code == 0 and f'"expected_hash": "0x{h}"' in out
        code, out = dw("pending", "--json")
        assert code == 0 and "5" in out
        # the read went to the node, not to the container: with the node gone it fails naming the URL
    code, out = dw("flags")
    assert code == 3 and srv.url in out
