"""The backend settings, declared once: option, environment variable, settings key, type and bounds.

``BackendConfig`` (a plain frozen class in ``backends/config.py``: its fields and their rules) and the
click options of the ``dualwrite`` group and of every chain-facing command (``cli/options.py``) are both
built from ``KNOBS``, so a new setting is one line here, and one rule per knob checks options,
environment, settings file and Python alike. Neither imports pydantic (~48 ms of the 100 ms start-up
budget of ``dualwrite status 5``). This module lives outside ``backends/`` and imports nothing: the CLI
reads it at start-up to print ``--help``.

Kinds: ``text``, ``path``, ``int``, ``float``, ``flag``, ``choice`` (``choices``), ``args`` (a list
of strings, or one shell-like string split with shlex), ``lines`` (a repeatable option; a list of
strings, or one string of lines). ``argv=True`` marks a value dualwrite puts
into an argv (the Supra CLI's, podman's) or a function id: it may not start with ``-`` (it would be
read as an option) nor contain control characters. ``secret=True``: never echoed in an error nor in a repr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

U64_MAX = 2**64 - 1
BACKEND_CHOICES = ("sim", "local", "docker", "docker-compose", "podman", "auto", "rpc")
READS_CHOICES = ("auto", "rpc", "cli")
WRITES_CHOICES = ("auto", "rpc", "cli")


@dataclass(frozen=True)
class Knob:
    name: str  # the BackendConfig field and the settings-file key
    kind: str
    default: Any
    flag: str | None = None  # the long option; None: settings/environment only
    env: str | None = None
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    argv: bool = False
    secret: bool = False
    pattern: str | None = None  # a regular expression the whole text must match

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


KNOBS: tuple[Knob, ...] = (
    Knob("backend", "choice", "sim", "--backend", "DUALWRITE_BACKEND", "Where to run [default: sim].", choices=BACKEND_CHOICES),
    Knob("state", "path", None, "--state", "DUALWRITE_STATE", "sim: the state file [default: ~/.local/share/dualwrite/sim.sqlite]."),
    Knob("profile", "text", None, "--profile", None, "Supra CLI profile that signs (passed through).", argv=True),
    Knob("config", "text", None, "--config", None, "Supra CLI --config path (passed through).", argv=True),
    Knob("rpc_url", "text", None, "--rpc-url", "DUALWRITE_RPC_URL", "RPC node URL: reads go to it over HTTP (not on sim "
         "unless --reads rpc); passed through to the CLI as --rpc-url.", argv=True),
    Knob("url", "text", None, "--url", None, "RPC node URL for v6 images (passed through as --url).", argv=True),
    Knob("gas_unit_price", "int", None, "--gas-unit-price", None, "[default: 100 on the CLI; over RPC the node's "
         "estimate_gas_price]", lo=1, hi=U64_MAX),
    Knob("max_gas", "int", 500_000, "--max-gas", None, "Most gas units a transaction may use [default: 500000].",
         lo=1, hi=U64_MAX),
    Knob("expiration_secs", "int", None, "--expiration-secs", None, "Passed through as --expiration-secs.", lo=1, hi=U64_MAX),
    Knob("assume_yes", "flag", False, "--assume-yes", None, "Pass --assume-yes to the CLI."),
    Knob("lottery_multi_address", "text", None, "--lottery-multi-address", "DUALWRITE_LOTTERY_MULTI_ADDRESS",
         "Address of lottery_multi (default: the named form lottery_multi::…).", argv=True),
    Knob("lottery_address", "text", None, "--lottery-address", "DUALWRITE_LOTTERY_ADDRESS",
         "Address of lottery (history_bridge) (default: the named form lottery::…).", argv=True),
    Knob("supra_bin", "text", None, "--supra-bin", "DUALWRITE_SUPRA_BIN", "local: the supra binary [default: supra].", argv=True),
    Knob("container", "text", None, "--container", "DUALWRITE_CONTAINER",
         "docker/podman: container to exec into [default: supra_cli].", argv=True),
    Knob("image", "text", None, "--image", "DUALWRITE_IMAGE",
         "docker/podman: one-shot container per call from this image, instead of exec.", aliases=("--podman-image",), argv=True),
    Knob("configs_dir", "path", "configs", "--configs-dir", None,
         "one-shot mode: host dir mounted at /supra/configs [default: ./configs].", argv=True),
    Knob("workspace_dir", "path", "move_workspace", "--workspace-dir", None,
         "one-shot mode: host dir mounted at /supra/move_workspace [default: ./move_workspace].", argv=True),
    Knob("podman_bin", "text", None, "--podman-bin", "DUALWRITE_PODMAN_BIN", "podman: the podman binary [default: podman].", argv=True),
    Knob("podman_extra_args", "args", (), "--podman-extra-args", "PODMAN_EXTRA_ARGS",
         "podman one-shot: extra `podman run` options, split like a shell would (e.g. '--label x=1')."),
    Knob("volume_suffix", "text", "", "--volume-suffix", "PODMAN_VOLUME_SUFFIX",
         "podman one-shot: appended to both -v mounts (e.g. :Z).", pattern=r"^(:[A-Za-z0-9,]+)?$"),
    Knob("docker_host", "text", None, "--docker-host", "DOCKER_HOST", "docker: the engine [default: DOCKER_HOST, else the local socket]."),
    Knob("reads", "choice", "auto", "--reads", "DUALWRITE_READS", "Where reads go: rpc (the node, over HTTP), cli (the "
         "old way) [default: auto = rpc when an RPC URL is known, except on sim].", choices=READS_CHOICES),
    Knob("rpc_headers", "lines", (), "--rpc-header", "DUALWRITE_RPC_HEADERS", "Header 'NAME: VALUE' on every RPC request "
         "(provider keys; never printed). Repeatable; the environment gives one per line.", secret=True),
    Knob("rpc_timeout", "float", 10.0, "--rpc-timeout", None, "Seconds per RPC request [default: 10].", lo=0.1, hi=86_400),
    Knob("rpc_retries", "int", 8, "--rpc-retries", None, "Retries of a failed RPC read [default: 8].", lo=0, hi=100),
    Knob("call_timeout", "float", 30.0, "--call-timeout", "DUALWRITE_CALL_TIMEOUT", "Seconds one RPC request may take "
         "in all, its whole answer read (--rpc-timeout bounds each wait within it); then it counts as a failed "
         "read [default: 30].", lo=0.1, hi=86_400),
    Knob("events_max_pages", "int", 10_000, "--events-max-pages", "DUALWRITE_EVENTS_MAX_PAGES", "RPC: an events scan "
         "of one event type stops (exit 3, saying where) after this many pages of 100 [default: 10000].", lo=1, hi=10**7),
    Knob("events_timeout", "float", 900.0, "--events-timeout", "DUALWRITE_EVENTS_TIMEOUT", "RPC: seconds an events "
         "scan of one event type may take; then it stops (exit 3, saying where) [default: 900].", lo=0.1, hi=86_400),
    Knob("events_checkpoint", "path", None, "--events-checkpoint", "DUALWRITE_EVENTS_CHECKPOINT", "RPC: incremental "
         "event scans from this checkpoint (must exist: dualwrite events --init-checkpoint FILE creates it)."),
    Knob("writes", "choice", "auto", "--writes", "DUALWRITE_WRITES", "Where writes go: rpc (signed here with "
         "--private-key-file, submitted to the node), cli (the Supra CLI) [default: auto = rpc when an RPC URL and "
         "a key are given].", choices=WRITES_CHOICES),
    Knob("private_key_file", "path", None, "--private-key-file", "DUALWRITE_PRIVATE_KEY_FILE", "RPC writes: the "
         "Ed25519 private key, hex on one line (mode 0600; never printed nor passed to a child process)."),
    Knob("sender", "text", None, "--sender", "DUALWRITE_SENDER", "RPC writes: the account to sign as [default: the "
         "key's own address]; its authentication key must be the key's.", pattern=r"0x[0-9a-fA-F]{1,64}"),
    Knob("tx_ttl", "int", 60, "--tx-ttl", "DUALWRITE_TX_TTL", "RPC writes: a transaction expires this many seconds "
         "after the node's clock [default: 60; at most the node's max_transaction_time_to_live_seconds].",
         lo=1, hi=86_400),
    Knob("timeout", "float", 120.0, "--timeout", None, "Seconds per Supra CLI call [default: 120] (also "
         "--cli-timeout; on cutover status only --cli-timeout).", lo=0.1, hi=86_400, aliases=("--cli-timeout",)),
    Knob("retries", "int", 2, "--retries", None, "Retries of transient failures [default: 2].", lo=0, hi=10),
)

BY_NAME = {k.name: k for k in KNOBS}

#: the settings file itself: an option and an environment variable, not a setting
SETTINGS_FLAG, SETTINGS_ENV = "--settings", "DUALWRITE_SETTINGS"

__all__ = ["BACKEND_CHOICES", "READS_CHOICES", "WRITES_CHOICES", "BY_NAME", "KNOBS", "Knob", "SETTINGS_ENV", "SETTINGS_FLAG", "U64_MAX"]
