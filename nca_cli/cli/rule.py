"""`nca rule`: learn a cellular automaton's rule from what it does, read it back, run it, export it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import TextColumn

from ..engine import NCA
from ..errors import InvalidOption, NCAError
from ..formats.atomic import atomic_output
from ..formats.frames import check_frame_options, check_output_path, default_scale, open_sink
from ..rules import parse_rule
from ..rules.golly import check_rule_name, rule_file
from ..rules.learn import LearnConfig, learn
from ..rules.notation import NAMES, LifeLike, WireWorld
from ..rules.observed import load_runs, observe, simulated_runs
from ..rules.readback import read_back
from ..rules.report import agreement_lines, describe, fit_lines, unconstrained_lines
from ..rules.rle import format_rle, load_rle
from ..rules.running import check_run, first_difference, place, render, run, soups, states_of_source
from ..rules.saved import RuleTask, open_learned, save_learned
from ..rules.simulate import check_padding
from ..runtime import pick_device
from .console import err, format_duration, out, progress_bar, stop_on_ctrl_c, user_errors
from .options import parse_duration, parse_size

rule_app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
RUN_OUTPUTS = (".gif", ".mp4", ".png", ".npy", ".rle")


@rule_app.command("learn")
@user_errors
def learn_command(
    rule: Optional[str] = typer.Argument(None, help=f"The hand-written rule to learn: B/S (B3/S23), Generations (B2/S/C3, /2/3), Hensel (B2-a/S12) or a name ({', '.join(NAMES)})."),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (.safetensors)."),
    from_: Optional[Path] = typer.Option(None, "--from", help="Learn from observed runs instead: an .npy of integer states, (T, H, W) or (N, T, H, W)."),
    states: Optional[int] = typer.Option(None, "--states", help="With --from: the rule's number of states (default: the highest seen + 1)."),
    padding: str = typer.Option("wrap", "--padding", help="Grid edges: wrap (a torus) or zero (bounded; outside is state 0)."),
    soup_count: Optional[int] = typer.Option(None, "--soups", help="Random soups to simulate (default: 16 per non-empty state)."),
    size: int = typer.Option(64, "--size", help="Side of each soup, in cells."),
    steps: int = typer.Option(16, "--steps", help="Steps simulated from each soup."),
    bands: int = typer.Option(LearnConfig.bands, "--bands", help="Learned 3x3 perception kernels."),
    hidden: int = typer.Option(LearnConfig.hidden, "--hidden", help="Hidden units of the per-cell network."),
    attempts: int = typer.Option(LearnConfig.attempts, "--attempts", help="Fresh starts allowed when an attempt stalls."),
    iterations: int = typer.Option(LearnConfig.iterations, "--iterations", help="Most iterations of one attempt."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the soups and the weights."),
    time_budget: str = typer.Option("60s", "--time-budget", help="Stop learning after this long (e.g. 30s, 5m, none)."),
):
    """Learn a rule with an NCA, from random soups of a hand-written rule or from observed runs.

    Example: nca rule learn B3/S23 -o life.safetensors
    """
    if output.suffix != ".safetensors":
        raise NCAError(f"output must be a .safetensors file, got {output}")
    check_padding(padding)
    budget = parse_duration(time_budget)
    config = LearnConfig(bands=bands, hidden=hidden, attempts=attempts, iterations=iterations, seed=seed)
    source, runs, n_states, origin = _learning_data(rule, from_, states, padding, soup_count, size, steps, seed)
    observed = observe(runs, n_states, padding)
    N, T, H, W = runs.shape
    out.print(f"{origin}: {N} runs of {T} states on {H}x{W} ({padding} edges), {observed.transitions:,} transitions, "
              f"{len(observed.codes):,} distinct neighbourhoods")
    result, stop = _learn_with_progress(observed, config, padding, budget)
    readback = read_back(result.model, observed.codes)
    task = RuleTask(states=n_states, padding=padding, seen=observed.codes, source=None if source is None else source.notation,
                    learned_from="soups" if from_ is None else str(from_),
                    data={"runs": N, "states_per_run": T, "grid": [H, W], "transitions": observed.transitions},
                    readback=readback.rule.notation, family=(source or readback.rule).family)
    save_learned(output, result, task, config)
    check = result.check
    verdict = "exact on every observed neighbourhood" if check.exact else f"{check.wrong} observed neighbourhoods wrong"
    out.print(f"Learned in {format_duration(result.seconds)} ({result.attempts} attempt(s), {check.iteration} iterations "
              f"of the last; {verdict}, margin {check.margin:.2f})")
    out.print(f"Read back over {'all ' if readback.complete else ''}{len(readback.codes):,} neighbourhoods: "
              f"{describe(readback.rule)}")
    if source is not None:
        out.print(agreement_lines(readback, source)[0])
    unseen = int((~readback.seen).sum())
    if unseen:
        out.print(f"{unseen:,} neighbourhoods never observed: unconstrained by the data (nca rule show lists them)")
    out.print(f"Wrote {output}")
    if stop():
        err.print(f"Interrupted: {output} holds the rule learned so far")
        raise typer.Exit(stop.exit_code)


def _learning_data(rule, from_, states, padding, soup_count, size, steps, seed):
    """The runs to learn from: the hand-written rule's soups, or the --from file."""
    if rule is None and from_ is None:
        raise NCAError("give a rule to learn (e.g. B3/S23), or --from with observed runs")
    if rule is not None and from_ is not None:
        raise NCAError("give either a rule to learn (e.g. B3/S23) or --from with observed runs, not both")
    if states is not None and from_ is None:
        raise NCAError("--states is for runs read with --from; a hand-written rule has its own number of states")
    if from_ is not None:
        runs, n_states = load_runs(from_, states)
        return None, runs, n_states, f"Read {from_}"
    source = parse_rule(rule)
    count = soup_count if soup_count is not None else 16 * (source.states - 1)
    if count < 1 or size < 3 or steps < 1:
        raise NCAError(f"soups need a count and steps of at least 1 and a side of at least 3, got {count}, {steps}, {size}")
    runs = simulated_runs(source, count, (size, size), steps, padding, seed)
    return source, runs, source.states, f"Simulated {describe(source)} from random soups"


