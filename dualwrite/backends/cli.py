"""The Supra CLI backends: a local ``supra``, a Docker or Podman container (exec or one-shot), and ``auto``.

Imported by ``open_backend`` only for these backends: the subprocess, docker SDK and CLI-output
machinery cost a ``sim`` command nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from dualwrite.backends import replace
from dualwrite.backends.base import Backend, TxnResult, url_identity
from dualwrite.backends.cli_output import TXN_HASH, parse_run, parse_view
from dualwrite.backends.config import BackendConfig
from dualwrite.backends.runners import (
    DockerExecRunner,
    DockerRunRunner,
    LocalRunner,
    PodmanExecRunner,
    PodmanRunRunner,
    Runner,
    docker_client,
)
from dualwrite.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    SubmissionUnknown,
    TransactionFailed,
)

CLI_GAS_UNIT_PRICE = 100  # what the CLI is given without --gas-unit-price
LOOKUP_WINDOW_S = 30.0  # at most this long looking for a run whose outcome was lost
_retry_wait = __import__("threading").Event()  # never set: wait(t) is an interruptible back-off


class CliBackend:
    """The Supra CLI, wherever a runner runs it; transient failures retried, aborts never."""

    def __init__(self, name: str, runner: Runner, cfg: BackendConfig, note: str = "") -> None:
        self.name = name
        self.runner = runner
        self.cfg = cfg
        self.note = note

    def argv(self, kind: str, function: str, args: list[str]) -> list[str]:
        argv = ["move", "tool", kind, "--function-id", self.cfg.addresses.function_id(function)]
        if args:
            argv += ["--args", *args]
        if kind == "run":
            if self.cfg.profile:
                argv += ["--profile", self.cfg.profile]
            if self.cfg.config:
                argv += ["--config", self.cfg.config]
            if self.cfg.node_url:
                argv += [self.cfg.url_flag, self.cfg.node_url]
            # both gas flags on every run, so the CLI never stops to ask on a terminal
            argv += ["--gas-unit-price", str(self.cfg.gas_unit_price or CLI_GAS_UNIT_PRICE), "--max-gas", str(self.cfg.max_gas)]
            if self.cfg.expiration_secs:
                argv += ["--expiration-secs", str(self.cfg.expiration_secs)]
            if self.cfg.assume_yes:
                argv += ["--assume-yes"]
        else:  # a view signs nothing: no profile, no gas
            if self.cfg.config:
                argv += ["--config", self.cfg.config]
            if self.cfg.node_url:
                argv += [self.cfg.url_flag, self.cfg.node_url]
        return argv

    def _call(self, kind: str, function: str, args: list[str]):
        """One CLI call; a view retried on transient failures, a run only when it cannot have been sent.

        A run is re-sent only after a failure of the runner itself (the container was not
        there, so the CLI never started). Once the CLI has run, a failure that may come after
        submission is never answered by sending again: it is ``SubmissionUnknown``, for the
        looked up: by hash on the node here, then ``bridge`` re-reads the state the run was to change."""
        argv = self.argv(kind, function, args)
        where = f"{self.name} backend, {function}"
        attempt = 0
        while True:
            try:
                c = self.runner.execute(argv, self.cfg.timeout)
            except BackendError as e:
                if self.note and isinstance(e, BackendUnavailable) and self.note not in e.message:
                    e.message = f"{e.message} [{self.note}]"  # say why auto picked what is not there
                    e.args = (e.message,)
                if kind == "run" and isinstance(e, BackendTimeout):
                    # killed at our own deadline: it may have been submitted; never sent twice
                    e.message = f"{e.message} (the transaction may have been submitted: not re-sent; " \
                                f"check the state before running it again)"
                    e.args = (e.message,)
                    raise
                if not e.transient or attempt >= self.cfg.retries:
                    raise
            else:
                try:
                    if kind == "view":
                        return parse_view(c.stdout, c.stderr, c.returncode, where=where)
                    return parse_run(c.stdout, c.stderr, c.returncode, where=where)
                except SubmissionUnknown as e:
                    return self._look_up(e)
                except TransactionFailed as e:
                    if kind == "run" and e.status in ("Pending", "PendingAfterExecution"):
                        # submitted and not final: it may still commit (or fail); look, never re-send
                        return self._look_up(SubmissionUnknown(f"{where}: {e.message}", txn_hash=e.txn_hash))
                    raise
                except BackendError as e:
                    if kind == "run" and e.transient:
                        # the CLI ran: whatever the text says, the transaction may be out
                        return self._look_up(SubmissionUnknown(
                            f"{e.message} (the transaction may have been submitted)",
                            txn_hash=_hash_in(c.stdout + "\n" + c.stderr)))
                    if not e.transient or attempt >= self.cfg.retries:
                        raise
            attempt += 1
            _retry_wait.wait(min(0.5 * 2 ** (attempt - 1), 5.0))

    def _look_up(self, e: SubmissionUnknown) -> TxnResult:
        """A run whose outcome was lost: ask the node for it by hash (with ``--rpc-url`` and a hash in the
        output), within the lookup window; else, or when the node does not have it yet, hand it on as
        ``SubmissionUnknown`` for the caller to re-read the state. Never sends it again."""
        window = min(self.cfg.timeout, LOOKUP_WINDOW_S)
        if not (self.cfg.rpc_url and e.txn_hash):
            e.lookup_window = window
            raise e
        from dualwrite.backends.lookup import transaction_by_hash

        body, why = transaction_by_hash(self.cfg.rpc_url, self.cfg.rpc_headers, e.txn_hash, window)
        if body is None:
            raise SubmissionUnknown(f"{e.message}; looked up by hash on the node: {why}",
                                    txn_hash=e.txn_hash, lookup_window=0.0)
        # the node's answer is the outcome: Success -> the result, Fail -> the abort it names
        txn = parse_run(json.dumps(body), "", 0, where=f"{self.name} backend, transaction {e.txn_hash}")
        return replace(txn, confirmed_by="hash")

    def run(self, function: str, args: list[str]) -> TxnResult:
        return self._call("run", function, args)

    def tx_writer(self) -> None:
        """No RPC writer: the Supra CLI signs and submits."""
        return None

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self._call("view", function, args)

    def describe(self) -> str:
        return f"{self.name} ({self.runner.describe()}){' — ' + self.note if self.note else ''}"

    def chain_identity(self) -> dict[str, str]:
        ident = getattr(self.runner, "identity", None)
        target = ident() if callable(ident) else {"runner": self.runner.describe()}
        c = self.cfg
        return {"backend": self.name, **target, "profile": c.profile or "",
                "config": os.path.abspath(c.config) if c.config else "", "rpc_url": url_identity(c.node_url),
                "lottery_multi": c.addresses.lottery_multi or "lottery_multi (named)",
                "lottery": c.addresses.lottery or "lottery (named)"}

    def close(self) -> None:
        self.runner.close()


def _hash_in(text: str) -> str | None:
    m = TXN_HASH.search(text)
    return m[0] if m else None


def _docker(cfg: BackendConfig) -> CliBackend:
    client = docker_client(cfg.docker_host, cfg.timeout)
    if cfg.image:
        runner: Runner = DockerRunRunner(client, cfg.image, configs=cfg.configs_dir, workspace=cfg.workspace_dir)
    else:
        runner = DockerExecRunner(client, cfg.container)  # None: supra_cli, else the compose service
    return CliBackend("docker", runner, cfg)


def _podman(cfg: BackendConfig) -> CliBackend:
    if cfg.image:
        runner: Runner = PodmanRunRunner(cfg.image, configs=cfg.configs_dir, workspace=cfg.workspace_dir,
                                         podman_bin=cfg.podman_bin, extra_args=cfg.podman_extra_args,
                                         volume_suffix=cfg.volume_suffix)
    else:
        runner = PodmanExecRunner(cfg.container or "supra_cli", cfg.podman_bin)
    return CliBackend("podman", runner, cfg)


def _auto(cfg: BackendConfig) -> Backend:
    """The old script's order: a supra binary, then Docker, then Podman; says what and why."""
    tried = []
    if shutil.which(cfg.supra_bin or "supra"):
        b = CliBackend("local", LocalRunner(cfg.supra_bin), cfg, note=f"auto: found {cfg.supra_bin or 'supra'} on PATH")
        return b
    tried.append(f"no {cfg.supra_bin or 'supra'} on PATH")
    try:
        b = _docker(cfg)
        b.note = "auto: no supra on PATH, a Docker engine answered"
        return b
    except BackendUnavailable as e:
        tried.append(str(e))
    if shutil.which(cfg.podman_bin or "podman"):
        b = _podman(cfg)
        b.note = "auto: no supra on PATH, no usable Docker, podman found"
        return b
    tried.append("no podman on PATH")
    raise BackendUnavailable("auto backend: nothing to run the Supra CLI with: " + "; ".join(tried))


def open_cli_backend(cfg: BackendConfig, name: str) -> Backend:
    if name == "local":
        return CliBackend("local", LocalRunner(cfg.supra_bin), cfg)
    if name == "docker":
        return _docker(cfg)
    if name == "podman":
        return _podman(cfg)
    return _auto(cfg)
