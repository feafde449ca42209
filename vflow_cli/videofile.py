"""videofile: what writing a video file needs: a codec for a name, a probe, segment names."""

from __future__ import annotations

import os
import re
import tempfile
import time

from vflow_cli.console import one_line
from vflow_cli.opencv import cv2_module, native_stderr_to_log
from vflow_cli.runner import StageError

# By file extension: what browsers play (H.264 in MP4, VP9 in WebM), written through PyAV
# (vflow_cli.videoencoder); what OpenCV's own FFmpeg writes (FOURCCs) for the rest.
CODEC_BY_EXTENSION = {
    ".mp4": "h264",
    ".m4v": "h264",
    ".mov": "h264",
    ".webm": "vp9",
    ".avi": "MJPG",
    ".mkv": "FFV1",
}
# --codec names of the PyAV encoders, and the FOURCCs that mean them
AV_CODECS = {"h264": "h264", "avc1": "h264", "x264": "h264", "vp9": "vp9", "vp90": "vp9"}
AV_CODECS |= {"vp8": "vp8", "vp80": "vp8"}
NO_ENCODER = {"avc3", "hev1", "hvc1", "h265", "x265", "hevc"}


def is_av(codec: str) -> bool:
    """Is this codec written through PyAV (rather than OpenCV's VideoWriter)?"""
    return codec in ("h264", "vp9", "vp8")


def codec_for(path: str, codec: str | None) -> str:
    """The codec to write `path` with: --codec, else by extension; StageError if unusable.
    h264, vp9 and vp8 go through PyAV; any other is a FOURCC for OpenCV."""
    ext = os.path.splitext(path)[1].lower()
    if codec is None:
        if ext not in CODEC_BY_EXTENSION:
            known = ", ".join(sorted(CODEC_BY_EXTENSION))
            raise StageError(
                f"no default codec for {ext or 'a file without an extension'!r}; "
                f"use one of {known} or give --codec (h264, vp9, vp8, or a FOURCC)"
            )
        return CODEC_BY_EXTENSION[ext]
    if codec.lower() in AV_CODECS:
        chosen = AV_CODECS[codec.lower()]
        if (ext == ".webm" and chosen == "h264") or (ext == ".avi" and is_av(chosen)):
            raise StageError(f"a {ext} file cannot hold {chosen}; use .mp4 or .mkv")
        return chosen
    if len(codec) != 4:
        raise StageError(
            f"--codec {codec!r} is neither h264, vp9, vp8 nor a FOURCC (four characters, "
            "e.g. mp4v, MJPG, FFV1)"
        )
    if codec.lower() in NO_ENCODER:
        raise StageError(
            f"codec {codec!r} (H.265) cannot be written; use h264 (.mp4) or vp9 (.webm)"
        )
    return codec


def probe_codec(path: str, fourcc: str) -> None:
    """Open a tiny writer with this codec and container in a scratch directory: StageError
    now, before any frame is consumed, rather than after the first one."""
    ext = os.path.splitext(path)[1] or ".avi"
    if is_av(fourcc):
        return _probe_av(ext, fourcc)
    cv2 = cv2_module()
    import numpy as np

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


def _probe_av(ext: str, codec: str) -> None:
    import numpy as np

    from vflow_cli.videoencoder import AvWriter

    with tempfile.TemporaryDirectory(prefix="vflow-probe-") as scratch:
        try:
            writer = AvWriter(os.path.join(scratch, "probe" + ext), codec, 10.0, (64, 48))
            writer.write(np.zeros((48, 64, 3), np.uint8))
            writer.release()
        except Exception as exc:  # PyAV's errors name FFmpeg's reasons
            raise StageError(
                f"cannot write {codec} into a {ext} file: {one_line(str(exc))}; "
                "try .mp4 (h264), .webm (vp9) or .mkv (FFV1)"
            ) from None


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