def _learn_with_progress(observed, config, padding, budget):
    """The library's learn() with a progress bar of the current attempt's iterations and Ctrl-C stopping it."""
    bar = progress_bar(TextColumn("wrong {task.fields[wrong]}"), TextColumn("attempt {task.fields[attempt]}"))
    with bar, stop_on_ctrl_c() as should_stop:
        task = bar.add_task("learn", total=config.iterations, wrong="-", attempt=1)

        def on_check(check):
            bar.update(task, completed=check.iteration, wrong=check.wrong, attempt=check.attempt + 1)

        result = learn(observed, config, padding, budget, on_check, should_stop)
    return result, should_stop


@rule_app.command("show")
@user_errors
def show_command(
    model: str = typer.Argument(..., help="A learned rule's model file."),
    against: Optional[str] = typer.Option(None, "--against", help="Compare with this hand-written rule (default: the one it was learned from)."),
):
    """Read a learned rule back: its notation, agreement, distance to each family, unconstrained transitions.

    Example: nca rule show life.safetensors --against B36/S23
    """
    learned, task, training = open_learned(model)
    origin = f"soups of {task.source}" if task.source else task.learned_from
    out.print(f"{model}: a rule of {task.states} states learned from {origin} ({task.padding} edges)")
    readback = read_back(learned, task.seen)
    out.print(f"Read back over {'all ' if readback.complete else ''}{len(readback.codes):,} neighbourhoods: "
              f"{describe(readback.rule)}")
    if not readback.complete:
        out.print("  (too many configurations to list them all: those observed, turned and mirrored every way)")
    compared = against or task.source
    lines = agreement_lines(readback, parse_rule(compared)) if compared else []
    for line in lines + fit_lines(readback) + unconstrained_lines(readback):
        out.print(line)
    for seen, which in ((True, "observed"), (False, "never observed")):
        margins = readback.margins[readback.seen == seen]
        if len(margins):
            out.print(f"Smallest margin of the chosen next state over the runner-up, {which}: {margins.min():.2f}")


