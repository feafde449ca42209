"""chain: several stages in one process, joined by iterators (`vflow chain`, graph groups).

    stdin ──PacketReader──> resize ──iterator──> flip ──iterator──> PacketWriter ──> stdout

A packet goes from one stage's generator to the next as a Python object: no copy, no
parse, no pipe. Each stage is its own generator, called once, in order: a stateful stage
(a tracker, a counter) sees every packet, in order, exactly as on a pipe. The first may be
a producer and the last a consumer; the chain is then one of those itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from vflow_cli.framing.wire import Packet

SEPARATOR = ","


class Member:
    """One stage of a chain: its name, what vflow knows about it, its parsed options."""

    __slots__ = ("args", "info", "name", "options")

    def __init__(self, name: str, args: list[str], info: Any, options: dict[str, Any]) -> None:
        self.name, self.args, self.info, self.options = name, args, info, options

    @property
    def label(self) -> str:
        return shlex.join([self.name, *self.args])


def split(words: Iterable[str]) -> list[list[str]]:
    """`'resize 640x360' , flip h` -> [["resize", "640x360"], ["flip", "h"]]: stages are
    separated by a lone comma; a stage given as one quoted word is split like a shell."""
    segments: list[list[str]] = [[]]
    for word in words:
        if word == SEPARATOR:
            segments.append([])
        else:
            segments[-1].append(word)
    out = []
    for segment in segments:
        if len(segment) == 1 and any(c.isspace() for c in segment[0]):
            segment = shlex.split(segment[0])
        out.append(segment)
    return out


def members(segments: list[list[str]]) -> list[Member]:
    """Each stage found and its options parsed, or click.UsageError naming the problem."""
    from vflow_cli.catalogue import stage_info

    if not segments or any(not s for s in segments):
        raise click.UsageError("give stages separated by a lone ',': 'resize 640x360' , 'flip'")
    found = []
    for segment in segments:
        name, args = segment[0], segment[1:]
        info = stage_info(name) if name != "chain" else None
        if info is None:
            raise click.UsageError(f"{name!r} is not a stage that can run in a chain")
        try:
            options = info.parse(args)
        except click.UsageError as exc:
            raise click.UsageError(f"{name}: {exc.format_message()}") from None
        found.append(Member(name, args, info, options))
    kind_of(found)
    return found


def kind_of(found: list[Member]) -> str:
    """producer, processor or consumer: what the chain is to the stages around it."""
    for i, member in enumerate(found):
        kind = member.info.kind
        if kind == "producer" and i > 0:
            raise click.UsageError(f"{member.name} is a producer: only the first stage may be")
        if kind == "consumer" and i < len(found) - 1:
            raise click.UsageError(f"{member.name} is a consumer: only the last stage may be")
    first, last = found[0].info.kind, found[-1].info.kind
    if first == "producer" and last == "consumer":
        raise click.UsageError(
            "a chain from a producer to a consumer has neither input nor output; "
            "end it before the consumer and pipe it there"
        )
    return first if first == "producer" else last if last == "consumer" else "processor"


def looks_at_pixels(found: list[Member]) -> bool:
    return any(m.info.looks_at_pixels(m.options) for m in found)


def keeps_state(found: list[Member]) -> bool:
    return any(m.info.keeps_state(m.options) for m in found)


class Clock:
    """Seconds spent inside each stage of a chain (with what it waited on), for the report."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.inside = [0.0] * len(names)  # in the stage's next(), its input's included

    def timed(self, index: int, packets: Iterator[Any]) -> Iterator[Any]:
        from vflow_cli.busy import timed

        inside = self.inside

        def spent(seconds: float, now: float) -> None:
            inside[index] += seconds

        return timed(packets, spent)


def compose(found: list[Member], clock: Clock | None = None) -> Callable[..., Any]:
    """One stage function that runs every member in turn (the chain's kind: kind_of)."""
    from vflow_cli.runner import Progress

    def chained(packets: Iterator[Packet] | None = None) -> Any:
        stream: Any = packets
        for i, member in enumerate(found):
            function = member.info.function
            if member.info.kind == "producer":
                stream = (p for p in function(**member.options) if type(p) is not Progress)
            elif member.info.kind == "processor":
                stream = function(stream, **member.options)
            else:
                return function(stream, **member.options)
            if clock is not None:
                stream = clock.timed(i, iter(stream))
        return stream

    return chained
