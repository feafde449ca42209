"""gray: turn colour frames into single-channel grey ones. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vflow_cli.stage import Packet, processor


def to_gray(image: Any) -> Any:
    import cv2

    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0]
    code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


@processor
def gray(packets: Iterator[Packet]) -> Iterator[Packet]:
    """Convert every frame to grey (one channel, HxW); grey frames pass unchanged.

    \b
      vflow camera 0 | vflow gray | vflow show
    """
    from vflow_cli.images import COLOUR, Takes
    from vflow_cli.vision.transform import map_images

    def announce(packet: Packet) -> None:
        packet["channels"] = 1

    takes = Takes("gray converts", COLOUR, (1, 3, 4))
    yield from map_images(packets, to_gray, announce, takes)
