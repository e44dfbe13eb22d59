"""The learned rule: the project's NCA engine run on integer states.

A grid of `states` states is encoded one-hot, channels-last (B, H, W, states). The NCA uses
learned 3x3 perception (its 9 kernels start as the 9 single cells of the neighbourhood, the
cell's own first), no alive mask and fire rate 1; its residual output, the one-hot state plus the
update, is read as scores of the next state, and the highest wins. On a bounded grid ("zero"
edges) the outside is state 0, so a step surrounds the grid with a ring of one-hot state-0 cells
(the engine's own zero padding would be no state at all) that does not update.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import NCA, NCAConfig
from .neighbourhoods import decode

ENCODING = "one-hot"  # the name stored in model files
TILE_BATCH = 32768  # configurations evaluated at once


def rule_model(states: int, bands: int, hidden: int, padding: str, seed: int) -> NCA:
    """A fresh NCA for a rule of `states` states (padding "wrap" or "zero"), its weights drawn from `seed`."""
    config = NCAConfig(channels=states, hidden=hidden, perception="learned", learned_bands=bands,
                       alive_masking=False, fire_rate=1.0, padding=padding)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NCA(config)
    with torch.no_grad():
        cells = torch.eye(9)[[4, 0, 1, 2, 3, 5, 6, 7, 8]]  # the centre, then NW, N, ... SE
        model.perception_weight[: min(bands, 9)] = cells[: min(bands, 9)]
    return model


def states_of(model: NCA) -> int:
    return model.config.channels


def encode_states(grid: torch.Tensor, states: int) -> torch.Tensor:
    """(...) integer states -> (..., states) float32 one-hot."""
    return F.one_hot(grid.long(), states).float()


def step_scores(model: NCA, x: torch.Tensor) -> torch.Tensor:
    """Scores of every cell's next state from one-hot (B, H, W, states). -> (B, H, W, states)"""
    if model.config.padding == "wrap":
        return model.step(x, fire=torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device))
    empty = F.one_hot(torch.zeros((), dtype=torch.long, device=x.device), x.shape[-1]).to(x.dtype)
    ringed = F.pad(x - empty, (0, 0, 1, 1, 1, 1)) + empty  # (B, H+2, W+2, states), the ring state 0
    fire = F.pad(torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device), (1, 1, 1, 1))
    return model.step(ringed, fire=fire)[:, 1:-1, 1:-1]


@torch.no_grad()
def run_model(model: NCA, grid: np.ndarray, steps: int,
              on_step: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """Run the learned rule `steps` steps from (B, H, W) uint8 states, each step's states rounded
    to the best-scoring one; on_step(k, grid) sees the grid after k steps. -> (B, H, W) uint8"""
    states, device = states_of(model), next(model.parameters()).device
    current = torch.from_numpy(np.ascontiguousarray(grid)).to(device)
    for k in range(steps + 1):
        if on_step is not None:
            on_step(k, current.cpu().numpy().astype(np.uint8))
        if k < steps:
            current = step_scores(model, encode_states(current, states)).argmax(-1)
    return current.cpu().numpy().astype(np.uint8)


def tiles(codes: torch.Tensor, states: int) -> torch.Tensor:
    """Each configuration as its own one-hot 3x3 grid: (M,) -> (M, 3, 3, states)."""
    hoods = torch.from_numpy(decode(codes.cpu().numpy(), states)).to(codes.device)
    return encode_states(hoods.reshape(-1, 3, 3), states)


def centre_scores(model: NCA, x: torch.Tensor) -> torch.Tensor:
    """Scores of the centre cells of tiles (M, 3, 3, states) after one step, computed for the
    centres alone (the engine updates only cells that fire). -> (M, states)"""
    fire = torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device)
    fire[:, 1, 1] = True
    return model.step(x, fire=fire)[:, 1, 1]


@torch.no_grad()
def predict(model: NCA, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The learned rule's next state for configurations (M,) codes, and its margin: the winning
    score less the runner-up's. -> (M,) uint8, (M,) float32"""
    states, device = states_of(model), next(model.parameters()).device
    nexts, margins = [], []
    for start in range(0, len(codes), TILE_BATCH):
        chunk = torch.from_numpy(np.asarray(codes[start:start + TILE_BATCH], dtype=np.int64)).to(device)
        top = centre_scores(model, tiles(chunk, states)).topk(2, dim=-1)
        nexts.append(top.indices[:, 0].cpu().numpy().astype(np.uint8))
        margins.append((top.values[:, 0] - top.values[:, 1]).cpu().numpy())
    if not nexts:
        return np.zeros(0, np.uint8), np.zeros(0, np.float32)
    return np.concatenate(nexts), np.concatenate(margins)
