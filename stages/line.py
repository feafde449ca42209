"""line: count tracked ids crossing a segment, each way, into every frame. Streaming, stateful."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, processor
from vflow_cli.vision.counting import classes_option, name_argument, report_option


def _segment(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from vflow_cli.vision.geometry import parse_segment

    parse_segment(value)
    return value


@processor(pixels=False, stateful=True)
@name_argument
@click.argument("points", metavar="X1,Y1,X2,Y2", callback=_segment)
@click.option(
    "--band",
    type=click.FloatRange(min=0),
    default=8.0,
    show_default=True,
    metavar="PX",
    help="Hysteresis: a foot point must be more than PX pixels past the line for its id to "
    "change side, so an id dithering on the line counts once, not on every frame.",
)
@click.option(
    "--born",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    metavar="PX",
    help="An id first seen within PX pixels past the line (not in the first frame) that walks "
    "away from it has crossed: the tracker lost the person at the line and found them again "
    "under a new id. 0: only ids seen on both sides count.",
)
@classes_option
@click.option(
    "--forget",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Forget an id unseen for this long (it no longer has a side).",
)
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Send an 'event' packet after the frame of each crossing.",
)
@report_option
def line(
    packets: Iterator[Packet],
    name: str,
    points: str,
    band: float,
    classes: str | None,
    forget: float,
    events: bool,
    report: float | None,
    born: float = 0.0,
) -> Iterator[Packet]:
    """Count tracked ids crossing the segment X1,Y1-X2,Y2 in each direction, as NAME.

    An object's position is its foot point, the bottom centre of its box; ids come from
    `vflow track`. Directions are named after the segment's own direction P1->P2, as seen
    on the picture by someone standing at P1 and looking at P2: "in" is a crossing from its
    left-hand side to its right-hand side, "out" the other way. For a segment drawn left to
    right, "in" is downwards; for one drawn top to bottom, "in" is right to left. Swap the
    two points to swap in and out (`vflow annotate` draws an arrow towards the "in" side).

    Each id counts once per crossing: it changes side only once its foot is more than
    --band pixels past the line, and only a path through the segment (not around its ends)
    counts. An id that crosses and comes back counts once each way, so in - out is the
    number of ids that ended on the right-hand side. An id first seen near the line starts
    on the side it is on, however near; one that vanishes and comes back under the same id
    is judged from where it was last seen. An id first seen within --born pixels past the
    line, over the segment, that then walks away from it, counts as a crossing: trackers
    lose people in a crowd at the line and find them a step later under a new id (measured
    on MOTChallenge's TUD sequences by `python -m tests.quality.counting`). Keep lines a few
    metres from doors and picture edges where people first appear, or give --born 0.
    Points may lie outside the picture.

    Every frame gets {"lines": {NAME: {"points": [X1, Y1, X2, Y2], "in": N, "out": N}}};
    after the frame of each crossing comes {"kind": "event", "event": "cross", "line": NAME,
    "direction": "in"|"out", "id", "label", "seq", "frame", "t", "wall"}, and at the end of
    the stream one {"kind": "summary", "lines": {NAME: {...}}}. Several `line` stages in a
    row each add their own NAME.

    With --report 60s, one {"kind": "report", "line": NAME, "t0", "t1", "in", "out",
    "frames"} per minute of media time (t0 <= t < t1, from t = 0), intervals without a
    crossing included, sent before the first frame after the interval (the last one at end
    of input): `vflow print --kind report --format csv` is a table of crossings a minute.

    \b
      vflow read hall.mp4 | vflow detect | vflow track \\
          | vflow line door 400,0,400,576 | vflow print --kind event
      ... | vflow line a 0,300,768,300 | vflow line b 200,0,200,576 | vflow annotate
      ... | vflow line door 400,0,400,576 --report 1m | vflow print --kind report --format csv
    """
    from vflow_cli.vision.counting import Counting, Intervals
    from vflow_cli.vision.geometry import Segment, parse_segment, plain
    from vflow_cli.vision.lines import IN, OUT, LineCounter

    ends = parse_segment(points)
    segment = Segment(*ends)
    shown = [plain(v) for v in ends]
    counter = LineCounter(segment, band=band, forget=forget, born=born)
    counting = Counting("line", name, "lines", classes, segment.meets_rect)
    intervals = Intervals("line", name, report or 0.0, lambda: {IN: 0, OUT: 0, "frames": 0})
    for packet, feet in counting.frames_of(packets):
        if feet is None:
            yield packet
            continue
        crossings = counter.update(feet.points, feet.now)
        if report:
            yield from intervals.tick(feet.now)
            intervals.tally["frames"] += 1
            for _, direction in crossings:
                intervals.tally[direction] += 1
        counting.record(
            packet, {"points": list(shown), IN: counter.counts[IN], OUT: counter.counts[OUT]}
        )
        yield packet
        if events:
            for ident, direction in crossings:
                yield counting.event(packet, feet, "cross", ident, direction=direction)
    if report:
        yield from intervals.finish()
    summary = {
        "points": shown,
        IN: counter.counts[IN],
        OUT: counter.counts[OUT],
        "ids": counter.seen_ids,
        "crossed": len(counter.crossed),
        "frames": counting.frames,
    }
    yield {"kind": "summary", "lines": {name: summary}}
