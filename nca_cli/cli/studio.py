"""`nca studio`: the library's studio served on this machine, until Ctrl-C."""

from __future__ import annotations

import time
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.atomic import check_writable
from ..runtime import pick_device
from ..studio import Session, open_run
from ..studio.security import DEFAULT_HOST
from ..targets.images import check_fit
from ..training import MODES, TrainConfig
from .console import err, out, stop_on_ctrl_c, user_errors
from .options import given

# Recipe options that, given on the command line, change a model file's or resume state's own.
KNOB_OPTIONS = ("lr", "damage_count", "steps_min", "steps_max", "batch", "mode")


@user_errors
def studio(
    ctx: typer.Context,
    source: Optional[str] = typer.Argument(None, help="An emoji or a picture to train on from scratch, a model file (or bundled model name) to continue, or a resume state (default: the bundled lizard, continued)."),
    port: int = typer.Option(0, "--port", help="Port to serve on (default: a free one)."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to serve on; anything but 127.0.0.1 lets others reach the page (they still need the token)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the URL; do not open a browser."),
    folder: Path = typer.Option(Path("."), "--folder", help="Where saved models and the resumable state are written."),
    size: int = typer.Option(40, "--size", help="Target size in cells (longer side) of a new target and of pictures the page sends; a continued model keeps its own grid (and, unless given, its size for pictures)."),
    pad: int = typer.Option(16, "--pad", help="Empty cells around the target: the grid is size + 2*pad."),
    mode: str = typer.Option("regen", "--mode", help=f"Experiment: {', '.join(MODES)}."),
    batch: int = typer.Option(TrainConfig.batch, "--batch", help="Samples per iteration."),
    pool_size: int = typer.Option(TrainConfig.pool_size, "--pool-size", help="Sample pool size (persist, regen)."),
    steps_min: int = typer.Option(TrainConfig.steps_min, "--steps-min", help="Shortest rollout per iteration."),
    steps_max: int = typer.Option(TrainConfig.steps_max, "--steps-max", help="Longest rollout per iteration."),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="Adam learning rate."),
    damage_count: Optional[int] = typer.Option(None, "--damage-count", help="regen: samples wounded per batch (default: 3, at most batch - 1)."),
    channels: int = typer.Option(NCAConfig.channels, "--channels", help="State channels (RGBA + hidden)."),
    hidden: int = typer.Option(NCAConfig.hidden, "--hidden", help="Hidden units of the per-cell network."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the run."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
):
    """Watch a rule learn in the browser, live, and steer it: wound it, change its target, save it.

    Example: nca studio 🦋 --no-browser
    """
    check_fit(size, pad)
    count = min(TrainConfig.damage_count, batch - 1) if damage_count is None else damage_count
    recipe = TrainConfig(mode=mode, batch=batch, pool_size=pool_size, steps_min=steps_min, steps_max=steps_max,
                         lr=lr, damage_count=count, seed=seed)
    knobs = {name: getattr(recipe, name) for name in KNOB_OPTIONS if given(ctx, name)}
    trainer = open_run(source, size, pad, NCAConfig(channels=channels, hidden=hidden), recipe, knobs,
                       pick_device(device))
    if not given(ctx, "size") and not given(ctx, "pad"):
        size, pad = trainer.target.size or size, trainer.target.pad  # a continued run keeps its grid
    session = Session(trainer, folder, size, pad, resumed_from=Path(source) if source and Path(source).is_file() else None)
    for path in session.exit_paths():
        check_writable(path)
    from ..studio.serve import StudioServer  # the server libraries load only for the studio

    server = StudioServer(session, host, port)
    if host != DEFAULT_HOST:
        err.print(f"Warning: serving on {host}, not {DEFAULT_HOST}: whoever can reach this address and has the "
                  "token can drive the studio and write files into its folder", markup=False)
    serve(session, server, no_browser)


def serve(session: Session, server, no_browser: bool) -> None:
    """Train and serve (a StudioServer) until Ctrl-C or SIGTERM, then save the run (exit 130 or 143)."""
    with stop_on_ctrl_c() as stop:
        server.start()
        t = session.trainer
        out.print(f"nca studio: training towards {t.target.name} on a {'x'.join(map(str, t.target.shape))} grid "
                  f"from iteration {t.iteration}; open {server.url}", markup=False)
        session.start()
        out.print("Ctrl-C stops it and saves the run's resumable state", markup=False)
        if not no_browser:
            webbrowser.open(server.url)
        while not stop() and session.failure is None and session.running:
            time.sleep(0.1)
    server.stop()
    session.stop()
    if session.failure is not None:
        raise session.failure
    if not stop():
        raise NCAError("the studio's training stopped unexpectedly")
    model, state = session.save_on_exit()
    err.print(f"Stopped at iteration {session.trainer.iteration}: saved {model} and resumable state {state}; "
              f"continue with: nca studio {state}", markup=False)
    raise typer.Exit(stop.exit_code)
