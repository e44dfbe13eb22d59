"""The `nca` command line: thin Typer commands over the library modules."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import torch
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__
from .allocator import keep_freed_memory
from .atomic import atomic_output
from .bench import run_bench
from .checkpoint import LoadedModel, load_model, save_model
from .engine import NCAConfig, render_rgb, rgba_loss, seed_state
from .damage import Wound, apply_damage, parse_position, read_mask
from .errors import NCAError
from .evaluate import grow_from_seed, measure_quality
from .export import export_model, exported_model
from .growth import kept_steps, parse_grid, run_growth
from .plots import save_loss_curve, save_panels, save_sweep_plot
from .recovery import recovery_from_losses, sweep
from .rotation import parse_angles, rotate_image
from .targets import load_target
from .training import MODES, Trainer, TrainConfig
from .video import check_output_path, default_scale, open_sink

app = typer.Typer(
    name="nca",
    help="Grow, train, wound and turn Neural Cellular Automata (Mordvintsev et al., Distill 2020).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Not on a terminal (a pipe, a file, a test), tables get 100 columns rather than rich's default 80.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def user_errors(command):
    """Turn expected failures into one `Error: ...` line on stderr and exit code 1; Ctrl-C into 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (NCAError, ValueError) as exc:
            err.print(f"Error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:  # outputs in progress were written to temporary files, now removed
            err.print("Interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def version_callback(value: bool):
    if value:
        out.print(f"nca {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Show the version and exit."),
):
    """Neural Cellular Automata: one tiny per-cell network grows, keeps and heals a picture."""


def pick_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NCAError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NCAError("device cuda is not available on this machine")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NCAError("device mps is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise NCAError(f"unsupported device {name!r}: use auto, cpu, cuda or mps")
    return device


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '1h30m', '2h' or plain seconds -> seconds; 'none' -> None (no limit)."""
    text = text.strip().lower()
    if text == "none":
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", text)
        if not text or parts is None:
            raise NCAError(f"invalid duration {text!r}: use e.g. 90s, 10m or 1h30m")
        h, m, s = (float(p) if p else 0.0 for p in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise NCAError(f"duration must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """12.3 -> '12s', 754 -> '12m34s'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_bar(*fields: TextColumn) -> Progress:
    """A rich progress bar on stderr; silent when stderr is not a terminal."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *fields,
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err,
                    disable=not err.is_terminal, transient=False)


@contextlib.contextmanager
def stop_on_ctrl_c():
    """First Ctrl-C asks the loop to stop cleanly (it checks the returned flag); a second one aborts."""
    flag = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag["stop"]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag["stop"] = True
        err.print("Stopping after this iteration (Ctrl-C again to abort without saving)...")

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (e.g. some test runners): no handler, plain Ctrl-C
        pass
    try:
        yield lambda: flag["stop"]
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, previous)


def resume_path(output: Path) -> Path:
    """Where training keeps its resumable state: beside the model, e.g. lizard.ckpt.safetensors."""
    return output.with_name(output.stem + ".ckpt.safetensors")


# --------------------------------------------------------------------------------------------- train


@app.command()
@user_errors
def train(
    target: str = typer.Argument(..., help="Image file (PNG/JPEG/WebP/...) or a single emoji, e.g. 🦎."),
    output: Path = typer.Option(None, "-o", "--output", help="Model file to write (default: <target>.safetensors)."),
    mode: str = typer.Option("regen", "--mode", help=f"Experiment: {', '.join(MODES)}."),
    regen: bool = typer.Option(False, "--regen", help="Regenerating mode (pool + damage); same as --mode regen."),
    iterations: int = typer.Option(TrainConfig.iterations, "--iterations", "-n", help="Training iterations."),
    time_budget: str = typer.Option("10m", "--time-budget", help="Stop after this much training time (e.g. 90s, 10m, 1h, none); a run it cuts short drops its rate early, at the same fraction of the budget."),
    size: int = typer.Option(40, "--size", help="Target size in cells (longer side)."),
    pad: int = typer.Option(16, "--pad", help="Empty cells around the target: the grid is size + 2*pad."),
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
    loaded = load_target(target, size, pad, keep_white=keep_white)
    output = output or Path(f"{Path(loaded.name).stem if not Path(target).exists() else Path(target).stem}.safetensors")
    if output.suffix != ".safetensors":
        raise NCAError(f"output must be a .safetensors file, got {output}")
    budget = parse_duration(time_budget)
    dev = pick_device(device)
    state_path = resume_path(output)
    if resume:
        if not state_path.exists():
            raise NCAError(f"nothing to resume: {state_path} does not exist")
        trainer = Trainer.load_state(state_path, loaded, dev, iterations=iterations)
        out.print(f"Resuming {state_path} at iteration {trainer.iteration}")
    else:
        model_config = NCAConfig(channels=channels, hidden=hidden, fire_rate=fire_rate, padding=padding)
        train_config = TrainConfig(mode=mode, iterations=iterations, batch=batch, pool_size=pool_size,
                                   steps_min=steps_min, steps_max=steps_max, lr=lr, lr_decay_at=lr_decay_at,
                                   damage_count=min(TrainConfig.damage_count, batch - 1) if damage_count is None
                                   else damage_count, average=average, seed=seed)
        trainer = Trainer(model_config, train_config, loaded, dev)
    _run_training(trainer, output, state_path, budget, checkpoint_every, plots)


def _run_training(trainer: Trainer, output: Path, state_path: Path, budget: float | None,
                  checkpoint_every: int, plots: bool) -> None:
    cfg = trainer.config
    bar = progress_bar(TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} it/s"))
    with bar, stop_on_ctrl_c() as should_stop:
        task = bar.add_task(f"train {cfg.mode}", total=cfg.iterations, completed=trainer.iteration,
                            loss="-", rate="-")

        total = [cfg.iterations]

        def on_iteration(t: Trainer, loss: float) -> None:
            rate = t.iteration / t.elapsed if t.elapsed else 0.0
            # Where the time budget will end the run; changed only in steps of 2% or more, because
            # rich starts its time estimate afresh whenever the total changes.
            expected = t.expected_iterations(budget)
            if abs(expected - total[0]) > 0.02 * total[0] or expected == t.iteration:
                total[0] = expected
                bar.update(task, total=expected)
            bar.update(task, completed=t.iteration, loss=f"{t.final_loss():.5f}", rate=f"{rate:.2f}")

        stopped = trainer.run(time_budget=budget, on_iteration=on_iteration, should_stop=should_stop,
                              checkpoint=lambda t: t.save_state(state_path), checkpoint_every=checkpoint_every)
    if stopped == "interrupted":
        trainer.save_state(state_path)
        save_model(output, trainer.result, trainer.target, trainer.summary(stopped))
        err.print(f"Interrupted at iteration {trainer.iteration}: saved {output} and resumable state "
                  f"{state_path}; continue with the same command and --resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    quality = measure_quality(trainer.result, trainer.target, runs=8)
    summary = {**trainer.summary(stopped), **quality.to_dict()}
    save_model(output, trainer.result, trainer.target, summary)
    if state_path.exists():
        state_path.unlink()  # the run is complete; its resumable state is no longer needed
    if plots:
        _write_training_plots(trainer, output)
    out.print(f"Trained {trainer.iteration} iterations in {format_duration(trainer.elapsed)} ({stopped}); "
              f"final batch loss {trainer.final_loss():.5f}")
    if trainer.decay_from < min(cfg.lr_decay_at, trainer.iteration):
        out.print(f"The time budget came first: the learning rate dropped at iteration {trainer.decay_from} "
                  f"instead of {cfg.lr_decay_at}")
    out.print(f"Grown from the seed ({quality.steps} steps, mean of {quality.runs} runs): loss "
              f"{quality.grow_loss:.5f}; regrown {quality.steps} steps after a cut of radius 10: "
              f"loss {quality.regrow_loss:.5f}")
    out.print(f"Wrote {output}")


def _write_training_plots(trainer: Trainer, output: Path) -> None:
    save_loss_curve(output.with_name(output.stem + ".loss.png"), trainer.losses)
    H, W = trainer.target.shape
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    grown = grow_from_seed(trainer.result, H, W, 200, generator=generator)
    panels = [render_rgb(trainer.target.rgba).numpy(), render_rgb(grown[0]).cpu().numpy()]
    save_panels(output.with_name(output.stem + ".preview.png"), panels, ["target", "grown, 200 steps"])


# ------------------------------------------------------------------------------ growing and rendering
# Options shared by grow, damage and rotate: one declaration, one code path.

ModelArg = Annotated[Optional[str], typer.Argument(help="Model file or bundled model name (default: lizard).")]
OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Output: .mp4, .gif, .png (last frame) or .npy (raw states).")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Steps to run.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frames per second of the video.")]
ScaleOpt = Annotated[Optional[int], typer.Option("--scale", help="Pixels per cell (default: at least 256 px video).")]
EveryOpt = Annotated[int, typer.Option("--every", help="Keep every K-th step as a frame.")]
GridOpt = Annotated[Optional[str], typer.Option("--grid", help="Grow on an HxW canvas, e.g. 128x128 (default: the model's).")]
StripOpt = Annotated[bool, typer.Option("--strip", help="With a .png output: all kept frames side by side.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed for the cells' firing.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]


def open_model(model: Optional[str], device: str) -> LoadedModel:
    return load_model(model, device=pick_device(device))


def canvas_shape(loaded: LoadedModel, grid: Optional[str]) -> tuple[int, int]:
    """The model's own canvas (its stored target's size), or --grid HxW."""
    if grid is not None:
        return parse_grid(grid)
    return loaded.target.shape if loaded.target is not None else (72, 72)


def on_target_canvas(loaded: LoadedModel, x: torch.Tensor) -> bool:
    """Whether x (B, H, W, C) is on the canvas of the model's stored target (so losses mean something)."""
    return loaded.target is not None and tuple(x.shape[1:3]) == loaded.target.shape


def target_loss(loaded: LoadedModel, x: torch.Tensor) -> Optional[torch.Tensor]:
    """Loss of each sample of x (B, H, W, C) against the stored target; None if the canvas differs."""
    return rgba_loss(x, loaded.target.rgba.to(x.device)) if on_target_canvas(loaded, x) else None


def check_render_options(output: Path, steps: int, every: int, scale: Optional[int]) -> int:
    """Validate the output and frame options before any work; returns the number of frames."""
    check_output_path(output)
    if scale is not None and scale < 1:
        raise NCAError(f"--scale must be at least 1, got {scale}")
    return kept_steps(steps, every)


def render_run(loaded: LoadedModel, x: torch.Tensor, steps: int, output: Path, every: int, fps: float,
               scale: Optional[int], strip: bool, seed: int, label: str, observe=None, **growth) -> torch.Tensor:
    """Run the model from x (B, H, W, C) with a progress bar, stream the frames to `output`, and
    return the final state. observe(k, x) sees every step's state; other keyword arguments go to
    run_growth. The options were checked by check_render_options."""
    frames = kept_steps(steps, every)
    scale = scale or default_scale(*x.shape[1:3])
    generator = torch.Generator(device=x.device).manual_seed(seed)
    if isinstance(growth.get("angle"), list):  # side-by-side panels: each fires as it would alone
        generator = [torch.Generator(device=x.device).manual_seed(seed) for _ in growth["angle"]]
    bar = progress_bar()
    with bar, open_sink(output, frames, fps=fps, scale=scale, strip=strip) as sink:
        task = bar.add_task(label, total=steps)
        x = run_growth(loaded.model, x, steps, sink, every=every, generator=generator,
                       on_step=lambda k, state: (bar.update(task, completed=k), observe and observe(k, state)),
                       **growth)
    what = ("the last frame" if output.suffix.lower() == ".png" and not strip else f"{frames} frames")
    out.print(f"Ran {steps} steps on a {x.shape[1]}x{x.shape[2]} grid; wrote {what} to {output}")
    return x


@app.command()
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
):
    """Grow a pattern from one cell and write a video, GIF, image or raw states.

    Example: nca grow lizard.safetensors --steps 400 -o lizard.mp4
    """
    check_render_options(output, steps, every, scale)
    loaded = open_model(model, device)
    x = render_run(loaded, start_from(None, loaded, grid), steps, output, every, fps, scale, strip, seed, "grow")
    loss = target_loss(loaded, x)
    if loss is not None:
        out.print(f"Loss against the target: {float(loss[0]):.5f}")


