"""The help text next to each field of our dataclass configs, for command lines and dialogs."""

from __future__ import annotations

import dataclasses


def field_help(config_class: type, name: str) -> str:
    """The field's metadata["help"]; "" for a field without help or a name that is no field."""
    for f in dataclasses.fields(config_class):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    return ""


def with_default(help_text: str, shown: str) -> str:
    """help_text plus "(default: shown)", unless the text already says what the default is
    (e.g. "(default 8 stylegan2, 2 stylegan3)"): one default per line, not two."""
    if "(default" in help_text:
        return help_text
    return f"{help_text} (default: {shown})".strip()
