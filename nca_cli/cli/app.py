"""The `nca` Typer app: one command module per command or family of commands, registered here."""

from __future__ import annotations

import typer

from .. import __version__
from ..runtime import keep_freed_memory
from .bench import bench
from .console import handle_sigterm, out
from .export import export
from .render import damage, grow, rotate
from .rule import rule_app
from .studio import studio
from .train import train
from .video import video_app

app = typer.Typer(
    name="nca",
    help="Grow, train, wound and turn Neural Cellular Automata (Mordvintsev et al., Distill 2020).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


for command in (train, grow, damage, rotate, export, bench, studio):
    app.command()(command)
app.add_typer(rule_app, name="rule", help="Learn a cellular automaton's rule from what it does, read it back, run it, export it to Golly.")
app.add_typer(video_app, name="video", help="Reconstruct video from a few surviving pixels: train, reconstruct, baselines.")


def main():
    keep_freed_memory()  # rollouts reuse big freed blocks instead of page-faulting them in anew
    handle_sigterm()
    app()
