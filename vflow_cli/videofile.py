"""videofile: what writing a video file needs: a codec for a name, a probe, segment names."""

from __future__ import annotations

import os
import re
import tempfile
import time

from vflow_cli.opencv import cv2_module, native_stderr_to_log
from vflow_cli.runner import StageError

# What the opencv-python wheel's FFmpeg can write, by file extension. H.264 ('avc1', 'H264',
# 'X264') has no encoder in that wheel; 'FFV1' is lossless.
CODEC_BY_EXTENSION = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "MJPG",
    ".mkv": "FFV1",
}
NO_ENCODER = {"avc1", "h264", "x264", "avc3", "hev1", "hvc1", "h265", "x265"}


def codec_for(path: str, codec: str | None) -> str:
    """The FOURCC to write `path` with: --codec, else by extension; StageError if unusable."""
    ext = os.path.splitext(path)[1].lower()
    if codec is None:
        if ext not in CODEC_BY_EXTENSION:
            known = ", ".join(sorted(CODEC_BY_EXTENSION))
            raise StageError(
                f"no default codec for {ext or 'a file without an extension'!r}; "
                f"use one of {known} or give --codec FOURCC"
            )
        return CODEC_BY_EXTENSION[ext]
    if len(codec) != 4:
        raise StageError(f"--codec {codec!r} is not a FOURCC (four characters, e.g. mp4v, MJPG)")
    if codec.lower() in NO_ENCODER:
        raise StageError(
            f"codec {codec!r} (H.264/H.265) cannot be written by OpenCV's bundled FFmpeg; "
            "write mp4v, MJPG or FFV1 and re-encode with ffmpeg if you need it"
        )
    return codec


def probe_codec(path: str, fourcc: str) -> None:
    """Open a tiny writer with this codec and container in a scratch directory: StageError
    now, before any frame is consumed, rather than after the first one."""
    cv2 = cv2_module()
    import numpy as np

    ext = os.path.splitext(path)[1] or ".avi"
    with tempfile.TemporaryDirectory(prefix="vflow-probe-") as scratch:
        target = os.path.join(scratch, "probe" + ext)
        with native_stderr_to_log():
            writer = cv2.VideoWriter(target, cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
            try:
                ok = writer.isOpened()
                if ok:
                    writer.write(np.zeros((48, 64, 3), np.uint8))
            finally:
                writer.release()
    if not ok:
        raise StageError(
            f"cannot write codec {fourcc!r} into a {ext} file with this OpenCV; "
            "try mp4v (.mp4), MJPG (.avi) or FFV1 (.mkv)"
        )


_COUNTER = re.compile(r"%0?\d*d")


def segment_name(pattern: str, index: int, when: float) -> str:
    """The file name of segment `index`: '%03d' is the counter, other % codes are strftime of
    `when`; without a counter, '-NNN' goes before the extension."""
    if _COUNTER.search(pattern):
        name = _COUNTER.sub(lambda m: m.group(0) % index, pattern, count=1)
    else:
        root, ext = os.path.splitext(pattern)
        name = f"{root}-{index:03d}{ext}"
    if "%" in name:
        name = time.strftime(name, time.localtime(when))
    return name


def check_writable(path: str) -> None:
    """StageError if `path` cannot be created or overwritten (checked before reading input)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StageError(f"cannot write {path}: directory {folder} does not exist")
    if os.path.isdir(path):
        raise StageError(f"cannot write {path}: it is a directory; give a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise StageError(f"cannot write {path}: permission denied")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StageError(f"cannot write {path}: directory {folder} is not writable")
