"""A target: the picture a model learns to grow, padded onto the grid it grows on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass
class Target:
    """A target pattern. rgba: (H, W, 4) float32 premultiplied, already padded."""

    name: str
    rgba: torch.Tensor
    size: int
    pad: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.rgba.contiguous().numpy().tobytes()).hexdigest()

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.rgba.shape[:2])

    def metadata(self) -> dict:
        """What model files and resume states record of the target (the tensor is stored beside it)."""
        return {"name": self.name, "size": self.size, "pad": self.pad, "sha256": self.sha256}
