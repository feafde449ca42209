"""convert: change the colour space of frames (bgr, rgb, gray, hsv, yuv, lab, ycrcb). Streaming."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.colors import COLORSPACES
from vflow_cli.stage import Packet, processor


@processor
@click.argument("target", metavar="SPACE", type=click.Choice(COLORSPACES))
@click.option(
    "--from",
    "source",
    type=click.Choice(COLORSPACES),
    default=None,
    help="The frames' colour space. Default: their 'colorspace' field, else bgr "
    "(gray for one-channel frames).",
)
def convert(packets: Iterator[Packet], target: str, source: str | None) -> Iterator[Packet]:
    """Convert frames to another colour space: bgr, rgb, gray, hsv, yuv, lab or ycrcb.

    Frames and stream announcements get a 'colorspace' field naming the result, so a later
    `convert`, `show` or `write` knows how to turn them back into BGR. hsv is OpenCV's 8-bit
    HSV (hue 0-179).

    \b
      vflow read in.mp4 | vflow convert hsv | my-hue-filter | vflow convert bgr | vflow show
    """
    from vflow_cli.colors import colorspace_of, convert_colors
    from vflow_cli.images import COLOUR, Takes, pixels

    types = ("uint8", "float32") if "hsv" in (target, source) else COLOUR
    takes = Takes("convert converts", types, (1, 3, 4))

    for packet in packets:
        image = packet.get("image")
        if image is not None:
            image = pixels(image)
            takes.check(image, packet)
            space = source or colorspace_of(packet, image)
            packet["image"] = convert_colors(image, space, target)
            packet["colorspace"] = target
        elif packet.get("kind") == "stream":
            packet["colorspace"] = target
        yield packet
