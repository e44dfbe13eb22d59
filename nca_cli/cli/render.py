"""`nca grow`, `nca damage` and `nca rotate`: a model run written as frames, with what it measured."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.table import Table

from ..engine import rgba_loss, seed_state
from ..errors import InvalidOption, NCAError
from ..formats.atomic import atomic_output, check_writable
from ..formats.model_file import LoadedModel
from ..formats.states import read_last_state
from ..growth import RenderOptions, Wound, canvas_shape, render_run, sweep, turned_losses, wound_experiment
from ..growth.damage import SHAPES, parse_position
from ..growth.quality import cut_radius
from ..growth.recovery import DEFAULT_TOLERANCE, check_sweep, check_tolerance, plot_sweep
from ..voxels.recipe import VOXEL_SWEEP_RADII
from ..growth.run import check_run
from ..targets.pictures import read_mask
from ..growth.goals import steer
from .bodies import grid_text, turned_about
from ..runtime.distributed import leave, world_from_environment
from .console import counted, err, out, progress_bar, user_errors
from .goals import (PaintOpt, SeedAtOpt, SeedCellsOpt, SwitchOpt, TargetOpt, loss_trace, open_goal, plan_goals,
                    report_run, seeded_state)
from .options import (DeviceOpt, EveryOpt, FpsOpt, GridOpt, ModelArg, OrbitOpt, OutputOpt, ScaleOpt, SeedOpt, StepsOpt,
                      StripOpt, given, open_model, parse_angles, parse_grid, parse_radii, parse_size)


class StepProgress:
    """The on_progress(k, steps) callback of a run, drawing a progress bar; `seconds` is the run's
    wall time once it has ended."""

    def __init__(self, bar, task):
        self.bar, self.task, self.seconds = bar, task, 0.0

    def __call__(self, k: int, total: int) -> None:
        self.bar.update(self.task, completed=k)


@contextlib.contextmanager
def step_progress(label: str, steps: int):
    """A progress bar over a run's steps; yields the StepProgress callback to pass on."""
    bar, start = progress_bar(), time.perf_counter()
    with bar:
        progress = StepProgress(bar, bar.add_task(label, total=steps))
        yield progress
    progress.seconds = time.perf_counter() - start


def say_written(options: RenderOptions, x: torch.Tensor, seconds: float = 0.0) -> None:
    """What was run and written, and how fast: cell updates per second over the whole grid (the
    frames' writing included)."""
    what = "the last frame" if options.writes_one_image else f"{options.frames} frames"
    what = f"the body ({int((x[0, ..., 3] > 0.1).sum())} voxels)" if options.writes_body else what
    out.print(f"Ran {options.steps} steps on a {grid_text(tuple(x.shape[1:-1]))} grid; wrote {what} to {options.output}")
    if seconds > 0 and options.steps:
        out.print(f"{seconds:.1f} s, {options.steps * x[..., 0].numel() / seconds:,.0f} cell updates per second")


def on_target_canvas(loaded: LoadedModel, x: torch.Tensor) -> bool:
    """Whether x (B, *S, C) is on the canvas of the model's stored target (so losses mean something)."""
    return loaded.target is not None and tuple(x.shape[1:-1]) == loaded.target.shape


def start_state(path: Optional[Path], loaded: LoadedModel, grid: tuple[int, int] | None,
                options: RenderOptions, batch: int = 1) -> torch.Tensor:
    """The seed on the canvas (or, with `path`, the last state saved in an .npy file by
    `nca grow -o states.npy`), once the run is known to fit. -> (batch, H, W, C)"""
    if options.orbit is not None and loaded.model.config.dims != 3:
        raise InvalidOption("orbit", "turns the camera around a voxel body; this model grows pictures")
    if path is not None:
        x = read_last_state(path, loaded.model.config.channels, loaded.model.config.dims)
        check_run(loaded.model.config, tuple(x.shape[1:-1]), 1, options, loaded.device)
        return x.to(loaded.device)
    shape = canvas_shape(loaded.target, grid)
    check_run(loaded.model.config, shape, batch, options, loaded.device)
    return seed_state(loaded.model.config, *shape, batch=batch, device=loaded.device)


@user_errors
def grow(
    model: ModelArg = None,
    output: OutputOpt = Path("grow.mp4"),
    steps: StepsOpt = 400,
    fps: FpsOpt = 30.0,
    scale: ScaleOpt = None,
    every: EveryOpt = 1,
    grid: GridOpt = None,
    strip: StripOpt = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    orbit: OrbitOpt = None,
    target: TargetOpt = None,
    switch: SwitchOpt = None,
    paint: PaintOpt = None,
    seed_at: SeedAtOpt = None,
    seed_cells: SeedCellsOpt = None,
):
    """Grow a pattern from one cell (or several) and write a video, GIF, image or raw states; a
    conditional model grows the goal --target names, and may switch goals on the way.

    Example: nca grow lizard.safetensors --steps 400 -o lizard.mp4
    """
    options = RenderOptions(output, steps, every, fps, scale, strip, seed, orbit=orbit)
    loaded = open_model(model, device)
    x = start_state(None, loaded, parse_grid(grid), options)
    plan = plan_goals(loaded, target, switch, paint, steps, tuple(x.shape[1:3]))
    seeded = seeded_state(loaded, tuple(x.shape[1:-1]), seed_at, seed_cells, seed)
    x = x if seeded is None else seeded
    loaded = loaded.with_goal(plan.goal_at(steps - 1)) if plan is not None else loaded
    losses: list[float] = []
    trace = loss_trace(loaded, plan, losses) if on_target_canvas(loaded, x) else None
    with step_progress("grow", steps) as progress:
        x = render_run(steer(loaded.model, plan), x, options, on_step=trace, on_progress=progress)
    say_written(options, x, progress.seconds)
    if on_target_canvas(loaded, x):
        report_run(loaded, plan, x, losses, seeded is not None)


@user_errors
def rotate(
    model: ModelArg = None,
    theta: str = typer.Option("45", "--theta", help="Perception rotation in degrees; several as 0,45,90 render side by side."),
    output: OutputOpt = Path("rotate.mp4"),
    steps: StepsOpt = 300,
    fps: FpsOpt = 30.0,
    scale: ScaleOpt = None,
    every: EveryOpt = 1,
    grid: GridOpt = None,
    strip: StripOpt = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    axis: Optional[str] = typer.Option(None, "--axis", help="Voxel body: turn about x, y or z (up) (default: the model's, z)."),
    orbit: OrbitOpt = None,
    target: TargetOpt = None,
):
    """Grow with the perception (Sobel) kernels turned by THETA: the same rule grows the pattern turned.

    Example: nca rotate lizard.safetensors --theta 0,45,90 --steps 300 -o turned.mp4
    """
    angles = parse_angles(theta)
    options = RenderOptions(output, steps, every, fps, scale, strip, seed, orbit=orbit)
    loaded, runner = open_goal(turned_about(open_model(model, device), axis), target)
    x = start_state(None, loaded, parse_grid(grid), options, batch=len(angles))
    with step_progress("rotate", steps) as progress:
        x = render_run(runner, x, options, angle=angles, on_progress=progress)
    say_written(options, x, progress.seconds)
    if not on_target_canvas(loaded, x):
        return
    table = Table("theta (degrees)", "loss against the target turned by theta")
    for a, loss in zip(angles, turned_losses(x, loaded.target, angles, loaded.model.config.axis)):
        table.add_row(f"{a:g}", f"{loss:.5f}")
    out.print(table)


# damage: the options of one shape of wound, of a run with wounds, and of a sweep (the flags that
# differ from their parameter's name), so that one given where it does nothing is refused.
SHAPE_OPTIONS = {"radius": ("circle", "sphere"), "rect": ("rect",), "side": ("half",), "fraction": ("noise",),
                 "mask": ("mask",)}
RUN_OPTIONS = ("at", "shape", "center", "radius", "rect", "side", "fraction", "mask", "start", "output", "steps", "fps",
               "scale", "every", "strip", "seed", "orbit")
SWEEP_OPTIONS = ("radii", "spacing", "seeds", "recover_steps", "json_path", "plot")
FLAGS = {"start": "--from", "output": "-o", "json_path": "--json"}


