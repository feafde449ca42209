"""mot: write tracks as a MOTChallenge text file (frame,id,x,y,w,h,score,-1,-1,-1). Streaming."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import click

from vflow_cli.stage import Packet, StageError, consumer, log
from vflow_cli.vision.objects import classes_option


@consumer(pixels=False, passes="pass_")
@click.argument("file", metavar="FILE|-")
@classes_option("Write", everything="every tracked object")
@click.option(
    "--pass",
    "pass_",
    is_flag=True,
    help="Also pass every packet on, unchanged, so that mot can sit in the middle of a pipe "
    "(FILE cannot be - then).",
)
def mot(
    packets: Iterator[Packet], file: str, classes: str | None, pass_: bool = False
) -> Iterator[Packet] | None:
    """Write tracks in MOTChallenge format to FILE (- for stdout), for scoring tools.

    One line per tracked object per frame: frame,id,x,y,w,h,score,-1,-1,-1, where x,y is
    the box's top-left corner and w,h its size in pixels, and frame counts from 1 as in
    MOTChallenge: the packet's "frame" (a video file's frame number, from `vflow read`)
    plus 1, else its "seq" plus 1. Objects without a track id (no `vflow track` before) are
    not written. Lines are flushed frame by frame, so `tail -f` follows a live run.

    \b
      vflow read MOT17-04.mp4 | vflow detect | vflow track | vflow mot tracks.txt
      vflow read clip.mp4 | vflow detect | vflow track | vflow mot - | head
      ... | vflow track | vflow mot tracks.txt --pass | vflow annotate | vflow write out.mp4
    """
    if pass_ and file == "-":
        raise StageError("--pass sends the packets on stdout: give mot a FILE, not -")
    if pass_:
        return _passing(packets, file, classes)
    for _ in _passing(packets, file, classes):
        pass
    return None


def _passing(packets: Iterator[Packet], file: str, classes: str | None) -> Iterator[Packet]:
    """Write the rows of every frame, yielding each packet once its rows are written."""
    from vflow_cli.videofile import check_writable
    from vflow_cli.vision.objects import objects_of, parse_classes, track_id, wanted

    labels = parse_classes(classes)
    out: IO[str] = sys.stdout
    if file != "-":
        check_writable(file)
        try:
            out = open(file, "w")  # noqa: SIM115 (closed below, after the loop)
        except OSError as exc:
            raise StageError(f"cannot write {file}: {exc.strerror}") from None
    frames = with_objects = rows = 0
    try:
        for packet in packets:
            if packet.get("kind") == "frame":
                frames += 1
                number = _frame_number(packet, frames)
                objects = objects_of(packet)
                with_objects += bool(objects)
                lines = []
                for obj in objects:
                    ident = track_id(obj)
                    if ident is None or not wanted(obj, labels):
                        continue
                    x1, y1, x2, y2 = obj["box"]
                    score = obj.get("score")
                    if not isinstance(score, (int, float)):
                        score = 1.0
                    lines.append(
                        f"{number},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                        f"{score:.4f},-1,-1,-1\n"
                    )
                if lines:
                    out.write("".join(lines))
                    rows += len(lines)
                    if file != "-":
                        out.flush()
            yield packet
    finally:
        if file != "-":
            out.close()
    if with_objects and not rows:
        log.warning("no object had a track id, so nothing was written; put `vflow track` first")
    log.info("%d rows from %d frames written to %s", rows, frames, file)


def _frame_number(packet: Packet, counted: int) -> int:
    """MOTChallenge's frame number (from 1) of a frame packet."""
    for key in ("frame", "seq"):
        value = packet.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise StageError(f"packet {key} {value} is negative; MOT frames count from 1")
            return value + 1
    return counted
