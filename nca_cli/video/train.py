"""Self-supervised training on one clip, by truncated backpropagation through time.

Only surviving pixels are ever compared: at every frame, each cell's estimate is scored against
the value that arrives at an observed cell before it is written in (so the rule learns to predict
what it has not seen), and no clean frame is needed. The batch is `batch` streams, each a random
crop of the clip followed from a random frame: every iteration runs each stream `window` frames
on from where it stopped, back-propagates through those frames, and keeps the state (detached)
for the next iteration. A stream that reaches the clip's end starts afresh at a new crop and
frame from the empty state. All randomness comes from one torch.Generator, saved with the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch

from ..engine import NCA, NCAConfig
from ..errors import InvalidOption, NCAError
from ..training.optimise import budget_drop, normalise_gradients
from .clips import Clip
from .masks import check_keep, random_masks
from .model import advance, empty_state, layout_of, observe, prediction_loss


# Augmentation's tones: values v become (v - 0.5) * gain + 0.5 + shift, clamped to [0, 1], with the
# gain drawn from this range and the shift from +-AUGMENT_SHIFT, per stream (docs/video.md).
AUGMENT_GAIN, AUGMENT_SHIFT = (0.6, 1.4), 0.15
# and its scale: a crop of zoom z covers z x z times the pixels, averaged down to the crop's size.
AUGMENT_ZOOMS = (1, 2)


@dataclass(frozen=True)
class VideoTrainConfig:
    """The recipe of `nca video train`; stored in the model file and the resume state."""

    keep: float = 0.01
    mask_fixed: bool = False
    steps_per_frame: int = 2
    iterations: int = 4000
    batch: int = 4
    crop: int = 32  # side of the square crops, pixels
    window: int = 8  # frames back-propagated through per iteration
    lr: float = 4e-3
    lr_decay_at: int = 3200
    lr_decay: float = 0.1
    overflow: float = 1.0  # weight of the penalty on state values outside [-1, 1]
    augment: bool = True  # each stream's crop at a random scale, turned or mirrored, colours reordered, tone changed
    seed: int = 0

    def __post_init__(self):
        check_keep(self.keep)
        for name in ("steps_per_frame", "iterations", "batch", "window"):
            if getattr(self, name) < 1:
                raise InvalidOption(name, f"must be at least 1, got {getattr(self, name)}")
        if self.crop < 8:
            raise InvalidOption("crop", f"must be at least 8 pixels, got {self.crop}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidOption("lr", f"must be positive, got {self.lr:g}")
        if self.lr_decay_at < 0:
            raise InvalidOption("lr_decay_at", f"must not be negative, got {self.lr_decay_at}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VideoTrainConfig":
        if not isinstance(data, dict):
            raise NCAError(f"a video training config is a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def learning_rate(self, iteration: int, decay_from: int) -> float:
        return self.lr * (self.lr_decay if iteration >= min(decay_from, self.lr_decay_at) else 1.0)

    @property
    def decay_fraction(self) -> float:
        return min(self.lr_decay_at / self.iterations, 1.0)


def check_clip_for_training(clip: Clip, config: VideoTrainConfig) -> None:
    """The clip must hold a crop and a window of frames."""
    H, W = clip.size
    if min(H, W) < config.crop:
        raise NCAError(f"the clip's frames ({H}x{W}) are smaller than the training crop "
                       f"({config.crop}x{config.crop}): use a smaller --crop or a larger --size")
    if len(clip) < config.window + 1:
        raise NCAError(f"the clip has {len(clip)} frames; training needs more than the window of {config.window}")


class VideoTrainer:
    """The whole training state: model, optimiser, streams, random generator, history."""

    def __init__(self, model_config: NCAConfig, config: VideoTrainConfig, clip: Clip,
                 device: str | torch.device = "cpu"):
        check_clip_for_training(clip, config)
        self.config, self.clip, self.device = config, clip, torch.device(device)
        self.frames = torch.from_numpy(clip.frames).to(self.device)  # (T, H, W, P) uint8
        self.generator = torch.Generator().manual_seed(config.seed)  # CPU: the same draws on any device
        # Which cells fire, when the rule's fire rate is below 1: drawn where the state lives.
        self.fire_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)  # the initial weights
        self.model = NCA(model_config).to(self.device)
        self.layout = layout_of(self.model, clip.pixel_channels)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        B, c = config.batch, config.crop
        self.state = empty_state(self.layout, B, c, c, self.device)
        self.origin = torch.zeros(B, 2, dtype=torch.long)  # crop corners (row, col)
        self.time = torch.full((B,), len(clip), dtype=torch.long)  # next frame per stream: all start afresh
        self.fixed = torch.zeros(B, c, c, dtype=torch.bool)  # each stream's sensor pattern (mask_fixed)
        self.view = torch.zeros(B, 3, dtype=torch.long)  # transposed, rows flipped, columns flipped
        self.order = torch.arange(clip.pixel_channels).repeat(B, 1)  # the order of its colours
        self.gain, self.shift = torch.ones(B), torch.zeros(B)  # its contrast about mid-grey, its brightness
        self.zoom = torch.ones(B, dtype=torch.long)  # frame pixels per crop pixel, each way
        H, W = clip.size  # the scales a restart draws from: those whose window fits in the frame
        self.zooms = [z for z in AUGMENT_ZOOMS if z * c <= min(H, W)] if config.augment else [1]
        self.iteration, self.elapsed, self.rollbacks = 0, 0.0, 0
        self.losses: list[float] = []
        self.decay_from = config.lr_decay_at

    def restart_finished_streams(self) -> None:
        """Streams without a whole window left start afresh: new crop (and scale), frame, state, sensor
        pattern."""
        cfg, g = self.config, self.generator
        T, (H, W) = len(self.clip), self.clip.size
        for b in torch.nonzero(self.time + cfg.window > T).flatten().tolist():
            if len(self.zooms) > 1:
                self.zoom[b] = self.zooms[int(torch.randint(0, len(self.zooms), (1,), generator=g))]
            side = cfg.crop * int(self.zoom[b])
            self.origin[b, 0] = int(torch.randint(0, H - side + 1, (1,), generator=g))
            self.origin[b, 1] = int(torch.randint(0, W - side + 1, (1,), generator=g))
            self.time[b] = int(torch.randint(0, T - cfg.window + 1, (1,), generator=g))
            self.fixed[b] = random_masks((cfg.crop, cfg.crop), cfg.keep, g)
            self.state[b] = 0.0
            if cfg.augment:  # a turn or mirror of the crop, an order of its colours, a tone, for its lifetime
                self.view[b] = torch.randint(0, 2, (3,), generator=g)
                self.order[b] = torch.randperm(self.clip.pixel_channels, generator=g)
                low, high = AUGMENT_GAIN
                self.gain[b] = low + (high - low) * float(torch.rand((), generator=g))
                self.shift[b] = AUGMENT_SHIFT * (2 * float(torch.rand((), generator=g)) - 1)

    def crops(self, offset: int) -> torch.Tensor:
        """Each stream's crop of its frame time + offset, in [0, 1], seen in the stream's scale, view and
        tone.
        -> (B, crop, crop, P)"""
        c, crops = self.config.crop, []
        for b, (t, (y, x), z) in enumerate(zip(self.time.tolist(), self.origin.tolist(), self.zoom.tolist())):
            crop = self.frames[t + offset, y : y + c * z, x : x + c * z].float()
            if z > 1:
                crop = crop.reshape(c, z, c, z, -1).mean((1, 3))
            transpose, flip_rows, flip_cols = self.view[b].tolist()
            crop = crop.transpose(0, 1) if transpose else crop
            crop = crop.flip(0) if flip_rows else crop
            crop = crop.flip(1) if flip_cols else crop
            crops.append(crop[..., self.order[b].to(crop.device)])
        crops = torch.stack(crops) / 255.0
        if self.config.augment:  # each stream's contrast and brightness
            gain, shift = self.gain.to(crops.device), self.shift.to(crops.device)
            crops = ((crops - 0.5) * gain[:, None, None, None] + 0.5 + shift[:, None, None, None]).clamp(0.0, 1.0)
        return crops

    def masks(self) -> torch.Tensor:
        """This frame's surviving pixels of every stream. -> (B, crop, crop) bool"""
        cfg = self.config
        if cfg.mask_fixed:
            return self.fixed.to(self.device)
        return random_masks((cfg.batch, cfg.crop, cfg.crop), cfg.keep, self.generator).to(self.device)

    def train_step(self) -> float:
        """One iteration: every stream `window` frames on, with the loss on arriving pixels."""
        cfg = self.config
        self.restart_finished_streams()
        x, total, count = self.state, torch.zeros((), device=self.device), 0
        overflow = torch.zeros((), device=self.device)
        for k in range(cfg.window):
            frame, mask = self.crops(k), self.masks()
            error, n = prediction_loss(x, frame, mask, self.layout)
            total, count = total + error, count + n
            x = advance(self.model, observe(x, frame, mask, self.layout), cfg.steps_per_frame, self.layout,
                        self.fire_generator)
            overflow = overflow + (x - x.clamp(-1.0, 1.0)).square().mean()
        loss = total / max(count, 1) + cfg.overflow * overflow / cfg.window
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = float(loss.detach())
        self.state, self.time = x.detach(), self.time + cfg.window
        if count == 0 or not math.isfinite(value) or not normalise_gradients(self.model):
            self.rollbacks += 1  # nothing to learn from, or a broken batch: the weights stay
            return value
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate(self.iteration, self.decay_from)
        self.optimizer.step()
        return value

    def run(self, time_budget: float | None = None, on_iteration: Callable[["VideoTrainer", float], None] | None = None,
            should_stop: Callable[[], bool] | None = None, checkpoint: Callable[["VideoTrainer"], None] | None = None,
            checkpoint_every: int = 0) -> str:
        """Train until `iterations`, the time budget (seconds) or should_stop(); as `nca train`, a
        budget that ends the run first drops the rate at the same fraction of it (never before 30% of
        `lr_decay_at`). Returns why it
        stopped: "done", "time budget" or "interrupted"."""
        while self.iteration < self.config.iterations:
            if should_stop is not None and should_stop():
                return "interrupted"
            if time_budget is not None:
                if self.elapsed >= time_budget:
                    return "time budget"
                self.decay_from = budget_drop(self.decay_from, self.iteration, self.elapsed, time_budget,
                                              self.config.decay_fraction, self.config.lr_decay_at)
            start = time.perf_counter()
            loss = self.train_step()
            self.iteration += 1
            self.losses.append(loss)
            if on_iteration is not None:
                on_iteration(self, loss)
            if checkpoint is not None and checkpoint_every and self.iteration % checkpoint_every == 0:
                checkpoint(self)
            self.elapsed += time.perf_counter() - start
        return "done"

    def final_loss(self, window: int = 20) -> float:
        finite = [v for v in self.losses[-window:] if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else float("nan")

    def summary(self, stopped: str) -> dict:
        return {**self.config.to_dict(), "iterations_done": self.iteration, "wall_time_s": round(self.elapsed, 1),
                "final_loss": self.final_loss(), "stopped": stopped, "rollbacks": self.rollbacks,
                "lr_dropped_at": self.decay_from if self.decay_from < self.iteration else None}
