"""videoencoder: H.264, VP8 and VP9 files through PyAV (FFmpeg's libraries, libx264 and
libvpx in its wheel), on a thread of their own.

    write() ──frame──> bounded queue (QUEUE frames) ──> encoder thread: BGR -> YUV 4:2:0,
                       (a full queue holds the         encode (x264/libvpx threads too), mux
                        stage back, as a pipe does)    ──> file; release() drains, flushes the
                                                       encoder and writes the index

Why a thread: the stage's own thread reads and unpacks the next packet while the previous
frame is converted and encoded; PyAV releases the GIL inside FFmpeg. Measured against
FFmpeg's own program fed through a pipe, on 300 frames of 640x360 (2 cores, same run):
libx264 223 fps in process against 141 fps through `ffmpeg -f rawvideo -i -` (preset
medium; veryfast on a loaded machine 92-152 against 74-86). VP9 with libvpx's realtime
settings: 259 fps (its default "good" deadline: 33 fps, too slow for a stream).

Same interface as cv2.VideoWriter (isOpened, write, release), so `write` keeps one path
for segments, a full disk and a cut input.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from typing import Any

# vflow's codec names -> (PyAV encoder, range of its constant-quality scale)
ENCODERS = {"h264": ("libx264", 51), "vp9": ("libvpx-vp9", 63), "vp8": ("libvpx", 63)}
QUEUE = 8  # frames waiting for the encoder thread at most
DONE = None


def quality_to_crf(quality: int, top: int) -> int:
    """--quality 1..100 (higher: better, larger) on the encoder's own CRF scale 0..top, where
    lower is better: 55 gives x264's own default, 23."""
    return max(0, min(top, round(top * (100 - quality) / 100)))


def encoder_options(codec: str, quality: int, bitrate: int | None) -> dict[str, str]:
    """The encoder's options for --quality or --bitrate (bits a second)."""
    name, top = ENCODERS[codec]
    options: dict[str, str] = {}
    if name == "libx264":
        options["preset"] = "veryfast"  # speed for a stream; crf keeps the quality
    else:  # libvpx's "good" deadline encodes 640x360 at about 30 fps on 2 cores: too slow
        options.update({"deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
        options["lag-in-frames"] = "0"  # frames out as they go in: a full disk shows in time
    if bitrate is None:
        options["crf"] = str(quality_to_crf(quality, top))
        if name != "libx264":
            options["b"] = "0"  # libvpx: constant quality only with no bitrate target
    return options


class AvWriter:
    """An open file with one video stream, encoding on a thread. Errors of the thread are
    raised by the next write() or by release()."""

    def __init__(
        self,
        path: str,
        codec: str,
        fps: float,
        size: tuple[int, int],
        quality: int = 55,
        bitrate: int | None = None,
    ) -> None:
        import av

        width, height = size
        self.size = size
        # Matroska (WebM) holds a whole cluster in memory, 5 s or 5 MB by default: smaller
        # ones make the file grow as it is written, so that a full disk shows in time
        options = {"cluster_size_limit": str(64 << 10), "cluster_time_limit": "1000"}
        matroska = path.lower().endswith((".webm", ".mkv"))
        self.container = av.open(path, "w", options=options if matroska else {})
        try:
            stream: Any = self.container.add_stream(
                ENCODERS[codec][0], rate=Fraction(fps).limit_denominator(1001)
            )
            # 4:2:0 (what browsers play) halves the chroma: width and height must be even
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.thread_type = "AUTO"
            stream.options = encoder_options(codec, quality, bitrate)
            if bitrate is not None:
                stream.bit_rate = bitrate
            self.stream: Any = stream
        except BaseException:
            self.container.close()
            raise
        self.error: BaseException | None = None
        self.muxed = 0  # frames in the file (or in FFmpeg's output buffer); the others are
        # in the queue or the encoder (x264 holds about 17 for its lookahead and B-frames)
        self.queue: queue.Queue[Any] = queue.Queue(QUEUE)
        self.thread = threading.Thread(target=self._encode, name="encoder", daemon=True)
        self.thread.start()

    def isOpened(self) -> bool:
        return True

    def write(self, picture: Any) -> None:
        if self.error is not None:
            raise OSError(f"encoding failed: {self.error}")
        if not picture.flags.writeable:  # a view of memory the stage may not keep
            picture = picture.copy()
        self.queue.put(picture)

    def release(self) -> None:
        """Encode what is queued, flush the encoder, write the container's index."""
        self.queue.put(DONE)
        self.thread.join()
        try:
            self.container.close()
        except Exception as exc:  # a full disk as the index is written
            self.error = self.error or exc
        if self.error is not None:
            error, self.error = self.error, None
            raise OSError(f"encoding failed: {error}") from None

    def _encode(self) -> None:
        import av
        import numpy as np

        stream, mux = self.stream, self.container.mux
        width, height = self.size
        pad = (stream.width - width, stream.height - height)
        done = False
        try:
            while not (done := (picture := self.queue.get()) is DONE):
                if any(pad):
                    picture = np.pad(picture, ((0, pad[1]), (0, pad[0]), (0, 0)), mode="edge")
                packets = stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24"))
                mux(packets)
                self.muxed += len(packets)
            mux(stream.encode(None))  # the frames the encoder still holds
        except Exception as exc:
            self.error = exc
            while not done:  # take what write() and release() still put
                done = self.queue.get() is DONE
