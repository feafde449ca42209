"""every: keep one packet in N. Streaming, stateless but for a counter."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.options import counts, kind_option
from vflow_cli.stage import Packet, processor


@processor(pixels=False, stateful=True)
@click.argument("n", type=click.IntRange(min=1))
@kind_option
def every(packets: Iterator[Packet], n: int, kinds: tuple[str, ...]) -> Iterator[Packet]:
    """Keep one packet in N (the 1st, the N+1th, ...); others of other kinds pass through."""
    counted = counts(kinds)
    seen = 0
    for packet in packets:
        if not counted(packet):
            yield packet
            continue
        if seen % n == 0:
            yield packet
        seen += 1
