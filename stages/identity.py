"""identity: pass every packet through unchanged. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

from vflow_cli.stage import Packet, processor


@processor(pixels=False)
def identity(packets: Iterator[Packet]) -> Iterator[Packet]:
    """Pass every packet through unchanged (a placeholder, or a pipe-speed probe)."""
    yield from packets