@app.command()
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
):
    """Grow with the perception (Sobel) kernels turned by THETA: the same rule grows the pattern turned.

    Example: nca rotate lizard.safetensors --theta 0,45,90 --steps 300 -o turned.mp4
    """
    angles = parse_angles(theta)
    check_render_options(output, steps, every, scale)
    loaded = open_model(model, device)
    H, W = canvas_shape(loaded, grid)
    x = seed_state(loaded.model.config, H, W, batch=len(angles), device=loaded.device)
    x = render_run(loaded, x, steps, output, every, fps, scale, strip, seed, "rotate", angle=angles)
    if loaded.target is None or (H, W) != loaded.target.shape:
        return
    table = Table("theta (degrees)", "loss against the target turned by theta")
    for i, a in enumerate(angles):
        turned = rotate_image(loaded.target.rgba, a, (H // 2, W // 2)).to(x.device)
        table.add_row(f"{a:g}", f"{float(rgba_loss(x[i:i + 1], turned)[0]):.5f}")
    out.print(table)


def parse_radii(text: str) -> list[float]:
    """'2:20:3' (from:to:step, inclusive) or '2,5,10' -> radii in cells."""
    try:
        if ":" in text:
            lo, hi, step = (float(p) for p in text.split(":"))
            if step <= 0 or hi < lo:
                raise ValueError
            radii = [lo + i * step for i in range(int((hi - lo) / step + 1e-9) + 1)]
        else:
            radii = [float(p) for p in text.split(",")]
    except ValueError:
        raise NCAError(f"invalid --radii {text!r}: use FROM:TO:STEP (e.g. 2:20:3) or a list (e.g. 2,5,10)") from None
    if not radii or min(radii) < 0:
        raise NCAError(f"invalid --radii {text!r}: radii must not be negative")
    return radii


def start_from(path: Optional[Path], loaded: LoadedModel, grid: Optional[str]) -> torch.Tensor:
    """The seed, or the last state saved in an .npy file written by `nca grow -o states.npy`."""
    if path is None:
        return seed_state(loaded.model.config, *canvas_shape(loaded, grid), device=loaded.device)
    try:
        states = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise NCAError(f"cannot read state {path}: {exc}") from None
    C = loaded.model.config.channels
    if states.ndim not in (3, 4) or states.shape[-1] != C or states.dtype != np.float32:
        raise NCAError(f"{path} holds {states.dtype} {states.shape}; expected float32 states with {C} channels")
    last = np.array(states[-1] if states.ndim == 4 else states)
    return torch.from_numpy(last)[None].to(loaded.device)


def wound_outline(mask: np.ndarray) -> np.ndarray:
    """Cells on the edge of a (H, W) bool mask."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inner &= padded[1 + dy : 1 + dy + mask.shape[0], 1 + dx : 1 + dx + mask.shape[1]]
    return mask & ~inner


WOUND_MARK_STEPS = 15  # frames after a wound on which its outline is drawn, as the article's demo does


@app.command()
@user_errors
def damage(
    model: ModelArg = None,
    at: list[int] = typer.Option([200], "--at", help="Wound after this many steps; repeat for several wounds."),
    shape: str = typer.Option("circle", "--shape", help="circle, rect, half, noise or mask."),
    center: Optional[str] = typer.Option(None, "--center", help="Wound centre ROW,COL in cells, or in percent of the pattern's box (50%,30%) (default: on the body)."),
    radius: float = typer.Option(10.0, "--radius", help="circle: radius in cells."),
    rect: str = typer.Option("12x12", "--rect", help="rect: size HxW in cells."),
    side: str = typer.Option("left", "--side", help="half: the side cut away: left, right, top or bottom."),
    fraction: float = typer.Option(0.5, "--fraction", help="noise: share of cells killed."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="mask: a picture of the grid's size; black cells are killed."),
    tolerance: float = typer.Option(0.002, "--tolerance", help="Recovered: loss back within this of its value before the wound."),
    start: Optional[Path] = typer.Option(None, "--from", help="Start from the last state in an .npy file from nca grow, not the seed."),
    sweep_mode: bool = typer.Option(False, "--sweep", help="Robustness report: many disc wounds over the body, batched."),
    radii: str = typer.Option("2:20:3", "--radii", help="Sweep: disc radii FROM:TO:STEP or a list 2,5,10."),
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
):
    """Grow a pattern, wound it, and measure how well it heals (or, with --sweep, map its robustness).

    Example: nca damage lizard.safetensors --at 200 --shape circle --radius 10 --steps 400 -o heal.mp4
    """
    wound = Wound(shape=shape, position=parse_position(center) if center else None, radius=radius,
                  size=parse_grid(rect) if shape == "rect" else (12, 12), side=side, fraction=fraction,
                  mask=read_mask(mask) if mask is not None else None)
    if sweep_mode:
        return _damage_sweep(model, device, grid, parse_radii(radii), spacing, seeds, recover_steps,
                             tolerance, json_path, plot)
    check_render_options(output, steps, every, scale)
    wound_steps = sorted(set(at))
    if wound_steps[0] < 0 or wound_steps[-1] >= steps:
        raise NCAError(f"--at must be between 0 and --steps - 1 ({steps - 1}), got {wound_steps[-1] if wound_steps[0] >= 0 else wound_steps[0]}")
    loaded = open_model(model, device)
    x = start_from(start, loaded, grid)
    wound.check_grid(*x.shape[1:3])
    _damage_run(loaded, x, wound, wound_steps, tolerance, output, steps, every, fps, scale, strip, seed)


def _damage_run(loaded: LoadedModel, x: torch.Tensor, wound: Wound, wound_steps: list[int], tolerance: float,
                output: Path, steps: int, every: int, fps: float, scale: Optional[int], strip: bool, seed: int):
    cfg = loaded.model.config
    wound_generator = torch.Generator(device=x.device).manual_seed(seed + 1)
    reference = {"rgba": loaded.target.rgba.to(x.device) if on_target_canvas(loaded, x) else None}
    losses: list[float] = []  # losses[k - 1]: after step k
    events: dict[int, dict] = {}

    def loss_of(state: torch.Tensor) -> float:
        return float((state[0, ..., :4] - reference["rgba"]).square().mean())

    def before_step(k: int, state: torch.Tensor) -> torch.Tensor:
        if k not in wound_steps:
            return state
        if reference["rgba"] is None:  # no target: compare with the pattern before the first wound
            reference["rgba"] = state[0, ..., :4].clone()
        before = loss_of(state)
        masks = wound.masks(state, cfg.alive_threshold, generator=wound_generator)
        state = apply_damage(state, masks)
        events[k] = {"before": before, "after": loss_of(state), "outline": wound_outline(masks[0].cpu().numpy())}
        return state

    def decorate(k: int, rgb: np.ndarray) -> np.ndarray:
        for step, event in events.items():
            if step <= k < step + WOUND_MARK_STEPS:
                rgb = rgb.copy()
                rgb[:, event["outline"]] = (230, 30, 30)
        return rgb

    def observe(k: int, state: torch.Tensor) -> None:
        losses.append(loss_of(state) if reference["rgba"] is not None else float("nan"))

    render_run(loaded, x, steps, output, every, fps, scale, strip, seed, "damage", observe=observe,
               before_step=before_step, decorate=decorate)
    against = "the target" if on_target_canvas(loaded, x) else "the pattern before the first wound"
    table = Table("wound at step", "loss before", "just after", "at the end", f"recovered (within {tolerance:g})",
                  title=f"Recovery (RGBA loss against {against})")
    bounds = wound_steps[1:] + [steps]
    for k, end in zip(wound_steps, bounds):
        r = recovery_from_losses(k, losses[k:end], events[k]["before"], events[k]["after"], tolerance)
        healed = f"at step {r.recovered_at} ({r.recovered_at - k} steps)" if r.recovered_at else "never"
        table.add_row(str(k), f"{r.before:.5f}", f"{r.after:.5f}", f"{r.final:.5f}", healed)
    out.print(table)


def _damage_sweep(model, device, grid, radii, spacing, seeds, recover_steps, tolerance, json_path, plot):
    if spacing < 1 or seeds < 1 or recover_steps < 1:
        raise NCAError("--spacing, --seeds and --recover-steps must be at least 1")
    loaded = open_model(model, device)
    H, W = canvas_shape(loaded, grid)
    target = loaded.target.rgba if loaded.target is not None and loaded.target.shape == (H, W) else None
    bar = progress_bar()
    with bar:
        task = bar.add_task("sweep", total=None)
        result = sweep(loaded.model, target, (H, W), radii, spacing, seeds, recover_steps=recover_steps,
                       tolerance=tolerance, on_progress=lambda done, total: bar.update(task, completed=done, total=total))
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
    generator = torch.Generator(device=loaded.device).manual_seed(0)
    grown = grow_from_seed(loaded.model, H, W, result.grow_steps, generator=generator)
    save_sweep_plot(plot, result.by_radius(), result.by_position(), render_rgb(grown[0]).cpu().numpy())
    out.print(f"Wrote {json_path} and {plot} ({len(result.trials)} trials)")


@app.command()
@user_errors
def export(
    model: ModelArg = None,
    fmt: str = typer.Option(..., "--format", "-f", help="onnx, web, distill, int8 or safetensors."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (.onnx, .html, .json or .safetensors)."),
    device: DeviceOpt = "cpu",
):
    """Write a model as ONNX (one CA step), a web page, the Distill demo's JSON, int8, or safetensors.

    Example: nca export lizard.safetensors --format onnx -o lizard.onnx
    """
    loaded = open_model(model, device)
    export_model(loaded, fmt, output)
    out.print(f"Wrote {output} ({fmt})")
    if fmt in ("int8", "distill") and loaded.target is not None:
        before = measure_quality(loaded.model, loaded.target, runs=4).grow_loss
        after = measure_quality(exported_model(loaded, fmt, output), loaded.target, runs=4).grow_loss
        out.print(f"Grown from the seed (200 steps, mean of 4 runs): loss {before:.5f} before quantization, "
                  f"{after:.5f} after")


@app.command()
@user_errors
def bench(
    batch: int = typer.Option(8, "--batch", help="Samples per batch."),
    grid: int = typer.Option(72, "--grid", help="Grid side in cells."),
    channels: int = typer.Option(16, "--channels", help="State channels."),
    hidden: int = typer.Option(128, "--hidden", help="Hidden units."),
    steps: int = typer.Option(32, "--steps", help="Steps per timed rollout."),
    repeats: int = typer.Option(3, "--repeats", help="Timed rollouts of each formulation, alternating; the median is kept."),
    device: DeviceOpt = "cpu",
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON."),
):
    """Time the engine against a straightforward PyTorch formulation, on this machine, in one run.

    Example: nca bench --json bench.json
    """
    if min(batch, grid, channels, hidden, steps, repeats) < 1 or grid < 3 or channels < 4:
        raise NCAError("--batch, --hidden, --steps and --repeats must be positive, --grid at least 3, "
                       "--channels at least 4")
    dev = pick_device(device)
    config = NCAConfig(channels=channels, hidden=hidden, padding="wrap")
    bar = progress_bar()
    with bar:
        task = bar.add_task("bench", total=None)
        report = run_bench(config, batch, grid, grid, steps, dev, repeats=repeats,
                           on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"Shape: batch {batch}, {grid}x{grid} grid, {channels} channels, {hidden} hidden, {steps} steps "
              f"(median of {repeats} rollouts); "
              f"device {report['device']} ({report['threads']} threads), torch {report['torch']}")
    diff = report["agreement_max_abs_diff"]
    verdict = "agree" if diff < 1e-4 else "DISAGREE"
    out.print(f"Engine and reference {verdict} on the same weights and fire masks: max abs difference {diff:.2e}")
    mm = report["matmul_gflops"]
    out.print(f"Matrix-multiply ceiling: {mm['float32']:.0f} GFLOP/s float32, "
              f"{mm['bfloat16']:.0f} GFLOP/s bfloat16")
    table = Table("state", "mode", "code", "ms/step", "Mcell/s", "GFLOP/s", "ceiling", "peak MB", "speed-up",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for t in report["timings"]:
        speed = f"{report['speedup'][t['mode'] + '_' + t['state']]:.1f}x" if t["formulation"] == "nca" else ""
        table.add_row(t["state"], t["mode"], t["formulation"], f"{t['ms_per_step']:.2f}",
                      f"{t['cell_updates_per_s'] / 1e6:.1f}", f"{t['gflops']:.1f}",
                      f"{t['ceiling_fraction']:.0%}", f"{t['peak_memory_mb']:.0f}", speed)
    out.print(table)
    out.print("GFLOP/s count the two dense layers over every cell (x3 when training), so the engine's "
              "figure is dense-equivalent: it skips dead and resting cells.")
    if json_path is not None:
        with atomic_output(json_path) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        out.print(f"Wrote {json_path}")
    if diff >= 1e-4:
        raise NCAError(f"the engine disagrees with the reference (max abs difference {diff:.2e})")


def main():
    keep_freed_memory()  # rollouts reuse big freed blocks instead of page-faulting them in anew
    app()
