"""``BackendConfig``: one pydantic schema for the backend options, the settings file and the environment.

The fields come from ``dualwrite.knobs.KNOBS`` (one line per setting). Every source goes through
the same validation, with the same bounds: an option's text (``--max-gas 0``), an environment
variable (``PODMAN_EXTRA_ARGS``), a TOML value (``max_gas = 0``), a Python argument
(``BackendConfig(max_gas=0)``). ``resolve`` layers the sources (defaults < settings file <
environment < options before the subcommand < the command's own options) and turns a validation
error into one line naming the option, variable or key it came from.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model, model_validator

from dualwrite.backends.base import ModuleAddresses
from dualwrite.errors import InputError
from dualwrite.knobs import KNOBS, Knob

_INT_TEXT = re.compile(r"[0-9]+")
_FLOAT_TEXT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{1,64}|[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _int(v: Any) -> Any:
    """Options and environment give text, TOML and Python give ints; a bool is not a number."""
    if isinstance(v, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(v, str):
        if not _INT_TEXT.fullmatch(v):
            raise ValueError(f"expected a whole number (ASCII digits), got {v!r}")
        return int(v)
    if not isinstance(v, int):
        raise ValueError(f"expected a whole number, got {type(v).__name__}")
    return v


def _float(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(v, str):
        if not _FLOAT_TEXT.fullmatch(v):
            raise ValueError(f"expected a number of seconds, got {v!r}")
        v = float(v)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return float(v)


def _text(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def _path(v: Any) -> Any:
    if isinstance(v, str):
        if not v:
            raise ValueError("expected a path, got an empty string")
        return Path(v)
    if not isinstance(v, Path):
        raise ValueError(f"expected a path (a string), got {type(v).__name__}")
    return v


def _args(v: Any) -> Any:
    """A list of strings as is, or one string split as a shell would (PODMAN_EXTRA_ARGS's form)."""
    if isinstance(v, str):
        try:
            return tuple(shlex.split(v))
        except ValueError as e:
            raise ValueError(f"cannot split {v!r} like a shell would ({e})") from None
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ValueError("expected a list of strings or one string of shell-like words")


def _lines(v: Any) -> Any:
    """A repeatable option's values, a TOML list, or one string of lines (the environment's form)."""
    if isinstance(v, str):
        return tuple(ln for ln in v.splitlines() if ln.strip())
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ValueError("expected a list of strings or one string of lines")


def _bool(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {type(v).__name__}")
    return v


def _argv_word(v: Any) -> Any:
    """A value that lands in an argv: an option-looking value would be read as an option there."""
    text = str(v)
    if text.startswith("-"):
        raise ValueError("starts with '-', so the CLI would read it as an option "
                         "(values may not start with '-'; for a path write ./-name)")
    if _CONTROL.search(text):
        raise ValueError("contains a control character")
    return v


def _address(v: Any) -> Any:
    if not _ADDRESS.fullmatch(v):
        raise ValueError(f"{v!r} is neither a 0x hex address nor a named address (an identifier)")
    return v


_KIND = {"text": (str, _text), "path": (Path, _path), "int": (int, _int), "float": (float, _float),
         "flag": (bool, _bool), "args": (tuple[str, ...], _args), "lines": (tuple[str, ...], _lines)}


def _annotation(k: Knob) -> Any:
    if k.kind == "choice":
        base: Any = Literal[k.choices]  # type: ignore[valid-type]
        parts: list[Any] = [base, BeforeValidator(_text)]
    else:
        base, before = _KIND[k.kind]
        parts = [base, BeforeValidator(before)]
    if k.lo is not None or k.hi is not None:
        parts.append(Field(ge=k.lo, le=k.hi))
    if k.pattern:
        parts.append(Field(pattern=k.pattern))
    if k.argv:
        parts.append(AfterValidator(_argv_word))
    if k.name.endswith("_address"):
        parts.append(AfterValidator(_address))
    ann = Annotated[tuple(parts)]  # type: ignore[misc]
    return Optional[ann] if k.default is None else ann


class _Base(BaseModel):
    """Everything a backend may need; each backend reads only its own part."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _split_addresses(cls, data: Any) -> Any:
        """``addresses=ModuleAddresses(...)`` (the Python API's form) is the two address fields."""
        if isinstance(data, dict) and "addresses" in data:
            data = dict(data)
            a = data.pop("addresses")
            if not isinstance(a, ModuleAddresses):
                raise ValueError("addresses: expected ModuleAddresses (settings and options use "
                                 "lottery_multi_address and lottery_address)")
            data.setdefault("lottery_multi_address", a.lottery_multi)
            data.setdefault("lottery_address", a.lottery)
        return data

    @model_validator(mode="after")
    def _one_url(self) -> "_Base":
        if self.rpc_url and self.url:  # type: ignore[attr-defined]
            raise ValueError("give one of rpc_url (--rpc-url) or url (--url, v6 images), not both")
        return self

    @property
    def addresses(self) -> ModuleAddresses:
        return ModuleAddresses(self.lottery_multi_address, self.lottery_address)  # type: ignore[attr-defined]

    @property
    def url_flag(self) -> str:
        """How the CLI is told the RPC URL: v6 images take --url, later ones --rpc-url (derived, not a setting)."""
        return "--url" if self.url else "--rpc-url"  # type: ignore[attr-defined]

    @property
    def node_url(self) -> str | None:
        return self.rpc_url or self.url  # type: ignore[attr-defined]

    def replace(self, **changes: Any) -> "BackendConfig":
        """A copy with some fields changed, validated like any other source."""
        return type(self).model_validate({**self.model_dump(), **changes})  # type: ignore[return-value]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "BackendConfig":
        """The environment knobs (DUALWRITE_*, PODMAN_EXTRA_ARGS, DOCKER_HOST…), then explicit
        overrides (None means 'not given')."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return resolve([("env", env_layer(env))], given)


BackendConfig = create_model(  # type: ignore[call-overload]
    "BackendConfig", __base__=_Base, __module__=__name__,
    **{k.name: (_annotation(k), Field(k.default, description=k.help, repr=not k.secret)) for k in KNOBS},
)


def env_layer(env: Mapping[str, str] | None = None) -> dict[str, str]:
    import os

    env = os.environ if env is None else env
    return {k.name: env[k.env] for k in KNOBS if k.env and env.get(k.env)}


def _where(source: str, key: str, value: Any, settings_path: Path | None) -> str:
    k = next((k for k in KNOBS if k.name == key), None)
    shown = "…" if k is not None and k.secret else _short(value)
    if k is None:
        return f"{source}: {key}"
    if source == "settings":
        return f"--settings {settings_path}: {key} = {shown}"
    if source == "env":
        return f"environment {k.env}={shown}"
    return f"{k.option} {shown}"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "…'"


def resolve(layers: list[tuple[str, Mapping[str, Any]]], python: Mapping[str, Any] | None = None,
            settings_path: Path | None = None) -> "BackendConfig":
    """Later layers win. Layer names: settings, env, group, command; ``python`` are keyword arguments."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in [*layers, ("python", python or {})]:
        for key, value in values.items():
            merged[key] = value
            origin[key] = source
    try:
        return BackendConfig.model_validate(merged)
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            raise InputError(f"{key}: not a backend setting") from None
        if not key:  # a check across fields
            raise InputError(msg) from None
        source = origin.get(key, "python")
        where = _where(source, key, merged.get(key), settings_path) if source != "python" else key
        raise InputError(f"{where}: {msg}") from None


__all__ = ["BackendConfig", "env_layer", "resolve"]
