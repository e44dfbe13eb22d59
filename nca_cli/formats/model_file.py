"""Model files: safetensors weights plus JSON metadata, validated on load. Never pickle.

A model file holds the tensors `w1.weight`, `w1.bias`, `w2.weight`, `w2.bias` (float32) and
`target` (H, W, 4, premultiplied RGBA: uint8 0..255 when the target is exactly representable so,
as targets made from images always are, else float32 in [0, 1]). Its string metadata holds JSON
documents under the keys `format` ("nca-model"), `format_version`, `nca_version`, `kind` (what the
model does, one of KINDS; files without it are "image"), `task` (what is particular to the kind),
`model` (NCAConfig), `training` (the recipe plus summary) and `target` (name, size, pad, sha256).
"""

from __future__ import annotations

import json
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..engine import NCA, NCAConfig
from ..errors import InvalidOption, NCAError
from ..targets import GoalSet, Target
from .atomic import atomic_output
from .distill import looks_like_distill, read_distill

FORMAT = "nca-model"
FORMAT_VERSION = 1
BUNDLED_DEFAULT = "lizard"
# What a model file can hold: "image" (grows a picture), "rule" (a learned classic cellular
# automaton), "video" (reconstructs video from sparse pixels). Every kind loads through the same
# checks; what is particular to a kind goes in its `task` metadata.
KINDS = ("image", "rule", "video")


@dataclass
class LoadedModel:
    """A model ready to run, with what its file says about how it was made."""

    model: NCA
    target: Target | None
    training: dict = field(default_factory=dict)
    source: str = ""
    kind: str = "image"
    task: dict = field(default_factory=dict)  # what is particular to the kind (e.g. a rule's states)
    # A conditional model's goals (their targets), goal 0 first; `target` is then the chosen goal's.
    goals: GoalSet | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def goal_index(self, spec: str, setting: str = "target") -> int:
        """The goal a name (emoji, file name) or number picks; an InvalidOption naming `setting` for a
        model that is not conditional."""
        count = self.model.config.goals
        if not count:
            raise InvalidOption(setting, f"needs a conditional model (one trained on several targets); "
                                         f"{Path(self.source).name} grows one target")
        if self.goals is not None:
            return self.goals.index(spec)
        if spec.strip().isdigit() and int(spec) < count:
            return int(spec)
        raise NCAError(f"no goal {spec!r} in this model; its goals are numbered 0 to {count - 1}")

    def with_goal(self, goal: int) -> "LoadedModel":
        """The same model with goal `goal`'s target as its target."""
        target = self.goals[goal] if self.goals is not None else None
        return dataclasses.replace(self, target=target)

    def expect(self, kind: str, use: str) -> None:
        """An NCAError unless this is a model of `kind`; `use` says what needs it ("growing a picture")."""
        if self.kind != kind:
            raise NCAError(f"{self.source} holds {article(self.kind)} {self.kind} model; {use} needs {article(kind)} {kind} model")


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def bundled_models() -> dict[str, Path]:
    """Models shipped inside the package, by name."""
    folder = resources.files("nca_cli") / "models"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".safetensors")}


def resolve_model_path(spec: str | None) -> Path:
    """A model argument: a file path, or the name of a bundled model (default: the lizard)."""
    spec = spec or BUNDLED_DEFAULT
    path = Path(spec)
    if path.is_dir():
        raise NCAError(f"{spec} is a folder; a model is a .safetensors or Distill .json file, or a bundled model")
    if path.exists():
        return path
    if not path.suffix and path.with_suffix(".safetensors").is_file():  # `nca grow trio` for trio.safetensors
        return path.with_suffix(".safetensors")
    bundled = bundled_models()
    if spec in bundled:
        return bundled[spec]
    names = ", ".join(sorted(bundled)) or "none"
    raise NCAError(f"model not found: {spec} (a .safetensors or Distill .json file, or a bundled model: {names})")


def save_model(path: str | Path, model: NCA, target: Target | GoalSet | None, training: dict, int8: bool = False,
               kind: str = "image", task: dict | None = None) -> None:
    """Write a model file atomically. int8: weight matrices as int8 with one float32 scale per
    output channel (`<name>.scale`), a quarter of the size; loading turns them back into floats.
    A conditional model's goal set is stored as one `target` tensor (K, *S, 4)."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    if int8:
        for name in ("w1.weight", "w2.weight"):
            tensors[name], tensors[name + ".scale"] = quantize_int8(tensors[name])
    if target is not None:
        tensors["target"] = compact_target(target.rgba.detach().cpu())
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "nca_version": __version__,
        "kind": kind,
        "task": json.dumps(task or {}),
        "model": json.dumps(model.config.to_dict()),
        "training": json.dumps(training),
        "target": json.dumps(None if target is None else target.metadata()),
        "quantization": "int8-per-channel" if int8 else "none",
    }
    write_safetensors(path, tensors, metadata)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """One safetensors file, atomically; a failed write (a full disk) is an NCAError naming it."""
    with atomic_output(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:
            detail = str(exc).split("I/O error: ", 1)[-1].split(" (os error", 1)[0]
            raise NCAError(f"cannot write {path}: {detail}") from None


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float -> int8 values and (out,) float32 scales, symmetric per output channel."""
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    return (weight / scale[:, None]).round().clamp(-127, 127).to(torch.int8), scale.float()


