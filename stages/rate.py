"""rate: drop packets to reach a target rate. Streaming."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click

from vflow_cli.options import counts, kind_option
from vflow_cli.stage import Packet, processor


@processor(pixels=False, stateful=True)
@click.argument("fps", type=click.FloatRange(min=0, min_open=True))
@kind_option
@click.option(
    "--clock",
    type=click.Choice(["media", "arrival"]),
    default="media",
    show_default=True,
    help="media: space packets by their time stamp `t` (a file decoded as fast as possible "
    "is thinned by its own timeline); arrival: by when they reach this stage.",
)
def rate(
    packets: Iterator[Packet], fps: float, kinds: tuple[str, ...], clock: str
) -> Iterator[Packet]:
    """Drop packets so that at most FPS a second pass (never adds or repeats any)."""
    counted = counts(kinds)
    period = 1.0 / fps
    due: float | None = None
    last = float("-inf")
    for packet in packets:
        if not counted(packet):
            yield packet
            continue
        stamp = packet.get("t") if clock == "media" else None
        t = float(stamp) if isinstance(stamp, (int, float)) else time.monotonic()
        if due is None or t < last or t - due > period:
            due = t  # first packet, a timeline that restarts (--loop), or a gap: start again
        if t >= due - 1e-9:
            yield packet
            due += period
        last = t
