"""`nca video`: make demo clips, train a scotopic NCA, reconstruct video from sparse pixels, and the
baselines alone. Options to library calls, progress bars, and the summary lines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import TextColumn

from ..errors import InvalidOption, NCAError
from ..formats.frames import check_frame_options, gif_rate
from ..formats.model_file import load_model
from ..runtime import pick_device
from ..training import resume_path
from ..video.checkpoint import load_video_state, save_video_state
from ..video.clips import write_clip
from ..video.demo_clips import SOURCES, make_demo_clip
from ..video.finish import finish_video_training, save_interrupted_video
from ..video.model import BANDS, HIDDEN_CHANNELS, HIDDEN_UNITS, WARM_UP, VideoReconstructor, video_config
from ..video.reconstruct import MaskSpec, reconstruct as run_reconstruct, score_baselines
from ..video.train import VideoTrainConfig, VideoTrainer
from .console import counted, exit_interrupted, format_duration, out, progress_bar, stop_on_ctrl_c, user_errors
from .options import DeviceOpt, given, parse_duration, parse_size
from .video_scores import (check_outputs, choose_interpolation, choose_smoothing, open_clip, open_tuning_clip,
                           print_scores, write_scores)

video_app = typer.Typer(no_args_is_help=True, help="Reconstruct video from a few surviving pixels.")

ClipArg = Annotated[Path, typer.Argument(help="Video file: mp4, webm, gif, ...")]
KeepOpt = Annotated[Optional[float], typer.Option("--keep", help="Fraction of pixels that survive, in (0, 1].")]
FixedOpt = Annotated[Optional[bool], typer.Option("--mask-fixed/--mask-random", help="One fixed sensor pattern, or a fresh random mask every frame.")]
SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Fit frames to HxW pixels (cover and centre-crop), e.g. 128x128.")]
FramesOpt = Annotated[Optional[int], typer.Option("--frames", help="Use at most this many frames.")]
MaskSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the masks.")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the scores as JSON.")]
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Write PSNR over time of every method as a PNG.")]
SigmaSpaceOpt = Annotated[Optional[float], typer.Option("--sigma-space", help="Interpolation: Gaussian sigma in pixels (with --sigma-time).")]
SigmaTimeOpt = Annotated[Optional[float], typer.Option("--sigma-time", help="Interpolation: Gaussian sigma in frames (with --sigma-space).")]


@video_app.command("clip")
@user_errors
def clip(
    source: Annotated[str, typer.Argument(help=f"What to film: {', '.join(SOURCES)}.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Clip to write: .mp4 or .gif.")],
    size: Annotated[str, typer.Option("--size", help="Frame size HxW in pixels.")] = "96x96",
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.")] = 300,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 30.0,
    speed: Annotated[float, typer.Option("--speed", help="Photographs: how fast the camera moves, pixels per frame.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Photographs: where on its loop the camera starts, which way it turns.")] = 0,
):
    """Make a demo clip locally: the camera looping over a photograph that ships with scikit-image,
    or the bundled lizard growing, cut and healing.

    Example: nca video clip astronaut -o astronaut.mp4
    """
    if output.suffix.lower() not in (".mp4", ".gif"):
        raise NCAError(f"a clip is written as .mp4 or .gif, got {output}")
    check_frame_options(fps=fps)
    made = make_demo_clip(source, parse_size(size), frames, fps, speed, seed)
    write_clip(output, made)
    stored = gif_rate(fps) if output.suffix.lower() == ".gif" else fps
    rate = f"{fps:g} fps" if stored == fps else f"{stored:.4g} fps (the nearest to {fps:g} that a GIF stores)"
    out.print(f"Wrote {output}: {frames} frames of {size} at {rate}")


# Options that shape a run: --resume continues the run as it was saved, so these may not change.
RECIPE_OPTIONS = ("keep", "mask_fixed", "steps_per_frame", "batch", "crop", "window", "lr", "lr_decay_at",
                  "augment", "seed")
MODEL_OPTIONS = {"hidden_channels": None, "hidden": "hidden", "perception": "perception", "bands": "learned_bands",
                 "fire_rate": "fire_rate"}


def refuse_changed_options(ctx: typer.Context, trainer: VideoTrainer, asked: dict) -> None:
    """An NCAError if an option given on this command line differs from the resumed run's."""
    saved = {name: getattr(trainer.config, name) for name in RECIPE_OPTIONS}
    config = trainer.model.config
    saved.update({name: config.channels - trainer.layout.hidden_start if field is None else getattr(config, field)
                  for name, field in MODEL_OPTIONS.items()})
    for name, value in saved.items():
        if given(ctx, name) and asked[name] != value:
            flag = "--" + name.replace("_", "-")
            raise NCAError(f"--resume continues the saved run, which has {flag} {value}; leave {flag} out to "
                           "continue it, or start a new run without --resume")


