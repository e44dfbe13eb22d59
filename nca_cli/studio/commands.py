"""The page's commands: JSON objects {"cmd": name, ...} checked and turned into Session calls."""

from __future__ import annotations

import math

from ..errors import NCAError
from .session import Session
from .uploads import emoji_target

# Knob name -> its type: "number" (int or float), "int" or "bool".
KNOBS = {"lr": "number", "damage": "bool", "damage_count": "int", "steps_min": "int", "steps_max": "int",
         "fire_rate": "number", "angle": "number", "live_speed": "number", "regrow": "int"}


def _value(message: dict, name: str, kind: str):
    """message[name], checked to be of `kind`."""
    value = message.get(name)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise NCAError(f"the command {message.get('cmd')!r} needs {name} to be {'a ' if kind != 'int' else 'an '}"
                       f"{dict(number='number', int='integer', bool='true or false', text='text')[kind]}")
    return value


def _knobs(session: Session, message: dict) -> None:
    unknown = set(message) - set(KNOBS) - {"cmd"}
    if unknown:
        raise NCAError(f"unknown knobs: {', '.join(sorted(unknown))}")
    session.set_knobs(**{name: _value(message, name, kind) for name, kind in KNOBS.items() if name in message})


COMMANDS = {
    "pause": lambda s, m: s.pause(),
    "resume": lambda s, m: s.resume(),
    "reset_live": lambda s, m: s.reset_live(),
    "knobs": _knobs,
    "wound": lambda s, m: s.wound(*(float(_value(m, k, "number")) for k in ("row", "col", "radius"))),
    "emoji": lambda s, m: s.set_target(emoji_target(_value(m, "text", "text"), s.size, s.pad)),
    "save": lambda s, m: s.save(_value(m, "name", "text") if "name" in m else ""),
}


def run_command(session: Session, message) -> None:
    """Check one command from the page and pass it to the session; an NCAError says what is wrong."""
    if not isinstance(message, dict) or not isinstance(message.get("cmd"), str):
        raise NCAError('a command is a JSON object such as {"cmd": "pause"}')
    handler = COMMANDS.get(message["cmd"])
    if handler is None:
        raise NCAError(f"unknown command {message['cmd'][:40]!r}: use one of {', '.join(COMMANDS)}")
    handler(session, message)
