"""The project's error type: an expected failure caused by what the user asked for.

Library code raises it with a message that describes the value at fault ("radius must not be
negative, got -2"); the command line prints that message as its one `Error: ...` line. Anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class NCAError(ValueError):
    """An expected failure caused by the user's input (a bad file, value or request)."""


class InvalidOption(NCAError):
    """A value of a named setting is out of range, e.g. InvalidOption("every", "must be at least 1").

    `name` is the library's name of the setting (a config or function argument); the command line
    shows it as the option that sets it (`--every`).
    """

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem
