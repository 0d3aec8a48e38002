"""``BackendConfig``: one rule set for the backend options, the settings file, the environment and Python.

The fields come from ``dualwrite.knobs.KNOBS`` (one line per setting), and so do their rules. Every
source goes through the same checks, with the same bounds: an option's text (``--max-gas 0``), an
environment variable (``PODMAN_EXTRA_ARGS``), a TOML value (``max_gas = 0``), a Python argument
(``BackendConfig(max_gas=0)``, which raises ``SettingError`` naming the key). ``resolve`` layers the
sources (defaults < settings file < environment < options before the subcommand < the command's own
options) and turns a ``SettingError`` into one line naming the option, variable or key it came from.

``BackendConfig`` is a plain frozen class, not a pydantic model: every chain-facing command builds
one, and importing pydantic alone costs ~48 ms of the 100 ms start-up budget (``dualwrite status 5``).
pydantic still takes it as a type (``TypeAdapter(BackendConfig)``, a field of a model) through
``__get_pydantic_core_schema__``, which imports pydantic_core only when pydantic asks, and runs the
same rules; ``json_schema()`` describes the settings keys.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import FrozenInstanceError
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from dualwrite.backends.base import ModuleAddresses
from dualwrite.errors import InputError, SettingError
from dualwrite.knobs import KNOBS, Knob
from dualwrite.bad_values import expected_choices, expected_number

_INT_TEXT = re.compile(r"[0-9]+")
_FLOAT_TEXT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{1,64}|[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS_FIELDS = ("lottery_multi_address", "lottery_address")

# -- the rules: each takes a value and returns it converted, or raises ValueError(reason) ----------------


def _number(k: Knob) -> Callable[[Any], Any]:
    """An int or float knob: options and environment give text, TOML and Python give numbers (a bool is
    not one); conversion and bounds fail with one reason, the wording click's number options use too."""
    whole = k.kind == "int"
    reason = expected_number(whole, k.lo, k.hi, unit="" if whole else "seconds")
    text = _INT_TEXT if whole else _FLOAT_TEXT

    def check(v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"{reason}, got a boolean")
        if isinstance(v, str):
            if not text.fullmatch(v):
                raise ValueError(reason)
            v = int(v) if whole else float(v)
        elif whole and not isinstance(v, int) or not whole and not isinstance(v, (int, float)):
            raise ValueError(f"{reason}, got {type(v).__name__}")
        v = int(v) if whole else float(v)
        if not whole and not math.isfinite(v) or k.lo is not None and v < k.lo or k.hi is not None and v > k.hi:
            raise ValueError(reason)
        return v
    return check


def _text(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return str(v)


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


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    reason = expected_choices(choices)

    def check(v: Any) -> Any:
        if v not in choices:
            raise ValueError(reason)
        return v
    return check


def _matching(pattern: str) -> Callable[[Any], Any]:
    regex = re.compile(pattern)

    def check(v: Any) -> Any:
        if not regex.fullmatch(v):
            raise ValueError(f"String should match pattern {pattern!r}")
        return v
    return check


_KIND: dict[str, Callable[[Any], Any]] = {
    "text": _text, "path": _path, "flag": _bool, "choice": _text,
    "args": _args, "lines": _lines,
}


def _rule(k: Knob) -> Callable[[Any], Any]:
    """The one check of a knob, in this order: the kind's conversion (with the bounds of a number),
    choices, pattern, argv word, address. None is a value only where the default is None."""
    steps = [_number(k)] if k.kind in ("int", "float") else [_KIND[k.kind]]
    if k.kind == "choice":
        steps.append(_one_of(k.choices))
    if k.pattern:
        steps.append(_matching(k.pattern))
    if k.argv:
        steps.append(_argv_word)
    if k.name.endswith("_address"):
        steps.append(_address)
    nullable, secret = k.default is None, k.secret

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        v = value
        try:
            for step in steps:
                v = step(v)
        except ValueError as e:
            if secret:  # never echoed, whatever a rule puts in its reason
                raise ValueError(str(e).replace(repr(value), "…")) from None
            raise
        return v
    return check


_NAMES: tuple[str, ...] = tuple(k.name for k in KNOBS)
_RULES: dict[str, Callable[[Any], Any]] = {k.name: _rule(k) for k in KNOBS}
_SECRET = frozenset(k.name for k in KNOBS if k.secret)
_FIELDS: Mapping[str, Knob] = MappingProxyType({k.name: k for k in KNOBS})


def _validated_defaults() -> dict[str, Any]:
    """The defaults go through their rules too, once: a bad line in KNOBS fails at import, not later."""
    out = {}
    for k in KNOBS:
        try:
            out[k.name] = _RULES[k.name](k.default)
        except ValueError as e:
            raise RuntimeError(f"dualwrite.knobs: the default of {k.name} breaks its own rule: {e}") from None
    return out


_DEFAULTS = _validated_defaults()


def _split_addresses(data: Any) -> Any:
    """``addresses=ModuleAddresses(...)`` (the Python API's form) is the two address fields."""
    if isinstance(data, Mapping) and "addresses" in data:
        data = dict(data)
        a = data.pop("addresses")
        if not isinstance(a, ModuleAddresses):
            raise SettingError("addresses", "expected ModuleAddresses (settings and options use "
                               "lottery_multi_address and lottery_address)")
        data.setdefault("lottery_multi_address", a.lottery_multi)
        data.setdefault("lottery_address", a.lottery)
    return data


def _checked(data: Mapping[str, Any]) -> dict[str, Any]:
    """Every field, in KNOBS order, each through its rule (the first bad one raises), then unknown keys."""
    data = _split_addresses(data)
    out = {}
    for name in _NAMES:
        if name in data:
            try:
                out[name] = _RULES[name](data[name])
            except ValueError as e:
                raise SettingError(name, str(e)) from None
        else:
            out[name] = _DEFAULTS[name]
    for key in data:
        if key not in _RULES:
            raise SettingError(str(key), "not a backend setting", unknown=True)
    return out


def _across(values: Mapping[str, Any]) -> None:
    """The rules across fields."""
    if values["rpc_url"] and values["url"]:
        raise SettingError(None, "give one of rpc_url (--rpc-url) or url (--url, v6 images), not both")


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple):
        return list(v)
    return v


