"""Write output files atomically: to a temporary file beside the target, renamed on success.

Temporary files are named `.<name>.nca-<pid>-<random>.part<suffix>`, so that they are recognisable
and their writer known: one left behind by a process that was killed (SIGKILL cannot be caught)
is removed by the next write to the same output. Any OS error on the way (an unwritable folder,
a full disk, a directory in the way) is an NCAError naming the output, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from ..errors import NCAError

PART = ".part"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Remove temporary files of `path` left by writers that are no longer running. Returns them."""
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.nca-(\d+)-[^.]+{re.escape(PART + path.suffix)}$")
    removed = []
    with contextlib.suppress(OSError):
        for candidate in path.parent.iterdir():
            match = pattern.match(candidate.name)
            if match and not _process_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def check_writable(path: str | Path, what: str = "output") -> None:
    """An NCAError now, before any work, if `path` could not be written: a directory in the way, or
    a folder where files cannot be created (it is created if missing)."""
    path = Path(path)
    if path.is_dir():
        raise NCAError(f"cannot write {what} {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.stem}.nca-{os.getpid()}-", suffix=PART + path.suffix,
                                     dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise NCAError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path in the destination's folder; rename it onto `path` if the block succeeds.

    On any exception (Ctrl-C included) the temporary file is removed and `path` is left untouched;
    OS errors become an NCAError. The temporary name keeps the destination's suffix so writers that
    look at it still work.
    """
    path = Path(path)
    check_writable(path)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.nca-{os.getpid()}-", suffix=PART + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp (and some writers that recreate the file) make it private: give it the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise NCAError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
