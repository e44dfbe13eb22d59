"""Starting a studio run: from a target (emoji or picture), a model file, or a resume state."""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.model_file import LoadedModel, bundled_models, load_model, read_safetensors
from ..targets import Target, load_target
from ..targets.images import is_emoji_spec
from ..training import TrainConfig, Trainer, load_state
from ..training.resume import RESUME_FORMAT
from .uploads import emoji_target

# With no argument the studio continues the bundled lizard (its weights and its target): the lizard
# forms in the live view within seconds, and a new target shows the rule learning at once. A
# lizard from scratch is `nca studio 🦎`: on two CPU cores it takes minutes to look like one.
DEFAULT_MODEL = "lizard"
MODEL_SUFFIXES = (".safetensors", ".json")


def check_flat(config: NCAConfig, target: Target | None) -> None:
    """The studio shows pictures: 2D models with alive masking that grow a target."""
    if config.dims != 2 or not config.alive_masking or config.goals:
        raise NCAError("the studio trains 2D picture models (not 3D, rule, video or conditional models)")
    if target is not None and target.dims != 2:
        raise NCAError("the studio trains on 2D pictures, not on a 3D target")


def trainer_from_model(loaded: LoadedModel, recipe: dict, target: Target | None,
                       device: torch.device) -> Trainer:
    """A Trainer that continues a model file: its weights, its recipe (changed by `recipe`), its
    own target (or `target` where it stores none). The optimiser starts afresh; where the file's run
    had dropped its rate, the continued run starts at the dropped rate."""
    target = loaded.target or target
    if target is None:
        raise NCAError(f"{loaded.source} stores no target to train on")
    check_flat(loaded.model.config, target)
    config = TrainConfig.from_dict({**loaded.training, **recipe})
    trainer = Trainer(loaded.model.config, config, target, device)
    weights = loaded.model.state_dict()
    trainer.model.load_state_dict(weights)
    trainer.averaged.load_state_dict(weights)
    done = loaded.training.get("iterations_done")
    if isinstance(done, int) and done >= config.lr_decay_at:
        trainer.decay_from = 0
    return trainer


def open_run(spec: str | None, size: int, pad: int, model: NCAConfig, recipe: TrainConfig,
             changed: dict, device: torch.device) -> Trainer:
    """The run to start: `spec` is an emoji, a picture file, a model file or bundled model name, or a
    resume state (continued exactly); None is the bundled lizard, continued. `changed` holds the
    recipe settings given explicitly, which override a model file's own."""
    spec = spec or DEFAULT_MODEL
    if is_emoji_spec(spec):
        target = emoji_target(spec, size, pad)
    elif Path(spec).is_file() and Path(spec).suffix.lower() not in MODEL_SUFFIXES:
        target = load_target(spec, size, pad)
    elif Path(spec).is_file() or spec in bundled_models():
        return _continue(spec, changed, device)
    else:
        raise NCAError(f"not found: {spec} (give an emoji, a picture, a model file, a resume state or a bundled "
                       f"model name: {', '.join(sorted(bundled_models()))})")
    check_flat(model, target)
    return Trainer(model, recipe, target, device)


def _continue(spec: str, changed: dict, device: torch.device) -> Trainer:
    """A model file, a bundled model or a resume state, continued."""
    if Path(spec).is_file() and Path(spec).suffix == ".safetensors":
        _, meta = read_safetensors(spec)
        if meta.get("format") == RESUME_FORMAT:
            trainer = load_state(spec, None, device)
            check_flat(trainer.model.config, trainer.target)
            if changed:
                trainer.reconfigure(**changed)
            return trainer
    loaded = load_model(spec, device)
    loaded.expect("image", "training in the studio")
    return trainer_from_model(loaded, changed, None, device)
