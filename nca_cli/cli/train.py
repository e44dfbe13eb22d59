"""`nca train`: options to configs, a progress bar around the library's Trainer, and the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import TextColumn
from rich.table import Table

from ..engine import NCAConfig
from ..errors import NCAError
from ..growth.quality import GROW_STEPS
from ..runtime import pick_device
from ..engine.config import CONDITIONINGS
from ..targets import GoalSet, Target, load_goals, load_target
from ..targets.goals import expand_specs
from ..formats.atomic import check_writable
from ..training import (GOALS_RECIPE, MODES, TrainConfig, Trainer, finish_training, load_state, resume_path, save_interrupted,
                        save_state)
from ..runtime.distributed import World, leave, world_from_environment
from ..training.finish import QUALITY_RUNS, SWITCH_RUNS, FinishedRun, plot_paths
from ..voxels.recipe import VOXEL_MODEL, VOXEL_RECIPE
from .bodies import PICTURE_PAD, PICTURE_SIZE, is_voxel_spec, load_body, report_body, voxel_defaults
from .console import err, exit_interrupted, format_duration, out, progress_bar, stop_on_ctrl_c, user_errors
from .goals import parse_seed_range
from .options import given, parse_duration
from .train_continue import MODEL_OPTIONS, load_init, start_from, warn_if_short


@user_errors
def train(
    ctx: typer.Context,
    targets: list[str] = typer.Argument(..., help="Image file (PNG/JPEG/WebP/...) or a single emoji, e.g. 🦎; several, or a folder of pictures, train one conditional rule with a goal per picture; or one voxel body: .vox, .obj, .stl, .ply, .glb or .npy.", metavar="TARGET..."),
    output: Path = typer.Option(None, "-o", "--output", help="Model file to write (default: <target>.safetensors)."),
    mode: str = typer.Option("regen", "--mode", help=f"Experiment: {', '.join(MODES)}."),
    regen: bool = typer.Option(False, "--regen", help="Regenerating mode (pool + damage); same as --mode regen."),
    iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help=f"Training iterations (default: {TrainConfig.iterations}, {GOALS_RECIPE['iterations']} for several targets, {VOXEL_RECIPE['iterations']} for a voxel body)."),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Stop after this much training time (e.g. 90s, 10m, 1h, none; default: 10m, 20m for several targets or a voxel body); a run it cuts short drops its rate early, at the same fraction of the budget, but not before 30% of --lr-decay-at."),
    size: Optional[int] = typer.Option(None, "--size", help="Target size in cells (longer side; default 40; a voxel body: a .vox or .npy as it is up to 32, a mesh 24)."),
    pad: Optional[int] = typer.Option(None, "--pad", help="Empty cells around the target: the grid is size + 2*pad (default 16; 1 for a voxel body)."),
    batch: int = typer.Option(TrainConfig.batch, "--batch", help="Samples per iteration."),
    pool_size: int = typer.Option(TrainConfig.pool_size, "--pool-size", help=f"Sample pool size (persist, regen; a voxel body: {VOXEL_RECIPE['pool_size']})."),
    steps_min: int = typer.Option(TrainConfig.steps_min, "--steps-min", help=f"Shortest rollout per iteration (a voxel body: {VOXEL_RECIPE['steps_min']})."),
    steps_max: int = typer.Option(TrainConfig.steps_max, "--steps-max", help=f"Longest rollout per iteration (a voxel body: {VOXEL_RECIPE['steps_max']})."),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="Adam learning rate."),
    lr_decay_at: Optional[int] = typer.Option(None, "--lr-decay-at", help=f"Iteration at which the rate drops x0.1 (default: {TrainConfig.lr_decay_at}, {GOALS_RECIPE['lr_decay_at']} for several targets, {VOXEL_RECIPE['lr_decay_at']} for a voxel body)."),
    overgrowth: float = typer.Option(TrainConfig.overgrowth, "--overgrowth", help=f"Weight of a penalty on alpha where the target is empty, against faint cells around the body, on the samples that hold their body (default 0; {VOXEL_RECIPE['overgrowth']:g} for a voxel body)."),
    damage_count: Optional[int] = typer.Option(None, "--damage-count", help="regen: samples wounded per batch (default: 3, 2 for a voxel body; at most batch - 1)."),
    average: float = typer.Option(TrainConfig.average, "--average", help="Save a moving average of the weights with this decay (0: the last weights)."),
    channels: int = typer.Option(NCAConfig.channels, "--channels", help=f"State channels (RGBA + hidden; a voxel body: {VOXEL_MODEL['channels']})."),
    hidden: int = typer.Option(NCAConfig.hidden, "--hidden", help=f"Hidden units of the per-cell network (a voxel body: {VOXEL_MODEL['hidden']})."),
    fire_rate: float = typer.Option(NCAConfig.fire_rate, "--fire-rate", help="Probability that a cell updates per step."),
    padding: str = typer.Option(NCAConfig.padding, "--padding", help="Grid edges: zero or wrap."),
    seed_cells: str = typer.Option("1", "--seed-cells", help="Samples restart from N seed cells, or A-B drawn each time; more than one go at random solid cells of the target (e.g. 1-3)."),
    switch_rate: float = typer.Option(TrainConfig.switch_rate, "--switch-rate", help="Several targets: the chance that a pool sample is handed another goal, so the rule learns to turn one body into another."),
    conditioning: str = typer.Option(NCAConfig.conditioning, "--conditioning", help=f"Several targets: how the goal reaches the cells: {', '.join(CONDITIONINGS)}."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and --iterations give the same model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", help="Save resumable state every N iterations (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved beside the output file."),
    init: Optional[str] = typer.Option(None, "--init", metavar="MODEL", help="Start from this model's weights (a file, or a bundled model's name) with a fresh pool and optimiser: add iterations to a finished model. Its channels, hidden units, fire rate, padding and conditioning are used."),
    keep_white: bool = typer.Option(False, "--keep-white", help="Keep white pixels of images without alpha (default: transparent)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write <output>.loss.png and <output>.preview.png."),
):
    """Train a rule that grows TARGET from one cell; several targets train one rule that grows any of
    them on demand (a conditional model, one goal per target).

    Example: nca train 🦎 --regen -o lizard.safetensors
    """
    if regen and given(ctx, "mode") and mode != "regen":
        raise NCAError(f"--regen is --mode regen; it cannot be combined with --mode {mode}")
    if resume and init:
        raise NCAError("--resume continues the saved run with its own weights; --init starts a new run from a "
                       "model's: give one of them")
    mode = "regen" if regen else mode
    loaded = load_targets(targets, size, pad, keep_white)
    goals = len(loaded) if isinstance(loaded, GoalSet) else 0
    dims = 3 if isinstance(loaded, Target) and loaded.dims == 3 else 2
    one_target = [name for name in ("switch_rate", "conditioning") if not goals and given(ctx, name)]
    if one_target:
        raise NCAError(f"--{one_target[0].replace('_', '-')} is for several targets (one rule, many goals); "
                       "this run trains one")
    if dims == 3 and keep_white:
        raise NCAError("--keep-white is for pictures without alpha; a voxel body has its own empty cells")
    if dims == 3:  # a voxel body: the 3D recipe wherever an option was left at its default
        (iterations, lr_decay_at, time_budget, batch, pool_size, steps_min, steps_max, channels,
         hidden, overgrowth, damage_count) = voxel_defaults(
            ctx, dict(iterations=iterations, lr_decay_at=lr_decay_at, time_budget=time_budget, batch=batch,
                      pool_size=pool_size, steps_min=steps_min, steps_max=steps_max, channels=channels,
                      hidden=hidden, overgrowth=overgrowth, damage_count=damage_count)).values()
    recipe = GOALS_RECIPE if goals else {"iterations": TrainConfig.iterations, "lr_decay_at": TrainConfig.lr_decay_at,
                                         "time_budget": "10m"}
    iterations = recipe["iterations"] if iterations is None else iterations
    lr_decay_at = recipe["lr_decay_at"] if lr_decay_at is None else lr_decay_at
    time_budget = recipe["time_budget"] if time_budget is None else time_budget
    output = output or default_output(targets, loaded)
    if output.suffix != ".safetensors":
        raise NCAError(f"output must be a .safetensors file, got {output}")
    if checkpoint_every < 0:
        raise NCAError(f"--checkpoint-every must not be negative, got {checkpoint_every}")
    budget = parse_duration(time_budget)
    dev = pick_device(device)
    world = join_world(dev, batch)
    state_path = resume_path(output)
    for path in [output, state_path] + (plot_paths(output) if plots else []):
        check_writable(path)  # before the training time is spent, not after
    model_config = NCAConfig(channels=channels, hidden=hidden, fire_rate=fire_rate, padding=padding, goals=goals,
                             conditioning=conditioning, dims=dims)
    low, high = parse_seed_range(seed_cells)
    train_config = TrainConfig(mode=mode, iterations=iterations, batch=batch, pool_size=pool_size,
                               steps_min=steps_min, steps_max=steps_max, lr=lr, lr_decay_at=lr_decay_at,
                               damage_count=default_damage(ctx, damage_count, batch), average=average,
                               seed=seed, switch_rate=switch_rate,
                               seed_cells_min=low, seed_cells_max=high, overgrowth=overgrowth)
    start = load_init(ctx, init, model_config) if init else None
    if start is not None:
        model_config = start.model.config
    if resume:
        if not state_path.exists():
            raise NCAError(f"nothing to resume: {state_path} does not exist")
        trainer = load_state(state_path, loaded, dev, iterations=iterations if given(ctx, "iterations") else None,
                             world=world)
        refuse_changed_options(ctx, trainer, model_config, train_config)
        out.print(f"Resuming {state_path} at iteration {trainer.iteration}"
                  + (" (on another number of ranks: the random streams start afresh)" if trainer.reseeded else ""))
    else:
        trainer = Trainer(model_config, train_config, loaded, dev, world)
        if start is not None:
            start_from(trainer, start, init)
    with stop_on_ctrl_c() as stop:
        stopped = run_with_progress(trainer, state_path, budget, checkpoint_every, stop)
    if stopped == "interrupted":
        save_interrupted(trainer, output, state_path)
        exit_interrupted(stop, trainer.iteration, output, state_path)
    if not world.leader:  # rank 0 measures and writes the model
        return leave(world)
    finished = finish_training(trainer, output, state_path, stopped, plots=plots)
    report(trainer, stopped, finished)
    out.print(f"Wrote {output}")
    warn_if_short(ctx, trainer, stopped, finished)


def default_damage(ctx: typer.Context, damage_count: int | None, batch: int) -> int:
    """--damage-count as given, else the recipe's (3; 2 for a voxel body) but at most batch - 1."""
    if given(ctx, "damage_count"):
        return damage_count  # as asked: TrainConfig refuses one that the batch cannot hold
    return min(TrainConfig.damage_count if damage_count is None else damage_count, batch - 1)


