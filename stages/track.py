"""track: follow detected objects from frame to frame; give each a lasting id. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, log, processor


def parse_buffer(text: str) -> tuple[float, bool]:
    """'2', '2s' or '1.5s' -> (seconds, False); '30f' -> (frames, True). ValueError if bad."""
    raw = text.strip().lower()
    frames = raw.endswith("f")
    number = raw[:-1] if raw[-1:] in ("f", "s") else raw
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value >= 0 or (frames and value != int(value)):
        raise ValueError(
            f"{text!r} is not a duration: SECONDS (2, 1.5s) or FRAMES followed by f (30f)"
        )
    return value, frames


def _buffer(ctx: Any, param: Any, value: str) -> str:
    try:
        parse_buffer(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@processor(pixels=lambda options: options["appearance"], stateful=True)
@click.option(
    "--buffer",
    default="2s",
    show_default=True,
    metavar="DURATION",
    callback=_buffer,
    help="How long a track nobody sees is remembered, so that its id comes back after an "
    "occlusion: SECONDS of media time (2, 1.5s: the same at any frame rate) or FRAMES "
    "followed by f (30f).",
)
@click.option(
    "--static",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Leave out an object that has stood still this long while its detections scored "
    "under 0.7 on average: scenery a detector half takes for a person (a signpost, frame "
    "after frame). It is still followed, so it starts no new tracks, and it is back, with "
    "its id, as soon as it moves. A confidently detected person standing still stays. "
    "0: leave nothing out.",
)
@click.option(
    "--high",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Detections at least this confident are matched first; weaker ones only continue "
    "tracks (a half-hidden person scores low) and never start one.",
)
@click.option(
    "--new",
    "start",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="A detection must score this much to start a track (confirmed, and given an id, "
    "when it is seen again in the next frame; on a stream's first frame at once).",
)
@click.option(
    "--coast",
    type=click.FloatRange(min=0),
    default=0.3,
    show_default=True,
    metavar="SECONDS",
    help="Keep reporting a lost track this long where its motion says it is, marked "
    '"predicted": true (a person behind a pillar or someone nearer), unless it left the '
    "picture or someone in view is there. Scorers count a hidden person as there: on "
    "MOTChallenge's TUD sequences (noisy detections) 0.3 s raised MOTA from 0.52 and 0.69 "
    "to 0.66 and 0.79; on the PETS 2009 clip's hand-labelled frames (hidden people not "
    "counted) it found one more person and made one more false box. "
    "0: report only what was seen.",
)
@click.option(
    "--appearance/--no-appearance",
    default=True,
    show_default=True,
    help="Compare the colours of upper and lower body, so that people whose boxes overlap "
    "as they pass are not swapped and a lost person is not taken for someone else "
    "(reads the frames' pixels). --no-appearance: boxes alone, as ByteTrack; the pixels "
    "then pass through without being read.",
)
def track(
    packets: Iterator[Packet],
    buffer: str,
    static: float,
    high: float,
    start: float,
    coast: float,
    appearance: bool,
) -> Iterator[Packet]:
    """Follow detected objects from frame to frame; give each a lasting id and a velocity.

    Reads the "objects" that `vflow detect` writes into frame packets and replaces them with
    the objects being tracked in that frame, each with "id" (an integer from 1, kept while
    the object is followed: through short misses, occlusions and crossings) and "velocity"
    [vx, vy] (its box centre's speed in pixels a second of media time; right and down are
    positive). Its "box" is the filtered one, steadier than the detector's, inside the
    frame; while part of a person is hidden (their box much shorter than when last seen
    clearly, as when someone nearer hides their legs), it is their whole box, hanging from
    the top of what is seen: what a person looking at the frame would draw. Detections
    that belong to no confirmed track (too weak to start one, seen only once, scenery: see
    --static) are left out. Objects are matched only to tracks of their
    own class; other fields of an object are kept.

    ByteTrack's method: Kalman-filtered boxes matched by overlap, confident detections
    first, weak ones next, so people half hidden keep their ids; and what they look like
    (see --appearance). A track lost behind a pole or a sign (where its box shrinks to what
    is still in view) is also found again by distance and looks, unless it was last seen
    at the frame's edge: then it left.

    Time comes from the packets' "t" (media time), so gaps (`vflow every`, dropped frames)
    are predicted over; without it, from the frame count and the stream's announced frame
    rate (else 30). A jump back in time (another stream) starts afresh, ids still counting
    up. Keeps state: one process must see every frame, in order.

    \b
      vflow read lobby.mp4 | vflow detect | vflow track | vflow print -f seq -f objects
      vflow camera 0 | vflow detect | vflow track --buffer 3 --static 0 | vflow show
    """
    from vflow_cli.images import viewable_picture
    from vflow_cli.packets import Clock, picture_size
    from vflow_cli.vision.tracker import Settings, Tracker

    seconds, in_frames = parse_buffer(buffer)
    tracker = Tracker(
        Settings(
            high=high,
            new=start,
            buffer=seconds,
            buffer_frames=in_frames,
            static=static,
            coast=coast,
            appearance=appearance,
        )
    )
    clock = Clock()
    frames = with_objects = 0
    for packet in packets:
        kind = packet.get("kind")
        if kind == "stream":
            clock.announce(packet)
            tracker.settings.fps = clock.fps
            yield packet
            continue
        if kind == "gap":  # the source was away: where things went is unknown
            tracker.reset()
        if kind != "frame":
            yield packet
            continue
        objects = packet.get("objects")
        if isinstance(objects, list):
            with_objects += 1
        else:
            objects = []
        t = clock.now(packet)  # media time; else wall time; else frames counted
        picture = None
        if appearance and objects and packet.get("image") is not None:
            picture = viewable_picture(packet)
        packet["objects"] = tracker.update(objects, float(t), picture_size(packet), picture)
        frames += 1
        yield packet
    if frames and not with_objects:
        log.warning("no frame had objects to track; put `vflow detect` before `vflow track`")
    log.info("%d frames, %d tracks", frames, tracker.next_id - 1)
