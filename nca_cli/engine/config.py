"""The model's configuration: everything needed to rebuild an NCA, stored as JSON in model files."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import InvalidOption, NCAError

PADDINGS = ("zero", "wrap")
PERCEPTIONS = ("sobel", "learned")
CONDITIONINGS = ("hidden", "film")  # how a conditional model's goal reaches its cells (docs/goals.md)
AXES = ("x", "y", "z")  # 3D grids (D, H, W): z runs along D ("up"), y along H, x along W
MAX_CHANNELS, MAX_HIDDEN, MAX_BANDS, MAX_GOALS = 1024, 16384, 64, 1024  # far above published models (16 and 128)
FLOAT = 4  # bytes per float32


@dataclass(frozen=True)
class NCAConfig:
    """Everything needed to rebuild a model; stored as JSON in every model file and checkpoint."""

    channels: int = 16  # RGBA + hidden channels
    hidden: int = 128  # width of the per-cell network's hidden layer
    fire_rate: float = 0.5  # probability that a cell updates in a given step
    alive_threshold: float = 0.1  # a cell lives while the 3x3 max of alpha exceeds this
    padding: str = "zero"  # grid edges: "zero" (as trained in the article) or "wrap" (as its demo)
    angle: float = 0.0  # perception rotation in degrees applied by default
    # "sobel": the fixed identity + gradient kernels; "learned": `learned_bands` trainable 3x3
    # kernels applied to every channel (what rules that count neighbours need).
    perception: str = "sobel"
    learned_bands: int = 0
    # Cells die where no neighbour's alpha (channel 3) is above alive_threshold; off for tasks whose
    # states are not pictures (rules, video), where every cell lives.
    alive_masking: bool = True
    dims: int = 2  # spatial dimensions: 2 (pictures, (H, W)) or 3 (voxel bodies, (D, H, W))
    goals: int = 0  # conditional models: how many goals one rule grows (0: an unconditional model)
    axis: str = "z"  # 3D: the axis that perception turns about by `angle`
    # Conditional models: "hidden" adds a learned vector per goal to the hidden layer; "film" also
    # scales each hidden unit by a learned factor per goal (a goal-dependent first layer).
    conditioning: str = "hidden"

    def __post_init__(self):
        if self.dims not in (2, 3):
            raise NCAError(f"dims must be 2 or 3, got {self.dims}")
        if not 0 <= self.goals <= MAX_GOALS:
            raise NCAError(f"goals must be between 0 and {MAX_GOALS}, got {self.goals}")
        if self.conditioning not in CONDITIONINGS:
            raise NCAError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}")
        if self.axis not in AXES:
            raise NCAError(f"axis must be one of {', '.join(AXES)}, got {self.axis!r}")
        if self.alive_masking and self.channels < 4:
            raise InvalidOption("channels", f"must be at least 4 (RGBA), got {self.channels}")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise InvalidOption("channels", f"must be between {4 if self.alive_masking else 1} and {MAX_CHANNELS}, "
                                f"got {self.channels}")
        if self.perception not in PERCEPTIONS:
            raise NCAError(f"perception must be one of {', '.join(PERCEPTIONS)}, got {self.perception!r}")
        if (self.perception == "learned") != (self.learned_bands > 0):
            raise NCAError("learned perception needs learned_bands > 0, and only learned perception has them")
        if self.learned_bands > MAX_BANDS:
            raise NCAError(f"learned_bands must be at most {MAX_BANDS}, got {self.learned_bands}")
        if not math.isfinite(self.angle) or not math.isfinite(self.alive_threshold):
            raise NCAError("angle and alive_threshold must be finite numbers")
        if not 1 <= self.hidden <= MAX_HIDDEN:
            raise InvalidOption("hidden", f"must be between 1 and {MAX_HIDDEN}, got {self.hidden}")
        if not 0.0 < self.fire_rate <= 1.0:
            raise InvalidOption("fire_rate", f"must be in (0, 1], got {self.fire_rate}")
        if self.padding not in PADDINGS:
            raise NCAError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")

    @property
    def bands(self) -> int:
        """Perception bands per channel: for Sobel, the state itself and its gradient along each axis."""
        return self.learned_bands if self.perception == "learned" else 1 + self.dims

    @property
    def taps(self) -> int:
        """Cells in a neighbourhood: 9 on a 2D grid."""
        return 3 ** self.dims

    def step_bytes(self, cells: int, batch: int = 1) -> int:
        """Memory (bytes) of one inference step at worst, every one of batch x cells cells alive:
        the state and its padded copy, and for the cells that fire their gathered neighbourhoods,
        perception, hidden layer and update."""
        firing = self.fire_rate * cells * batch
        per_firing = self.taps * self.channels + self.bands * self.channels + self.hidden + self.channels
        return int(FLOAT * (4 * self.channels * cells * batch + firing * per_firing))

    def rollout_bytes(self, cells: int, batch: int, steps: int) -> int:
        """Memory (bytes) of a training rollout of `steps` steps at worst: what each step keeps for
        the backward pass (its input state, perception and hidden layer of the cells that fire),
        plus one step's working memory."""
        firing = self.fire_rate * cells * batch
        kept = 2 * self.channels * cells * batch + firing * (self.bands * self.channels + 2 * self.hidden + self.channels)
        return int(FLOAT * kept * steps) + self.step_bytes(cells, batch)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NCAConfig":
        if not isinstance(data, dict):
            raise NCAError(f"a model config is a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise NCAError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data)
