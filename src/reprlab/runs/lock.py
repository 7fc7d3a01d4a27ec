"""The lock of a run being trained: an OS file lock on ``RUN_DIR/.lock`` holding the trainer's PID.

While a process trains (or resumes) a run it holds an exclusive ``fcntl.flock`` on
``RUN_DIR/.lock``; a second process that wants to write the same run (``reprlab train
--resume RUN``, or ``reprlab train`` into the same name) is refused with one
:class:`~reprlab.base.errors.RunDirError` naming the PID. The operating system drops the
lock when the holder exits, however it exits (``kill -9`` included), so a stale
``.lock`` file left by a killed process never blocks a resume: only a live holder does.
(POSIX only; where ``fcntl`` is missing, e.g. Windows, runs are not locked.)

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with RunLock(folder):
    ...     lock_holder(folder) == os.getpid()
    True
    >>> lock_holder(folder) is None
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from reprlab.base.errors import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, no locking
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"

__all__ = ["LOCK_NAME", "RunLock", "lock_holder"]


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def lock_holder(run_dir: str | os.PathLike) -> int | None:
    """The PID holding ``run_dir``'s lock right now (``-1`` when it cannot be read), or ``None`` when unlocked."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        pid = _read_pid(fd)
        return -1 if pid is None else pid
    finally:
        os.close(fd)


def busy_error(run_dir: str | os.PathLike, pid: int) -> RunDirError:
    """The one error for a run that another process is training."""
    who = f"process {pid}" if pid > 0 else "another process"
    return RunDirError(f"run {run_dir} is being trained by {who} right now",
                       fix=f"wait for it to finish, or stop it (`kill {pid if pid > 0 else 'PID'}`) and then run "
                           f"`reprlab train --resume {run_dir}`")


class RunLock:
    """An exclusive lock on a run directory for the life of this process (or until :meth:`release`)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock and write this PID into it; :class:`RunDirError` naming the holder when taken."""
        if fcntl is None or self._fd is not None:
            return self
        fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            pid = _read_pid(fd)
            os.close(fd)
            raise busy_error(self.run_dir, -1 if pid is None else pid)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays, empty: the next holder rewrites it)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
