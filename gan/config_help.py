"""The help text next to each field of our dataclass configs, for command lines and dialogs."""

from __future__ import annotations

import dataclasses


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


def with_default(help_text: str, shown: str) -> str:
    """help_text plus "(default: shown)", unless the text already says what the default is
    (e.g. "(default 8 stylegan2, 2 stylegan3)"): one default per line, not two."""
    if "(default" in help_text:
        return help_text
    return f"{help_text} (default: {shown})".strip()
