"""The model's configuration: everything needed to rebuild an NCA, stored as JSON in model files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import NCAError

PADDINGS = ("zero", "wrap")
PERCEPTIONS = ("sobel", "learned")


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

    def __post_init__(self):
        if self.alive_masking and self.channels < 4:
            raise NCAError(f"channels must be at least 4 (RGBA), got {self.channels}")
        if self.channels < 1:
            raise NCAError(f"channels must be positive, got {self.channels}")
        if self.perception not in PERCEPTIONS:
            raise NCAError(f"perception must be one of {', '.join(PERCEPTIONS)}, got {self.perception!r}")
        if (self.perception == "learned") != (self.learned_bands > 0):
            raise NCAError("learned perception needs learned_bands > 0, and only learned perception has them")
        if self.hidden < 1:
            raise NCAError(f"hidden must be positive, got {self.hidden}")
        if not 0.0 < self.fire_rate <= 1.0:
            raise NCAError(f"fire_rate must be in (0, 1], got {self.fire_rate}")
        if self.padding not in PADDINGS:
            raise NCAError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")

    @property
    def dims(self) -> int:
        """Spatial dimensions of the grid the model runs on."""
        return 2

    @property
    def bands(self) -> int:
        """Perception bands per channel: for Sobel, the state itself and its gradient along each axis."""
        return self.learned_bands if self.perception == "learned" else 1 + self.dims

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
