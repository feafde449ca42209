"""heatmap: where people walked or stood, as a picture written at the end. Keeps state."""

from __future__ import annotations

import os
from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, StageError, consumer, log
from vflow_cli.vision.objects import classes_option


@consumer(stateful=True)
@click.argument("file", metavar="OUT.png")
@classes_option("Count")
@click.option(
    "--decay",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Let old heat fade: each SECONDS of media time keeps 1/e of it, so the picture "
    "shows about the last SECONDS. Default: everything, from the first frame.",
)
@click.option(
    "--update",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Also rewrite OUT.png every SECONDS of media time while the stream runs (whole: "
    "written aside, then renamed), for a live view. Default: once, at the end.",
)
def heatmap(
    packets: Iterator[Packet],
    file: str,
    classes: str | None,
    decay: float | None,
    update: float | None,
) -> None:
    """Draw where people walked or stood over a frame of the scene, with a colour scale.

    Adds up, over the stream, the time each object's foot point (the bottom centre of its
    box, where a person stands) spent at each place, and writes OUT.png: the heat in
    colours from blue (little) to red (most), over the scene, with a scale whose top reads
    the seconds spent near the hottest place. The colour follows the square root of the
    time (the scale's middle mark reads a quarter of its top), so a path walked once
    shows beside a long wait. Where nobody went the scene shows as it is.
    The scene is the median of a few frames spread over the stream, so people passing
    through leave it. Objects come from `vflow detect` (and `vflow track`); time from the
    packets' media time "t" (a frame stands for the time until the next one). Keeps state
    and writes at the end of the stream (and on Ctrl-C); a new picture size starts afresh.
    `vflow annotate --heatmap` draws the same on every frame.

    \b
      vflow read lobby.mp4 | vflow detect | vflow track | vflow heatmap lobby-heat.png
      vflow camera 0 | vflow detect | vflow heatmap now.png --decay 60 --update 5
    """
    import cv2

    from vflow_cli.images import viewable_picture
    from vflow_cli.packets import Clock
    from vflow_cli.videofile import check_writable
    from vflow_cli.vision.heatmap import Backdrop, Heat
    from vflow_cli.vision.objects import objects_of, parse_classes, wanted

    if not file.lower().endswith(".png"):
        raise StageError(f"{file}: the picture is a PNG; name it OUT.png")
    check_writable(file)
    labels = parse_classes(classes)
    heat, backdrop, clock = Heat(decay), Backdrop(), Clock()
    written = None

    def write() -> None:
        picture = backdrop.picture()
        heat.draw(picture)
        aside = f"{file}.part.png"  # a viewer never sees half a file
        if not cv2.imwrite(aside, picture):
            raise StageError(f"cannot write {file}")
        os.replace(aside, file)

    frames = counted = 0
    for packet in packets:
        kind = packet.get("kind")
        if kind == "stream":
            clock.announce(packet)
            continue
        if kind != "frame" or packet.get("image") is None:
            continue
        picture = viewable_picture(packet)
        t = clock.now(packet)
        chosen = [o for o in objects_of(packet) if wanted(o, labels)]
        heat.add(chosen, t, (picture.shape[1], picture.shape[0]))
        backdrop.offer(picture)
        frames += 1
        counted += len(chosen)
        if update and (written is None or t - written >= update or t < written):
            write()
            written = t
    if not frames:
        raise StageError("no frames came in: nothing to draw")
    write()
    if not counted:
        log.warning("no frame had objects: the picture shows no heat; put `vflow detect` first")
    log.info("%d frames, %d objects, written to %s", frames, counted, file)
