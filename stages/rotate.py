"""rotate: turn frames by 90, 180, 270 or any angle, clockwise. Streaming."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, processor


def rotated_size(width: int, height: int, angle: float, expand: bool) -> tuple[int, int]:
    turn = angle % 360
    if turn in (90, 270):
        return height, width
    if turn in (0, 180) or not expand:
        return width, height
    a = math.radians(turn)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    return math.ceil(width * c + height * s - 1e-9), math.ceil(width * s + height * c - 1e-9)


def rotate_image(image: Any, angle: float, expand: bool = False, fill: int = 0) -> Any:
    import cv2

    turn = angle % 360
    if turn == 0:
        return image
    right = int(turn) if turn == int(turn) else -1
    exact = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if right in exact:
        try:
            return cv2.rotate(image, exact[right])
        except cv2.error:  # a type or channel count OpenCV does not turn: numpy does
            import numpy as np

            return np.ascontiguousarray(np.rot90(image, {90: -1, 180: 2, 270: 1}[right]))
    height, width = image.shape[:2]
    out_w, out_h = rotated_size(width, height, turn, expand)
    matrix = _matrix(width, height, turn, expand)
    channels = image.shape[2] if image.ndim == 3 else 1
    return cv2.warpAffine(
        image,
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(fill,) * channels,
    )


def _matrix(width: int, height: int, turn: float, expand: bool) -> Any:
    """OpenCV's matrix for a turn that is not a multiple of 90 (it maps pixel centres)."""
    import cv2

    out_w, out_h = rotated_size(width, height, turn, expand)
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), -turn, 1.0)
    matrix[0, 2] += (out_w - width) / 2
    matrix[1, 2] += (out_h - height) / 2
    return matrix


def placement(width: int, height: int, angle: float, expand: bool) -> Any:
    """Where rotate_image puts a point of a width x height picture (vision.transform)."""
    from vflow_cli.vision.transform import Affine

    turn = angle % 360
    exact = {
        0: Affine(1, 0, 0, 0, 1, 0),
        90: Affine(0, -1, height, 1, 0, 0),
        180: Affine(-1, 0, width, 0, -1, height),
        270: Affine(0, 1, 0, -1, 0, width),
    }
    if turn in exact:
        return exact[int(turn)]
    return Affine.of_opencv(_matrix(width, height, turn, expand))


@processor
@click.argument("angle", type=float, metavar="DEGREES")
@click.option(
    "--expand",
    is_flag=True,
    help="For angles other than multiples of 90: grow the frame so no corner is cut "
    "off. Default: keep the frame's size.",
)
@click.option(
    "--fill",
    type=click.IntRange(0, 255),
    default=0,
    show_default=True,
    help="Grey level of the corners an arbitrary angle uncovers.",
)
def rotate(packets: Iterator[Packet], angle: float, expand: bool, fill: int) -> Iterator[Packet]:
    """Rotate every frame clockwise by DEGREES (90, 180, 270 exactly; any other angle too).

    Negative angles turn anticlockwise. 90 and 270 swap width and height; stream
    announcements get the new size. Boxes, lines and zones the packets carry
    (vflow-packet(5)) turn with the pixels.

    \b
      vflow camera 0 | vflow rotate 90 | vflow show
      vflow read in.mp4 | vflow rotate -- -12.5 --expand | vflow write level.mp4
    """
    from vflow_cli.images import ANY_DTYPE, SCALABLE, Takes
    from vflow_cli.packets import stream_size
    from vflow_cli.vision.transform import map_images

    def announce(packet: Packet) -> None:
        known = stream_size(packet)
        if known:
            packet["width"], packet["height"] = rotated_size(*known, angle % 360, expand)

    if angle % 90 == 0:
        takes = Takes("rotate turns", ANY_DTYPE, None)
    else:
        takes = Takes(
            "rotate by an angle that is not a multiple of 90 turns", SCALABLE, (1, 2, 3, 4)
        )
    yield from map_images(
        packets,
        lambda image: rotate_image(image, angle, expand, fill),
        announce,
        takes,
        lambda width, height: placement(width, height, angle, expand),
    )
