"""What the ``dualwrite`` group checks for every command, once, before click parses: values that are
options, and the wording of a bad value.

**A value that is an option.** click gives an option that takes a value the next word, whatever it
is: ``verify --junit --all 1-3`` would write a file called ``--all`` and check only 1-3. So every
option that takes a value (of every command, the backend options included, and every option added
later) refuses a value, given as the next word, that starts with ``-``: one line naming the option and
the value, exit 2. ``--junit=--all`` says it is meant (a name that starts with ``-``; ``./-name`` too);
``-`` alone is a value (stdin). The one exception is ``--podman-extra-args``, whose words are podman
options by design. Negative numbers go the same way (``--opt=-1``): no option here takes
one but ``sim serve --fault-seed``, a seed. ``check_values`` walks the argv as click's parser does
(group options, the subcommand, its options; ``--`` ends the options) and sees whether each value came
as a word of its own, which click's parser does not tell.

**A bad value.** ``worded`` gives every parameter of a loaded command a type whose failures read
like the backend settings' (``dualwrite.bad_values``): ``LOTTERY_ID 'abc': expected a whole number from 0
to 18446744073709551615``, ``--show 'bad': expected one of: failing, all``.
"""

from __future__ import annotations

import re
from typing import Any

import click

from dualwrite.bad_values import bad_value, excerpt, expected_choices, expected_number

#: option names whose values are never shown (a value of theirs that starts with '-' is refused unseen)
_SECRET_NAME = re.compile(r"(key|secret|token|password|header)(?!.*file)", re.IGNORECASE)


def _looks_like_option(word: str) -> bool:
    return word.startswith("-") and word != "-"


def _option_words() -> set[str]:
    """Options whose value is option words by design (``--podman-extra-args '--label a=1'``): the knobs of
    kind ``args``."""
    from dualwrite.knobs import KNOBS

    return {o for k in KNOBS if k.kind == "args" for o in (k.option, *k.aliases)}


def _value_options(cmd: click.Command) -> dict[str, click.Option]:
    out = {}
    exempt = _option_words()
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.is_flag and not p.count and not getattr(p, "_flag_needs_value", False) \
                and not exempt & set(p.opts):
            for name in p.opts:
                out[name] = p
    return out


def _secret(opt: click.Option) -> bool:
    from dualwrite.knobs import KNOBS

    names = set(opt.opts)
    if any(k.secret and names & {k.option, *k.aliases} for k in KNOBS):
        return True
    return any(_SECRET_NAME.search(n) for n in names)


class BadValue(click.BadParameter):
    """A bad value, worded as ``dualwrite.bad_values`` words them: the line names the parameter itself."""

    def format_message(self) -> str:
        return self.message


def _refuse(chain: list[tuple[click.Command, str]], root_ctx: click.Context, opt: click.Option, value: str) -> None:
    ctx = root_ctx
    for cmd, info_name in chain[1:]:
        ctx = click.Context(cmd, info_name=info_name, parent=ctx)
    name = _where(opt)  # the long name: -j=-5 would give -j the value '=-5'
    shown = "a value starting with '-' (not shown)" if _secret(opt) else excerpt(value)
    hint = f"{name}={value}" if shown == repr(value) else f"{name}=VALUE"
    raise BadValue(bad_value(name, shown, f"looks like an option, not a value; write {hint} if it is the value"),
                   ctx, opt)


def check_values(root: click.Group, ctx: click.Context, args: list[str]) -> None:
    """Refuse an option's value, given as a word of its own, that starts with '-' (see the module)."""
    cmd: click.Command = root
    chain = [(cmd, ctx.info_name or "dualwrite")]
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return
        if not _looks_like_option(word):
            if isinstance(cmd, click.Group):  # a group's first plain word is its subcommand
                sub = cmd.get_command(ctx, word)
                if sub is None:
                    return  # click says "No such command"
                cmd = sub
                chain.append((cmd, word))
            i += 1
            continue
        takes = _value_options(cmd)
        opt = None  # an option whose value is the next word(s)
        if word.startswith("--"):
            name, eq, _ = word.partition("=")
            opt = None if eq else takes.get(name)
        else:  # -j 4; -j4 (attached); a run of short flags ending in one that takes a value
            for pos in range(1, len(word)):
                if "-" + word[pos] in takes:
                    opt = takes["-" + word[pos]] if pos + 1 == len(word) else None
                    break
        i += 1
        if opt is not None:
            for value in args[i:i + opt.nargs]:
                if _looks_like_option(value):
                    _refuse(chain, ctx, opt, value)
            i += opt.nargs


# -- the wording of a bad value --------------------------------------------------------------------------


def _reason(t: click.ParamType) -> str | None:
    """What a type expects, in the settings' wording; None: keep click's own message (files, custom types)."""
    if isinstance(t, (click.IntRange, click.FloatRange)):
        whole = isinstance(t, click.IntRange)
        return expected_number(whole, t.min, t.max, lo_open=t.min_open, hi_open=t.max_open)
    if isinstance(t, click.types.IntParamType):
        return expected_number(True)
    if isinstance(t, click.types.FloatParamType):
        return expected_number(False)
    if isinstance(t, click.Choice):
        return expected_choices(t.choices)
    return None


def _where(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    return param.human_readable_name


_WORDED: dict[type, type] = {}
#: click.Path's messages start with the value ("File 'x' does not exist."): the line names it already
_PATH_PREFIX = re.compile(r"^(?:File|Directory|Path) (['\"]).*?\1 ")


def _worded_type(t: click.ParamType) -> click.ParamType:
    """A copy of ``t`` of a subclass whose ``convert`` failures name the value and what was expected."""
    base = type(t)
    if getattr(base, "_dualwrite_worded", False):
        return t
    sub = _WORDED.get(base)
    if sub is None:
        def convert(self: click.ParamType, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
            try:
                return base.convert(self, value, param, ctx)
            except click.BadParameter as e:
                if param is None:
                    raise
                if e.message.startswith(_where(param)):  # a type of ours that names it already
                    raise BadValue(e.message, ctx, param) from None
                shown = excerpt(value if isinstance(value, str) else str(value))
                reason = _reason(self) or _PATH_PREFIX.sub("", e.message).rstrip(".")
                raise BadValue(bad_value(_where(param), shown, reason), ctx, param) from None

        sub = _WORDED[base] = type(base.__name__, (base,), {"convert": convert, "_dualwrite_worded": True})
    new = object.__new__(sub)
    new.__dict__.update(t.__dict__)
    return new


def worded(cmd: click.Command) -> click.Command:
    """Give every parameter of ``cmd`` (and of its subcommands) the worded copy of its type."""
    for p in cmd.params:
        if not (isinstance(p, click.Option) and p.is_flag):
            p.type = _worded_type(p.type)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            worded(sub)
    return cmd


__all__ = ["BadValue", "check_values", "worded"]