def join_world(device, batch: int) -> World:
    """The torchrun world this command runs in (one rank when not under torchrun); only rank 0 prints."""
    world = world_from_environment(device)
    if world.active:
        out.quiet = err.quiet = not world.leader
        out.print(f"Training on {world.size} ranks: batch {batch} on each, {batch * world.size} in all")
    return world


# Options that shape a run: --resume continues the run as it was saved, so these may not change.
RECIPE_OPTIONS = {"mode": "mode", "regen": "mode", "batch": "batch", "pool_size": "pool_size",
                  "steps_min": "steps_min", "steps_max": "steps_max", "lr": "lr", "lr_decay_at": "lr_decay_at",
                  "damage_count": "damage_count", "average": "average", "seed": "seed",
                  "switch_rate": "switch_rate", "seed_cells": "seed_cells", "overgrowth": "overgrowth"}


def refuse_changed_options(ctx: typer.Context, trainer: Trainer, model: NCAConfig, recipe: TrainConfig) -> None:
    """An NCAError if an option given on this command line differs from the resumed run's."""
    saved = {**{k: getattr(trainer.config, v) for k, v in RECIPE_OPTIONS.items()},
             **{k: getattr(trainer.model.config, k) for k in MODEL_OPTIONS}}
    asked = {**{k: getattr(recipe, v) for k, v in RECIPE_OPTIONS.items()},
             **{k: getattr(model, k) for k in MODEL_OPTIONS}}
    for name in saved:
        if given(ctx, name) and asked[name] != saved[name]:
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


