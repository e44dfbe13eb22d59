"""The engine: a Neural Cellular Automaton in torch, and nothing else (no files, no terminal).

config      NCAConfig, the model's configuration
grid        padding, the alive mask, neighbourhoods, the living region's box
perception  the perception kernels and a dense perceive
nca         the NCA module: the update rule, the sparse step, the rollout with a per-step hook
dense       the same step written densely with convolutions (ONNX export, the bench's reference)
state       the seed, rendering a state to RGB, the RGBA loss
"""

from .config import PADDINGS, NCAConfig
from .dense import DenseStep
from .grid import alive_mask, pad_grid
from .nca import NCA, StepHook
from .perception import perceive, perception_kernels
from .state import render_rgb, rgba_loss, seed_state

__all__ = ["PADDINGS", "NCAConfig", "DenseStep", "alive_mask", "pad_grid", "NCA", "StepHook", "perceive",
           "perception_kernels", "render_rgb", "rgba_loss", "seed_state"]
