"""Raw states written by `nca grow -o states.npy`: float32 (frames, H, W, C), read back to start from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import NCAError


def read_last_state(path: str | Path, channels: int) -> torch.Tensor:
    """The last state of an .npy file of states (frames, H, W, C) or one state (H, W, C). -> (1, H, W, C)"""
    try:
        states = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise NCAError(f"cannot read state {path}: {exc}") from None
    if states.ndim not in (3, 4) or states.shape[-1] != channels or states.dtype != np.float32:
        raise NCAError(f"{path} holds {states.dtype} {states.shape}; expected float32 states with {channels} channels")
    last = np.array(states[-1] if states.ndim == 4 else states)
    return torch.from_numpy(last)[None]
