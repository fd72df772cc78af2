"""A dialog's last choices, kept as one JSON object under one QSettings key."""

from __future__ import annotations

import json


def load_choices(settings, key: str) -> dict:
    """The stored dict; {} when there is none, or it is unreadable (the dialog keeps its defaults)."""
    if settings is None:
        return {}
    try:
        values = json.loads(str(settings.value(key, "{}")))
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def save_choices(settings, key: str, values: dict) -> None:
    if settings is not None:
        settings.setValue(key, json.dumps(values))