def refuse_unused(ctx: typer.Context, shape: str, sweep_mode: bool) -> None:
    """An NCAError for a damage option given on the command line that this run would not use."""
    def flag(name: str) -> str:
        return FLAGS.get(name, "--" + name.replace("_", "-"))

    for name in RUN_OPTIONS if sweep_mode else SWEEP_OPTIONS:
        if given(ctx, name):
            raise NCAError(f"{flag(name)} is for one run with wounds; --sweep grows and wounds its own patterns "
                           "(--radii, --spacing, --seeds, --recover-steps)" if sweep_mode else
                           f"{flag(name)} is for --sweep")
    if sweep_mode:
        return
    for name, shapes in SHAPE_OPTIONS.items():
        if given(ctx, name) and shape not in shapes:
            raise NCAError(f"{flag(name)} is for --shape {' or '.join(shapes)}, not {shape}")


@user_errors
def damage(
    ctx: typer.Context,
    model: ModelArg = None,
    at: list[int] = typer.Option([200], "--at", help="Wound after this many steps; repeat for several wounds."),
    shape: str = typer.Option("circle", "--shape", help=f"{', '.join(SHAPES[:-1])} or {SHAPES[-1]}."),
    center: Optional[str] = typer.Option(None, "--center", help="Wound centre ROW,COL in cells, or in percent of the pattern's box (50%,30%) (default: on the body)."),
    radius: Optional[float] = typer.Option(None, "--radius", help="circle, sphere: radius in cells (default 10; a voxel body: a quarter of its longest side)."),
    rect: str = typer.Option("12x12", "--rect", help="rect: size HxW in cells."),
    side: str = typer.Option("left", "--side", help="half: the side cut away: left, right, top or bottom."),
    fraction: float = typer.Option(0.5, "--fraction", help="noise: share of cells killed."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="mask: a picture of the grid's size; black cells are killed."),
    tolerance: float = typer.Option(DEFAULT_TOLERANCE, "--tolerance", help="Recovered: loss back within this of its value before the wound."),
    start: Optional[Path] = typer.Option(None, "--from", help="Start from the last state in an .npy file from nca grow, not the seed."),
    sweep_mode: bool = typer.Option(False, "--sweep", help="Robustness report: many disc wounds over the body, batched."),
    radii: Optional[str] = typer.Option(None, "--radii", help=f"Sweep: disc (ball) radii FROM:TO:STEP or a list 2,5,10 (default 2:20:3; a voxel body {VOXEL_SWEEP_RADII})."),
    spacing: int = typer.Option(6, "--spacing", help="Sweep: a wound centre every N cells over the body."),
    seeds: int = typer.Option(2, "--seeds", help="Sweep: grown patterns (random seeds) per wound."),
    recover_steps: int = typer.Option(200, "--recover-steps", help="Sweep: steps allowed to heal."),
    json_path: Path = typer.Option(Path("sweep.json"), "--json", help="Sweep: the report as JSON."),
    plot: Path = typer.Option(Path("sweep.png"), "--plot", help="Sweep: recovery plots as PNG."),
    output: OutputOpt = Path("damage.mp4"),
    steps: StepsOpt = 400,
    fps: FpsOpt = 30.0,
    scale: ScaleOpt = None,
    every: EveryOpt = 1,
    grid: GridOpt = None,
    strip: StripOpt = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    orbit: OrbitOpt = None,
    target_goal: TargetOpt = None,
):
    """Grow a pattern, wound it, and measure how well it heals (or, with --sweep, map its robustness).

    Example: nca damage lizard.safetensors --at 200 --shape circle --radius 10 --steps 400 -o heal.mp4
    """
    refuse_unused(ctx, shape, sweep_mode)
    if shape == "mask" and mask is None:
        raise NCAError("shape mask needs --mask PICTURE")
    wound = Wound(shape=shape, position=parse_position(center) if center else None,
                  radius=10.0 if radius is None else radius,
                  size=parse_size(rect, "rectangle") if shape == "rect" else Wound.size, side=side,
                  fraction=fraction, mask=read_mask(mask) if mask is not None else None)
    check_tolerance(tolerance)
    if sweep_mode:
        return damage_sweep(model, device, parse_grid(grid), radii, spacing, seeds, recover_steps,
                            tolerance, json_path, plot, target_goal)
    options = RenderOptions(output, steps, every, fps, scale, strip, seed, orbit=orbit)
    wound_steps = sorted(set(at))
    if wound_steps[0] < 0 or wound_steps[-1] >= steps:
        raise NCAError(f"--at must be between 0 and --steps - 1 ({steps - 1}), got {wound_steps[-1] if wound_steps[0] >= 0 else wound_steps[0]}")
    loaded, runner = open_goal(open_model(model, device), target_goal)
    x = start_state(start, loaded, parse_grid(grid), options)
    wound.check_dims(x.ndim - 2)
    wound.check_grid(*x.shape[1:3])
    if radius is None and x.ndim == 5 and loaded.target is not None:
        wound.radius = cut_radius(loaded.target)
    target = loaded.target.rgba if on_target_canvas(loaded, x) else None
    with step_progress("damage", steps) as progress:
        report = wound_experiment(runner, x, wound, wound_steps, options, target=target, tolerance=tolerance,
                                  on_progress=progress)
    say_written(options, report.final_state, progress.seconds)
    table = Table("wound at step", "loss before", "just after", "at the end", f"recovered (within {tolerance:g})",
                  title=f"Recovery (RGBA loss against {report.against})")
    for r in report.recoveries:
        healed = (f"at step {r.recovered_at} ({counted(r.recovered_at - r.step, 'step', 'steps')})" if r.recovered_at
                  else "never: it died" if r.died else "never")
        table.add_row(str(r.step), f"{r.before:.5f}", f"{r.after:.5f}", f"{r.final:.5f}", healed)
    out.print(table)


