"""What the command line shows: output and error consoles, progress bars, the error boundary, Ctrl-C."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import InvalidOption, NCAError

# Not on a terminal (a pipe, a file, a test), tables get 100 columns rather than rich's default 80.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 130, 143  # 128 + SIGINT, 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, systemd and batch schedulers send), handled like Ctrl-C: outputs in
    progress are removed, training saves its resumable state."""


def _raise_terminated(signum, frame):
    raise Terminated


def handle_sigterm() -> None:
    """Make SIGTERM raise Terminated (where signals can be set: the main thread)."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def error_line(exc: NCAError) -> str:
    """The one line shown for an expected failure; a named setting is shown as its option."""
    if isinstance(exc, InvalidOption):
        return f"Error: --{exc.name.replace('_', '-')} {exc.problem}"
    return f"Error: {exc}"


def out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: MemoryError, torch's OutOfMemoryError, or its CPU allocator's
    RuntimeError. (Requests are estimated before they allocate; this catches what slips past.)"""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def user_errors(command):
    """The boundary between the library and the user: the project's errors become one `Error: ...`
    line on stderr and exit code 1, as does running out of memory; Ctrl-C exits 130 and SIGTERM
    143. Anything else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NCAError as exc:
            err.print(error_line(exc), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_ERROR) from None
        except (MemoryError, RuntimeError) as exc:
            if not out_of_memory(exc):
                raise
            err.print("Error: out of memory: the request is too large for this machine (try a smaller grid, "
                      "batch or model)", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt as exc:  # outputs in progress were written to temporary files, now removed
            err.print("Terminated" if isinstance(exc, Terminated) else "Interrupted")
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


def progress_bar(*fields: TextColumn) -> Progress:
    """A rich progress bar on stderr; silent when stderr is not a terminal."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *fields,
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err,
                    disable=not err.is_terminal, transient=False)


def counted(n: int, one: str, many: str | None = None) -> str:
    """'1 step', '2 steps'."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def format_duration(seconds: float) -> str:
    """12.3 -> '12s', 754 -> '12m34s'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StopRequest:
    """Set by the first Ctrl-C or SIGTERM: the loop checks it (calling it) and stops cleanly."""

    def __init__(self):
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.signal == signal.SIGTERM else EXIT_INTERRUPTED


@contextlib.contextmanager
def stop_on_ctrl_c():
    """The first Ctrl-C (or SIGTERM) asks the loop to stop cleanly, through the yielded StopRequest;
    a second one aborts."""
    request = StopRequest()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if request():
            for sig, old in previous.items():
                signal.signal(sig, old)
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        request.signal = signum
        err.print("Stopping after this iteration (Ctrl-C again to abort without saving)...")

    try:
        for sig in previous:
            signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. some test runners): no handler, plain Ctrl-C
        pass
    try:
        yield request
    finally:
        with contextlib.suppress(ValueError, TypeError):
            for sig, old in previous.items():
                signal.signal(sig, old)


def exit_interrupted(stop: StopRequest, iteration: int, output, state_path) -> None:
    """A training run stopped by Ctrl-C or SIGTERM, its model and state saved: say where, and exit
    with the signal's code."""
    err.print(f"Interrupted at iteration {iteration}: saved {output} and resumable state "
              f"{state_path}; continue with the same command and --resume")
    raise typer.Exit(stop.exit_code)
