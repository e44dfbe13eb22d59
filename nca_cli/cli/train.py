"""`nca train`: options to configs, a progress bar around the library's Trainer, and the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import TextColumn

from ..engine import NCAConfig
from ..errors import NCAError
from ..runtime import pick_device
from ..targets import load_target
from ..formats.atomic import check_writable
from ..training import (MODES, TrainConfig, Trainer, finish_training, load_state, resume_path, save_interrupted,
                        save_state)
from ..training.finish import plot_paths
from .bodies import PICTURE_PAD, PICTURE_SIZE, is_voxel_spec, load_body, report_body, voxel_defaults
from .console import err, format_duration, out, progress_bar, stop_on_ctrl_c, user_errors
from .options import parse_duration


@user_errors
def train(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Image file (PNG/JPEG/WebP/...) or a single emoji, e.g. 🦎; or a voxel body: .vox, .obj, .stl, .ply, .glb or .npy."),
    output: Path = typer.Option(None, "-o", "--output", help="Model file to write (default: <target>.safetensors)."),
    mode: str = typer.Option("regen", "--mode", help=f"Experiment: {', '.join(MODES)}."),
    regen: bool = typer.Option(False, "--regen", help="Regenerating mode (pool + damage); same as --mode regen."),
    iterations: int = typer.Option(TrainConfig.iterations, "--iterations", "-n", help="Training iterations."),
    time_budget: str = typer.Option("10m", "--time-budget", help="Stop after this much training time (e.g. 90s, 10m, 1h, none); a run it cuts short drops its rate early, at the same fraction of the budget."),
    size: Optional[int] = typer.Option(None, "--size", help="Target size in cells (longer side; default 40; a voxel body: a .vox or .npy as it is up to 32, a mesh 24)."),
    pad: Optional[int] = typer.Option(None, "--pad", help="Empty cells around the target: the grid is size + 2*pad (default 16; 3 for a voxel body)."),
    batch: int = typer.Option(TrainConfig.batch, "--batch", help="Samples per iteration."),
    pool_size: int = typer.Option(TrainConfig.pool_size, "--pool-size", help="Sample pool size (persist, regen)."),
    steps_min: int = typer.Option(TrainConfig.steps_min, "--steps-min", help="Shortest rollout per iteration."),
    steps_max: int = typer.Option(TrainConfig.steps_max, "--steps-max", help="Longest rollout per iteration."),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="Adam learning rate."),
    lr_decay_at: int = typer.Option(TrainConfig.lr_decay_at, "--lr-decay-at", help="Iteration at which the rate drops x0.1."),
    damage_count: Optional[int] = typer.Option(None, "--damage-count", help="regen: samples wounded per batch (default: 3, at most batch - 1)."),
    average: float = typer.Option(TrainConfig.average, "--average", help="Save a moving average of the weights with this decay (0: the last weights)."),
    channels: int = typer.Option(NCAConfig.channels, "--channels", help="State channels (RGBA + hidden)."),
    hidden: int = typer.Option(NCAConfig.hidden, "--hidden", help="Hidden units of the per-cell network."),
    fire_rate: float = typer.Option(NCAConfig.fire_rate, "--fire-rate", help="Probability that a cell updates per step."),
    padding: str = typer.Option(NCAConfig.padding, "--padding", help="Grid edges: zero or wrap."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and --iterations give the same model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", help="Save resumable state every N iterations (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved beside the output file."),
    keep_white: bool = typer.Option(False, "--keep-white", help="Keep white pixels of images without alpha (default: transparent)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write <output>.loss.png and <output>.preview.png."),
):
    """Train a rule that grows TARGET from one cell.

    Example: nca train 🦎 --regen -o lizard.safetensors
    """
    mode = "regen" if regen else mode
    loaded = load_body(target, size, pad) if is_voxel_spec(target) else load_target(
        target, PICTURE_SIZE if size is None else size, PICTURE_PAD if pad is None else pad, keep_white=keep_white)
    dims = loaded.dims
    if dims == 3:  # a voxel body: the 3D recipe wherever an option was left at its default
        (iterations, lr_decay_at, time_budget, batch, pool_size, steps_min, steps_max, channels,
         hidden) = voxel_defaults(ctx, dict(iterations=iterations, lr_decay_at=lr_decay_at, time_budget=time_budget,
                                            batch=batch, pool_size=pool_size, steps_min=steps_min,
                                            steps_max=steps_max, channels=channels, hidden=hidden)).values()
    output = output or Path(f"{Path(loaded.name).stem if not Path(target).exists() else Path(target).stem}.safetensors")
    if output.suffix != ".safetensors":
        raise NCAError(f"output must be a .safetensors file, got {output}")
    if checkpoint_every < 0:
        raise NCAError(f"--checkpoint-every must not be negative, got {checkpoint_every}")
    budget = parse_duration(time_budget)
    dev = pick_device(device)
    state_path = resume_path(output)
    for path in [output, state_path] + (plot_paths(output) if plots else []):
        check_writable(path)  # before the training time is spent, not after
    model_config = NCAConfig(channels=channels, hidden=hidden, fire_rate=fire_rate, padding=padding, dims=dims)
    train_config = TrainConfig(mode=mode, iterations=iterations, batch=batch, pool_size=pool_size,
                               steps_min=steps_min, steps_max=steps_max, lr=lr, lr_decay_at=lr_decay_at,
                               damage_count=min(TrainConfig.damage_count, batch - 1) if damage_count is None
                               else damage_count, average=average, seed=seed)
    if resume:
        if not state_path.exists():
            raise NCAError(f"nothing to resume: {state_path} does not exist")
        trainer = load_state(state_path, loaded, dev, iterations=iterations)
        refuse_changed_options(ctx, trainer, model_config, train_config)
        out.print(f"Resuming {state_path} at iteration {trainer.iteration}")
    else:
        trainer = Trainer(model_config, train_config, loaded, dev)
    with stop_on_ctrl_c() as stop:
        stopped = run_with_progress(trainer, state_path, budget, checkpoint_every, stop)
    if stopped == "interrupted":
        save_interrupted(trainer, output, state_path)
        err.print(f"Interrupted at iteration {trainer.iteration}: saved {output} and resumable state "
                  f"{state_path}; continue with the same command and --resume")
        raise typer.Exit(stop.exit_code)
    finished = finish_training(trainer, output, state_path, stopped, plots=plots)
    report(trainer, stopped, finished.quality)
    out.print(f"Wrote {output}")


# Options that shape a run: --resume continues the run as it was saved, so these may not change.
RECIPE_OPTIONS = {"mode": "mode", "regen": "mode", "batch": "batch", "pool_size": "pool_size",
                  "steps_min": "steps_min", "steps_max": "steps_max", "lr": "lr", "lr_decay_at": "lr_decay_at",
                  "damage_count": "damage_count", "average": "average", "seed": "seed"}
MODEL_OPTIONS = ("channels", "hidden", "fire_rate", "padding")


def refuse_changed_options(ctx: typer.Context, trainer: Trainer, model: NCAConfig, recipe: TrainConfig) -> None:
    """An NCAError if an option given on this command line differs from the resumed run's."""
    saved = {**{k: getattr(trainer.config, v) for k, v in RECIPE_OPTIONS.items()},
             **{k: getattr(trainer.model.config, k) for k in MODEL_OPTIONS}}
    asked = {**{k: getattr(recipe, v) for k, v in RECIPE_OPTIONS.items()},
             **{k: getattr(model, k) for k in MODEL_OPTIONS}}
    for name in saved:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE" and asked[name] != saved[name]:
            flag = "--" + name.replace("_", "-")
            shown = f"--mode {saved[name]}" if name in ("mode", "regen") else f"{flag} {saved[name]}"
            raise NCAError(f"--resume continues the saved run, which has {shown}; leave {flag} out to "
                           "continue it, or start a new run without --resume")


