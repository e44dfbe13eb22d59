"""The `nca` command's entry point. Loading the command line (torch and all) takes seconds on a busy
machine; Ctrl-C meanwhile exits as it does during a command (130), without a traceback."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as the commands exit


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    run()
