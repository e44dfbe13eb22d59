"""Learned rules in model files: the NCA through the project's model file, kind "rule", with a task
saying what it is a rule of, and which configurations its data showed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import NCA
from ..errors import NCAError
from ..formats.model_file import load_model, save_model
from .learn import LearnConfig, LearnResult
from .learned import ENCODING, states_of
from .observed import pack_codes, unpack_codes

KIND = "rule"


@dataclass
class RuleTask:
    """A learned rule's task metadata."""

    states: int
    padding: str  # the grid's edges: "wrap" (a torus) or "zero" (bounded)
    seen: np.ndarray  # (M,) configurations observed in the data
    source: str | None = None  # the hand-written rule it was learned from, if any
    learned_from: str = "soups"  # "soups" (simulated from `source`) or the data file
    data: dict = field(default_factory=dict)  # runs, steps, grid, transitions
    readback: str = ""  # the notation read back when it was saved
    family: str = ""  # the source's family, else that of the rule read back
    encoding: str = ENCODING

    def to_dict(self) -> dict:
        return {"family": self.family, "states": self.states, "encoding": self.encoding, "padding": self.padding,
                "source": self.source, "learned_from": self.learned_from, "data": self.data,
                "readback": self.readback, "seen": pack_codes(self.seen)}

    @classmethod
    def from_dict(cls, data: dict, source: str) -> "RuleTask":
        try:
            task = cls(states=int(data["states"]), padding=str(data["padding"]), seen=unpack_codes(data["seen"]),
                       source=data.get("source"), learned_from=str(data.get("learned_from", "")),
                       data=dict(data.get("data", {})), readback=str(data.get("readback", "")),
                       family=str(data.get("family", "")), encoding=str(data.get("encoding", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise NCAError(f"{source} has an invalid rule task: {exc}") from None
        if task.encoding != ENCODING:
            raise NCAError(f"{source} encodes states as {task.encoding!r}; this nca reads {ENCODING!r}")
        return task


def save_learned(path: str | Path, result: LearnResult, task: RuleTask, config: LearnConfig) -> None:
    """Write a learned rule's model file (atomically)."""
    check = result.check
    training = {"recipe": config.to_dict(), "attempts": result.attempts, "iterations": check.iteration,
                "stage": check.stage, "wrong_on_data": check.wrong, "margin": check.margin,
                "exact_on_data": check.exact, "wall_time_s": round(result.seconds, 3)}
    save_model(path, result.model, None, training, kind=KIND, task=task.to_dict())


def open_learned(spec: str, device="cpu", use: str = "reading a rule back") -> tuple[NCA, RuleTask, dict]:
    """A learned rule's model, task and training summary; one clear error for any other model."""
    loaded = load_model(spec, device=device)
    loaded.expect(KIND, use)
    task = RuleTask.from_dict(loaded.task, loaded.source)
    if states_of(loaded.model) != task.states:
        raise NCAError(f"{loaded.source}: the model has {states_of(loaded.model)} channels for {task.states} states")
    return loaded.model, task, loaded.training