@rule_app.command("run")
@user_errors
def run_command(
    model: Optional[str] = typer.Argument(None, help="A learned rule's model file (or give --rule)."),
    rule: Optional[str] = typer.Option(None, "--rule", help="Run this hand-written rule instead of a learned one."),
    pattern: Optional[Path] = typer.Option(None, "--pattern", help="Start from an .rle pattern (default: a random soup)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Grid HxW (default: the pattern's :T/:P grid, or 64x64)."),
    steps: int = typer.Option(200, "--steps", help="Steps to run."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=f"Write {', '.join(RUN_OUTPUTS)} (.rle: the last state; .npy: every kept state as integers)."),
    runs: int = typer.Option(1, "--runs", help="Soups to run (with a .npy output: (runs, frames, H, W))."),
    density: float = typer.Option(0.5, "--density", help="Soups: the share of non-empty cells."),
    padding: Optional[str] = typer.Option(None, "--padding", help="wrap or zero (default: the pattern's, else the model's, else wrap)."),
    against: Optional[str] = typer.Option(None, "--against", help="Also run this hand-written rule and report the first step they differ."),
    every: int = typer.Option(1, "--every", help="Keep every K-th step as a frame."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Pixels per cell (default: at least 256 px)."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second of a video."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the soups."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
):
    """Run a learned (or, with --rule, a hand-written) rule from a pattern or random soups.

    Example: nca rule run life.safetensors --pattern glider.rle --steps 200 -o glider.gif
    """
    check_frame_options(scale, fps)
    if every < 1:
        raise InvalidOption("every", f"must be at least 1, got {every}")
    source, label, default_padding, seen = _run_source(model, rule, device)
    loaded = load_rle(pattern) if pattern is not None else None
    edges = check_padding(padding or (loaded.padding if loaded and loaded.padding else default_padding))
    grids = _start(loaded, grid, runs, density, seed, states_of_source(source))
    suffix = _check_run_output(output)
    keep = suffix in (".gif", ".mp4", ".png", ".npy")
    check_run(source, grids.size, steps, (steps // every + 1 if keep else 0) + (steps + 1 if against else 0))
    frames: list[np.ndarray] = []
    other = parse_rule(against) if against is not None else None
    with progress_bar() as bar:
        task = bar.add_task("run", total=steps)

        def on_step(k, grid):
            if keep and k % every == 0:
                frames.append(grid)
            bar.update(task, completed=k)

        if other is None:
            last = run(source, grids, steps, edges, on_step=on_step)
        else:
            found, last = first_difference(source, other, grids, steps, edges, on_step=on_step)
    H, W = grids.shape[1:]
    out.print(f"Ran {label} {steps} steps on {H}x{W} ({edges} edges, {len(grids)} run(s)): "
              f"{int((grids > 0).sum())} non-empty cells at the start, {int((last > 0).sum())} at the end")
    if other is not None:
        out.print(f"Identical to {describe(other)} at every one of the {steps} steps" if found is None else
                  f"Differs from {describe(other)} from step {found[0]} on ({found[1]} cells then)")
    if output is not None:
        _write_run(output, suffix, frames, last, source, seen, edges, scale, fps)
        out.print(f"Wrote {output}")


def _run_source(model, rule, device):
    if model is None and rule is None:
        raise NCAError("give a learned rule's model file, or --rule with a hand-written rule")
    if model is not None and rule is not None:
        raise NCAError("give either a learned rule's model file or --rule with a hand-written rule, not both")
    if rule is not None:
        parsed = parse_rule(rule)
        return parsed, describe(parsed), "wrap", None
    learned, task, _ = open_learned(model, pick_device(device), "running a learned rule")
    return learned, f"the learned rule {model}", task.padding, task.seen


def _start(loaded, grid, runs, density, seed, states):
    """The starting grids (runs, H, W): the pattern placed, or random soups."""
    size = parse_size(grid, "grid") if grid else (loaded.grid if loaded and loaded.grid else None)
    if loaded is not None:
        top = int(loaded.cells.max(initial=0))
        if top >= states:
            raise NCAError(f"the pattern has cells in state {top}; the rule has {states} states (0..{states - 1})")
        h, w = loaded.cells.shape
        return place(loaded, size or (max(64, h + 16), max(64, w + 16)))[None]
    if runs < 1:
        raise NCAError(f"runs must be at least 1, got {runs}")
    return soups(runs, size or (64, 64), states, density, seed)


def _check_run_output(output):
    if output is None:
        return None
    suffix = output.suffix.lower()
    if suffix not in RUN_OUTPUTS:
        raise NCAError(f"unsupported output {output}: use one of {', '.join(RUN_OUTPUTS)}")
    if suffix not in (".npy", ".rle"):
        check_output_path(output)
    return suffix


def _write_run(output, suffix, frames, last, source, seen, padding, scale, fps):
    """Kept frames (runs, H, W each) as a picture or video of the first run, states, or the last state as RLE."""
    states = states_of_source(source)
    if suffix == ".npy":
        stack = np.stack(frames, axis=1)  # (runs, frames, H, W)
        with atomic_output(output) as tmp:
            np.save(tmp, stack[0] if len(stack) == 1 else stack)
    elif suffix == ".rle":
        rule = read_back(source, seen).rule if isinstance(source, NCA) else source
        notation = rule.notation if isinstance(rule, (LifeLike, WireWorld)) else None  # a table has no name
        with atomic_output(output) as tmp:
            Path(tmp).write_text(format_rle(last[0], notation, padding, states=states))
    else:
        H, W = last.shape[1:]
        with open_sink(output, len(frames), fps, default_scale(H, W) if scale is None else scale) as sink:
            for frame in frames:
                sink.add(render(frame[0]), frame[0])


@rule_app.command("export")
@user_errors
def export_command(
    model: str = typer.Argument(..., help="A learned rule's model file."),
    fmt: str = typer.Option("golly", "--format", "-f", help="golly (a @RULE/@TABLE .rule file) or notation (B/S or Hensel)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="File to write (golly: Name.rule; notation: default stdout)."),
    name: Optional[str] = typer.Option(None, "--name", help="Golly's name for the rule (default: the file name)."),
):
    """Export the rule read back from a learned model: a Golly rule file, or its notation.

    Example: nca rule export life.safetensors --format golly -o Learned.rule
    """
    learned, task, _ = open_learned(model, use="exporting a learned rule")
    readback = read_back(learned, task.seen)
    if fmt == "notation":
        if not isinstance(readback.rule, (LifeLike, WireWorld)):
            raise NCAError(f"the learned rule has no B/S or Hensel notation (it is {readback.rule.notation}); "
                           f"export it with --format golly")
        if output is None:
            out.print(readback.rule.notation)
            return
        with atomic_output(output) as tmp:
            Path(tmp).write_text(readback.rule.notation + "\n")
    elif fmt == "golly":
        if output is None or output.suffix != ".rule":
            raise NCAError("--format golly needs -o Name.rule (Golly finds a rule by its file name)"
                           + ("" if output is None else f", got {output}"))
        rule_name = check_rule_name(name or output.stem)
        origin = f"soups of {task.source}" if task.source else task.learned_from
        text = rule_file(readback.rule, rule_name, f"Learned by nca from {origin}; read back as {readback.rule.notation}.")
        with atomic_output(output) as tmp:
            Path(tmp).write_text(text)
    else:
        raise NCAError(f"unknown format {fmt!r}: use golly or notation")
    out.print(f"Wrote {output} ({fmt}: {describe(readback.rule)})")
