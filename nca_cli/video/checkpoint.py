"""The resume state of `nca video train`: everything needed to continue a run, in one safetensors
file beside the model (scotopic.safetensors -> scotopic.ckpt.safetensors, as `nca train` names it).

It holds the weights, the optimiser's moments, the streams (states, crops, frames, sensor
patterns, scales, views and tones), the random generator's state and the loss history, with the
configs, progress and the clip's checksum as JSON metadata; a run is resumed only on the clip it
was trained on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .. import __version__
from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.atomic import atomic_output
from ..formats.model_file import read_safetensors
from ..training.resume import check_extends
from .clips import Clip
from .train import VideoTrainConfig, VideoTrainer

STATE_FORMAT = "nca-video-train-state"
TONES = ("gain", "shift")
STREAMS = ("state", "origin", "time", "fixed", "view", "order", "zoom") + TONES
ADDED_LATER = ("zoom",) + TONES  # states saved before these keep the trainer's start: zoom 1, gain 1, shift 0


def clip_checksum(clip: Clip) -> str:
    """sha256 of the clip's frames and their shape."""
    digest = hashlib.sha256(str(clip.frames.shape).encode())
    digest.update(clip.frames.tobytes())
    return digest.hexdigest()


def save_video_state(trainer: VideoTrainer, path: str | Path) -> None:
    """Write everything needed to continue this run, atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
    for i, p in enumerate(trainer.model.parameters()):
        for key, value in trainer.optimizer.state.get(p, {}).items():
            tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors.update({f"streams.{name}": getattr(trainer, name).detach().cpu().contiguous() for name in STREAMS})
    tensors["rng"] = trainer.generator.get_state()
    tensors["fire_rng"] = trainer.fire_generator.get_state().cpu()
    tensors["losses"] = torch.tensor(trainer.losses, dtype=torch.float64)
    meta = {"format": STATE_FORMAT, "nca_version": __version__,
            "model": json.dumps(trainer.model.config.to_dict()),
            "training": json.dumps(trainer.config.to_dict()),
            "clip": json.dumps({"name": trainer.clip.name, "sha256": clip_checksum(trainer.clip)}),
            "progress": json.dumps({"iteration": trainer.iteration, "elapsed": trainer.elapsed,
                                    "rollbacks": trainer.rollbacks, "decay_from": trainer.decay_from})}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_video_state(path: str | Path, clip: Clip, device: str | torch.device = "cpu",
                     iterations: int | None = None) -> VideoTrainer:
    """Rebuild a VideoTrainer from a resume state; `clip` must be the one it was trained on."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != STATE_FORMAT:
        raise NCAError(f"{path} is not an nca video training checkpoint")
    try:
        model_config = NCAConfig.from_dict(json.loads(meta["model"]))
        config = VideoTrainConfig.from_dict(json.loads(meta["training"]))
        stored_clip, progress = json.loads(meta["clip"]), json.loads(meta["progress"])
        if not (isinstance(stored_clip, dict) and isinstance(progress, dict)):
            raise TypeError("clip and progress must be JSON objects")
    except (KeyError, ValueError, TypeError) as exc:
        raise NCAError(f"{path} has invalid metadata: {exc}") from exc
    if stored_clip.get("sha256") != clip_checksum(clip):
        raise NCAError(f"{path} was trained on another clip ({stored_clip.get('name')}), or on it at another --size "
                       "or with --grey changed")
    check_extends(iterations, progress)
    if iterations is not None:
        config = VideoTrainConfig.from_dict({**config.to_dict(), "iterations": iterations})
    trainer = VideoTrainer(model_config, config, clip, device)
    try:
        trainer.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        params = list(trainer.model.parameters())
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, i, key = name.split(".", 2)
                trainer.optimizer.state[params[int(i)]][key] = value.to(trainer.device)
        for name in STREAMS:
            if f"streams.{name}" in tensors or name not in ADDED_LATER:
                setattr(trainer, name, tensors[f"streams.{name}"].to(getattr(trainer, name).device))
        trainer.generator.set_state(tensors["rng"])
        trainer.fire_generator.set_state(tensors["fire_rng"])
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:
        raise NCAError(f"{path} is damaged or from an incompatible version: {exc}") from exc
    try:
        trainer.losses = tensors["losses"].tolist()
        trainer.iteration, trainer.elapsed = int(progress["iteration"]), float(progress["elapsed"])
        trainer.rollbacks, trainer.decay_from = int(progress["rollbacks"]), int(progress["decay_from"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NCAError(f"{path} is damaged: its progress or loss history is missing or malformed ({exc})") from exc
    return trainer
