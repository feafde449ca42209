"""flip: mirror frames horizontally, vertically or both. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, processor

CODES = {"h": 1, "horizontal": 1, "v": 0, "vertical": 0, "both": -1}


def flip_image(image: Any, direction: str) -> Any:
    import cv2
    import numpy as np

    from vflow_cli.stage import output_buffer

    try:  # straight into shared memory when the next stage takes it (framing.shm)
        return cv2.flip(image, CODES[direction], dst=output_buffer(image.shape, image.dtype))
    except cv2.error:  # a type or channel count OpenCV does not flip: numpy does
        axes = {1: (1,), 0: (0,), -1: (0, 1)}[CODES[direction]]
        return np.ascontiguousarray(np.flip(image, axes))


@processor
@click.argument("direction", type=click.Choice(sorted(CODES)), default="h", required=False)
def flip(packets: Iterator[Packet], direction: str) -> Iterator[Packet]:
    """Mirror every frame: h (left-right, the default), v (upside down) or both.

    Boxes, lines and zones the packets carry (vflow-packet(5)) are mirrored with the frame.

    \b
      vflow camera 0 | vflow flip | vflow show          # a mirror
    """
    from vflow_cli.images import ANY_DTYPE, Takes
    from vflow_cli.vision.transform import map_images

    def moves(width: int, height: int) -> Any:
        from vflow_cli.vision.transform import Affine

        code = CODES[direction]
        mirror_x, mirror_y = code in (1, -1), code in (0, -1)
        return Affine(
            -1 if mirror_x else 1, 0, width if mirror_x else 0,
            0, -1 if mirror_y else 1, height if mirror_y else 0,
        )  # fmt: skip

    takes = Takes("flip mirrors", ANY_DTYPE, None)
    yield from map_images(packets, lambda image: flip_image(image, direction), None, takes, moves)
