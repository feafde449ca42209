"""status: the exit statuses every vflow command uses, stage or graph, named once."""

from __future__ import annotations

import enum
import signal


class Exit(enum.IntEnum):
    OK = 0
    ERROR = 1  # a problem the user can fix: bad input, missing file, broken stream, full disk
    USAGE = 2  # a bad command line (click) or a terminal where packets should be
    BUG = 70  # an unexpected exception inside vflow (sysexits EX_SOFTWARE)
    INTERRUPTED = 130  # 128 + SIGINT
    DOWNSTREAM_CLOSED = 141  # 128 + SIGPIPE: the reader left first; not a crash
    TERMINATED = 143  # 128 + SIGTERM


# what a child process's returncode looks like for each way of ending (Popen: -N for signal N)
CLEAN = frozenset({Exit.OK, Exit.DOWNSTREAM_CLOSED, -signal.SIGPIPE})
STOPPED = frozenset(
    {Exit.INTERRUPTED, Exit.TERMINATED, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL}
)


def describe(code: int) -> str:
    """'exit status 1', 'killed by SIGKILL': a Popen returncode for people."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def shell_code(code: int) -> int:
    """A Popen returncode as a shell reports it: 128 + N for a signal."""
    return 128 - code if code < 0 else code
