"""Small shared helpers: atomic file writes and JSON I/O."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename ``tmp_path`` onto ``path``.

    A crash mid-write leaves the previous file (if any) untouched. The file gets the
    permissions of an ordinary new file (``0o666`` less the user's umask), not ``mkstemp``'s 0600.

    Example:
        >>> atomic_write("/tmp/x.txt", lambda p: open(p, "w").write("hi"))  # doctest: +ELLIPSIS
        PosixPath('/tmp/x.txt')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes 0600 (and some writers recreate the file): a run's files follow the user's umask
        os.chmod(tmp, umask_mode(0o666))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (``/proc/self/status``).

    Example:
        >>> 0 <= current_umask() <= 0o777
        True
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it, then restore it
    os.umask(mask)
    return mask


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the user's umask: the permissions ``open``/``mkdir`` would give a new file or folder.

    Example:
        >>> umask_mode(0o666) == 0o666 & ~current_umask()
        True
    """
    return mode & ~current_umask()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
            fh.write("\n")
    return atomic_write(path, write)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text``."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write(text)
    return atomic_write(path, write)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")
