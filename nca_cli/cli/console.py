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

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def error_line(exc: NCAError) -> str:
    """The one line shown for an expected failure; a named setting is shown as its option."""
    if isinstance(exc, InvalidOption):
        return f"Error: --{exc.name.replace('_', '-')} {exc.problem}"
    return f"Error: {exc}"


def user_errors(command):
    """The boundary between the library and the user: the project's errors become one `Error: ...`
    line on stderr and exit code 1, Ctrl-C exit code 130. Anything else is a bug and keeps its
    traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NCAError as exc:
            err.print(error_line(exc), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:  # outputs in progress were written to temporary files, now removed
            err.print("Interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def progress_bar(*fields: TextColumn) -> Progress:
    """A rich progress bar on stderr; silent when stderr is not a terminal."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *fields,
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err,
                    disable=not err.is_terminal, transient=False)


def format_duration(seconds: float) -> str:
    """12.3 -> '12s', 754 -> '12m34s'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


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
