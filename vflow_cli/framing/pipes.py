"""framing.pipes: the system calls the reader and writer share (pipe sizes, splice(2))."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

PIPE_SIZE = 1 << 20  # ask the kernel for pipes this large (fewer context switches)


def widen_pipe(fd: int) -> None:
    """Ask for a larger pipe buffer: 1 MiB pipes move big frames with fewer context switches."""
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            import fcntl

            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ValueError):
        pass  # not a pipe, not Linux, or over /proc/sys/fs/pipe-max-size: keep the default


def is_fifo(fd: int | None) -> bool:
    try:
        return fd is not None and stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def narrow_pipe(fd: int) -> None:
    """The smallest pipe the kernel allows (a page): few packets wait beyond a leaky queue."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    except (OSError, ImportError):
        pass


def fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # an in-memory stream (tests)


_DEVNULL: list[int] = []


def devnull() -> int:
    if not _DEVNULL:
        _DEVNULL.append(os.open(os.devnull, os.O_WRONLY))
    return _DEVNULL[0]


def splice(src: int | None, dst: int | None, count: int) -> int:
    """Move up to count bytes from src to dst inside the kernel; returns how many moved.

    Where splice(2) does not apply (neither end a pipe, not Linux) it moves nothing and the
    caller copies the rest. A closed reader raises BrokenPipeError as a write would.
    """
    call = getattr(os, "splice", None)
    if src is None or dst is None or call is None or count <= 0:
        return 0
    moved = 0
    while moved < count:
        try:
            n = call(src, dst, min(count - moved, 1 << 20))
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EBADF) and moved == 0:
                return 0  # e.g. file to file: copy instead
            raise
        if n == 0:
            break  # end of input: the caller's copy loop reports the truncation
        moved += n
    return moved
