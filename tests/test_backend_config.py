"""``BackendConfig`` as a value: pydantic-free at import, one rule per knob from Python and through pydantic.

``dualwrite status 5`` has a 100 ms start-up budget and importing pydantic alone costs ~48 ms, so the config
every chain-facing command builds is a plain frozen class generated from ``dualwrite.knobs.KNOBS``. These
tests hold it to the rules the pydantic model had (kind, bounds, pattern, argv word, address, None, unknown
keys, ``addresses``, one URL), from Python (``SettingError``) and through ``pydantic.TypeAdapter``.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from dualwrite.backends import BackendConfig, ModuleAddresses, SettingError
from dualwrite.errors import ExitCode, InputError
from dualwrite.knobs import KNOBS, U64_MAX
from tests.envs import base_env

U64 = str(U64_MAX)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=base_env(), capture_output=True, text=True, timeout=60)


# -- start-up: no pydantic -------------------------------------------------------------------------------


def test_importing_the_config_does_not_import_pydantic():
    p = run_python("import sys, dualwrite.backends, dualwrite.backends.config; "
                   "assert 'pydantic' not in sys.modules and 'pydantic_core' not in sys.modules")
    assert p.returncode == 0, p.stderr


def test_building_and_resolving_a_config_does_not_import_pydantic():
    """Not only the import: what a command does with its config (construct, resolve, replace, fail)."""
    p = run_python(
        "import sys\n"
        "from dualwrite.backends.config import BackendConfig, SettingError, resolve\n"
        "c = resolve([('settings', {'max_gas': 7}), ('env', {'podman_extra_args': '-a b'})], {'backend': 'sim'})\n"
        "assert c.replace(retries=3).retries == 3 and c == BackendConfig(max_gas='7', podman_extra_args=['-a', 'b'])\n"
        "try:\n    BackendConfig(max_gas=0)\nexcept SettingError:\n    pass\n"
        "repr(c), hash(c), BackendConfig.fields(), BackendConfig.json_schema()\n"
        "assert 'pydantic' not in sys.modules and 'pydantic_core' not in sys.modules, "
        "sorted(m for m in sys.modules if 'pydantic' in m)\n")
    assert p.returncode == 0, p.stderr


def test_a_default_that_breaks_its_own_rule_fails_at_import():
    """Defaults go through their rules too (pydantic's validate_default), once, when the class is built."""
    p = run_python("import dualwrite.knobs as k\n"
                   "k.KNOBS = k.KNOBS + (k.Knob('bad_knob', 'int', 0, lo=1),)\n"
                   "import dualwrite.backends.config\n")
    assert p.returncode != 0 and "RuntimeError" in p.stderr and "bad_knob" in p.stderr, p.stderr


# -- each kind's rule, through Python construction --------------------------------------------------------

OK = [
    # text (argv words)
    ({"profile": "alice"}, "profile", "alice"), ({"profile": Path("p")}, "profile", "p"), ({"profile": None}, "profile", None),
    ({"docker_host": "-not-argv"}, "docker_host", "-not-argv"),  # not an argv word: free text
    # path
    ({"state": "s.sqlite"}, "state", Path("s.sqlite")), ({"state": Path("/x")}, "state", Path("/x")),
    ({"state": None}, "state", None), ({"configs_dir": "./c"}, "configs_dir", Path("c")),
    # int: ASCII digits text or an int; bounds inclusive
    ({"max_gas": "7"}, "max_gas", 7), ({"max_gas": 7}, "max_gas", 7), ({"max_gas": U64}, "max_gas", U64_MAX),
    ({"max_gas": 1}, "max_gas", 1), ({"retries": 10}, "retries", 10), ({"retries": "0"}, "retries", 0),
    ({"expiration_secs": None}, "expiration_secs", None),
    # float: finite; [0-9]+(.[0-9]*)? or .[0-9]+ as text
    ({"timeout": "1.5"}, "timeout", 1.5), ({"timeout": ".5"}, "timeout", 0.5), ({"timeout": "5."}, "timeout", 5.0),
    ({"timeout": 3}, "timeout", 3.0), ({"timeout": 0.1}, "timeout", 0.1), ({"timeout": 86400}, "timeout", 86400.0),
    # flag
    ({"assume_yes": True}, "assume_yes", True), ({"assume_yes": False}, "assume_yes", False),
    # choice
    ({"backend": "rpc"}, "backend", "rpc"), ({"backend": "docker-compose"}, "backend", "docker-compose"),
    ({"reads": "cli"}, "reads", "cli"),
    # args: a list as is, one string split like a shell
    ({"podman_extra_args": "--label 'a b=1' -e X=1"}, "podman_extra_args", ("--label", "a b=1", "-e", "X=1")),
    ({"podman_extra_args": ["--label", "c d=2"]}, "podman_extra_args", ("--label", "c d=2")),
    ({"podman_extra_args": ""}, "podman_extra_args", ()),
    # lines: a list as is, one string of lines (blank ones dropped)
    ({"rpc_headers": "A: 1\n\n  \nB: 2\n"}, "rpc_headers", ("A: 1", "B: 2")),
    ({"rpc_headers": ("A: 1",)}, "rpc_headers", ("A: 1",)),
    # pattern (full match)
    ({"volume_suffix": ":Z"}, "volume_suffix", ":Z"), ({"volume_suffix": ":rw,z"}, "volume_suffix", ":rw,z"),
    ({"volume_suffix": ""}, "volume_suffix", ""),
    # addresses
    ({"lottery_address": "0x1"}, "lottery_address", "0x1"), ({"lottery_address": "lottery"}, "lottery_address", "lottery"),
    ({"lottery_multi_address": "0x" + "a" * 64}, "lottery_multi_address", "0x" + "a" * 64),
    ({"addresses": ModuleAddresses("0x1", None)}, "lottery_multi_address", "0x1"),
    ({"addresses": ModuleAddresses("0x1", "0x2"), "lottery_address": "0x3"}, "lottery_address", "0x3"),  # explicit wins
    ({"rpc_url": "http://a"}, "node_url", "http://a"), ({"url": "http://b"}, "url_flag", "--url"),
]


@pytest.mark.parametrize("kwargs,attr,want", OK, ids=[repr(c[0])[:60] for c in OK])
def test_each_kind_accepts_and_converts(kwargs, attr, want):
    got = getattr(BackendConfig(**kwargs), attr)
    assert got == want and type(got) is type(want), (got, want)


BAD = [
    ({"profile": 5}, "profile", "expected a string, got int"),
    ({"profile": "-x"}, "profile", "starts with '-', so the CLI would read it as an option"),
    ({"profile": "a\x00b"}, "profile", "contains a control character"),
    ({"configs_dir": "-c"}, "configs_dir", "starts with '-'"),
    ({"state": ""}, "state", "expected a path, got an empty string"),
    ({"state": 5}, "state", "expected a path (a string), got int"),
    ({"configs_dir": None}, "configs_dir", "expected a path (a string), got NoneType"),  # the default is not None
    ({"max_gas": True}, "max_gas", f"expected a whole number from 1 to {U64}, got a boolean"),
    ({"max_gas": "1_000"}, "max_gas", f"expected a whole number from 1 to {U64}"),
    ({"max_gas": "٣"}, "max_gas", "expected a whole number from 1 to"),
    ({"max_gas": " 5"}, "max_gas", "expected a whole number from 1 to"),
    ({"max_gas": 1.5}, "max_gas", f"expected a whole number from 1 to {U64}, got float"),
    ({"max_gas": None}, "max_gas", f"expected a whole number from 1 to {U64}, got NoneType"),
    ({"max_gas": 0}, "max_gas", f"expected a whole number from 1 to {U64}"),
    ({"max_gas": U64_MAX + 1}, "max_gas", f"expected a whole number from 1 to {U64}"),
    ({"gas_unit_price": str(U64_MAX + 1)}, "gas_unit_price", f"from 1 to {U64}"),
    ({"retries": 11}, "retries", "expected a whole number from 0 to 10"),
    ({"rpc_retries": -1}, "rpc_retries", "expected a whole number from 0 to 100"),
    ({"timeout": "1e3"}, "timeout", "expected a number of seconds from 0.1 to 86400"),
    ({"timeout": "nan"}, "timeout", "expected a number of seconds"),
    ({"timeout": float("nan")}, "timeout", "expected a number of seconds from 0.1 to 86400"),
    ({"timeout": float("inf")}, "timeout", "expected a number of seconds from 0.1 to 86400"),
    ({"timeout": True}, "timeout", "expected a number of seconds from 0.1 to 86400, got a boolean"),
    ({"timeout": 0.05}, "timeout", "expected a number of seconds from 0.1 to 86400"),
    ({"rpc_timeout": 86401}, "rpc_timeout", "expected a number of seconds from 0.1 to 86400"),
    ({"assume_yes": 1}, "assume_yes", "expected true or false, got int"),
    ({"assume_yes": "true"}, "assume_yes", "expected true or false, got str"),
    ({"backend": "bogus"}, "backend", "expected one of: sim, local, docker, docker-compose, podman, auto, rpc"),
    ({"reads": "http"}, "reads", "expected one of: auto, rpc, cli"),
    ({"backend": 5}, "backend", "expected a string, got int"),
    ({"podman_extra_args": "'x"}, "podman_extra_args", "cannot split \"'x\" like a shell would (No closing quotation)"),
    ({"podman_extra_args": [1, 2]}, "podman_extra_args", "expected a list of strings or one string of shell-like words"),
    ({"podman_extra_args": 3}, "podman_extra_args", "expected a list of strings or one string of shell-like words"),
    ({"rpc_headers": 5}, "rpc_headers", "expected a list of strings or one string of lines"),
    ({"volume_suffix": "rw"}, "volume_suffix", "String should match pattern '^(:[A-Za-z0-9,]+)?$'"),
    ({"volume_suffix": ":Z\n"}, "volume_suffix", "String should match pattern"),  # the whole text
    ({"volume_suffix": ":Z -v /:/host"}, "volume_suffix", "String should match pattern"),
    ({"lottery_address": "0xZZ"}, "lottery_address", "'0xZZ' is neither a 0x hex address nor a named address"),
    ({"lottery_address": "0x" + "a" * 65}, "lottery_address", "is neither a 0x hex address"),
    ({"lottery_address": "1abc"}, "lottery_address", "is neither a 0x hex address"),
    ({"lottery_address": "-x"}, "lottery_address", "starts with '-'"),
    ({"addresses": ModuleAddresses("0xZZ", None)}, "lottery_multi_address", "is neither a 0x hex address"),
    ({"addresses": "0x1"}, "addresses", "expected ModuleAddresses (settings and options use lottery_multi_address"),
    ({"url_flag": "--function-id"}, "url_flag", "not a backend setting"),
    ({"rpc_url": "http://a", "url": "http://b"}, None, "give one of rpc_url (--rpc-url) or url (--url, v6 images), not both"),
]


@pytest.mark.parametrize("kwargs,key,reason", BAD, ids=[repr(c[0])[:60] for c in BAD])
def test_each_kind_refuses_naming_the_key(kwargs, key, reason):
    with pytest.raises(SettingError) as info:
        BackendConfig(**kwargs)
    e = info.value
    assert isinstance(e, InputError) and isinstance(e, ValueError) and e.exit_code == ExitCode.BAD_INPUT
    assert e.key == key and reason in e.reason, (e.key, e.reason)
    assert str(e) == (f"{key}: {e.reason}" if key else e.reason)
    assert e.unknown == (reason == "not a backend setting")


def test_the_first_bad_field_in_knobs_order_is_reported_then_unknown_keys():
    """As pydantic did: fields in declaration order, then keys that are not fields."""
    with pytest.raises(SettingError, match="^max_gas: "):
        BackendConfig(nonsense=1, timeout=0, max_gas=0)
    with pytest.raises(SettingError, match="^nonsense: not a backend setting"):
        BackendConfig(nonsense=1, max_gas=5)


def test_a_secret_is_never_echoed():
    for bad in (["X-Api-Key: sekrit-123", 7], 5, {"X-Api-Key": "sekrit-123"}):
        with pytest.raises(SettingError) as info:
            BackendConfig(rpc_headers=bad)
        assert info.value.key == "rpc_headers" and "sekrit" not in str(info.value)
    cfg = BackendConfig(rpc_headers=["X-Api-Key: sekrit-123"])
    assert "sekrit" not in repr(cfg) and "sekrit" not in str(cfg) and "rpc_headers=<hidden>" in repr(cfg)
    assert cfg.rpc_headers == ("X-Api-Key: sekrit-123",)


def test_defaults_are_validated_values():
    cfg = BackendConfig()
    assert cfg.configs_dir == Path("configs") and cfg.workspace_dir == Path("move_workspace")
    assert cfg.podman_extra_args == () and cfg.rpc_headers == () and cfg.timeout == 120.0
    assert cfg.as_dict() == {k.name: getattr(cfg, k.name) for k in KNOBS}
    assert list(cfg.as_dict()) == [k.name for k in KNOBS] == list(BackendConfig.fields())


# -- a value: immutable, equality, hash, repr, copies -----------------------------------------------------


def test_immutable():
    cfg = BackendConfig(max_gas=5)
    with pytest.raises(FrozenInstanceError, match="immutable"):
        cfg.max_gas = 6
    with pytest.raises(AttributeError):
        del cfg.max_gas
    with pytest.raises(AttributeError):
        cfg.not_a_field = 1
    with pytest.raises(AttributeError):
        object.__getattribute__(cfg, "__dict__")  # slots: nowhere to smuggle a value in
    assert cfg.max_gas == 5


def test_equality_and_hash_by_fields():
    a = BackendConfig(max_gas="7", podman_extra_args="-a 'b c'", state="s")
    b = BackendConfig(max_gas=7, podman_extra_args=["-a", "b c"], state=Path("s"))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1 and {a: 1}[b] == 1
    assert a != BackendConfig() and a != a.replace(max_gas=8)
    assert a != a.as_dict() and (a == object()) is False
    assert BackendConfig() == BackendConfig()


def test_replace_is_a_validated_copy():
    a = BackendConfig(max_gas=7, lottery_address="0x9")
    b = a.replace(retries="3")
    assert b.retries == 3 and a.retries == 2 and b.max_gas == 7
    with pytest.raises(SettingError, match="^retries: expected a whole number from 0 to 10"):
        a.replace(retries=30)
    with pytest.raises(SettingError, match="^bogus: not a backend setting"):
        a.replace(bogus=1)
    # addresses= replaces both address fields (setdefault would have kept the old ones)
    c = a.replace(addresses=ModuleAddresses("0x2", None))
    assert c.addresses == ModuleAddresses("0x2", None)
    assert a.replace(addresses=ModuleAddresses("0x2", None), lottery_address="0x3").addresses == ModuleAddresses("0x2", "0x3")


def test_repr_shows_what_differs_from_the_defaults():
    assert repr(BackendConfig()) == "BackendConfig()"
    assert repr(BackendConfig(backend="podman", image="supra:v9")) == "BackendConfig(backend='podman', image='supra:v9')"


def test_pickle_and_copy():
    cfg = BackendConfig(backend="rpc", rpc_url="http://a", rpc_headers=["K: v"], state="s")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert copy.copy(cfg) is cfg and copy.deepcopy(cfg) is cfg


def test_from_env_and_properties():
    cfg = BackendConfig.from_env({"DUALWRITE_BACKEND": "rpc", "DUALWRITE_RPC_URL": "http://n", "PODMAN_EXTRA_ARGS": "-a b",
                                  "DUALWRITE_RPC_HEADERS": "A: 1\nB: 2"}, max_gas=9, timeout=None)
    assert (cfg.backend, cfg.node_url, cfg.url_flag, cfg.max_gas, cfg.timeout) == ("rpc", "http://n", "--rpc-url", 9, 120.0)
    assert cfg.podman_extra_args == ("-a", "b") and cfg.rpc_headers == ("A: 1", "B: 2")
    assert cfg.addresses == ModuleAddresses(None, None)
    with pytest.raises(InputError, match=r"^rpc_headers: expected a list of strings"):
        BackendConfig.from_env({"DUALWRITE_RPC_HEADERS": "A: 1"}, rpc_headers=5)  # the override wins, and is named
    with pytest.raises(InputError) as info:
        BackendConfig.from_env({"DUALWRITE_BACKEND": "x"})
    assert str(info.value).startswith("environment DUALWRITE_BACKEND='x': expected one of: sim, local")
    assert not isinstance(info.value, SettingError)  # resolve's one line, not the Python error


# -- pydantic: TypeAdapter, a model field, the JSON Schema ------------------------------------------------

TA = TypeAdapter(BackendConfig)
EVERY_KIND = {"backend": "podman", "state": "/tmp/s.sqlite", "profile": "alice", "max_gas": "7", "timeout": 2,
              "assume_yes": True, "lottery_address": "0x1", "configs_dir": "c", "podman_extra_args": "--label 'a b=1'",
              "volume_suffix": ":Z", "rpc_headers": "A: 1\nB: 2", "reads": "cli", "expiration_secs": 60}


def test_type_adapter_round_trip():
    cfg = TA.validate_python(EVERY_KIND)
    assert cfg == BackendConfig(**EVERY_KIND)
    text = TA.dump_json(cfg)
    data = json.loads(text)
    assert data["state"] == "/tmp/s.sqlite" and data["podman_extra_args"] == ["--label", "a b=1"]
    assert data["rpc_headers"] == ["A: 1", "B: 2"] and data["max_gas"] == 7 and data["timeout"] == 2.0
    assert set(data) == {k.name for k in KNOBS}
    assert TA.validate_json(text) == cfg
    assert TA.dump_python(cfg, mode="json") == data and TA.validate_python(data) == cfg
    assert TA.dump_python(cfg) == cfg.as_dict() and TA.validate_python(cfg.as_dict()) == cfg
    assert TA.validate_python(cfg) is cfg  # already a config: as is
    assert TA.validate_python({"addresses": ModuleAddresses("0x2", "lottery")}).addresses == ModuleAddresses("0x2", "lottery")


def test_type_adapter_errors_name_the_key():
    with pytest.raises(ValidationError) as info:
        TA.validate_python({"max_gas": 0, "timeout": "x", "url_flag": "--function-id"})
    errors = {e["loc"]: e for e in info.value.errors()}
    assert set(errors) == {("max_gas",), ("timeout",), ("url_flag",)}
    assert errors[("max_gas",)]["msg"] .startswith("Value error, expected a whole number from 1 to")
    assert errors[("url_flag",)]["type"] == "extra_forbidden"
    assert "BackendConfig" in info.value.title
    with pytest.raises(ValidationError, match="not both"):
        TA.validate_json('{"rpc_url": "http://a", "url": "http://b"}')
    with pytest.raises(ValidationError, match="addresses: expected ModuleAddresses"):
        TA.validate_python({"addresses": "0x1"})
    with pytest.raises(ValidationError, match="valid dictionary"):
        TA.validate_python("backend=sim")
    quiet = TypeAdapter(BackendConfig, config=ConfigDict(hide_input_in_errors=True))
    with pytest.raises(ValidationError) as info:
        quiet.validate_python({"rpc_headers": ["X-Api-Key: sekrit", 7]})
    assert info.value.errors()[0]["loc"] == ("rpc_headers",) and "sekrit" not in str(info.value)


SAMPLES = [None, "", "x", "-x", "a\x00b", "7", "1_000", "1.5", ".5", "nan", str(U64_MAX + 1), 0, 1, 5, 11, 101,
           U64_MAX + 1, 0.05, 1.5, 86401, float("nan"), True, False, [], ["a", "b"], [1], ("x",), "'x", "a\nb",
           Path("p"), {"a": 1}, "sim", "bogus", "cli", ":Z", "rw", "0x1", "0xZZ", "lottery"]


@pytest.mark.parametrize("knob", KNOBS, ids=[k.name for k in KNOBS])
def test_one_rule_for_python_and_pydantic(knob):
    """For every knob and every sample: the same value, or the same reason, both ways."""
    for v in SAMPLES:
        try:
            want = BackendConfig(**{knob.name: v})
        except SettingError as e:
            with pytest.raises(ValidationError) as info:
                TA.validate_python({knob.name: v})
            (err,) = info.value.errors()
            assert err["loc"] == (knob.name,) and err["msg"] == f"Value error, {e.reason}", (v, err)
        else:
            assert TA.validate_python({knob.name: v}) == want, v


def test_a_config_as_a_field_of_a_pydantic_model():
    class Job(BaseModel):
        name: str
        cfg: BackendConfig

    job = Job(name="j", cfg={"backend": "rpc", "rpc_url": "http://n"})
    assert isinstance(job.cfg, BackendConfig) and job.cfg.node_url == "http://n"
    assert Job.model_validate_json(job.model_dump_json()) == job
    with pytest.raises(ValidationError) as info:
        Job(name="j", cfg={"max_gas": 0})
    assert info.value.errors()[0]["loc"] == ("cfg", "max_gas")
    assert Job.model_json_schema()["properties"]["cfg"]["additionalProperties"] is False


def test_json_schema_describes_the_settings_keys():
    schema = BackendConfig.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and set(schema["properties"]) == {k.name for k in KNOBS}
    assert TA.json_schema() == schema
    props = schema["properties"]
    assert props["max_gas"]["type"] == "integer" and props["max_gas"]["minimum"] == 1 and props["max_gas"]["maximum"] == U64_MAX
    assert props["backend"]["enum"] == ["sim", "local", "docker", "docker-compose", "podman", "auto", "rpc"]
    assert props["timeout"]["type"] == "number" and props["podman_extra_args"]["type"] == "array"
    assert props["state"]["anyOf"][1] == {"type": "null"} and props["assume_yes"]["type"] == "boolean"
    assert "--max-gas" in props["max_gas"]["description"]
    validator = jsonschema.Draft202012Validator(schema)
    for cfg in (BackendConfig(), BackendConfig(**EVERY_KIND)):
        validator.validate(TA.dump_python(cfg, mode="json"))  # what the config dumps, the schema takes
    for bad in ({"max_gas": 0}, {"backend": "bogus"}, {"nonsense": 1}, {"volume_suffix": "rw"}, {"profile": "-x"},
                {"lottery_address": "0xZZ"}, {"timeout": 0.01}, {"retries": 11}, {"state": ""}, {"assume_yes": 1}):
        assert not validator.is_valid(bad), bad
        with pytest.raises(SettingError):
            BackendConfig(**bad)  # and the rules refuse it too
