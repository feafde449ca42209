"""fps: measure throughput over the last N packets (pystreaming's dispfps). Streaming."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import click

from vflow_cli.options import counts, kind_option
from vflow_cli.stage import Packet, log, processor


@processor(pixels=lambda options: options["draw"], stateful=True)
@click.option(
    "-n",
    "--window",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Measure over the last N packets.",
)
@click.option(
    "--into",
    metavar="FIELD",
    default="fps",
    show_default=True,
    help="Record the rate in this field of each packet.",
)
@click.option("--draw", is_flag=True, help="Also draw the rate in the frame's top-right corner.")
@kind_option
def fps(
    packets: Iterator[Packet], window: int, into: str, draw: bool, kinds: tuple[str, ...]
) -> Iterator[Packet]:
    """Measure packets per second as they pass; record it (and optionally draw it on frames).

    The first packet has no rate yet (the field is null). With -v the average rate over the
    whole stream is reported at the end.
    """
    counted = counts(kinds)
    times: deque[float] = deque(maxlen=window + 1)
    first = None
    n = 0
    for packet in packets:
        if not counted(packet):
            yield packet
            continue
        now = time.perf_counter()
        times.append(now)
        first = first or now
        n += 1
        span = now - times[0]
        value = (len(times) - 1) / span if span > 0 else None
        packet[into] = value
        if draw and value is not None and packet.get("image") is not None:
            packet["image"] = _draw(packet["image"], value, packet)
        yield packet
    if n > 1 and first is not None:
        log.info(
            "%d packets at %.1f a second on average", n, (n - 1) / (time.perf_counter() - first)
        )


def _draw(image, value: float, packet: Packet):
    from vflow_cli.images import DRAWS, pixels
    from vflow_cli.vision.draw import draw_text

    image = pixels(image)
    DRAWS.check(image, packet)
    if not image.flags.writeable:  # a view of the stage before's shared memory
        image = image.copy()
    if image.ndim >= 2:
        text = f"{value:.1f} fps"
        draw_text(image, text, "tr")
    return image
