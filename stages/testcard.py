"""testcard: a synthetic video source that needs no camera (pystreaming's test card). Streaming."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.clock import Ticker, timecode
from vflow_cli.options import frames_option, name_option, parse_frame_size, rate_option
from vflow_cli.stage import Packet, producer

SIZES = {"small": (320, 240), "medium": (640, 480), "large": (1280, 720), "hd": (1920, 1080)}
NOMINAL_FPS = 30.0  # the media timeline when frames are made as fast as possible


@producer
@click.option(
    "--size",
    default="medium",
    show_default=True,
    metavar="SIZE",
    help="small (320x240), medium (640x480), large (1280x720), hd (1920x1080) or WIDTHxHEIGHT.",
)
@frames_option("run until interrupted")
@rate_option(
    "Pace frames in real time at RATE a second. Default: as fast as possible, "
    f"time-stamped at {NOMINAL_FPS:g} a second."
)
@click.option(
    "--animated",
    is_flag=True,
    help="Move the picture: a sweeping bar and a bouncing ball, one step a frame.",
)
@name_option("testcard")
def testcard(
    size: str, frames: int | None, fps: float | None, animated: bool, name: str
) -> Iterator[Packet]:
    """Produce test-card frames: colour bars, a grey ramp, the frame number and time.

    The stream opens with a 'stream' packet (source, width, height, fps, length); each
    frame packet is {"kind": "frame", "seq", "t" (media seconds), "wall" (Unix time), "image"}.
    """
    from vflow_cli import packets
    from vflow_cli.stage import output_buffer

    width, height = parse_frame_size(size, SIZES)
    base = _pattern(width, height)
    rate = fps or NOMINAL_FPS
    yield packets.stream(name, width, height, rate, frames)
    ticker = Ticker(1.0 / fps) if fps else None
    for seq in itertools.count() if frames is None else range(frames):
        if ticker is not None:
            ticker.wait()
        image = output_buffer(base.shape, base.dtype)  # the next stage's shared memory
        if image is None:
            image = base.copy()
        else:
            image[...] = base
        t = seq / rate
        if animated:
            _animate(image, seq)
        _caption(image, name, seq, t)
        yield packets.frame(seq, t, image)


def _pattern(width: int, height: int) -> Any:
    """SMPTE-like bars over a grey ramp, with a centre circle and cross: easy to check by eye."""
    import cv2
    import numpy as np

    image = np.zeros((height, width, 3), np.uint8)
    bars = [
        (192, 192, 192),
        (0, 192, 192),
        (192, 192, 0),
        (0, 192, 0),
        (192, 0, 192),
        (0, 0, 192),
        (192, 0, 0),
    ]  # BGR: grey, yellow, cyan, green, ...
    top = height * 2 // 3
    for i, colour in enumerate(bars):
        image[:top, i * width // 7 : (i + 1) * width // 7] = colour
    ramp = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)
    image[top:] = ramp[None, :, None]
    centre = (width // 2, height // 2)
    radius = max(2, min(width, height) // 4)
    cv2.circle(image, centre, radius, (255, 255, 255), max(1, height // 240), cv2.LINE_AA)
    cv2.line(image, (centre[0] - radius, centre[1]), (centre[0] + radius, centre[1]), (255,) * 3, 1)
    cv2.line(image, (centre[0], centre[1] - radius), (centre[0], centre[1] + radius), (255,) * 3, 1)
    return image


def _animate(image: Any, seq: int) -> None:
    import cv2

    height, width = image.shape[:2]
    step = max(1, width // 120)
    x = (seq * step) % width
    image[:, x : x + max(2, width // 160)] = 255  # the sweeping bar
    r = max(3, min(width, height) // 20)
    span_x, span_y = max(1, width - 2 * r), max(1, height - 2 * r)
    bx = r + abs((seq * 2 * step) % (2 * span_x) - span_x)
    by = r + abs((seq * step) % (2 * span_y) - span_y)
    cv2.circle(image, (bx, by), r, (0, 0, 255), -1, cv2.LINE_AA)


def _caption(image: Any, name: str, seq: int, t: float) -> None:
    from vflow_cli.vision.draw import draw_text

    draw_text(image, f"{name}  #{seq}\n{timecode(t)}", "tl")
