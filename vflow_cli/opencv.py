"""opencv: a quiet cv2 (OpenCV's and FFmpeg's chatter goes to the debug log, not stderr)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from vflow_cli.console import log


def cv2_module() -> Any:
    """Import cv2 with OpenCV's and FFmpeg's own logging silenced (unless -vv).

    Their warnings are several lines each and name C++ source files; a stage reports a
    problem as one line of its own instead.
    """
    if not log.isEnabledFor(logging.DEBUG):
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    import cv2

    if not log.isEnabledFor(logging.DEBUG):
        with contextlib.suppress(AttributeError, cv2.error):
            cv2.setLogLevel(0)  # type: ignore[attr-defined]  # 0: silent
    return cv2


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Send what C libraries write to fd 2 meanwhile to the debug log instead of the terminal.

    FFmpeg, libpng and Qt print to the file descriptor directly, around any Python logging.
    One scratch file serves every call (a new one per decoded image would cost more than
    the decoding of a small one).
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    sink = _scratch()
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        size = os.lseek(sink, 0, os.SEEK_CUR)
        if size:
            os.lseek(sink, 0, os.SEEK_SET)
            text = os.read(sink, min(size, 1 << 16)).decode("utf-8", "replace").strip()
            os.lseek(sink, 0, os.SEEK_SET)
            os.ftruncate(sink, 0)
            for line in text.splitlines()[:20]:
                log.debug("native: %s", line)


@functools.cache
def _scratch() -> int:
    """A file descriptor of an unnamed scratch file, kept for the life of the process."""
    fd, path = tempfile.mkstemp(prefix="vflow-native-")
    os.unlink(path)
    return fd
