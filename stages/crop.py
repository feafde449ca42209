"""crop: cut a rectangle X,Y,W,H out of every frame. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import checked
from vflow_cli.stage import Packet, StageError, processor


def parse_box(text: str) -> tuple[int, int, int, int]:
    """'10,20,320,240' -> (x, y, width, height)."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        x = y = w = h = -1
    if min(x, y) < 0 or min(w, h) < 1:
        raise click.BadParameter(f"{text!r} is not X,Y,WIDTH,HEIGHT (e.g. 100,50,320,240)")
    return x, y, w, h


def fit_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """The box clipped to a width x height picture; StageError if nothing is left."""
    x, y, w, h = box
    if x >= width or y >= height:
        raise StageError(
            f"crop {x},{y},{w},{h} starts outside the {width}x{height} frame; "
            "X and Y count from the top-left corner"
        )
    return x, y, min(w, width - x), min(h, height - y)


@processor
@click.argument("box", metavar="X,Y,W,H", callback=checked(parse_box))
def crop(packets: Iterator[Packet], box: str) -> Iterator[Packet]:
    """Crop every frame to the rectangle X,Y,W,H (pixels from the top-left corner).

    A rectangle that runs past the frame's edge is clipped to it; one that starts outside
    the frame is an error. Stream announcements get the new size. Boxes, lines and zones
    the packets carry (vflow-packet(5)) move with the pixels; a box cut out of the picture
    is dropped.

    \b
      vflow read in.mp4 | vflow crop 0,0,640,360 | vflow write corner.mp4
    """
    import numpy as np

    from vflow_cli.images import ANY_DTYPE, Takes
    from vflow_cli.packets import stream_size
    from vflow_cli.vision.transform import map_images

    wanted = parse_box(box)

    def cut(image: Any) -> Any:
        x, y, w, h = fit_box(wanted, image.shape[1], image.shape[0])
        return np.ascontiguousarray(image[y : y + h, x : x + w])

    def announce(packet: Packet) -> None:
        known = stream_size(packet)
        if known:
            _, _, packet["width"], packet["height"] = fit_box(wanted, *known)

    def moves(width: int, height: int) -> Any:
        from vflow_cli.vision.transform import Affine

        x, y, _, _ = fit_box(wanted, width, height)
        return Affine.scale(1, 1, -x, -y)

    yield from map_images(packets, cut, announce, Takes("crop cuts", ANY_DTYPE, None), moves)