def load_targets(specs: list[str], size: int | None, pad: int | None, keep_white: bool) -> Target | GoalSet:
    """TARGET arguments: one picture or emoji is a target; several, or a folder of them, a goal set;
    one voxel body file (.vox, a mesh, .npy) a 3D target."""
    if len(specs) == 1 and is_voxel_spec(specs[0]):
        return load_body(specs[0], size, pad)
    bodies = [spec for spec in specs if is_voxel_spec(spec)]
    if bodies:
        raise NCAError(f"{bodies[0]} is a voxel body; a voxel body trains alone, and several targets are pictures")
    size, pad = PICTURE_SIZE if size is None else size, PICTURE_PAD if pad is None else pad
    pictures = expand_specs(specs)
    if len(pictures) == 1:
        return load_target(pictures[0], size, pad, keep_white=keep_white)
    return load_goals(pictures, size, pad, keep_white)


def default_output(specs: list[str], loaded: Target | GoalSet) -> Path:
    """<target>.safetensors: the emoji, or the picture's or folder's name; several joined by '-'."""
    if isinstance(loaded, Target):
        return Path(f"{Path(specs[0]).stem if Path(specs[0]).exists() else Path(loaded.name).stem}.safetensors")
    names = [Path(spec).resolve().name if Path(spec).is_dir() else Path(spec).stem for spec in specs]
    return Path("-".join(names) + ".safetensors")


