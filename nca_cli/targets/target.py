"""A target: the picture a model learns to grow, padded onto the grid it grows on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass
class Target:
    """A target pattern. rgba: (*S, 4) float32 premultiplied, already padded; S is (H, W) for a
    picture, (D, H, W) for a voxel body (D up)."""

    name: str
    rgba: torch.Tensor
    size: int
    pad: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.rgba.contiguous().numpy().tobytes()).hexdigest()

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's spatial shape: (H, W) or (D, H, W)."""
        return tuple(self.rgba.shape[:-1])

    @property
    def dims(self) -> int:
        return self.rgba.ndim - 1

    def metadata(self) -> dict:
        """What model files and resume states record of the target (the tensor is stored beside it)."""
        return {"name": self.name, "size": self.size, "pad": self.pad, "sha256": self.sha256}