@video_app.command("train")
@user_errors
def train(
    ctx: typer.Context,
    clip: ClipArg,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Model file to write (default: <clip>.safetensors).")] = None,
    keep: Annotated[float, typer.Option("--keep", help="Fraction of pixels that survive, in (0, 1].")] = VideoTrainConfig.keep,
    mask_fixed: Annotated[bool, typer.Option("--mask-fixed", help="One fixed sensor pattern per crop instead of a fresh mask every frame.")] = False,
    steps_per_frame: Annotated[int, typer.Option("--steps-per-frame", help="NCA steps run after each frame.")] = VideoTrainConfig.steps_per_frame,
    iterations: Annotated[int, typer.Option("--iterations", "-n", help="Training iterations.")] = VideoTrainConfig.iterations,
    time_budget: Annotated[str, typer.Option("--time-budget", help="Stop after this much training time (e.g. 90s, 9m, none); a run it cuts short drops its rate early.")] = "9m",
    size: SizeOpt = None,
    frames: FramesOpt = None,
    grey: Annotated[bool, typer.Option("--grey", help="Train a grey model even on a colour clip.")] = False,
    batch: Annotated[int, typer.Option("--batch", help="Crops followed at once.")] = VideoTrainConfig.batch,
    crop: Annotated[int, typer.Option("--crop", help="Side of the square training crops, pixels.")] = VideoTrainConfig.crop,
    window: Annotated[int, typer.Option("--window", help="Frames back-propagated through per iteration.")] = VideoTrainConfig.window,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = VideoTrainConfig.lr,
    lr_decay_at: Annotated[int, typer.Option("--lr-decay-at", help="Iteration at which the rate drops x0.1.")] = VideoTrainConfig.lr_decay_at,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Show each crop at a random scale, turned or mirrored, its colours reordered, its contrast and brightness changed.")] = VideoTrainConfig.augment,
    hidden_channels: Annotated[int, typer.Option("--hidden-channels", help="Hidden channels of each cell.")] = HIDDEN_CHANNELS,
    hidden: Annotated[int, typer.Option("--hidden", help="Hidden units of the per-cell network.")] = HIDDEN_UNITS,
    perception: Annotated[str, typer.Option("--perception", help="learned (3x3 kernels) or sobel.")] = "learned",
    bands: Annotated[int, typer.Option("--bands", help="Learned perception: kernels per channel.")] = BANDS,
    fire_rate: Annotated[float, typer.Option("--fire-rate", help="Probability that a cell updates per step.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: weights, crops and masks.")] = 0,
    device: DeviceOpt = "auto",
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Save resumable state every N iterations (0: never).")] = 100,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved beside the output file.")] = False,
):
    """Train an NCA that reconstructs CLIP from the pixels that survive (self-supervised).

    Only surviving pixels are ever compared: each cell's estimate against the value that arrives
    at it, before it is written in.

    Example: nca video train astronaut.mp4 --keep 0.01 -o scotopic.safetensors
    """
    output = output or clip.with_suffix(".safetensors")
    if output.suffix != ".safetensors":
        raise NCAError(f"output must be a .safetensors file, got {output}")
    if checkpoint_every < 0:
        raise InvalidOption("checkpoint_every", f"must not be negative, got {checkpoint_every}")
    budget, dev = parse_duration(time_budget), pick_device(device)
    source = open_clip(clip, size, frames)
    source = source.with_channels(1) if grey else source
    asked = dict(keep=keep, mask_fixed=mask_fixed, steps_per_frame=steps_per_frame, batch=batch, crop=crop,
                 window=window, lr=lr, lr_decay_at=lr_decay_at, augment=augment, seed=seed)
    model_asked = dict(hidden_channels=hidden_channels, hidden=hidden, perception=perception, bands=bands,
                       fire_rate=fire_rate)
    state_path = resume_path(output)
    if resume:
        if not state_path.exists():
            raise NCAError(f"nothing to resume: {state_path} does not exist")
        trainer = load_video_state(state_path, source, dev, iterations=iterations if given(ctx, "iterations") else None)
        refuse_changed_options(ctx, trainer, {**asked, **model_asked})
        out.print(f"Resuming {state_path} at iteration {trainer.iteration}")
    else:
        model_config = video_config(source.pixel_channels, hidden_channels, hidden, perception, bands, fire_rate)
        trainer = VideoTrainer(model_config, VideoTrainConfig(iterations=iterations, **asked), source, dev)
    with stop_on_ctrl_c() as stop:
        stopped = train_with_progress(trainer, state_path, budget, checkpoint_every, stop)
    if stopped == "interrupted":
        save_interrupted_video(trainer, output, state_path)
        exit_interrupted(stop, trainer.iteration, output, state_path)
    report_training(trainer, stopped, finish_video_training(trainer, output, state_path, stopped))
    out.print(f"Wrote {output}")


