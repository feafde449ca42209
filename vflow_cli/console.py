"""console: what a stage shows people on stderr: its log lines (each naming the stage), one-
line messages from libraries, a progress bar on a terminal, and no binary on a screen."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

log = logging.getLogger("vflow")


def common_options(callback: Callable[..., Any]) -> Callable[..., Any]:
    """-v, -q and --debug on every command, stage or runner (csvkit's common flags)."""
    callback = click.option(
        "--debug", is_flag=True, help="Show a Python traceback on an internal error."
    )(callback)
    callback = click.option(
        "-q", "--quiet", count=True, help="Only report errors on stderr; no progress bar."
    )(callback)
    callback = click.option(
        "-v", "--verbose", count=True, help="Report more on stderr (-vv: debugging detail)."
    )(callback)
    return callback


def refuse_terminals(*, reads: bool, writes: bool) -> None:
    """Packets are binary: never read them from a keyboard nor write them to a screen."""
    if reads and isatty(sys.stdin):
        raise click.UsageError(
            "stdin is a terminal, not a packet stream; pipe a producer into this stage, "
            "e.g. `vflow testcard --frames 10 | vflow print`"
        )
    if writes and isatty(sys.stdout):
        raise click.UsageError(
            "stdout is a terminal and this stage writes binary packets; pipe it into a "
            "consumer, e.g. `... | vflow print`, or redirect it to a file"
        )


def isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def command_path() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx else "vflow"


def configure_logging(verbosity: int, name: str | None = None) -> None:
    """-q: errors only; default: warnings; -v: info; -vv: debug. Every line names the stage
    (or NAME: `vflow graph`)."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{name or command_path()}: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def quiet_libraries() -> None:
    """OpenCV's and FFmpeg's own logging off (unless -vv), before anything imports cv2: their
    warnings are several lines each and name C++ source files. Python warnings (numpy's
    RuntimeWarning, ...) become one line of this stage's log, without a source path."""
    if not log.isEnabledFor(logging.DEBUG):
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")

    def show(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
        log.warning("%s: %s", category.__name__, one_line(str(message)))

    warnings.showwarning = show  # type: ignore[assignment]


def internal_error(exc: BaseException, where: str | None = None) -> None:
    """A bug, in one line (exit 70 follows): --debug or VFLOW_DEBUG=1 shows the traceback."""
    click.echo(
        f"{where or command_path()}: internal error: {type(exc).__name__}: "
        f"{one_line(str(exc))} (run with --debug or VFLOW_DEBUG=1 for a traceback)",
        err=True,
    )


def debugging(debug: bool = False) -> bool:
    """--debug given, or VFLOW_DEBUG set: a bug shows its traceback."""
    return debug or bool(os.environ.get("VFLOW_DEBUG"))


def human_bytes(n: float, *, binary: bool = False) -> str:
    """A number of bytes for people: decimal units for amounts and rates ("372.2 KB"),
    binary ones for limits set in them ("1 GiB", as VFLOW_MAX_PACKET=1G means)."""
    if binary:
        for unit in ("bytes", "KiB", "MiB"):
            if n < 1024:
                return f"{n:g} {unit}" if unit == "bytes" else f"{n:.4g} {unit}"
            n /= 1024
        return f"{n:.4g} GiB"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def one_line(text: str) -> str:
    """A library's message as one line: OpenCV's 'OpenCV(4.x) /path/file.cpp:12: error:
    (-215:Assertion failed) cond in function 'f'' becomes '(-215:Assertion failed) cond in
    function 'f''; other line breaks become '; '."""
    text = text.strip()
    if text.startswith("OpenCV(") and " error: " in text:
        text = text.split(" error: ", 1)[1]
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def progress_bar(total: int | None, unit: str):
    """A tqdm bar on stderr when stderr is a terminal and logging is not quiet, else None."""
    if not isatty(sys.stderr) or log.level > logging.WARNING:
        return None
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        sized = size.columns > 0 and size.lines > 0
    except (OSError, ValueError, AttributeError):
        sized = False
    # a terminal that reports no size (a bare pty, `script`) would hide the bar: assume 80x24
    shape = {"dynamic_ncols": True} if sized else {"ncols": 80, "nrows": 24}
    return tqdm(
        total=total, unit=" " + unit, desc=command_path(), leave=False, file=sys.stderr, **shape
    )
