"""Goal sets: several targets on one grid, one per goal of a conditional model.

A goal set is made from several emoji or picture files, or a folder of pictures (one goal per
picture, in file-name order); every picture is fitted into the same box and padded by the same
margin, so all goals share the grid. A goal is named by its emoji, its file name (with or
without the suffix) or its number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import NCAError
from .images import load_target
from .target import Target

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
MAX_GOAL_COUNT = 1024  # the engine's limit (NCAConfig.goals)


@dataclass
class GoalSet:
    """The targets of a conditional model, goal 0 first; all of one grid shape."""

    targets: list[Target]

    def __post_init__(self):
        if not self.targets:
            raise NCAError("a goal set needs at least one target")
        if len(self.targets) > MAX_GOAL_COUNT:
            raise NCAError(f"a model has at most {MAX_GOAL_COUNT} goals, got {len(self.targets)}")
        shapes = {t.shape for t in self.targets}
        if len(shapes) > 1:
            raise NCAError("the goals' grids differ: " + ", ".join("x".join(map(str, s)) for s in sorted(shapes)))
        seen: dict[str, int] = {}
        for i, name in enumerate(self.names):
            if name in seen:
                raise NCAError(f"goals {seen[name]} and {i} are both named {name}; give pictures different names")
            seen[name] = i

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, goal: int) -> Target:
        return self.targets[goal]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.targets[0].shape

    @property
    def dims(self) -> int:
        return self.targets[0].dims

    @property
    def pad(self) -> int:
        """The margin (cells) around the pictures, the same for every goal."""
        return self.targets[0].pad

    @property
    def rgba(self) -> torch.Tensor:
        """Every goal's target, stacked: (K, *S, 4)."""
        return torch.stack([t.rgba for t in self.targets])

    @property
    def sha256(self) -> str:
        """One checksum of all the goals' targets, in order."""
        return hashlib.sha256("".join(t.sha256 for t in self.targets).encode()).hexdigest()

    def metadata(self) -> dict:
        """What model files and resume states record of the goals (the tensors are stored beside it):
        their names, one checksum of them all, and each goal's own record."""
        first = self.targets[0]
        return {"name": ", ".join(self.names), "size": first.size, "pad": first.pad, "sha256": self.sha256,
                "goals": [t.metadata() for t in self.targets]}

    def listing(self) -> str:
        """'0 🦎, 1 🦋, 2 🐠': the goals with their numbers, for messages."""
        return ", ".join(f"{i} {name}" for i, name in enumerate(self.names))

    def index(self, spec: str) -> int:
        """The goal that `spec` names: an emoji or file name (with or without its suffix) or a number."""
        spec = spec.strip()
        for i, name in enumerate(self.names):
            if spec == name or spec == Path(name).stem:
                return i
        if spec.isdigit() and int(spec) < len(self):
            return int(spec)
        raise NCAError(f"no goal {spec!r} in this model; its goals are {self.listing()}")


def expand_specs(specs: list[str]) -> list[str]:
    """Target arguments with each folder replaced by the pictures in it, sorted by name."""
    expanded = []
    for spec in specs:
        if not spec.strip():
            raise NCAError("a target is an emoji, a picture file or a folder of pictures, got an empty argument")
        folder = Path(spec)
        if not folder.is_dir():
            expanded.append(spec)
            continue
        pictures = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
        if not pictures:
            raise NCAError(f"folder {spec} holds no pictures ({', '.join(PICTURE_SUFFIXES)})")
        expanded.extend(pictures)
    return expanded


def load_goals(specs: list[str], size: int = 40, pad: int = 16, keep_white: bool = False) -> GoalSet:
    """Several targets (emoji, picture files, folders of pictures) fitted onto one grid."""
    return GoalSet([load_target(spec, size, pad, keep_white) for spec in expand_specs(specs)])
