"""Raw states written by `nca grow -o states.npy`: float32 (frames, *S, C) (S: H, W or D, H, W), read
back to start from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import NCAError


def read_npy(path: str | Path, what: str, mmap: bool = False) -> np.ndarray:
    """An .npy array, never unpickled; for anything else an NCAError naming `what` ("states")."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise NCAError(f"{what} not found: {path}") from None
    except (OSError, ValueError, EOFError):
        raise NCAError(f"cannot read {what} from {path}: not a NumPy .npy array of numbers") from None


def read_last_state(path: str | Path, channels: int, dims: int = 2) -> torch.Tensor:
    """The last state of an .npy file of states (frames, *S, C) or one state (*S, C), S of `dims`
    sides. -> (1, *S, C)"""
    states = read_npy(path, "states", mmap=True)
    if states.ndim not in (dims + 1, dims + 2) or states.shape[-1] != channels or states.dtype != np.float32:
        raise NCAError(f"{path} holds {states.dtype} {states.shape}; expected float32 states with {channels} channels"
                       + ("" if dims == 2 else " on a 3D grid"))
    last = np.array(states[-1] if states.ndim == dims + 2 else states)
    if not np.isfinite(last).all():
        raise NCAError(f"{path} holds states that are not finite numbers (NaN or infinity)")
    return torch.from_numpy(last)[None]
