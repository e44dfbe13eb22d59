"""`nca train --init`: a run that starts from a model's weights; and the warning, with the command
that continues, when a finished model falls short of a good one."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import typer

from ..engine import NCAConfig
from ..errors import NCAError
from ..formats.model_file import LoadedModel, load_model
from ..training import Trainer, finish
from ..training.finish import GOOD_GROWN, GOOD_REGROWN, FinishedRun, Shortfall
from .console import err, format_duration
from .options import given

# Options that shape the model: --init takes them from its file, and refuses one given otherwise.
MODEL_OPTIONS = ("channels", "hidden", "fire_rate", "padding", "conditioning")
# Options the command that continues a run sets itself (or, for the model's, leaves to --init).
SET_WHEN_CONTINUING = {"output", "init", "iterations", "lr_decay_at", "time_budget", "resume", *MODEL_OPTIONS}


def load_init(ctx: typer.Context, spec: str, asked: NCAConfig) -> LoadedModel:
    """--init: the model a run starts from. An NCAError if a model option given on the command line
    differs from the file's, or the targets do not suit it (dims; goals: `asked.goals`)."""
    loaded = load_model(spec)
    loaded.expect("image", "nca train --init")
    config = loaded.model.config
    for name in MODEL_OPTIONS:
        if given(ctx, name) and getattr(asked, name) != getattr(config, name):
            flag = "--" + name.replace("_", "-")
            raise NCAError(f"--init {spec} is a model with {flag} {getattr(config, name)}; leave {flag} out to "
                           "use the model's, or start a new run without --init")
    if config.dims != asked.dims:
        raise NCAError(f"--init {spec} is a {config.dims}D model; it cannot train on a {asked.dims}D target")
    if config.goals != asked.goals:
        raise NCAError(f"--init {spec} is a model of {_targets(config.goals)}; this run gives "
                       f"{_targets(asked.goals)}")
    return loaded


def _targets(goals: int) -> str:
    return "one target" if not goals else f"{goals} targets"


def start_from(trainer: Trainer, loaded: LoadedModel, spec: str) -> None:
    """Start the run from the --init model's weights, counting the iterations it had been trained for."""
    info = loaded.training
    before = sum(v for v in (info.get("iterations_done"), info.get("iterations_before"))
                 if isinstance(v, int) and not isinstance(v, bool) and v > 0)
    trainer.start_from(loaded.model, spec, before)


def warn_if_short(ctx: typer.Context, trainer: Trainer, stopped: str, finished: FinishedRun) -> None:
    """On stderr, one paragraph: a model above the bar for a good one, the pace measured, what a good
    model would take here, and the command that continues from it."""
    short = finished.shortfall
    if short is None:
        return
    q = short.quality
    ended = "The time budget ended the run" if stopped == "time budget" else "The run ended"
    earlier = f" ({short.iterations:,} in all)" if trainer.iterations_before else ""
    losses = (f"grown {q.grow_loss:.4f} and regrown {q.regrow_loss:.4f}, where a good model has grown <= {GOOD_GROWN} "
              f"and regrown <= {GOOD_REGROWN}" if short.regrows else
              f"grown {q.grow_loss:.4f}, where a good model has grown <= {GOOD_GROWN}")
    err.print(f"Warning: this model falls short of a good one: {losses}. "
              f"{ended} after {trainer.iteration:,} iterations{earlier}, at {short.pace:.2f} iterations per "
              f"second on this machine; {_estimate(short)}. Continue training it with:\n  "
              f"{continue_command(ctx, finished.model_path, short.more, short.lr_decay_at)}",
              markup=False)


def _estimate(short: Shortfall) -> str:
    time = "an unknown time" if math.isinf(short.seconds) else f"about {format_duration(short.seconds)}"
    where = "on the lizard" if short.needed == finish.GOOD_ITERATIONS else "for several targets (twice the lizard's)"
    if short.iterations < short.needed:
        return (f"the default recipe reaches that {where} in about {short.needed:,} iterations, so "
                f"{short.more:,} more would take {time} here")
    return (f"it has had as many iterations as the default recipe takes to reach that {where} "
            f"({short.needed:,}); {short.more:,} more would take {time} here")


def continue_command(ctx: typer.Context, model: Path, iterations: int, lr_decay_at: int) -> str:
    """The `nca train` command line that continues from `model` for `iterations` more iterations
    (the rate dropping at `lr_decay_at`, no time budget): this command's own options, but for
    those it sets and the model's, which --init supplies."""
    words = ["nca", "train"]
    for param in ctx.command.params:
        name = param.name
        if name in SET_WHEN_CONTINUING or not given(ctx, name):
            continue
        value = ctx.params[name]
        if param.param_type_name == "argument":
            words += [str(v) for v in value]
        elif param.is_flag:
            words += [max(param.opts, key=len)] if value else param.secondary_opts[-1:]
        else:
            words += [max(param.opts, key=len), str(value)]
    words += ["-o", str(model), "--init", str(model), "--iterations", str(iterations),
              "--lr-decay-at", str(lr_decay_at), "--time-budget", "none"]
    return " ".join(shell_word(w) for w in words)


SAFE = re.compile(r"[^\s'\"\\$`!*?\[\]{}()<>|&;#~]+")


def shell_word(word: str) -> str:
    """`word` quoted for a POSIX shell where it needs it (an emoji stays as it is)."""
    return word if SAFE.fullmatch(word) else shlex.quote(word)
