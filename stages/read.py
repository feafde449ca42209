"""read: decode a video file into frames (anything OpenCV's FFmpeg decodes). Streaming."""

from __future__ import annotations

import os
from collections.abc import Iterator

import click

from vflow_cli.clock import Ticker
from vflow_cli.options import frames_option, name_option
from vflow_cli.stage import Packet, StageError, log, producer

READ_TIMEOUT = 30.0  # seconds one frame may take to decode before the file counts as stuck


def parse_start(text: str) -> tuple[int | None, float | None]:
    """'120' -> frame 120; '4.5s' or '1:02.5' -> seconds."""
    text = text.strip()
    try:
        if text.isdigit():
            return int(text), None
        if text.endswith("s"):
            seconds = float(text[:-1])
        elif ":" in text:
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
        else:
            raise ValueError
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a frame number (120) or a time (4.5s, 1:02.5)"
        ) from None
    if seconds < 0:
        raise click.BadParameter(f"{text!r} is before the start of the file")
    return None, seconds


def open_file(path: str):
    """A cv2.VideoCapture on `path`, or StageError saying why not."""
    from vflow_cli.opencv import cv2_module, native_stderr_to_log

    if not os.path.exists(path):
        raise StageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise StageError(f"{path} is a directory; to read its images use `vflow images {path}`")
    if not os.access(path, os.R_OK):
        raise StageError(f"{path}: permission denied")
    if _is_text(path):
        raise StageError(f"{path} is a text file, not a video")
    cv2 = cv2_module()
    # as many decoder threads as the ffmpeg command line uses (cores + 1): frame threading
    # keeps one more frame in flight, and on a busy machine the decoder gets its fair share
    threads = (os.cpu_count() or 1) + 1
    with native_stderr_to_log():
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not capture.isOpened():
        raise StageError(
            f"{path} is not a video OpenCV can decode (not a video file, or damaged); "
            "for still images use `vflow images`"
        )
    return capture


def _is_text(path: str) -> bool:
    """FFmpeg renders any text file as ANSI art 'video'; nobody means that."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end
            return False
    return True


@producer
@click.argument("file", metavar="FILE")
@click.option(
    "--start",
    metavar="WHEN",
    default=None,
    help="Start at this frame number (120) or time (4.5s, 1:02.5). Default: the start.",
)
@frames_option("the whole file (forever with --loop)")
@click.option("--loop", is_flag=True, help="Start again from --start at the end of the file.")
@click.option(
    "--realtime",
    is_flag=True,
    help="Pace frames at the file's frame rate. Default: as fast as they decode.",
)
@name_option(None, "the file name")
def read(
    file: str,
    start: str | None,
    frames: int | None,
    loop: bool,
    realtime: bool,
    name: str | None,
) -> Iterator[Packet]:
    """Read a video file and produce its frames, with frame numbers and media timestamps.

    The stream opens with a 'stream' packet (source, width, height, fps, length, frames,
    file); each frame is {"kind": "frame", "seq", "frame" (the file's frame number), "t"
    (media seconds), "wall", "image"}. With a known length, a terminal shows a progress bar.

    \b
      vflow read talk.mp4 | vflow resize 640x-1 | vflow write small.mp4
      vflow read clip.avi --start 10s --frames 100 --realtime | vflow show
    """
    from vflow_cli import packets
    from vflow_cli.capture import Grabber, Timeout
    from vflow_cli.opencv import cv2_module

    first_frame, first_time = parse_start(start) if start else (0, None)
    capture = open_file(file)
    cv2 = cv2_module()
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    if not 0 < fps < 1000:
        fps = 0.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if first_time is not None:
        first_frame = round(first_time * fps) if fps else 0
        if not fps:
            capture.set(cv2.CAP_PROP_POS_MSEC, first_time * 1000)
    first_frame = first_frame or 0
    if total > 0 and first_frame >= total:
        capture.release()
        raise StageError(f"--start {start} is past the end of {file} ({total} frames)")
    if first_frame:
        capture.set(cv2.CAP_PROP_POS_FRAMES, first_frame)
    grabber = Grabber(capture)
    try:
        ok, image, wall, msec = grabber.get(READ_TIMEOUT)
        if not ok:
            raise StageError(f"{file} has no video frames OpenCV can decode")
        height, width = image.shape[:2]
        length = frames
        if not loop and total > 0:
            length = total - first_frame if frames is None else min(frames, total - first_frame)
        yield packets.stream(
            name or os.path.basename(file),
            width,
            height,
            fps or None,
            length,
            file=file,
            frames=total if total > 0 else None,
        )
        ticker = Ticker(1.0 / fps) if realtime and fps else None
        if realtime and not fps:
            log.warning("%s does not say its frame rate; --realtime is ignored", file)
        seq = 0
        index = first_frame  # the file's own frame number
        offset = 0.0  # media time added by --loop
        last_t = 0.0
        while frames is None or seq < frames:
            if ok:
                t = offset + (msec / 1000 if msec or not fps else index / fps)
                if ticker is not None:
                    ticker.wait()
                yield packets.frame(seq, t, image, wall=wall, frame=index)
                last_t = t
                seq += 1
                index += 1
            elif loop and seq > 0 and index > first_frame:
                offset = last_t + (1.0 / fps if fps else 0.0) - (first_frame / fps if fps else 0)
                capture.set(cv2.CAP_PROP_POS_FRAMES, first_frame)
                index = first_frame
                grabber.retry()
            else:
                break
            if frames is not None and seq >= frames:
                break
            try:
                ok, image, wall, msec = grabber.get(READ_TIMEOUT)
            except Timeout:
                raise StageError(
                    f"{file}: no frame decoded within {READ_TIMEOUT:g} s; the file may be damaged"
                ) from None
    except Timeout:
        raise StageError(f"{file}: no frame decoded within {READ_TIMEOUT:g} s") from None
    finally:
        grabber.close()
    if total > 0 and not loop and frames is None and index < total:
        # containers that store no frame count give an estimate (duration x rate): a frame
        # or two short is that; more is a damaged or cut file, which the user should know
        short = total - index > max(2, total // 100)
        (log.warning if short else log.info)(
            "%s ended at frame %d of the %d it announced%s",
            file,
            index,
            total,
            ": the file is damaged or cut short" if short else "",
        )