def compact_target(rgba: torch.Tensor) -> torch.Tensor:
    """The target as uint8 when that is exact (a quarter of the size), else float32."""
    as_bytes = (rgba * 255.0).round().clamp(0, 255).to(torch.uint8)
    return as_bytes if torch.equal(as_bytes.float() / 255.0, rgba) else rgba.float().contiguous()


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file; any damage becomes an NCAError."""
    path = Path(path)
    if not path.is_file():
        raise NCAError(f"model not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise NCAError(f"cannot read {path}: not a safetensors file, or truncated or corrupt") from exc
    return tensors, metadata


def load_model(spec: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load and validate a model file, a Distill-format JSON model, or a bundled model by name."""
    path = resolve_model_path(str(spec) if spec is not None else None)
    if looks_like_distill(path):  # a published model in the Distill demo's JSON format: no target
        model = read_distill(path)
        return LoadedModel(model=model.to(device).eval(), target=None, training={"format": "distill"},
                           source=str(path))
    if path.suffix.lower() == ".json":
        raise NCAError(f"{path} is not a Distill model: it does not hold the JSON list of layers of that format")
    tensors, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise NCAError(f"{path} is not an nca model file (its metadata has no '{FORMAT}' format tag)")
    try:
        version = int(meta.get("format_version", "0"))
        config = NCAConfig.from_dict(json.loads(meta["model"]))
        training = json.loads(meta.get("training", "{}"))
        task = json.loads(meta.get("task", "{}"))
        target_info = json.loads(meta["target"])
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise NCAError(f"{path} has invalid metadata: {exc}") from None
    if not isinstance(training, dict) or not isinstance(task, dict) or not isinstance(target_info, (dict, type(None))):
        raise NCAError(f"{path} has invalid metadata: training and task must be JSON objects, target an object or null")
    if version > FORMAT_VERSION:
        raise NCAError(f"{path} uses model format version {version}; this nca reads up to {FORMAT_VERSION}")
    kind = meta.get("kind", "image")
    if kind not in KINDS:
        raise NCAError(f"{path} holds a model of kind {kind!r}; this nca reads {', '.join(KINDS)}")
    model = NCA(config)
    if meta.get("quantization", "none") == "int8-per-channel":
        for name in ("w1.weight", "w2.weight"):
            scale = tensors.get(name + ".scale")
            if name not in tensors or scale is None or tensors[name].dtype != torch.int8 or scale.ndim != 1 \
                    or scale.shape[0] != tensors[name].shape[0]:
                raise NCAError(f"{path}: int8 tensor {name} or its per-channel scale is missing or malformed")
            tensors[name] = tensors[name].float() * scale[:, None].float()
    _check_weights(path, tensors, model)
    model.load_state_dict({name: tensors[name] for name in model.state_dict()})
    goals = stored_goals_of(path, tensors.get("target"), target_info, config) if config.goals else None
    target = goals[0] if goals is not None else None
    if not config.goals:
        target = stored_target_of(path, tensors.get("target"), target_info, config.dims)
    return LoadedModel(model=model.to(device).eval(), target=target, training=training, source=str(path),
                       kind=kind, task=task, goals=goals)


def _check_weights(path: Path, tensors: dict[str, torch.Tensor], model: NCA) -> None:
    expected = model.state_dict()
    for name in expected:
        if name not in tensors:
            raise NCAError(f"{path} is missing the tensor {name}")
        t = tensors[name]
        if tuple(t.shape) != tuple(expected[name].shape):
            raise NCAError(f"{path}: tensor {name} has shape {tuple(t.shape)}, but its config "
                           f"needs {tuple(expected[name].shape)}")
        if not torch.isfinite(t).all():
            raise NCAError(f"{path}: tensor {name} holds NaN or infinite values")


def stored_target_of(path: Path, rgba: torch.Tensor | None, info: dict | None, dims: int) -> Target | None:
    """The target stored in a file (model or resume state): its tensor (*S, 4) and metadata,
    checked (shape, type, values in [0, 1], checksum). None where the file stores none."""
    if rgba is None or info is None:
        return None
    if rgba.ndim != dims + 1 or rgba.shape[-1] != 4 or min(rgba.shape[:-1]) < 3:
        expected = "(H, W, 4)" if dims == 2 else "(D, H, W, 4)"
        raise NCAError(f"{path}: the stored target has shape {tuple(rgba.shape)}, expected {expected}, sides >= 3")
    if rgba.dtype not in (torch.uint8, torch.float32):
        raise NCAError(f"{path}: the stored target is {rgba.dtype}, expected uint8 or float32")
    rgba = rgba.float() / 255.0 if rgba.dtype == torch.uint8 else rgba.float()
    if not torch.isfinite(rgba).all() or rgba.min() < 0 or rgba.max() > 1:
        raise NCAError(f"{path}: the stored target holds values outside [0, 1]")
    size, pad = info.get("size", 0), info.get("pad", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, pad)):
        raise NCAError(f"{path} has invalid metadata: the target's size and pad must be whole numbers")
    target = Target(name=str(info.get("name", "target")), rgba=rgba, size=size, pad=pad)
    if info.get("sha256") and info["sha256"] != target.sha256:
        raise NCAError(f"{path}: the stored target does not match its recorded checksum")
    return target


def stored_goals_of(path: Path, rgba: torch.Tensor | None, info: dict | None, config: NCAConfig) -> GoalSet | None:
    """A conditional model's stored goals: the tensor (K, *S, 4) and metadata {"goals": [one
    target's record per goal], "sha256": ...}, each goal checked as a stored target is. None where
    the file stores none."""
    if rgba is None or info is None:
        return None
    records = info.get("goals")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records) or \
            rgba.ndim != config.dims + 2 or len(records) != config.goals or rgba.shape[0] != config.goals:
        raise NCAError(f"{path}: the stored goals do not match the model's {config.goals} goals")
    goals = GoalSet([stored_target_of(path, rgba[i], r, config.dims) for i, r in enumerate(records)])
    if info.get("sha256") and info["sha256"] != goals.sha256:
        raise NCAError(f"{path}: the stored goals do not match their recorded checksum")
    return goals
