"""write: encode frames into a video file (mp4, webm, avi, mkv), maybe in segments. Streaming."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import IO, Any

import click

from vflow_cli.options import rate_option
from vflow_cli.stage import Packet, StageError, consumer, log
from vflow_cli.videofile import DiskFull, Headroom, free_bytes

DEFAULT_FPS = 30.0
# room a file must keep to be finalised: FFmpeg's output buffer, the container's index
SPARE = 96 << 10  # FFmpeg's output buffer (32 KiB) and the container's trailer


class _Segments:
    """The open cv2.VideoWriter, and when to start the next file."""

    def __init__(
        self,
        pattern: str,
        fourcc: str,
        fps: float,
        seconds: float | None,
        quality: int = 55,
        bitrate: int | None = None,
    ) -> None:
        self.pattern = pattern
        self.fourcc = fourcc
        self.quality = quality
        self.bitrate = bitrate
        self.fps = fps
        self.seconds = seconds
        self.writer: Any = None
        self.size: tuple[int, int] | None = None
        self.index = 0
        self.started_t: float | None = None
        self.in_segment = 0
        self.room: Any = None  # videofile.Headroom of the file being written
        self.frames = 0
        self.files: list[str] = []
        self.full = False

    def name(self, when: float) -> str:
        from vflow_cli.videofile import segment_name

        if self.seconds is None:
            return self.pattern
        return segment_name(self.pattern, self.index, when)

    def due(self, t: Any) -> bool:
        if self.writer is None:
            return True
        if self.seconds is None:
            return False
        if isinstance(t, (int, float)) and self.started_t is not None:
            return t - self.started_t >= self.seconds - 1e-9
        return self.in_segment >= round(self.seconds * self.fps)

    def open(self, size: tuple[int, int], t: Any, wall: Any) -> None:
        self.close()
        when = wall if isinstance(wall, (int, float)) else time.time()
        name = self.name(when)
        if self.seconds is not None:
            self.index += 1
        if free_bytes(name) < SPARE:
            raise DiskFull
        writer = self._writer(name, size)
        if not writer.isOpened():
            if free_bytes(name) < SPARE:
                raise DiskFull
            raise StageError(
                f"cannot write {name} with codec {self.fourcc!r} at {size[0]}x{size[1]}; "
                "check the path, or try another --codec (mp4v, MJPG, FFV1)"
            )
        self.writer, self.size = writer, size
        self.started_t = t if isinstance(t, (int, float)) else None
        self.in_segment = 0
        self.room = Headroom(name, SPARE)
        self.files.append(name)
        log.info("writing %s (%s, %dx%d, %g fps)", name, self.fourcc, *size, self.fps)

    def _writer(self, name: str, size: tuple[int, int]) -> Any:
        """An open writer (cv2.VideoWriter's interface): PyAV's for h264, vp9 and vp8."""
        from vflow_cli.videofile import open_writer

        return open_writer(name, self.fourcc, self.fps, size, self.quality, self.bitrate, SPARE)

    def write(self, picture: Any) -> None:
        """Write one frame, unless the disk is about to be full (videofile.Headroom)."""
        self.room.write(self.writer, picture)
        self.in_segment += 1
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.release()  # writes the index: the file plays
            except OSError as exc:
                if free_bytes(self.files[-1]) >= 4096:
                    raise StageError(f"{self.files[-1]}: {exc}") from None
                self.full = True
            if free_bytes(self.files[-1]) < 4096:
                self.full = True  # the disk filled up anyway: the file may be cut short


def _bitrate(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().lower()
    scale = {"k": 1000, "m": 1000_000}.get(text[-1:], 1)
    try:
        rate = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        rate = 0
    if not 1000 <= rate <= 1e9:
        raise click.BadParameter(f"{value!r} is not a bit rate from 1k to 1000M (800k, 2M)")
    return int(rate)


@consumer
@click.argument("file", metavar="FILE")
@click.option(
    "--codec",
    metavar="CODEC",
    default=None,
    help="h264, vp9, vp8 (what browsers play), or an OpenCV FOURCC: mp4v, MJPG, XVID, FFV1 "
    "(lossless). Default: by extension (.mp4/.mov h264, .webm vp9, .avi MJPG, .mkv FFV1).",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=55,
    show_default=True,
    help="h264, vp9, vp8: constant quality, higher is better and larger (55 is x264's "
    "own default, CRF 23; the scale maps onto each encoder's CRF).",
)
@click.option(
    "--bitrate",
    metavar="RATE",
    default=None,
    callback=_bitrate,
    help="h264, vp9, vp8: aim at RATE bits a second (800k, 2M) instead of a quality.",
)
@rate_option(f"Frame rate of the file. Default: the stream's, else {DEFAULT_FPS:g}.")
@click.option(
    "--segment",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Start a new file every SECONDS of media time. FILE then names them: %03d "
    "is the counter, strftime codes (%Y%m%d-%H%M%S) the start time; otherwise "
    "-000, -001 ... go before the extension.",
)
@click.option(
    "--meta",
    "meta_path",
    metavar="FILE.jsonl",
    default=None,
    help="Also write every packet's metadata (not its pixels) as JSON lines here.",
)
def write(
    packets: Iterator[Packet],
    file: str,
    codec: str | None,
    fps: float | None,
    segment: float | None,
    meta_path: str | None,
    quality: int = 55,
    bitrate: int | None = None,
) -> None:
    """Write frames to a video file; the codec follows the extension.

    Grey and colour-converted frames are written as BGR colour; a frame of another size
    than the first is resized (with a warning). The file is finalised at end of input and
    on Ctrl-C, so it always plays; on a disk about to be full it stops while the file can
    still be finalised, and says so (exit status 1). If the input is cut (a stage before
    this one died), the file is finalised too, and the message says what it holds. The
    frame rate comes from the stream announcement.

    By extension: .mp4 (and .mov, .m4v) H.264 and .webm VP9, which browsers play (through
    PyAV, encoding on a thread of its own, at --quality or --bitrate; width and height are
    made even by repeating the last column or row); .avi Motion JPEG; .mkv FFV1, lossless
    and about 60 times larger than H.264.

    \b
      vflow camera 0 --duration 60 | vflow write clip.mp4
      vflow read big.mkv | vflow resize 1280x-1 | vflow write --quality 70 web.webm
      vflow read in.mp4 | vflow gray | vflow write --codec MJPG grey.avi
      vflow camera 0 | vflow write 'cam-%Y%m%d-%H%M%S.mkv' --segment 600 --meta cam.jsonl
    """
    from vflow_cli.framing import StreamError
    from vflow_cli.images import viewable_picture
    from vflow_cli.opencv import cv2_module
    from vflow_cli.packets import announced_fps, to_json
    from vflow_cli.videofile import (
        check_writable,
        codec_for,
        is_av,
        probe_codec,
        segment_name,
    )

    first = segment_name(file, 0, time.time()) if segment else file
    check_writable(first)
    fourcc = codec_for(file, codec)
    if not is_av(fourcc) and (bitrate is not None or quality != 55):
        raise StageError(f"--quality and --bitrate are for h264, vp9 and vp8, not {fourcc}")
    probe_codec(first, fourcc)
    meta: IO[str] | None = None
    if meta_path is not None:
        check_writable(meta_path)
        try:
            meta = open(meta_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in finally)
        except OSError as exc:
            raise StageError(f"cannot write {meta_path}: {exc.strerror}") from None
    out: _Segments | None = None
    rate = fps
    warned = False

    def kept() -> str:
        if out is None or not out.files:
            return f"nothing was written to {file}"
        return f"{', '.join(out.files)} hold{'s' * (len(out.files) == 1)} {out.frames} frames"

    try:
        for packet in packets:
            if meta is not None:
                meta.write(to_json(packet) + "\n")
            if packet.get("kind") == "stream" and rate is None:
                announced = announced_fps(packet)
                if announced is not None:
                    rate = announced
                continue
            image = packet.get("image")
            if image is None:
                continue
            picture = viewable_picture(packet)
            if out is None:
                if rate is None:
                    log.warning(
                        "the stream does not say its frame rate; writing %g fps "
                        "(set it with --fps)",
                        DEFAULT_FPS,
                    )
                out = _Segments(file, fourcc, rate or DEFAULT_FPS, segment, quality, bitrate)
            height, width = picture.shape[:2]
            t = packet.get("t")
            if out.due(t):
                out.open(out.size or (width, height), t, packet.get("wall"))
            if out.size != (width, height):
                if not warned:
                    log.warning(
                        "frame %s is %dx%d, the file %dx%d: resizing",
                        packet.get("seq", "?"),
                        width,
                        height,
                        *(out.size or (0, 0)),
                    )
                    warned = True
                picture = cv2_module().resize(picture, out.size)
            out.write(picture)
    except DiskFull:
        if out is not None:
            out.close()
        cut = "; the disk filled up as it was finalised: its end may be cut short"
        raise StageError(
            f"no space left on device for {out.files[-1] if out and out.files else file}: "
            f"stopped before frame {packet.get('seq', '?')}, finalising what fits; {kept()}"
            + (cut if out is not None and out.full else "")
        ) from None
    except StreamError as exc:
        if out is not None:
            out.close()
        raise StreamError(f"{exc}; {kept()}") from None
    finally:
        if out is not None:
            out.close()
        if meta is not None:
            meta.close()
    if out is None:
        log.warning("no frames arrived; %s was not written", file)
        return
    if out.full:
        raise StageError(
            f"no space left on device for {out.files[-1]}: the disk filled up as the file "
            "was finalised; its end may be cut short"
        )
    log.info("wrote %d frames to %s", out.frames, ", ".join(out.files))
    if out.files and not os.path.getsize(out.files[-1]):
        raise StageError(f"{out.files[-1]} is empty; the codec {fourcc!r} wrote nothing")