def report_training(trainer: VideoTrainer, stopped: str, finished) -> None:
    """The summary lines of a finished run: iterations, time, loss, and the training clip's scores."""
    out.print(f"Trained {trainer.iteration} iterations in {format_duration(trainer.elapsed)} ({stopped}); "
              f"final batch loss {trainer.final_loss():.5f}")
    if trainer.decay_from < min(trainer.config.lr_decay_at, trainer.iteration):
        out.print(f"The time budget came first: the learning rate dropped at iteration {trainer.decay_from} "
                  f"instead of {trainer.config.lr_decay_at}")
    out.print(f"Chosen on the clip: interpolation sigma {finished.params.sigma_space:g} px, "
              f"{finished.params.sigma_time:g} frames; the NCA's readout smoothed "
              f"{counted(finished.smoothing, 'pass', 'passes')}. Against the clip's full frames:")
    print_scores(finished.scores)


def train_with_progress(trainer: VideoTrainer, state_path: Path, budget: float | None, checkpoint_every: int,
                        should_stop) -> str:
    """VideoTrainer.run with a progress bar and resume states, until should_stop() (Ctrl-C) asks it
    to stop after the current iteration. Returns why it stopped."""
    bar = progress_bar(TextColumn("loss {task.fields[loss]}"))
    with bar:
        task = bar.add_task("video train", total=trainer.config.iterations, completed=trainer.iteration, loss="-")

        def on_iteration(t: VideoTrainer, loss: float) -> None:
            bar.update(task, completed=t.iteration, loss=f"{t.final_loss():.5f}")

        return trainer.run(time_budget=budget, on_iteration=on_iteration, should_stop=should_stop,
                           checkpoint=lambda t: save_video_state(t, state_path), checkpoint_every=checkpoint_every)


