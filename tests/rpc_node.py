"""Real emulated RPC nodes for the tests, on 127.0.0.1, started and stopped by the test that uses them.

- ``InThreadNode(state)``: the real ``NodeServer`` in a background thread (fast to start);
- ``ServeProcess(state, *args)``: the real ``dualwrite sim serve`` subprocess (first stdout line = its URL;
  stopped with SIGTERM, and it must exit 0).

``check_response`` validates every answer against ``tests/rpc_schema.json`` (written from supra-cli.md,
not from the emulator) and the header every node response carries; ``schema_hook`` plugs it into an
httpx client so every response a test's client receives is checked.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from dualwrite.sim.server import Faults, start_in_thread, stop
from tests.envs import base_env

SCHEMA = json.loads((Path(__file__).with_name("rpc_schema.json")).read_text())
_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}
START_DEADLINE_S = 30


def validate(name: str, obj: Any) -> None:
    """``obj`` is a ``name`` of the schema (``$defs``), or an AssertionError saying where it is not."""
    v = _VALIDATORS.get(name)
    if v is None:
        v = _VALIDATORS[name] = jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})
    errors = sorted(v.iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)}"


def shape_of(method: str, path: str, status: int) -> str:
    if status != 200:
        return "ErrResp"
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["dualwrite"]:
        return "SimInfo"  # the emulated node's own (not a node endpoint)
    rest = parts[2:] if len(parts) >= 2 and parts[0] == "rpc" else parts
    if rest == ["view"]:
        return "ViewResponse"
    if rest[:1] == ["events"]:
        return "EventsResponse"
    if rest == ["block"]:
        return "Block"
    if rest[:2] == ["block", "height"]:
        return "BlockWithTransactions"
    if rest == ["transactions", "chain_id"]:
        return "ChainId"
    if rest == ["transactions", "submit"]:
        return "SubmitAnswer"
    if rest == ["transactions", "parameters"]:
        return "TransactionParameters"
    if rest == ["transactions", "estimate_gas_price"]:
        return "GasPriceRes"
    if rest[:1] == ["transactions"]:
        return "Transaction"
    if rest[:1] == ["accounts"]:
        return "Account"
    raise AssertionError(f"no schema for {method} {path}")


CHECKED: list[str] = []  # names of the shapes checked (a test can assert it saw them)


def check_response(r: httpx.Response) -> None:
    r.read()
    assert r.headers.get("x-supra-chain-id", "").isdigit(), f"{r.request.url}: no x-supra-chain-id header"
    name = shape_of(r.request.method, r.request.url.path, r.status_code)
    validate(name, r.json())
    CHECKED.append(name)


def schema_hook(client) -> None:
    """Check every response an ``RpcClient`` (or an ``httpx.Client``) receives."""
    if hasattr(client, "hooks"):
        client.hooks.append(check_response)
    else:
        client.event_hooks["response"] = [*client.event_hooks.get("response", []), check_response]


@pytest.fixture(autouse=True)
def _every_response_checked():
    """Import into a test module: every response any RpcClient in this process receives (the CLI's
    too) is checked against the schema."""
    from dualwrite.backends.rpc import RpcClient

    RpcClient.default_hooks.append(check_response)
    yield
    RpcClient.default_hooks.remove(check_response)


class InThreadNode:
    def __init__(self, state: Path, faults: Faults | None = None) -> None:
        self.server, self.thread = start_in_thread(Path(state), faults)
        self.url = self.server.base_url
        self.addresses = self.server.addresses

    def stop(self) -> None:
        stop(self.server, self.thread)

    def __enter__(self) -> "InThreadNode":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServeProcess:
    """``dualwrite sim serve --state STATE ARGS...`` as a subprocess."""

    def __init__(self, state: Path, *args: str, env: dict[str, str] | None = None) -> None:
        from tests.chain_driver import console_script

        self.argv = [console_script("dualwrite"), "sim", "serve", "--state", str(state), *args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env or base_env())
        self.url = self._first_line()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", self.url), self.url

    def _first_line(self) -> str:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_DEADLINE_S
        try:
            while time.monotonic() < deadline:
                if sel.select(timeout=deadline - time.monotonic()):
                    line = self.proc.stdout.readline()
                    if line:
                        return line.strip()
                    break  # EOF: it died
                if self.proc.poll() is not None:
                    break
        finally:
            sel.close()
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        raise AssertionError(f"{self.argv}: no URL on stdout (exit {self.proc.returncode}): {err}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.argv}: did not stop on signal {sig}")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def addr_env(addresses, **extra: str) -> dict[str, str]:
    """A subprocess environment with the module addresses reads over RPC need."""
    return base_env(DUALWRITE_LOTTERY_MULTI_ADDRESS=addresses.lottery_multi,
                    DUALWRITE_LOTTERY_ADDRESS=addresses.lottery, **extra)


__all__ = ["InThreadNode", "ServeProcess", "addr_env", "check_response", "schema_hook", "validate", "os"]
