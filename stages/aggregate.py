"""sum, mean, min, max, mul, count: running aggregates (Videoflow's aggregator family). Streaming.

Each writes the running value into every packet that has the field, so the last packet
carries the total; packets without the field pass through untouched.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import click

from vflow_cli.options import counts, kind_option
from vflow_cli.stage import Packet, StageError, processor


def _field_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--into",
        metavar="FIELD",
        default=None,
        help="Write the running value here. Default: the field itself.",
    )(fn)
    return click.option(
        "-f",
        "--field",
        default="value",
        show_default=True,
        help="The numeric field to aggregate.",
    )(fn)


def _running(
    packets: Iterator[Packet],
    field: str,
    into: str | None,
    fold: Callable[[Any, float, int], Any],
) -> Iterator[Packet]:
    """fold(accumulator or None, value, how many seen before) -> new accumulator."""
    into = into or field
    acc: Any = None
    seen = 0
    for packet in packets:
        value = packet.get(field)
        if value is None:
            yield packet
            continue
        if type(value) is bool or not isinstance(value, (int, float)):
            raise StageError(
                f"packet {packet.get('seq', '?')}: field {field!r} is {value!r}, not a number"
            )
        acc = fold(acc, value, seen)
        seen += 1
        packet[into] = acc
        yield packet


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[Any, float, int], Any]:
    return lambda acc, value, seen: value if acc is None else op(acc, value)


@processor(name="sum", pixels=False, stateful=True)
@_field_options
def sum_(packets: Iterator[Packet], field: str, into: str | None) -> Iterator[Packet]:
    """Replace a numeric field with its running sum."""
    return _running(packets, field, into, _binary(operator.add))


@processor(name="mul", pixels=False, stateful=True)
@_field_options
def mul(packets: Iterator[Packet], field: str, into: str | None) -> Iterator[Packet]:
    """Replace a numeric field with its running product."""
    return _running(packets, field, into, _binary(operator.mul))


@processor(name="min", pixels=False, stateful=True)
@_field_options
def min_(packets: Iterator[Packet], field: str, into: str | None) -> Iterator[Packet]:
    """Replace a numeric field with its running minimum."""
    return _running(packets, field, into, _binary(min))


@processor(name="max", pixels=False, stateful=True)
@_field_options
def max_(packets: Iterator[Packet], field: str, into: str | None) -> Iterator[Packet]:
    """Replace a numeric field with its running maximum."""
    return _running(packets, field, into, _binary(max))


@processor(name="mean", pixels=False, stateful=True)
@_field_options
def mean(packets: Iterator[Packet], field: str, into: str | None) -> Iterator[Packet]:
    """Replace a numeric field with its running mean (a float)."""

    def fold(acc: Any, value: float, seen: int) -> float:
        # incremental mean: no running total to overflow or lose precision on
        return float(value) if acc is None else acc + (value - acc) / (seen + 1)

    return _running(packets, field, into, fold)


@processor(pixels=False, stateful=True)
@kind_option
@click.option(
    "-f",
    "--field",
    default=None,
    help="Count only packets that have this field.",
)
@click.option(
    "--into",
    metavar="FIELD",
    default="count",
    show_default=True,
    help="Write the running count here.",
)
def count(
    packets: Iterator[Packet], kinds: tuple[str, ...], field: str | None, into: str
) -> Iterator[Packet]:
    """Write the running count of packets into each counted packet."""
    counted = counts(kinds)
    n = 0
    for packet in packets:
        if counted(packet) and (field is None or field in packet):
            n += 1
            packet[into] = n
        yield packet
