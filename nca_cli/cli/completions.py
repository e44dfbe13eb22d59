"""Shell completion scripts for `nca`, as Typer generates them for this app.

The scripts call back into `nca` (with _NCA_COMPLETE set) to complete commands and options, so they
stay right as the app changes; `python -m nca_cli.cli.completions` rewrites the files in completions/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer._completion_shared import get_completion_script

SHELLS = {"bash": "nca.bash", "zsh": "_nca", "fish": "nca.fish"}


def completion_script(shell: str) -> str:
    return get_completion_script(prog_name="nca", complete_var="_NCA_COMPLETE", shell=shell)


def write_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for shell, name in SHELLS.items():
        (folder / name).write_text(completion_script(shell))


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("completions"))
