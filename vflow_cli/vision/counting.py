"""vision.counting: what `line` and `zone` share around their counters: frames in order, the
tracked foot points of each frame, a running table in every frame packet, events after it,
and with --report a packet per interval of media time.

    packets ──> Counting.frames() ──(packet, Feet)──> the stage's counter ──> table + events
                                                       Intervals ──> report per interval
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.framing import Packet
from vflow_cli.packets import Clock, picture_size
from vflow_cli.vision import objects
from vflow_cli.vision.geometry import foot
from vflow_cli.vision.objects import (
    objects_of,
    parse_classes,
    stamp_of,
    track_id,
    wanted,
)


def name_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """NAME of a line or a zone: a key in packets, and one part of a dotted path."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        from vflow_cli.vision.geometry import check_name

        return check_name(value)

    return click.argument("name", callback=check)(fn)


classes_option = objects.classes_option("Count", everything="every tracked object")


def report_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--report DURATION: a 'report' packet per interval of media time."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        from vflow_cli.net.options import parse_duration

        if value is None:
            return None
        seconds = parse_duration(value)
        if not seconds > 0:
            raise click.BadParameter(f"{value!r}: an interval must be longer than 0")
        return seconds

    return click.option(
        "--report",
        metavar="DURATION",
        default=None,
        callback=check,
        help="Also send a 'report' packet per DURATION of media time (60s, 5m, 1h; "
        "intervals from t = 0, empty ones too) with what happened in it; `vflow print "
        "--kind report --format csv` makes a table of them.",
    )(fn)


class Intervals:
    """Intervals of `every` seconds of media time, [k * every, (k + 1) * every), each
    reported once the first frame after it arrives (and the last at end of input).

    `fresh()` makes an interval's empty tally; the stage adds to `tally`. `tick(now)` closes
    the intervals that ended before `now`, empty ones included, and returns their reports.
    A jump of more than MAX_EMPTY intervals (a paused source, a damaged timestamp) is
    reported as one interval, with a warning, rather than as millions of empty ones."""

    MAX_EMPTY = 10_000

    def __init__(
        self,
        stage: str,
        name: str,
        every: float,
        fresh: Callable[[], dict[str, Any]],
        close: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.head = {"kind": "report", stage: name}
        self.stage = stage
        self.every = every
        self.fresh = fresh
        self.close = close or (lambda tally: tally)
        self.tally = fresh()
        self.index: int | None = None  # the current interval's number k

    def tick(self, now: float) -> list[Packet]:
        """Reports of the intervals that end at or before `now`."""
        k = int(now // self.every)
        if self.index is None:
            self.index = k
            return []
        reports: list[Packet] = []
        if k <= self.index:  # within the interval (or time went back: it counts here)
            return reports
        reports.append(self._report(self.index, self.index + 1))
        if k - self.index - 1 > self.MAX_EMPTY:
            log.warning(
                "%s %s: media time jumped from %g s to %g s; one report covers the gap",
                self.stage,
                self.head[self.stage],
                (self.index + 1) * self.every,
                now,
            )
            reports.append(self._report(self.index + 1, k))
        else:
            for gap in range(self.index + 1, k):
                reports.append(self._report(gap, gap + 1))
        self.index = k
        return reports

    def finish(self) -> list[Packet]:
        """The report of the interval in progress at end of input (none without frames)."""
        if self.index is None:
            return []
        return [self._report(self.index, self.index + 1)]

    def _report(self, start: int, stop: int) -> Packet:
        report = {
            **self.head,
            "t0": round(start * self.every, 6),
            "t1": round(stop * self.every, 6),
            **self.close(self.tally),
        }
        self.tally = self.fresh()
        return report


@dataclass
class Feet:
    """One frame's tracked objects of the wanted classes: (id, foot point), and labels."""

    points: list[tuple[int, tuple[float, float]]] = field(default_factory=list)
    labels: dict[int, Any] = field(default_factory=dict)
    now: float = 0.0


class Counting:
    """The frame loop of a counting stage named `stage`, counting as NAME into the packet
    field `table` ("lines", "zones")."""

    def __init__(
        self,
        stage: str,
        name: str,
        table: str,
        classes: str | None,
        meets_rect: Callable[[int, int], bool],
    ) -> None:
        self.stage = stage
        self.name = name
        self.table = table
        self.labels = parse_classes(classes)
        self.meets_rect = meets_rect
        self.clock = Clock()
        self.frames = 0
        self._with_objects = 0
        self._with_ids = 0
        self._size: tuple[int, int] | None = None

    def frames_of(self, packets: Iterator[Packet]) -> Iterator[tuple[Packet, Feet | None]]:
        """Every packet, with its Feet when it is a frame (None: pass it on unchanged)."""
        for packet in packets:
            kind = packet.get("kind")
            if kind == "stream":
                self.clock.announce(packet)
            if kind != "frame":
                yield packet, None
                continue
            self.frames += 1
            if self._size is None:
                self._size = picture_size(packet)
                if self._size is not None and not self.meets_rect(*self._size):
                    log.warning(
                        "%s %s lies wholly outside the %dx%d picture: nothing will be counted; "
                        "coordinates are pixels from its top-left corner",
                        self.stage,
                        self.name,
                        *self._size,
                    )
            yield packet, self._feet(packet)
        if self._with_objects and not self._with_ids:
            log.warning(
                "no object had a track id, so nothing was counted; put `vflow track` before "
                f"`vflow {self.stage}`"
            )

    def _feet(self, packet: Packet) -> Feet:
        feet = Feet(now=self.clock.now(packet))
        objects = objects_of(packet)
        tracked = False
        for obj in objects:
            ident = track_id(obj)
            tracked = tracked or ident is not None
            if ident is None or not wanted(obj, self.labels):
                continue
            feet.points.append((ident, foot(obj["box"])))
            feet.labels[ident] = obj.get("label")
        self._with_objects += bool(objects)
        self._with_ids += tracked
        return feet

    def record(self, packet: Packet, value: dict[str, Any]) -> None:
        """Put this stage's running counts into the frame: packet[table][name] = value."""
        table = packet.setdefault(self.table, {})
        if not isinstance(table, dict):
            raise StageError(f"packet {packet.get('seq', '?')}: '{self.table}' is not a map")
        if self.name in table:
            raise StageError(
                f"{self.stage} {self.name!r} is already in the stream (counted by an earlier "
                f"stage); give each {self.stage} its own name"
            )
        table[self.name] = value

    def event(self, packet: Packet, feet: Feet, what: str, ident: int, **details: Any) -> Packet:
        """An event packet about id `ident`, stamped with the frame it happened in."""
        event: Packet = {"kind": "event", "event": what, self.stage: self.name, "id": ident}
        if feet.labels.get(ident) is not None:
            event["label"] = feet.labels[ident]
        event.update(details)
        event.update(stamp_of(packet))
        return event
