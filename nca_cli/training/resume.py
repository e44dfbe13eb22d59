"""The resume state: everything needed to continue a training run, in one safetensors file.

It holds the weights, their moving average, the optimiser's moments, the sample pool, the random
generator's state, the target and the loss history, with the configs and progress as JSON
metadata. It is written atomically every few iterations and when a run is interrupted, beside the
model file (lizard.safetensors -> lizard.ckpt.safetensors), and removed when the run completes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .. import __version__
from ..engine import NCAConfig
from ..errors import InvalidOption, NCAError
from ..formats.model_file import read_safetensors, stored_goals_of, stored_target_of, write_safetensors
from ..targets import GoalSet, Target
from .config import TrainConfig
from ..runtime.distributed import SINGLE, World, gather, shard
from .trainer import RANK_SEED, Trainer

RESUME_FORMAT = "nca-train-state"


STATE_SUFFIX = ".ckpt.safetensors"


def resume_path(output: str | Path) -> Path:
    """Where training keeps its resumable state: beside the model, e.g. lizard.ckpt.safetensors."""
    output = Path(output)
    return output.with_name(output.stem + STATE_SUFFIX)


def save_state(trainer: Trainer, path: str | Path) -> None:
    """Write everything needed to continue this run, atomically."""
    tensors = {**_prefixed("model.", trainer.model), **_prefixed("averaged.", trainer.averaged)}
    for i, p in enumerate(trainer.model.parameters()):
        for key, value in trainer.optimizer.state.get(p, {}).items():
            tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    world = trainer.world  # every rank takes part in gathering the pool; rank 0 writes
    tensors["pool"] = torch.cat(gather(trainer.pool, world)).contiguous()
    tensors["pool_goals"] = torch.cat(gather(trainer.pool_goals, world)).contiguous()
    tensors["pool_placed"] = torch.cat(gather(trainer.pool_placed, world)).contiguous()
    rngs = gather(trainer.generator.get_state().to(trainer.device), world)
    tensors["rng"] = rngs[0]
    if world.active:
        tensors["rng.ranks"] = torch.stack(rngs)
    if not world.leader:
        return
    tensors["target"] = trainer.target.rgba.cpu().contiguous()
    tensors["losses"] = torch.tensor(trainer.losses, dtype=torch.float64)
    meta = {"format": RESUME_FORMAT, "nca_version": __version__,
            "model": json.dumps(trainer.model.config.to_dict()),
            "training": json.dumps(trainer.config.to_dict()),
            "target": json.dumps(trainer.target.metadata()),
            "progress": json.dumps({"iteration": trainer.iteration, "elapsed": trainer.elapsed,
                                    "rollbacks": trainer.rollbacks, "decay_from": trainer.decay_from,
                                    "world_size": world.size})}
    write_safetensors(path, tensors, meta)


def check_extends(iterations: int | None, progress) -> None:
    """A resumed run's --iterations (None: as saved) must not be fewer than the iterations its saved
    progress says it has done (a damaged progress is left to the checks that report it)."""
    done = progress.get("iteration") if isinstance(progress, dict) else None
    if iterations is not None and isinstance(done, int) and iterations < done:
        raise InvalidOption("iterations", f"{iterations} is fewer than the {done} iterations the run has done: give "
                                          "more to extend it, or leave it out to finish it as saved")


def load_state(path: str | Path, target: Target | GoalSet | None = None, device: str | torch.device = "cpu",
               iterations: int | None = None, world: World = SINGLE) -> Trainer:
    """Rebuild a Trainer from a resume state; `target` must be the one it was trained on (None: the
    target stored in the state, e.g. a picture drawn in the studio). The whole state is checked
    (every tensor's presence, shape and type, every progress field) before any of it is used: a
    damaged state is an NCAError, never a half-restored run. With `world`, each rank takes its
    shard of the pool; a run resumed on another number of ranks continues with fresh random
    streams (`trainer.reseeded` is then True)."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != RESUME_FORMAT:
        raise NCAError(f"{path} is not an nca training checkpoint")
    model_config, train_config, stored_target, progress = _read_meta(path, meta)
    if target is None and model_config.goals:
        target = stored_goals_of(path, tensors.get("target"), stored_target, model_config)
    elif target is None:
        target = stored_target_of(path, tensors.get("target"), stored_target, model_config.dims)
        if target is None:
            raise NCAError(f"{path} is damaged: the tensor target is missing")
    if stored_target.get("sha256") != target.sha256:
        raise NCAError(f"{path} was trained on another target ({stored_target.get('name')}, "
                       f"size {stored_target.get('size')}, pad {stored_target.get('pad')})")
    check_extends(iterations, progress)
    if iterations is not None:
        train_config = TrainConfig.from_dict({**train_config.to_dict(), "iterations": iterations})
    trainer = Trainer(model_config, train_config, target, device, world)
    _check_tensors(path, tensors, trainer, progress)
    trainer.model.load_state_dict(_unprefixed("model.", tensors))
    # States from before weight averaging carry none: the average starts from the weights.
    trainer.averaged.load_state_dict(_unprefixed("averaged.", tensors) or trainer.model.state_dict())
    params = list(trainer.model.parameters())
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, i, key = name.split(".", 2)
            trainer.optimizer.state[params[int(i)]][key] = value.to(trainer.device)
    mine = list(shard(len(tensors["pool"]), world))
    trainer.pool = tensors["pool"][mine].to(trainer.device)
    # States from before conditional models carry no goals: every sample has goal 0, one seed.
    if "pool_goals" in tensors:
        trainer.pool_goals = tensors["pool_goals"][mine].to(trainer.device)
        trainer.pool_placed = tensors["pool_placed"][mine].to(trainer.device)
    _restore_random(trainer, tensors, progress)
    trainer.losses = tensors["losses"].tolist()
    trainer.iteration, trainer.elapsed = progress["iteration"], float(progress["elapsed"])
    trainer.rollbacks = progress.get("rollbacks", 0)
    trainer.decay_from = progress.get("decay_from", train_config.lr_decay_at)
    return trainer


def _restore_random(trainer: Trainer, tensors: dict, progress: dict) -> None:
    """Each rank's generator where the run saved it; fresh streams on another number of ranks."""
    world, saved = trainer.world, progress.get("world_size", 1)
    trainer.reseeded = saved != world.size
    if trainer.reseeded:
        trainer.generator.manual_seed(trainer.config.seed + RANK_SEED * world.rank + trainer.iteration + 1)
    elif world.active:
        trainer.generator.set_state(tensors["rng.ranks"][world.rank].cpu())
    else:
        trainer.generator.set_state(tensors["rng"])


PROGRESS_FIELDS = {"iteration": int, "elapsed": (int, float), "rollbacks": int, "decay_from": int,
                   "world_size": int}


def _read_meta(path, meta: dict) -> tuple[NCAConfig, TrainConfig, dict, dict]:
    try:
        model_config = NCAConfig.from_dict(json.loads(meta["model"]))
        train_config = TrainConfig.from_dict(json.loads(meta["training"]))
        stored_target = json.loads(meta["target"])
        progress = json.loads(meta["progress"])
    except (KeyError, ValueError, TypeError) as exc:
        raise NCAError(f"{path} has invalid metadata: {exc}") from None
    if not isinstance(stored_target, dict) or not isinstance(progress, dict):
        raise NCAError(f"{path} has invalid metadata: target and progress must be JSON objects")
    for name, kind in PROGRESS_FIELDS.items():
        value = progress.get(name)
        required = name in ("iteration", "elapsed")
        if (value is None and required) or (value is not None and (not isinstance(value, kind) or
                                                                   isinstance(value, bool) or value < 0)):
            raise NCAError(f"{path} has invalid progress: {name} is {value!r}")
    if not math.isfinite(progress["elapsed"]):
        raise NCAError(f"{path} has invalid progress: elapsed is {progress['elapsed']!r}")
    return model_config, train_config, stored_target, progress


def _check_tensors(path, tensors: dict[str, torch.Tensor], trainer: Trainer, progress: dict) -> None:
    """Every tensor a resume state needs, with the shape and type this run expects."""
    whole = len(trainer.pool) * trainer.world.size  # the pool of all ranks together
    expected = {**{f"model.{k}": v for k, v in trainer.model.state_dict().items()},
                "pool": trainer.pool.new_empty(whole, *trainer.pool.shape[1:]), "rng": trainer.generator.get_state()}
    if "pool_goals" in tensors or "pool_placed" in tensors:
        expected.update({"pool_goals": trainer.pool_goals.new_empty(whole),
                         "pool_placed": trainer.pool_placed.new_empty(whole)})
    saved_world = progress.get("world_size", 1)
    if saved_world > 1 and saved_world == trainer.world.size:
        rng = trainer.generator.get_state()
        expected["rng.ranks"] = rng.new_empty(saved_world, *rng.shape)
    if any(k.startswith("averaged.") for k in tensors):
        expected.update({f"averaged.{k}": v for k, v in trainer.averaged.state_dict().items()})
    for name, like in expected.items():
        t = tensors.get(name)
        if t is None:
            raise NCAError(f"{path} is damaged: the tensor {name} is missing")
        if t.shape != like.shape or t.dtype != like.dtype:
            raise NCAError(f"{path} is damaged: {name} is {t.dtype} {tuple(t.shape)}, expected {like.dtype} "
                           f"{tuple(like.shape)}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise NCAError(f"{path} is damaged: {name} holds NaN or infinite values")
    goals = tensors.get("pool_goals")
    if goals is not None and len(goals) and not 0 <= int(goals.min()) <= int(goals.max()) < len(trainer.targets):
        raise NCAError(f"{path} is damaged: pool_goals holds goals outside 0 to {len(trainer.targets) - 1}")
    losses = tensors.get("losses")
    if losses is None or losses.ndim != 1 or len(losses) != progress["iteration"]:
        raise NCAError(f"{path} is damaged: its loss history does not match its {progress['iteration']} iterations")
    params = list(trainer.model.parameters())
    moments = {}
    for name in tensors:
        if name.startswith("optim."):
            parts = name.split(".", 2)
            moments.setdefault(parts[1], set()).add(parts[-1])
    if moments and (set(moments) != {str(i) for i in range(len(params))} or
                    any(keys != {"step", "exp_avg", "exp_avg_sq"} for keys in moments.values())):
        raise NCAError(f"{path} is damaged: the optimiser's state is incomplete")
    for name, t in tensors.items():
        if name.startswith("optim."):
            parts = name.split(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params) or \
                    (parts[2] != "step" and t.shape != params[int(parts[1])].shape):
                raise NCAError(f"{path} is damaged: optimiser tensor {name} does not fit the model")


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state as CPU tensors named prefix + key, for one file holding several modules."""
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors named prefix + key, keyed by key: the inverse of _prefixed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
