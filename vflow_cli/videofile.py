"""videofile: what writing a video file needs: a codec for a name, a probe, segment names."""

from __future__ import annotations

import os
import re
import tempfile
import time
from typing import Any

from vflow_cli.console import one_line
from vflow_cli.errors import StageError
from vflow_cli.opencv import cv2_module, native_stderr_to_log

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


class DiskFull(Exception):
    """The disk is about to be full: the file must end while it can still be finalised."""


def free_bytes(path: str) -> int:
    """What this process may still write on the filesystem of `path`, a folder or a file in
    one (root may use the blocks reserved for it)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        fs = os.statvfs(folder)
    except OSError:
        return 1 << 62
    blocks = fs.f_bfree if os.geteuid() == 0 else fs.f_bavail
    return blocks * fs.f_frsize


def open_writer(
    path: str,
    codec: str,
    fps: float,
    size: tuple[int, int],
    quality: int = 55,
    bitrate: int | None = None,
    spare: int = 96 << 10,
) -> Any:
    """An open video writer with cv2.VideoWriter's interface: PyAV's (on an encoder thread)
    for h264, vp9 and vp8, OpenCV's for a FOURCC. DiskFull when the disk has no room to
    begin; StageError when PyAV cannot write there (OpenCV's says so by isOpened())."""
    if is_av(codec):
        from vflow_cli.videoencoder import AvWriter

        try:
            return AvWriter(path, codec, fps, size, quality, bitrate)
        except Exception as exc:
            if free_bytes(path) < spare:
                raise DiskFull from None
            raise StageError(f"cannot write {path} with {codec}: {one_line(str(exc))}") from None
    cv2 = cv2_module()
    with native_stderr_to_log():
        return cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*codec), fps, size)


class Headroom:
    """Room to finalise the video file being written, checked before each frame: OpenCV's
    writer reports no error when the disk is full and leaves a file without its index, so
    stopping while there is room keeps everything written before playable.

    The file's size lags behind the frames written by what FFmpeg holds in its output
    buffer (32 KiB; 256 KiB for Matroska), so the room needed is the largest step the file
    has grown by at once, plus three frames and the container's index; and for PyAV's
    encoder, the frames still in its queue and in the encoder. One per file."""

    INDEX_PER_FRAME = 64

    def __init__(self, path: str, spare: int) -> None:
        self.path, self.spare = path, spare
        self.written = 0  # frames given to the writer
        self.seen_size = self.seen_frames = self.step = 0

    def write(self, writer: Any, picture: Any) -> None:
        """writer.write(picture), or DiskFull if the file could not be finalised after it."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            size = 0
        done = getattr(writer, "muxed", self.written)  # frames that reached FFmpeg
        if size != self.seen_size:
            self.step = max(self.step, size - self.seen_size)
            self.seen_size, self.seen_frames = size, done
        # until something is measured, assume 8:1 compression
        per_frame = size / self.seen_frames if self.seen_frames and size else picture.nbytes / 8
        coming = 3 + self.written - done
        index = self.INDEX_PER_FRAME * (self.written + 1)
        needed = self.spare + self.step + coming * per_frame + index
        if free_bytes(self.path) < needed:
            raise DiskFull
        try:
            writer.write(picture)
        except OSError as exc:  # PyAV's encoder thread failed
            if free_bytes(self.path) < needed:
                raise DiskFull from None
            raise StageError(f"{self.path}: {one_line(str(exc))}") from None
        self.written += 1
