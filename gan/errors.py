"""Exceptions whose message is meant for the user: what was wrong and what to do."""


class UserError(Exception):
    """A problem with the user's input (file, option, data) that they can fix."""


class ModelLoadError(UserError):
    """A model file could not be loaded: missing, truncated, corrupt, unsupported or unsafe."""


class Cancelled(Exception):
    """Long work stopped because its `should_stop()` callback returned True (not an error)."""
