"""The one exception type users see: its message becomes a single `Error: ...` line."""


class NCAError(Exception):
    """An expected failure caused by the user's input (bad file, bad option, ...)."""
