"""The backend options, on the ``dualwrite`` group and on every chain-facing command, gathered into one
``BackendConfig``.

``dualwrite --backend sim status 5`` and ``dualwrite status 5 --backend sim`` mean the same. Where both
give a value, the command's own wins; then the group's; then the environment; then the ``--settings``
file; then the default. Every source is validated by the same schema (``backends/config.py``).

The options are built from ``dualwrite.knobs`` (no pydantic at start-up: ``--help`` stays cheap).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click
from click.core import ParameterSource

from dualwrite.errors import InputError
from dualwrite.knobs import KNOBS, SETTINGS_ENV, SETTINGS_FLAG, Knob

if TYPE_CHECKING:
    from dualwrite.backends import BackendConfig
    from dualwrite.backends.base import Backend

_GROUP_KEY = "dualwrite.group_options"
_METAVAR = {"text": "TEXT", "path": "PATH", "int": "INTEGER", "float": "SECONDS", "args": "ARGS"}


def _option(k: Knob):
    help_text = k.help + (f" [env {k.env}]" if k.env else "")
    if k.kind == "flag":
        return click.option(k.option, *k.aliases, k.name, is_flag=True, default=None, help=help_text)
    if k.kind == "lines":
        return click.option(k.option, *k.aliases, k.name, multiple=True, metavar="TEXT", help=help_text)
    if k.kind == "choice":  # plain text (the one schema checks it, whatever the source); <TAB> offers the choices
        return click.option(k.option, *k.aliases, k.name, metavar="|".join(k.choices), help=help_text,
                            shell_complete=_complete_choices(k.choices))
    return click.option(k.option, *k.aliases, k.name, metavar=_METAVAR[k.kind], help=help_text)


def _complete_choices(choices: tuple[str, ...]):
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        return [c for c in choices if c.startswith(incomplete)]
    return complete


def _settings_option():
    return click.option(SETTINGS_FLAG, "settings", metavar="FILE",
                        help=f"TOML file of these settings, keys as the option names with '_' [env {SETTINGS_ENV}].")


def _given(ctx: click.Context, kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the backend options from ``kw``; keep only those given on the command line."""
    out = {}
    for name in [k.name for k in KNOBS] + ["settings"]:
        value = kw.pop(name, None)
        if value not in (None, ()) and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            out[name] = value
    return out


def group_options(f):
    """The backend options on the ``dualwrite`` group; the callback gets ``**given`` to ``remember``."""
    for opt in reversed([*map(_option, KNOBS), _settings_option()]):
        f = opt(f)
    return f


def remember_group_options(ctx: click.Context, kw: dict[str, Any]) -> None:
    """Keep what was given before the subcommand for the command to layer under its own options."""
    ctx.meta[_GROUP_KEY] = _given(ctx, kw)


def _group_given(ctx: click.Context) -> dict[str, Any]:
    return dict(ctx.meta.get(_GROUP_KEY, {}))


def group_value(name: str) -> Any:
    """What was given before the subcommand for one option (None if nothing): for commands with options of their own."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_GROUP_KEY, {}).get(name)


def _read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The TOML settings file: flat keys, each a setting's name; anything else is refused."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--settings {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--settings {path}: is a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--settings {path}: not valid TOML ({e})") from None
    except OSError as e:
        raise InputError(f"--settings {path}: {e.strerror or e}") from None
    known = {k.name for k in KNOBS}
    for key in data:
        if key not in known:
            raise InputError(f"--settings {path}: unknown key {key!r} (known keys: {', '.join(sorted(known))})")
    return data


def resolve_config(command: dict[str, Any], ctx: click.Context | None = None) -> "BackendConfig":
    """The layers, lowest first: settings file, environment, the group's options, the command's."""
    from dualwrite.backends.config import env_layer, resolve

    group = _group_given(ctx) if ctx is not None else {}
    settings_path = command.pop("settings", None) or group.pop("settings", None) or os.environ.get(SETTINGS_ENV) or None
    group.pop("settings", None)
    settings = _read_settings(settings_path) if settings_path else {}
    return resolve([("settings", settings), ("env", env_layer()), ("group", group), ("command", command)],
                   settings_path=Path(settings_path) if settings_path else None)


def backend_options(f):
    """Add the backend options; the command receives ``cfg: BackendConfig``."""

    @functools.wraps(f)
    def wrapper(*args, **kw):
        ctx = click.get_current_context()
        kw["cfg"] = resolve_config(_given(ctx, kw), ctx)
        return f(*args, **kw)

    for opt in reversed([*map(_option, KNOBS), _settings_option()]):
        wrapper = opt(wrapper)
    return wrapper


def sim_state(state: Path | None) -> Path | None:
    """``sim ...`` commands: their own ``--state``, else the group's, else DUALWRITE_STATE, else the settings
    file's ``state`` (None: the simulator's default path)."""
    ctx = click.get_current_context(silent=True)
    command = {"state": state} if state is not None else {}
    if ctx is None:
        return state
    return resolve_config(command, ctx).state


@contextmanager
def opened(cfg: "BackendConfig") -> Iterator["Backend"]:
    from dualwrite.backends import open_backend

    backend = open_backend(cfg)
    try:
        yield backend
    finally:
        backend.close()


def say_backend(backend: "Backend", as_json: bool) -> None:
    """Human output always names the backend and target; JSON carries it as a field instead. With writes over
    RPC, which account signs goes to stderr either way (and is in the backend's description)."""
    if not as_json:
        click.echo(f"backend: {backend.describe()}")
    say_signer(backend)


def say_signer(backend: "Backend") -> None:
    """With writes over RPC, one stderr line naming the account that signs (in JSON mode too)."""
    writer = signer_of(backend)
    if writer is not None:
        click.echo(f"signing as {writer.sender} ({writer.key_source})", err=True)


def signer_of(backend: "Backend"):
    """The backend's RPC writer (``tx_writer()``), or None when the CLI (or the simulator) signs."""
    fn = getattr(backend, "tx_writer", None)
    return fn() if callable(fn) else None


__all__ = ["backend_options", "group_options", "group_value", "opened", "remember_group_options", "resolve_config", "say_backend", "say_signer", "signer_of",
           "sim_state"]
