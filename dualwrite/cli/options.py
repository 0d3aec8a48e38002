"""The backend options every chain-facing command takes, gathered into one ``BackendConfig``."""

from __future__ import annotations

import functools
import os
import tomllib
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Iterator

import click

from dualwrite.backends import BackendConfig, ModuleAddresses, open_backend
from dualwrite.backends.base import Backend
from dualwrite.errors import InputError

BACKEND_CHOICE = click.Choice(["sim", "local", "docker", "docker-compose", "podman", "auto", "rpc"])
_CFG_FIELDS = {f.name for f in fields(BackendConfig)}


def _settings(path: Path | None) -> dict:
    """A TOML settings file: keys are the long option names with '_' (backend, profile, lottery_multi_address…)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--settings {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--settings {path}: not valid TOML ({e})") from None
    known = _CFG_FIELDS | {"lottery_multi_address", "lottery_address"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"--settings {path}: unknown key {unknown[0]!r}")
    return data


def backend_options(f):
    """Add the backend options; the command receives ``cfg: BackendConfig``."""
    opts = [
        click.option("--backend", type=BACKEND_CHOICE, envvar="DUALWRITE_BACKEND",
                     help="Where to run [default: sim; env DUALWRITE_BACKEND]."),
        click.option("--profile", help="Supra CLI profile that signs (passed through)."),
        click.option("--config", "supra_config", help="Supra CLI --config path (passed through)."),
        click.option("--rpc-url", envvar="DUALWRITE_RPC_URL",
                     help="RPC node URL: reads go to it over HTTP (not on sim unless --reads rpc); "
                          "passed through to the CLI as --rpc-url [env DUALWRITE_RPC_URL]."),
        click.option("--reads", type=click.Choice(["auto", "rpc", "cli"]), envvar="DUALWRITE_READS",
                     help="Where reads go: rpc (the node, over HTTP), cli (the old way) [default: auto = rpc "
                          "when an RPC URL is known, except on sim; env DUALWRITE_READS]."),
        click.option("--rpc-header", "rpc_headers", multiple=True, metavar="'NAME: VALUE'",
                     help="Header on every RPC request (provider keys; never printed). Repeatable "
                          "[env DUALWRITE_RPC_HEADERS, one per line]."),
        click.option("--events-checkpoint", type=click.Path(dir_okay=False, path_type=Path),
                     envvar="DUALWRITE_EVENTS_CHECKPOINT",
                     help="RPC: incremental event scans from this checkpoint (must exist: dualwrite events "
                          "--init-checkpoint FILE creates it) [env DUALWRITE_EVENTS_CHECKPOINT]."),
        click.option("--url", "v6_url", help="RPC node URL for v6 images (passed through as --url)."),
        click.option("--gas-unit-price", type=click.IntRange(1), help="[default: 100]"),
        click.option("--max-gas", type=click.IntRange(1), help="[default: 500000]"),
        click.option("--expiration-secs", type=click.IntRange(1)),
        click.option("--assume-yes", is_flag=True, default=None, help="Pass --assume-yes to the CLI."),
        click.option("--lottery-multi-address", envvar="DUALWRITE_LOTTERY_MULTI_ADDRESS",
                     help="Address of lottery_multi (default: the named form lottery_multi::…)."),
        click.option("--lottery-address", envvar="DUALWRITE_LOTTERY_ADDRESS",
                     help="Address of lottery (history_bridge) (default: the named form lottery::…)."),
        click.option("--supra-bin", envvar="DUALWRITE_SUPRA_BIN", help="local: the supra binary [default: supra]."),
        click.option("--container", envvar="DUALWRITE_CONTAINER", help="docker/podman: container to exec into [default: supra_cli]."),
        click.option("--image", "--podman-image", "image", envvar="DUALWRITE_IMAGE",
                     help="docker/podman: one-shot container per call from this image, instead of exec."),
        click.option("--configs-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="one-shot mode: host dir mounted at /supra/configs [default: ./configs]."),
        click.option("--workspace-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="one-shot mode: host dir mounted at /supra/move_workspace [default: ./move_workspace]."),
        click.option("--podman-bin", envvar="DUALWRITE_PODMAN_BIN"),
        click.option("--timeout", type=click.FloatRange(0.1), help="Seconds per CLI call [default: 120]."),
        click.option("--retries", type=click.IntRange(0, 10), help="Retries of transient failures [default: 2]."),
        click.option("--state", type=click.Path(dir_okay=False, path_type=Path), envvar="DUALWRITE_STATE",
                     help="sim: state file [default: ~/.local/share/dualwrite/sim.sqlite]."),
        click.option("--settings", type=click.Path(dir_okay=False, path_type=Path), envvar="DUALWRITE_SETTINGS",
                     help="TOML file of these settings (options given here win)."),
    ]

    @functools.wraps(f)
    def wrapper(*args, **kw):
        settings = _settings(kw.pop("settings"))
        v6_url = kw.pop("v6_url")
        given = {
            "backend": kw.pop("backend"), "profile": kw.pop("profile"), "config": kw.pop("supra_config"),
            "rpc_url": kw.pop("rpc_url") or v6_url, "url_flag": "--url" if v6_url else None,
            "gas_unit_price": kw.pop("gas_unit_price"), "max_gas": kw.pop("max_gas"),
            "expiration_secs": kw.pop("expiration_secs"), "assume_yes": kw.pop("assume_yes"),
            "supra_bin": kw.pop("supra_bin"), "container": kw.pop("container"), "image": kw.pop("image"),
            "configs_dir": kw.pop("configs_dir"), "workspace_dir": kw.pop("workspace_dir"),
            "podman_bin": kw.pop("podman_bin"), "timeout": kw.pop("timeout"), "retries": kw.pop("retries"),
            "state": kw.pop("state"), "reads": kw.pop("reads"),
            "rpc_headers": tuple(kw.pop("rpc_headers")) or None, "events_checkpoint": kw.pop("events_checkpoint"),
        }
        lm = kw.pop("lottery_multi_address") or settings.pop("lottery_multi_address", None)
        lo = kw.pop("lottery_address") or settings.pop("lottery_address", None)
        for k, v in settings.items():
            if given.get(k) is None:
                given[k] = (Path(v) if k in ("configs_dir", "workspace_dir", "state", "events_checkpoint")
                            else tuple(v) if k == "rpc_headers" and isinstance(v, list) else v)
        kw["cfg"] = BackendConfig.from_env(addresses=ModuleAddresses(lm, lo), **given)
        return f(*args, **kw)

    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return wrapper


@contextmanager
def opened(cfg: BackendConfig) -> Iterator[Backend]:
    backend = open_backend(cfg)
    try:
        yield backend
    finally:
        backend.close()


def say_backend(backend: Backend, as_json: bool) -> None:
    """Human output always names the backend and target; JSON carries it as a field instead."""
    if not as_json:
        click.echo(f"backend: {backend.describe()}")


__all__ = ["backend_options", "opened", "say_backend", "os"]
