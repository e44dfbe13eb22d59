"""The video NCA: the project's engine with a cell state laid out for sparse video.

Each cell sits at one pixel and holds, channels-last:
  [0, P)        its estimate of the pixel (P = 3 for RGB, 1 for grey)
  [P, 2P)       an input register: the last value observed at the pixel
  2P            a flag: 1 where the pixel was observed this frame, else 0
  [2P + 1, C)   hidden channels
Pixel values are stored centred (value - 0.5), so that the empty state reads as mid-grey.

Each frame, the surviving pixels are written into the registers and flags (`observe`), then the
rule runs `steps` steps (`advance`); the registers and flags are inputs, not the rule's to change,
so they are put back after every step. Every cell lives (no alive masking) and fires every step.

Reading a frame out (`VideoReconstructor`): the first frame gets `warm_up` more steps than the
others (its observations are all the rule has to start from), and the estimates may be smoothed:
`smoothing` passes in each of which every cell takes the binomial mean of its 3x3 neighbourhood's
estimates. Training scores each cell's own estimate; the smoothing is chosen afterwards, on the
training clip (video/reconstruct.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import NCA, NCAConfig
from ..engine.config import MAX_BANDS, MAX_CHANNELS
from ..errors import InvalidOption, NCAError

CENTRE = 0.5
# Every state value is kept within [-LIMIT, LIMIT] after each step: a young rule's updates add up
# over the hundreds of steps a video lasts, and unbounded they can run away (estimates use +-0.5).
LIMIT = 1.5


@dataclass(frozen=True)
class VideoLayout:
    """Where the estimate, the input register, the flag and the hidden channels sit in a state."""

    pixel_channels: int
    channels: int

    def __post_init__(self):
        if self.pixel_channels not in (1, 3):
            raise NCAError(f"pixel channels must be 1 (grey) or 3 (RGB), got {self.pixel_channels}")
        if self.channels < self.hidden_start:
            raise NCAError(f"a video model with {self.pixel_channels} pixel channels needs at least "
                           f"{self.hidden_start} channels, got {self.channels}")

    @property
    def register(self) -> slice:
        return slice(self.pixel_channels, 2 * self.pixel_channels)

    @property
    def flag(self) -> int:
        return 2 * self.pixel_channels

    @property
    def hidden_start(self) -> int:
        return 2 * self.pixel_channels + 1


HIDDEN_CHANNELS, HIDDEN_UNITS, BANDS = 12, 64, 4  # the defaults of `nca video train`
# Extra steps on the first frame, by default: from 0 to 16 they raised a clip's PSNR, beyond that not
# (docs/video.md, "Reading out").
WARM_UP = 16


def video_config(pixel_channels: int, hidden_channels: int = HIDDEN_CHANNELS, hidden: int = HIDDEN_UNITS,
                 perception: str = "learned", bands: int = BANDS, fire_rate: float = 1.0) -> NCAConfig:
    """The engine's config for a video model: every cell alive (a cell is a pixel, there is nothing
    to grow), firing every step unless `fire_rate` < 1, zero edges; learned perception kernels
    (`bands` per channel) by default (they trained better than Sobel's, docs/video.md)."""
    channels = 2 * pixel_channels + 1 + hidden_channels
    if not 0 <= hidden_channels <= MAX_CHANNELS - (2 * pixel_channels + 1):
        raise InvalidOption("hidden_channels", f"must be between 0 and {MAX_CHANNELS - (2 * pixel_channels + 1)}, "
                                               f"got {hidden_channels}")
    if perception == "learned" and not 1 <= bands <= MAX_BANDS:
        raise InvalidOption("bands", f"must be between 1 and {MAX_BANDS} with learned perception, got {bands}")
    VideoLayout(pixel_channels, channels)
    return NCAConfig(channels=channels, hidden=hidden, fire_rate=fire_rate, padding="zero", perception=perception,
                     learned_bands=bands if perception == "learned" else 0, alive_masking=False)


def layout_of(model: NCA, pixel_channels: int) -> VideoLayout:
    return VideoLayout(pixel_channels, model.config.channels)


def empty_state(layout: VideoLayout, batch: int, height: int, width: int, device=None) -> torch.Tensor:
    """The state before any frame: every channel zero (estimates mid-grey). -> (B, H, W, C)"""
    return torch.zeros(batch, height, width, layout.channels, device=device)


def observe(x: torch.Tensor, frame: torch.Tensor, mask: torch.Tensor, layout: VideoLayout) -> torch.Tensor:
    """Write a frame's surviving pixels into the registers and set the flags.
    x: (B, H, W, C); frame: (B, H, W, P) in [0, 1]; mask: (B, H, W) bool. -> (B, H, W, C)"""
    P, observed = layout.pixel_channels, mask[..., None]
    register = torch.where(observed, frame - CENTRE, x[..., layout.register])
    return torch.cat([x[..., :P], register, observed.to(x.dtype), x[..., layout.hidden_start:]], dim=-1)


def advance(model: NCA, x: torch.Tensor, steps: int, layout: VideoLayout,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Run `steps` steps of the rule, keeping the registers and flags as they were and every value
    within [-LIMIT, LIMIT]; `generator` draws which cells fire when the fire rate is below 1.
    (B, H, W, C) -> (B, H, W, C)"""
    inputs = x[..., layout.register.start : layout.hidden_start]
    P = layout.pixel_channels

    def keep_inputs(k: int, state: torch.Tensor) -> torch.Tensor | None:
        if k == 0:
            return None
        return torch.cat([state[..., :P], inputs, state[..., layout.hidden_start:]], dim=-1).clamp(-LIMIT, LIMIT)

    return model.rollout(x, steps, generator=generator, on_step=keep_inputs)


def estimate(x: torch.Tensor, layout: VideoLayout) -> torch.Tensor:
    """The cells' estimates of their pixels in [0, 1]. (B, H, W, C) -> (B, H, W, P)"""
    return (x[..., : layout.pixel_channels] + CENTRE).clamp(0.0, 1.0)


def smooth(estimates: torch.Tensor, passes: int) -> torch.Tensor:
    """`passes` rounds in each of which every cell takes the binomial mean (1 2 1 / 2 4 2 / 1 2 1, over
    16) of the estimates of its 3x3 neighbourhood; at the frame's edge a cell stands in for its
    missing neighbours. (B, H, W, P) -> (B, H, W, P)"""
    if passes == 0:
        return estimates
    B, H, W, P = estimates.shape
    x = estimates.permute(0, 3, 1, 2).reshape(B * P, 1, H, W)
    row = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device) / 4
    kernel = (row[:, None] * row[None, :])[None, None]
    for _ in range(passes):
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
    return x.reshape(B, P, H, W).permute(0, 2, 3, 1)


def prediction_loss(x: torch.Tensor, frame: torch.Tensor, mask: torch.Tensor, layout: VideoLayout) -> tuple[torch.Tensor, int]:
    """Squared error of the estimates against the pixel values arriving at the observed cells, before
    they are written in: summed over those cells and channels, and their count.
    x: (B, H, W, C); frame: (B, H, W, P); mask: (B, H, W) bool. -> (sum (), count)"""
    raw = x[..., : layout.pixel_channels] + CENTRE  # unclamped: the gradient reaches every cell
    error = (raw - frame).square().sum(-1)  # (B, H, W)
    return (error * mask.to(error.dtype)).sum(), int(mask.sum()) * layout.pixel_channels


class VideoReconstructor:
    """The NCA as an online method, like the baselines: call with frame (H, W, P) and mask (H, W)
    bool, get the estimate of the whole frame (H, W, P) after `steps` steps (`steps + warm_up` on
    the first frame), smoothed `smoothing` passes."""

    name = "nca"

    def __init__(self, model: NCA, pixel_channels: int, steps: int, seed: int = 0, warm_up: int = 0,
                 smoothing: int = 0):
        if steps < 1:
            raise NCAError(f"steps per frame must be at least 1, got {steps}")
        if warm_up < 0:
            raise NCAError(f"warm-up steps must be at least 0, got {warm_up}")
        if smoothing < 0:
            raise NCAError(f"smoothing passes must be at least 0, got {smoothing}")
        self.model, self.steps, self.warm_up, self.smoothing, self.seed = model, steps, warm_up, smoothing, seed
        self.pixel_channels = pixel_channels
        self.layout = layout_of(model, pixel_channels)
        self.state: torch.Tensor | None = None
        self.generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)

    @torch.inference_mode()
    def __call__(self, frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        frame, mask = frame.to(device)[None], mask.to(device)[None]
        steps = self.steps
        if self.state is None:
            self.state = empty_state(self.layout, 1, frame.shape[1], frame.shape[2], device)
            steps += self.warm_up
        self.state = advance(self.model, observe(self.state, frame, mask, self.layout), steps, self.layout,
                             self.generator)
        return smooth(estimate(self.state, self.layout), self.smoothing)[0]

    def fresh(self, smoothing: int) -> "VideoReconstructor":
        """The same reconstructor, from the empty state, reading out with `smoothing` passes."""
        return VideoReconstructor(self.model, self.pixel_channels, self.steps, self.seed, self.warm_up, smoothing)
