"""The `nca` command line: thin Typer commands over the library modules."""

from __future__ import annotations

import contextlib
import functools
import math
import re
import signal
import sys
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__
from .checkpoint import LoadedModel, load_model, save_model
from .engine import NCAConfig, render_rgb, rgba_loss, seed_state
from .errors import NCAError
from .evaluate import measure_quality
from .growth import kept_steps, parse_grid, run_growth
from .plots import save_loss_curve, save_panels
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
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def user_errors(command):
    """Turn expected failures into one `Error: ...` line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (NCAError, ValueError) as exc:
            err.print(f"Error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_ERROR) from None

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


def parse_duration(text: str) -> float:
    """'90s', '10m', '1h30m', '2h' or plain seconds -> seconds."""
    text = text.strip().lower()
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
    output: Path = typer.Option(None, "-o", "--output", help="Model file to write [default: <target>.safetensors]."),
    mode: str = typer.Option("regen", "--mode", help=f"Experiment: {', '.join(MODES)}."),
    regen: bool = typer.Option(False, "--regen", help="Regenerating mode (pool + damage); same as --mode regen."),
    iterations: int = typer.Option(TrainConfig.iterations, "--iterations", "-n", help="Training iterations."),
    time_budget: str = typer.Option("15m", "--time-budget", help="Stop after this much training time (e.g. 90s, 10m, 1h)."),
    size: int = typer.Option(40, "--size", help="Target size in cells (longer side)."),
    pad: int = typer.Option(16, "--pad", help="Empty cells around the target: the grid is size + 2*pad."),
    batch: int = typer.Option(TrainConfig.batch, "--batch", help="Samples per iteration."),
    pool_size: int = typer.Option(TrainConfig.pool_size, "--pool-size", help="Sample pool size (persist, regen)."),
    steps_min: int = typer.Option(TrainConfig.steps_min, "--steps-min", help="Shortest rollout per iteration."),
    steps_max: int = typer.Option(TrainConfig.steps_max, "--steps-max", help="Longest rollout per iteration."),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="Adam learning rate."),
    lr_decay_at: int = typer.Option(TrainConfig.lr_decay_at, "--lr-decay-at", help="Iteration at which the rate drops x0.1."),
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
                                   seed=seed)
        trainer = Trainer(model_config, train_config, loaded, dev)
    _run_training(trainer, output, state_path, budget, checkpoint_every, plots)


def _run_training(trainer: Trainer, output: Path, state_path: Path, budget: float,
                  checkpoint_every: int, plots: bool) -> None:
    cfg = trainer.config
    bar = progress_bar(TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} it/s"))
    with bar, stop_on_ctrl_c() as should_stop:
        task = bar.add_task(f"train {cfg.mode}", total=cfg.iterations, completed=trainer.iteration,
                            loss="-", rate="-")

        def on_iteration(t: Trainer, loss: float) -> None:
            rate = t.iteration / t.elapsed if t.elapsed else 0.0
            bar.update(task, completed=t.iteration, loss=f"{t.final_loss():.5f}", rate=f"{rate:.2f}")

        stopped = trainer.run(time_budget=budget, on_iteration=on_iteration, should_stop=should_stop,
                              checkpoint=lambda t: t.save_state(state_path), checkpoint_every=checkpoint_every)
    if stopped == "interrupted":
        trainer.save_state(state_path)
        save_model(output, trainer.model, trainer.target, trainer.summary(stopped))
        err.print(f"Interrupted at iteration {trainer.iteration}: saved {output} and resumable state "
                  f"{state_path}; continue with the same command and --resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    quality = measure_quality(trainer.model, trainer.target, runs=4)
    summary = {**trainer.summary(stopped), **quality.to_dict()}
    save_model(output, trainer.model, trainer.target, summary)
    if state_path.exists():
        state_path.unlink()  # the run is complete; its resumable state is no longer needed
    if plots:
        _write_training_plots(trainer, output)
    out.print(f"Trained {trainer.iteration} iterations in {format_duration(trainer.elapsed)} ({stopped}); "
              f"final batch loss {trainer.final_loss():.5f}")
    out.print(f"Grown from the seed ({quality.steps} steps): loss {quality.grow_loss:.5f}; "
              f"regrown after a cut of radius 10: loss {quality.regrow_loss:.5f}")
    out.print(f"Wrote {output}")


def _write_training_plots(trainer: Trainer, output: Path) -> None:
    save_loss_curve(output.with_name(output.stem + ".loss.png"), trainer.losses)
    H, W = trainer.target.shape
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    with torch.no_grad():
        grown = trainer.model.rollout(seed_state(trainer.model.config, H, W, device=trainer.device), 200,
                                      generator=generator)
    panels = [render_rgb(trainer.target.rgba).numpy(), render_rgb(grown[0]).cpu().numpy()]
    save_panels(output.with_name(output.stem + ".preview.png"), panels, ["target", "grown, 200 steps"])


# --------------------------------------------------------------------------------------------- grow


def open_model(model: Optional[str], device: str) -> LoadedModel:
    return load_model(model, device=pick_device(device))


def start_state(loaded: LoadedModel, grid: Optional[str]) -> torch.Tensor:
    """The seed on the model's own canvas (the stored target's size) or on --grid HxW."""
    if grid is not None:
        H, W = parse_grid(grid)
    elif loaded.target is not None:
        H, W = loaded.target.shape
    else:
        H, W = 72, 72
    device = next(loaded.model.parameters()).device
    return seed_state(loaded.model.config, H, W, device=device)


def report_loss(loaded: LoadedModel, x: torch.Tensor, label: str) -> Optional[float]:
    """Loss of x (1, H, W, C) against the stored target when the canvas matches it; None otherwise."""
    if loaded.target is None or tuple(x.shape[1:3]) != loaded.target.shape:
        return None
    return float(rgba_loss(x, loaded.target.rgba.to(x.device))[0])


@app.command()
@user_errors
def grow(
    model: Optional[str] = typer.Argument(None, help="Model file or bundled model name [default: lizard]."),
    output: Path = typer.Option(Path("grow.mp4"), "-o", "--output", help="Output: .mp4, .gif, .png (last frame) or .npy (raw states)."),
    steps: int = typer.Option(400, "--steps", help="Steps to run."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second of the video."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Pixels per cell [default: at least 256 px video]."),
    every: int = typer.Option(1, "--every", help="Keep every K-th step as a frame."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Grow on an HxW canvas, e.g. 128x128 [default: the model's]."),
    strip: bool = typer.Option(False, "--strip", help="With a .png output: all kept frames side by side."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the cells' firing."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
):
    """Grow a pattern from one cell and write a video, GIF, image or raw states.

    Example: nca grow lizard.safetensors --steps 400 -o lizard.mp4
    """
    check_output_path(output)
    frames = kept_steps(steps, every)
    if scale is not None and scale < 1:
        raise NCAError(f"--scale must be at least 1, got {scale}")
    loaded = open_model(model, device)
    x = start_state(loaded, grid)
    scale = scale or default_scale(*x.shape[1:3])
    generator = torch.Generator(device=x.device).manual_seed(seed)
    bar = progress_bar()
    with bar, open_sink(output, frames, fps=fps, scale=scale, strip=strip) as sink:
        task = bar.add_task("grow", total=steps)
        x = run_growth(loaded.model, x, steps, sink, every=every, generator=generator,
                       on_step=lambda k: bar.update(task, completed=k))
    loss = report_loss(loaded, x, "final")
    out.print(f"Grew {steps} steps on a {x.shape[1]}x{x.shape[2]} grid; wrote {frames} frames to {output}")
    if loss is not None:
        out.print(f"Loss against the target: {loss:.5f}")


def main():
    app()