def report(trainer: Trainer, stopped: str, finished: FinishedRun) -> None:
    """The summary lines of a finished run (and tables for goals, switches and several seeds)."""
    cfg, quality = trainer.config, finished.quality
    out.print(f"Trained {trainer.iteration} iterations in {format_duration(trainer.elapsed)} ({stopped}); "
              f"final batch loss {trainer.final_loss():.5f}")
    if trainer.decay_from < min(cfg.lr_decay_at, trainer.iteration):
        out.print(f"The time budget came first: the learning rate dropped at iteration {trainer.decay_from} "
                  f"instead of {cfg.lr_decay_at}")
    elif stopped == "time budget" and trainer.iteration <= cfg.lr_decay_at < cfg.iterations:
        out.print(f"The time budget ended the run before iteration {cfg.earliest_drop:,}, the earliest it may "
                  f"bring the rate drop forward to: the rate stayed at {cfg.lr:g}")
    mean = "; mean over the goals" if finished.goals else ""
    out.print(f"Grown from the seed ({quality.steps} steps, mean of {quality.runs} runs): loss "
              f"{quality.grow_loss:.5f}; regrown {quality.steps} steps after a cut of radius {quality.cut_radius:g}: "
              f"loss {quality.regrow_loss:.5f}{mean}")
    if quality.voxels:
        report_body(quality)
    if finished.goals:
        report_goals(trainer.target, finished)
    if finished.merging:
        report_merging(trainer.target, finished)


def report_goals(goals: GoalSet, finished: FinishedRun) -> None:
    table = Table("goal", "grown", "regrown after a cut", title="Each goal (losses)")
    for name, q in zip(goals.names, finished.goals):
        table.add_row(name, f"{q.grow_loss:.5f}", f"{q.regrow_loss:.5f}")
    out.print(table)
    first = finished.switches[0]
    table = Table("from", "to", f"steps until below {first.threshold:g}", f"loss {first.after} steps after",
                  title=f"Switching goals (grown {GROW_STEPS} steps, then switched; mean of {SWITCH_RUNS} runs)")
    for s in finished.switches:
        table.add_row(goals.names[s.source], goals.names[s.goal], "never" if s.steps_below is None else str(s.steps_below),
                      f"{s.final:.5f}")
    out.print(table)


def report_merging(target: Target | GoalSet, finished: FinishedRun) -> None:
    names = target.names if isinstance(target, GoalSet) else [target.name]
    table = Table("goal", "seed cells", "loss where the body fits best", "loss where the target is",
                  "body moved by (cells)", title=f"Growth from several seeds ({GROW_STEPS} steps, mean of "
                                                 f"{QUALITY_RUNS} runs; one seed: the centre)")
    for name, rows in zip(names, finished.merging):
        for m in rows:
            table.add_row(name, str(m.seeds), f"{m.placed_loss:.5f}", f"{m.fixed_loss:.5f}", f"{m.offset:.1f}")
    out.print(table)
