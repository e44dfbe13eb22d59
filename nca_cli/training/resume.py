"""The resume state: everything needed to continue a training run, in one safetensors file.

It holds the weights, their moving average, the optimiser's moments, the sample pool, the random
generator's state, the target and the loss history, with the configs and progress as JSON
metadata. It is written atomically every few iterations and when a run is interrupted, beside the
model file (lizard.safetensors -> lizard.ckpt.safetensors), and removed when the run completes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .. import __version__
from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.atomic import atomic_output
from ..formats.model_file import read_safetensors
from ..targets import Target
from .config import TrainConfig
from .trainer import Trainer

RESUME_FORMAT = "nca-train-state"


def resume_path(output: str | Path) -> Path:
    """Where training keeps its resumable state: beside the model, e.g. lizard.ckpt.safetensors."""
    output = Path(output)
    return output.with_name(output.stem + ".ckpt.safetensors")


def save_state(trainer: Trainer, path: str | Path) -> None:
    """Write everything needed to continue this run, atomically."""
    tensors = {**_prefixed("model.", trainer.model), **_prefixed("averaged.", trainer.averaged)}
    for i, p in enumerate(trainer.model.parameters()):
        for key, value in trainer.optimizer.state.get(p, {}).items():
            tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["pool"] = trainer.pool.cpu().contiguous()
    tensors["rng"] = trainer.generator.get_state().cpu()
    tensors["target"] = trainer.target.rgba.cpu().contiguous()
    tensors["losses"] = torch.tensor(trainer.losses, dtype=torch.float64)
    meta = {"format": RESUME_FORMAT, "nca_version": __version__,
            "model": json.dumps(trainer.model.config.to_dict()),
            "training": json.dumps(trainer.config.to_dict()),
            "target": json.dumps(trainer.target.metadata()),
            "progress": json.dumps({"iteration": trainer.iteration, "elapsed": trainer.elapsed,
                                    "rollbacks": trainer.rollbacks, "decay_from": trainer.decay_from})}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: str | Path, target: Target, device: str | torch.device = "cpu",
               iterations: int | None = None) -> Trainer:
    """Rebuild a Trainer from a resume state; `target` must be the one it was trained on."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != RESUME_FORMAT:
        raise NCAError(f"{path} is not an nca training checkpoint")
    try:
        model_config = NCAConfig.from_dict(json.loads(meta["model"]))
        train_config = TrainConfig.from_dict(json.loads(meta["training"]))
        stored_target = json.loads(meta["target"])
        progress = json.loads(meta["progress"])
    except (KeyError, ValueError, TypeError) as exc:
        raise NCAError(f"{path} has invalid metadata: {exc}") from exc
    if stored_target.get("sha256") != target.sha256:
        raise NCAError(f"{path} was trained on another target ({stored_target.get('name')}, "
                       f"size {stored_target.get('size')}, pad {stored_target.get('pad')})")
    if iterations is not None:
        train_config = TrainConfig.from_dict({**train_config.to_dict(), "iterations": iterations})
    trainer = Trainer(model_config, train_config, target, device)
    try:
        trainer.model.load_state_dict(_unprefixed("model.", tensors))
        # States from before weight averaging carry none: the average starts from the weights.
        trainer.averaged.load_state_dict(_unprefixed("averaged.", tensors) or trainer.model.state_dict())
        params = list(trainer.model.parameters())
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, i, key = name.split(".", 2)
                trainer.optimizer.state[params[int(i)]][key] = value.to(trainer.device)
        trainer.pool = tensors["pool"].to(trainer.device)
        trainer.generator.set_state(tensors["rng"])
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:
        raise NCAError(f"{path} is damaged or from an incompatible version: {exc}") from exc
    trainer.losses = tensors["losses"].tolist()
    trainer.iteration = int(progress["iteration"])
    trainer.elapsed = float(progress["elapsed"])
    trainer.rollbacks = int(progress.get("rollbacks", 0))
    trainer.decay_from = int(progress.get("decay_from", train_config.lr_decay_at))
    return trainer


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state as CPU tensors named prefix + key, for one file holding several modules."""
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors named prefix + key, keyed by key: the inverse of _prefixed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