@video_app.command("reconstruct")
@user_errors
def reconstruct(
    model: Annotated[str, typer.Argument(help="A video model file (from nca video train).")],
    clip: ClipArg,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Side-by-side video (.mp4, .gif): source | survivors | NCA | best baseline.")] = None,
    keep: KeepOpt = None,
    mask_fixed: FixedOpt = None,
    steps_per_frame: Annotated[Optional[int], typer.Option("--steps-per-frame", help="NCA steps per frame (default: as trained).")] = None,
    warm_up: Annotated[int, typer.Option("--warm-up", help="NCA steps the first frame gets beyond the others.")] = WARM_UP,
    smoothing: Annotated[Optional[int], typer.Option("--smoothing", help="Passes of 3x3 smoothing of the NCA's estimates (default: as chosen on the training clip).")] = None,
    seed: MaskSeedOpt = 0,
    json_path: JsonOpt = None,
    plot: PlotOpt = None,
    size: SizeOpt = None,
    frames: FramesOpt = None,
    tune_on: Annotated[Optional[Path], typer.Option("--tune-on", help="Choose the interpolation's sigmas and the NCA's smoothing on this clip (e.g. the training clip).")] = None,
    sigma_space: SigmaSpaceOpt = None,
    sigma_time: SigmaTimeOpt = None,
    scale: Annotated[Optional[int], typer.Option("--scale", help="Pixels per pixel of the side-by-side video (default: at least 256 px high).")] = None,
    device: DeviceOpt = "auto",
):
    """Reconstruct CLIP from its surviving pixels with a video model, scored against the full frames
    beside the baselines.

    Example: nca video reconstruct scotopic.safetensors coffee.mp4 --keep 0.01 -o side_by_side.mp4 --json scores.json
    """
    check_outputs(output, json_path, plot, scale)
    loaded = load_model(model, device=pick_device(device))
    loaded.expect("video", "reconstructing video")
    task = loaded.task
    source = open_clip(clip, size, frames).with_channels(int(task["pixel_channels"]))
    masks = MaskSpec(task["keep"] if keep is None else keep,
                     task["mask"] == "fixed" if mask_fixed is None else mask_fixed, seed)
    tuning = open_tuning_clip(tune_on, source)
    params, how = choose_interpolation(source, masks, tuning, sigma_space, sigma_time, task.get("interpolation"))
    nca = VideoReconstructor(loaded.model, source.pixel_channels,
                             int(task["steps_per_frame"]) if steps_per_frame is None else steps_per_frame,
                             warm_up=warm_up)
    passes, smoothed = choose_smoothing(nca, source, masks, tuning, smoothing, task.get("smoothing"))
    result = run_reconstruct(nca.fresh(passes), source, masks, params, how, output, scale, smoothing=smoothed)
    write_scores(result, json_path, plot)
    print_scores(result)
    for path in (output, json_path, plot):
        if path is not None:
            out.print(f"Wrote {path}")


@video_app.command("baseline")
@user_errors
def baseline(
    clip: ClipArg,
    keep: Annotated[float, typer.Option("--keep", help="Fraction of pixels that survive, in (0, 1].")] = 0.01,
    mask_fixed: Annotated[bool, typer.Option("--mask-fixed", help="One fixed sensor pattern instead of a fresh mask every frame.")] = False,
    seed: MaskSeedOpt = 0,
    json_path: JsonOpt = None,
    plot: PlotOpt = None,
    size: SizeOpt = None,
    frames: FramesOpt = None,
    tune_on: Annotated[Optional[Path], typer.Option("--tune-on", help="Choose the interpolation's sigmas on this clip (default: CLIP itself).")] = None,
    sigma_space: SigmaSpaceOpt = None,
    sigma_time: SigmaTimeOpt = None,
):
    """Score the baselines alone on CLIP: last-seen pixel and Gaussian interpolation.

    Example: nca video baseline coffee.mp4 --keep 0.01 --json baseline.json
    """
    check_outputs(None, json_path, plot)
    source = open_clip(clip, size, frames)
    masks = MaskSpec(keep, mask_fixed, seed)
    params, how = choose_interpolation(source, masks, open_tuning_clip(tune_on, source), sigma_space, sigma_time, None)
    result = score_baselines(source, masks, params, how)
    write_scores(result, json_path, plot)
    print_scores(result)
    for path in (json_path, plot):
        if path is not None:
            out.print(f"Wrote {path}")
