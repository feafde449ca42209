"""resize: scale frames to a size, stretched or keeping their aspect (fit, fill, pad). Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import check_frame_size, checked
from vflow_cli.stage import Packet, processor

MODES = ("stretch", "fit", "fill", "pad")
INTERPOLATIONS = ("auto", "nearest", "linear", "cubic", "area", "lanczos")


def parse_target(text: str) -> tuple[int, int]:
    """'640x360' or '640x-1' / '-1x360' (keep the aspect) -> (width, height), -1 for 'any'."""
    width, sep, height = text.lower().partition("x")
    try:
        w, h = int(width), int(height)
    except ValueError:
        w = h = 0
    if not sep or w == 0 or h == 0 or w < -1 or h < -1 or (w == -1 and h == -1):
        raise click.BadParameter(
            f"{text!r} is not WIDTHxHEIGHT (e.g. 640x360, or 640x-1 to keep the aspect)"
        )
    check_frame_size(max(w, 1), max(h, 1))
    return w, h


def plan(size: tuple[int, int], target: tuple[int, int], mode: str) -> tuple[int, int, int, int]:
    """(scaled width, scaled height, output width, output height) for a picture of `size`."""
    w, h = size
    tw, th = target
    if tw == -1:
        tw = max(1, round(w * th / h))
        return tw, th, tw, th
    if th == -1:
        th = max(1, round(h * tw / w))
        return tw, th, tw, th
    if mode == "stretch":
        return tw, th, tw, th
    scale = min(tw / w, th / h) if mode in ("fit", "pad") else max(tw / w, th / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if mode == "fit":
        return sw, sh, sw, sh
    return sw, sh, tw, th


def placement(size: tuple[int, int], target: tuple[int, int], mode: str) -> Any:
    """Where resize_image puts a point of a picture of `size` (a vision.transform.Affine)."""
    from vflow_cli.vision.transform import Affine

    w, h = size
    sw, sh, ow, oh = plan(size, target, mode)
    dx = dy = 0
    if mode == "fill" and (sw, sh) != (ow, oh):
        dx, dy = -((sw - ow) // 2), -((sh - oh) // 2)
    elif mode == "pad" and (sw, sh) != (ow, oh):
        dx, dy = (ow - sw) // 2, (oh - sh) // 2
    return Affine.scale(sw / w, sh / h, dx, dy)


def resize_image(
    image: Any, target: tuple[int, int], mode: str, interpolation: str, pad_value: int = 0
) -> Any:
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    sw, sh, ow, oh = plan((w, h), target, mode)
    check_frame_size(max(sw, ow), max(sh, oh), image.itemsize * (image.size // (w * h)))
    if (sw, sh) != (w, h):
        if interpolation == "auto":
            flag = cv2.INTER_AREA if sw * sh < w * h else cv2.INTER_LINEAR
        else:
            flag = getattr(cv2, f"INTER_{interpolation.upper()}")
            if interpolation == "lanczos":
                flag = cv2.INTER_LANCZOS4
        dst = None
        if (sw, sh) == (ow, oh):  # the result goes out as it is: into shared memory
            from vflow_cli.stage import output_buffer

            dst = output_buffer((sh, sw, *image.shape[2:]), image.dtype)
        image = cv2.resize(image, (sw, sh), dst=dst, interpolation=flag)
    if (sw, sh) == (ow, oh):
        return image
    if mode == "fill":  # cover the box, then cut the middle out
        x, y = (sw - ow) // 2, (sh - oh) // 2
        return np.ascontiguousarray(image[y : y + oh, x : x + ow])
    out = np.full((oh, ow, *image.shape[2:]), pad_value, image.dtype)  # pad: letterbox
    x, y = (ow - sw) // 2, (oh - sh) // 2
    out[y : y + sh, x : x + sw] = image
    return out


@processor
@click.argument("size", metavar="WxH", callback=checked(parse_target))
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="stretch",
    show_default=True,
    help="stretch: exactly WxH; fit: as large as fits inside WxH, keeping the aspect; "
    "fill: cover WxH and crop the overflow; pad: fit, then pad to WxH. A -1 "
    "dimension (640x-1) always keeps the aspect.",
)
@click.option(
    "--interpolation",
    type=click.Choice(INTERPOLATIONS),
    default="auto",
    show_default=True,
    help="Resampling; auto is area when shrinking, linear otherwise.",
)
@click.option(
    "--pad-value",
    type=click.IntRange(0, 255),
    default=0,
    show_default=True,
    help="Grey level of the bars --mode pad adds.",
)
def resize(
    packets: Iterator[Packet], size: str, mode: str, interpolation: str, pad_value: int
) -> Iterator[Packet]:
    """Resize every frame to WxH (or keep the aspect: 640x-1, --mode fit|fill|pad).

    Stream announcements get the new width and height. Boxes, lines and zones the packets
    carry (vflow-packet(5)) move with the pixels; a box cut out of the picture is dropped.
    Frames compressed by `vflow jpeg` are decoded first.

    \b
      vflow read in.mp4 | vflow resize 640x-1 | vflow write small.mp4
      vflow camera 0 | vflow resize 320x320 --mode pad | vflow show
    """
    from vflow_cli.images import SCALABLE, Takes
    from vflow_cli.packets import stream_size
    from vflow_cli.vision.transform import map_images

    target = parse_target(size)
    takes = Takes("resize scales", SCALABLE, channels=None)

    def announce(packet: Packet) -> None:
        known = stream_size(packet)
        if known:
            _, _, packet["width"], packet["height"] = plan(known, target, mode)

    yield from map_images(
        packets,
        lambda image: resize_image(image, target, mode, interpolation, pad_value),
        announce,
        takes,
        lambda w, h: placement((w, h), target, mode),
    )
