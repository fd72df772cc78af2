"""The help text next to each field of our dataclass configs, for command lines and dialogs."""

from __future__ import annotations

import dataclasses


def field_help(config_class: type, name: str) -> str:
    """The field's metadata["help"]; "" for a field without help or a name that is no field."""
    for f in dataclasses.fields(config_class):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    return ""
