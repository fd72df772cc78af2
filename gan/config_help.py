"""The help text next to each field of our dataclass configs, and the command-line options made
from those fields (one generator for every command)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping

_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def opt(default=dataclasses.MISSING, help: str | None = None):
    """A dataclass field with its help text; without a default it is a required option
    (opt(help=...)). The help is required, so opt("text") alone is an error, not a default."""
    if help is None:
        raise TypeError("opt() needs the field's help text")
    return dataclasses.field(default=default, metadata={"help": help})


def field_help(config_class: type, name: str) -> str:
    """The field's metadata["help"]; "" for a field without help or a name that is no field."""
    for f in dataclasses.fields(config_class):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    return ""


def config_from_args(config_class: type, args) -> object:
    """config_class built from the argparse Namespace attributes named like its fields (fields
    the command line does not set keep their defaults)."""
    names = [f.name for f in dataclasses.fields(config_class) if hasattr(args, f.name)]
    return config_class(**{name: getattr(args, name) for name in names})


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_class: type,
    names: Iterable[str] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
    types: Mapping[str, Callable] | None = None,
    choices: Mapping[str, Iterable] | None = None,
    metavars: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    shown: Mapping[str, str] | None = None,
    repeated: Iterable[str] = (),
    unset_is_none: bool = False,
) -> None:
    """One option per field of config_class (`names`, or all fields, in that order): --field-name
    (or flags[name]) with dest = the field name, so `config_from_args` builds the config back.

    The type comes from the annotation (str, int, float, bool, each optionally "| None"; other
    annotations need types[name]); booleans are switches (--x/--no-x when their default is True).
    The default and the help are the field's; notes[name] is added to the help and shown[name]
    replaces the default the help shows ("" shows none, e.g. for one of a required pair of
    options). A field without a default is a required option.
    repeated: fields (lists) whose option may be given several times, each value appended
    (element type: types[name], else str).
    unset_is_none: every option defaults to None, so the caller sees which ones were given
    (booleans then get --x/--no-x)."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    repeated = set(repeated)
    for name in fields if names is None else names:
        f = fields[name]
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        many = name in repeated
        kind = (types or {}).get(name) or (str if many else _annotation_type(config_class, f))
        help_text = str(f.metadata.get("help", "")) + (notes or {}).get(name, "")
        kwargs: dict = {"dest": name}
        switch = kind is bool and (unset_is_none or default is True)  # --x/--no-x, else --x
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = None if unset_is_none else default
            if kind is not bool or switch:  # a plain --x is off unless given: no default to show
                help_text = with_default(help_text, (shown or {}).get(name, _show(default)))
        kwargs["help"] = help_text.replace("%", "%%")
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if switch else "store_true"
        else:
            if many:
                kwargs["action"] = "append"  # argparse copies the default list before appending
            kwargs["type"] = kind
            if name in (choices or {}):
                kwargs["choices"] = tuple(choices[name])
            if name in (metavars or {}):
                kwargs["metavar"] = metavars[name]
        parser.add_argument((flags or {}).get(name, "--" + name.replace("_", "-")), **kwargs)


def _annotation_type(config_class: type, f: dataclasses.Field) -> Callable:
    base = str(f.type).replace(" | None", "").strip()
    if base not in _TYPES:
        raise TypeError(f"{config_class.__name__}.{f.name}: annotation {f.type!r} needs types[{f.name!r}]")
    return _TYPES[base]


def _show(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def with_default(help_text: str, shown: str) -> str:
    """help_text plus "(default: shown)", unless the text already says what the default is
    (e.g. "(default 8 stylegan2, 2 stylegan3)", "; default 4 up to 128 px"): one default per
    line, not two. An empty `shown` adds nothing."""
    if not shown or "(default" in help_text or "; default " in help_text:
        return help_text
    return f"{help_text} (default: {shown})".strip()
