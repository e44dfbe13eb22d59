"""Choosing the device a model runs on."""

from __future__ import annotations

import torch

from ..errors import NCAError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NCAError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NCAError("device cuda is not available on this machine")
    if device.type == "mps" and not _mps_available():
        raise NCAError("device mps is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise NCAError(f"unsupported device {name!r}: use auto, cpu, cuda or mps")
    return device