def damage_sweep(model, device, grid, radii, spacing, seeds, recover_steps, tolerance, json_path, plot, goal=None):
    """`nca damage --sweep`: the batched robustness sweep, its table, JSON report and plot."""
    if spacing < 1 or seeds < 1 or recover_steps < 1:
        raise NCAError("--spacing, --seeds and --recover-steps must be at least 1")
    for path, suffix, option in ((json_path, ".json", "--json"), (plot, ".png", "--plot")):
        if path.suffix.lower() != suffix:
            raise NCAError(f"{option} must be a {suffix} file, got {path}")
        check_writable(path)
    loaded, runner = open_goal(open_model(model, device), goal)
    shape = canvas_shape(loaded.target, grid)
    radii = parse_radii(radii or (VOXEL_SWEEP_RADII if len(shape) == 3 else "2:20:3"))
    check_sweep(shape, radii, spacing, seeds, recover_steps, tolerance)
    target = loaded.target.rgba if loaded.target is not None and loaded.target.shape == shape else None
    world = world_from_environment(loaded.device)  # under torchrun the ranks share the trials
    if world.active:
        out.quiet = err.quiet = not world.leader
        out.print(f"Sweeping on {world.size} ranks")
    bar = progress_bar()
    with bar:
        task = bar.add_task("sweep", total=None)
        result = sweep(runner, target, shape, radii, spacing, seeds, recover_steps=recover_steps, tolerance=tolerance,
                       on_progress=lambda done, total: bar.update(task, completed=done, total=total), world=world)
    if not world.leader:
        return leave(world)
    if not result.trials:
        raise NCAError("the grown pattern has no opaque cells to wound")
    table = Table("radius", "trials", "recovered", "median steps", "mean final loss",
                  title=f"Recovery within {recover_steps} steps (tolerance {tolerance:g})")
    for row in result.by_radius():
        median = "-" if row["median_steps"] is None else f"{row['median_steps']:g}"
        table.add_row(f"{row['radius']:g}", str(row["trials"]), f"{row['recovery_rate']:.0%}", median,
                      f"{row['mean_final_loss']:.5f}")
    out.print(table)
    with atomic_output(json_path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=1))
    plot_sweep(plot, runner, result)
    out.print(f"Wrote {json_path} and {plot} ({len(result.trials)} trials)")