_set = object.__setattr__
_values = attrgetter(*_NAMES)


def _restore(values: dict[str, Any]) -> "BackendConfig":
    return BackendConfig(**values)


class BackendConfig:
    """Everything a backend may need; each backend reads only its own part.

    ``BackendConfig(backend="podman", image="supra:v9")``: keyword arguments, one per knob of
    ``dualwrite.knobs.KNOBS`` (``addresses=ModuleAddresses(...)`` sets the two address fields), each
    checked by its knob's rule; a bad or unknown one raises ``SettingError`` naming the key. The value is
    immutable (``replace`` makes a validated copy), compares and hashes by its fields, and its repr
    shows the fields that differ from the defaults, never a secret's value.
    """

    # one slot per knob, its help as the attribute's docstring
    __slots__ = {k.name: k.help for k in KNOBS}

    if TYPE_CHECKING:  # the fields are generated from KNOBS: type checkers see Any
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, **settings: Any) -> None:
        self._fill(_checked(settings))

    def _fill(self, values: Mapping[str, Any]) -> None:
        """Every field from values through their own rules: the rules across, then the slots."""
        _across(values)
        for name in _NAMES:
            _set(self, name, values[name])

    @classmethod
    def _from_checked(cls, checked: Mapping[str, Any]) -> "BackendConfig":
        """From fields already through their rules (pydantic's path), defaults for the rest."""
        obj = cls.__new__(cls)
        obj._fill({**_DEFAULTS, **checked})
        return obj

    # -- a value -------------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"BackendConfig is immutable: cannot set {name!r} (use .replace({name}=...))")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"BackendConfig is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self) -> int:
        return hash(_values(self))

    def __repr__(self) -> str:
        shown = []
        for name in _NAMES:
            value = getattr(self, name)
            if value != _DEFAULTS[name]:
                shown.append(f"{name}=<hidden>" if name in _SECRET else f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __reduce__(self) -> Any:
        return _restore, (self.as_dict(),)

    def __copy__(self) -> "BackendConfig":
        return self

    def __deepcopy__(self, memo: Any) -> "BackendConfig":
        return self

    @classmethod
    def fields(cls) -> Mapping[str, Knob]:
        """The fields, in KNOBS order: name -> its ``Knob`` (kind, default, option, environment variable)."""
        return _FIELDS

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (``Path``, tuples: Python values; secrets included: the caller's business)."""
        return dict(zip(_NAMES, _values(self)))

    # -- derived -------------------------------------------------------------------------------------

    @property
    def addresses(self) -> ModuleAddresses:
        return ModuleAddresses(self.lottery_multi_address, self.lottery_address)

    @property
    def url_flag(self) -> str:
        """How the CLI is told the RPC URL: v6 images take --url, later ones --rpc-url (derived, not a setting)."""
        return "--url" if self.url else "--rpc-url"

    @property
    def node_url(self) -> str | None:
        return self.rpc_url or self.url

    def replace(self, **changes: Any) -> "BackendConfig":
        """A copy with some fields changed, validated like any other source (``addresses=`` replaces
        both address fields unless they are given too)."""
        base = self.as_dict()
        if "addresses" in changes:
            for name in _ADDRESS_FIELDS:
                base.pop(name)
        return type(self)(**{**base, **changes})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "BackendConfig":
        """The environment knobs (DUALWRITE_*, PODMAN_EXTRA_ARGS, DOCKER_HOST…), then explicit
        overrides (None means 'not given')."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return resolve([("env", env_layer(env))], given)

    # -- pydantic, imported only when pydantic asks ---------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A settings dict (or a BackendConfig, taken as is) through the same rules, one entry per bad key
        (``loc`` the key); serialized as the dict of fields (JSON: paths as strings, lists). pydantic puts
        the input in its errors: where a secret may be in it, give ``ConfigDict(hide_input_in_errors=True)``."""
        from pydantic_core import core_schema as cs

        fields = {name: cs.typed_dict_field(cs.no_info_plain_validator_function(rule), required=False)
                  for name, rule in _RULES.items()}
        settings = cs.typed_dict_schema(fields, extra_behavior="forbid", total=False)
        built = cs.no_info_after_validator_function(
            cls._from_checked, cs.no_info_before_validator_function(_split_addresses, settings))

        def instance_or_settings(value: Any, handler: Any) -> Any:
            return value if isinstance(value, cls) else handler(value)
        instance_or_settings.__name__ = cls.__name__  # the errors' title: "function-wrap[BackendConfig()]"

        def serialize(value: Any, info: Any) -> Any:
            if not isinstance(value, BackendConfig):
                return value
            d = value.as_dict()
            return {k: _jsonable(v) for k, v in d.items()} if info.mode_is_json() else d

        return cs.no_info_wrap_validator_function(
            instance_or_settings, built,
            serialization=cs.plain_serializer_function_ser_schema(serialize, info_arg=True))

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return cls.json_schema()

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A JSON Schema of the settings (a settings file's keys, the JSON form ``TypeAdapter`` dumps):
        type, bounds, choices, pattern and default per key; no other key."""
        return {"title": "BackendConfig", "type": "object", "description": "dualwrite backend settings",
                "properties": {k.name: _knob_schema(k) for k in KNOBS}, "additionalProperties": False}


_JSON_TYPE = {"text": "string", "path": "string", "int": "integer", "float": "number", "flag": "boolean",
              "choice": "string"}
#: the argv rule as a JSON Schema pattern: no '-' first, no control character
_ARGV_PATTERN = "^(?!-)[^\\u0000-\\u001f\\u007f]*$"


def _anchored(pattern: str) -> str:
    """The rule is a full match; a JSON Schema pattern matches anywhere unless anchored (whatever the
    pattern itself holds: ``a|b`` is not ``^(?:a|b)$``)."""
    return f"^(?:{pattern})$"


def _knob_schema(k: Knob) -> dict[str, Any]:
    s: dict[str, Any]
    if k.kind in ("args", "lines"):
        s = {"type": "array", "items": {"type": "string"}}
    else:
        s = {"type": _JSON_TYPE[k.kind]}
    if k.kind == "choice":
        s["enum"] = list(k.choices)
    if k.kind == "path":
        s["minLength"] = 1
    if k.lo is not None:
        s["minimum"] = k.lo
    if k.hi is not None:
        s["maximum"] = k.hi
    patterns = [_anchored(k.pattern)] if k.pattern else []
    if k.name.endswith("_address"):  # implies the argv rule
        patterns.append(_anchored(_ADDRESS.pattern))
    elif k.argv:
        patterns.append(_ARGV_PATTERN)
    if len(patterns) == 1:
        s["pattern"] = patterns[0]
    elif patterns:
        s["allOf"] = [{"pattern": p} for p in patterns]
    if k.default is None:
        s = {"anyOf": [s, {"type": "null"}]}
    s["default"] = _jsonable(_DEFAULTS[k.name])
    where = ", ".join(filter(None, [f"option {k.option}" if k.flag else "", f"env {k.env}" if k.env else ""]))
    s["description"] = f"{k.help} ({where})" if where else k.help
    return s


def env_layer(env: Mapping[str, str] | None = None) -> dict[str, str]:
    import os

    env = os.environ if env is None else env
    return {k.name: env[k.env] for k in KNOBS if k.env and env.get(k.env)}


def _where(source: str, key: str, value: Any, settings_path: Path | None) -> str:
    k = _FIELDS.get(key)
    shown = "…" if k is not None and k.secret else _short(value)
    if k is None:
        return f"{source}: {key}"
    if source == "settings":
        return f"--settings {settings_path}: {key} = {shown}"
    if source == "env":
        return f"environment {k.env}={shown}"
    return f"{k.option} {shown}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…'"


def resolve(layers: list[tuple[str, Mapping[str, Any]]], python: Mapping[str, Any] | None = None,
            settings_path: Path | None = None) -> BackendConfig:
    """Later layers win. Layer names: settings, env, group, command; ``python`` are keyword arguments."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in [*layers, ("python", python or {})]:
        for key, value in values.items():
            merged[key] = value
            origin[key] = source
    try:
        return BackendConfig(**merged)
    except SettingError as e:
        if e.unknown:
            raise InputError(f"{e.key}: not a backend setting") from None
        if e.key is None:  # a check across fields
            raise InputError(e.reason) from None
        source = origin.get(e.key, "python")
        where = _where(source, e.key, merged.get(e.key), settings_path) if source != "python" else e.key
        raise InputError(f"{where}: {e.reason}") from None


__all__ = ["BackendConfig", "SettingError", "env_layer", "resolve"]
