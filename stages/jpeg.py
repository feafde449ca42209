"""jpeg, unjpeg: compress frames inside packets for cheap transport; decode them. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

from vflow_cli.framing import Encoded
from vflow_cli.images import jpeg as encode  # the encoder lives in vflow_cli (send uses it too)
from vflow_cli.options import quality_option
from vflow_cli.stage import Packet, processor


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
