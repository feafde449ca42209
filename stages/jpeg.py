"""jpeg, unjpeg: compress frames inside packets for cheap transport; decode them. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vflow_cli.framing import Encoded
from vflow_cli.images import Takes
from vflow_cli.options import quality_option
from vflow_cli.stage import Packet, StageError, processor

JPEG = Takes("JPEG holds", ("uint8",), (1, 3, 4), "convert the frames to 8 bits first")


def encode(image: Any, quality: int, packet: Packet | None = None) -> Encoded:
    """A raw picture as an Encoded JPEG (8-bit grey or BGR; alpha is dropped)."""
    import cv2

    JPEG.check(image, packet or {})
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StageError(f"could not JPEG-encode a {'x'.join(map(str, image.shape))} picture")
    return Encoded("jpeg", data.tobytes(), image.shape)


@processor
@quality_option(90)
def jpeg(packets: Iterator[Packet], quality: int) -> Iterator[Packet]:
    """Compress every frame to JPEG inside its packet (10-20x smaller on the pipe).

    Every vflow stage accepts compressed frames and decodes them when it needs the pixels;
    `vflow unjpeg` decodes them for programs that want raw ones. Frames already in JPEG pass
    unchanged.

    \b
      vflow camera 0 | vflow jpeg --quality 80 | ssh host 'vflow show'
    """
    from vflow_cli.images import pixels

    for packet in packets:
        image = packet.get("image")
        if image is not None and not (isinstance(image, Encoded) and image.format == "jpeg"):
            packet["image"] = encode(pixels(image), quality, packet)
        yield packet


@processor
def unjpeg(packets: Iterator[Packet]) -> Iterator[Packet]:
    """Decode compressed frames (JPEG, PNG, WebP) back into raw pixels; raw frames pass.

    \b
      ... | vflow jpeg | ssh host vflow unjpeg | my-raw-consumer
    """
    from vflow_cli.images import pixels

    for packet in packets:
        image = packet.get("image")
        if isinstance(image, Encoded):
            packet["image"] = pixels(image)
        yield packet