def run_with_progress(trainer: Trainer, state_path: Path, budget: float | None, checkpoint_every: int,
                      should_stop) -> str:
    """Trainer.run with a progress bar and resume states every `checkpoint_every` iterations, until
    should_stop() (Ctrl-C) asks it to stop after the current iteration. Returns why it stopped."""
    bar = progress_bar(TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} it/s"))
    with bar:
        task = bar.add_task(f"train {trainer.config.mode}", total=trainer.config.iterations,
                            completed=trainer.iteration, loss="-", rate="-")
        total = [trainer.config.iterations]

        def on_iteration(t: Trainer, loss: float) -> None:
            rate = t.iteration / t.elapsed if t.elapsed else 0.0
            # Where the time budget will end the run; changed only in steps of 2% or more, because
            # rich starts its time estimate afresh whenever the total changes.
            expected = t.expected_iterations(budget)
            if abs(expected - total[0]) > 0.02 * total[0] or expected == t.iteration:
                total[0] = expected
                bar.update(task, total=expected)
            bar.update(task, completed=t.iteration, loss=f"{t.final_loss():.5f}", rate=f"{rate:.2f}")

        return trainer.run(time_budget=budget, on_iteration=on_iteration, should_stop=should_stop,
                           checkpoint=lambda t: save_state(t, state_path), checkpoint_every=checkpoint_every)


def report(trainer: Trainer, stopped: str, quality) -> None:
    """The summary lines of a finished run."""
    cfg = trainer.config
    out.print(f"Trained {trainer.iteration} iterations in {format_duration(trainer.elapsed)} ({stopped}); "
              f"final batch loss {trainer.final_loss():.5f}")
    if trainer.decay_from < min(cfg.lr_decay_at, trainer.iteration):
        out.print(f"The time budget came first: the learning rate dropped at iteration {trainer.decay_from} "
                  f"instead of {cfg.lr_decay_at}")
    out.print(f"Grown from the seed ({quality.steps} steps, mean of {quality.runs} runs): loss "
              f"{quality.grow_loss:.5f}; regrown {quality.steps} steps after a cut of radius {quality.cut_radius:g}: "
              f"loss {quality.regrow_loss:.5f}")
    if quality.voxels:
        report_body(quality)
