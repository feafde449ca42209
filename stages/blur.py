"""blur: hide the boxes of chosen classes (faces by default): blur, pixelate or fill. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, log, processor
from vflow_cli.vision.objects import classes_option


def _colour(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int, int]:
    text = value.lstrip("#")
    try:
        if len(text) != 6:
            raise ValueError
        r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a colour RRGGBB (e.g. 000000, ff8800)"
        ) from None
    return b, g, r


# pixels=False: a frame with nothing to hide goes from stdin to stdout by splice(2), without
# entering the process; one with boxes is loaded (images.pixels) before the next packet is read
@processor(pixels=False)
@classes_option("Hide", default="face")
@click.option(
    "--method",
    type=click.Choice(("blur", "pixelate", "fill")),
    default="blur",
    show_default=True,
    help="blur: a smooth smear; pixelate: square cells; fill: a solid colour.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.15,
    show_default=True,
    metavar="FRACTION",
    help="Grow each box by this fraction of its width and height on every side (detector "
    "boxes leave out hair, ears and chin).",
)
@click.option(
    "--blocks",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    metavar="N",
    help="Detail left across a box's longer side: cells for pixelate, the blur's coarseness "
    "for blur. Fewer hide more.",
)
@click.option(
    "--colour",
    "--color",
    "colour",
    default="000000",
    show_default=True,
    metavar="RRGGBB",
    callback=_colour,
    help="The colour of --method fill.",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="SCORE",
    help="Hide only objects scoring at least this (0: every box given, the safe choice).",
)
def blur(
    packets: Iterator[Packet],
    classes: str,
    method: str,
    margin: float,
    blocks: int,
    colour: tuple[int, int, int],
    min_score: float,
) -> Iterator[Packet]:
    """Blur, pixelate or fill the boxes of chosen classes, for privacy (faces by default).

    The boxes are the frame's "objects" (vflow-packet(5)), made by a detector before it:
    `vflow detect --model face` finds faces (label "face"); `vflow detect` finds people
    (label "person") and other COCO classes for --classes person,car. Only the pixels
    inside each box (and its --margin) change. A frame whose detector missed a face shows
    that face: for footage where that matters, use a low detector --score and check the
    result.

    The face model sees the picture at 320x240: it misses faces shorter than about a
    twentieth of the picture's height (measured: 26-46 pixels tall in 576-line video, 50 or
    more in 1080p). For people further away (a street, a walkway), hide every person
    instead: `vflow detect | vflow blur --classes person`.

    It says when frames carry objects but none of --classes (nothing is hidden then), and
    at the end, in one line, how many boxes it hid in how many frames (-q: not).

    \b
      vflow camera 0 | vflow detect --model face | vflow blur | vflow write private.mp4
      vflow read street.mp4 | vflow detect | vflow blur --classes person \\
          --method pixelate | vflow show
    """
    from vflow_cli.images import SCALABLE, Takes, frame_name, pixels
    from vflow_cli.vision.objects import objects_of, parse_classes, wanted
    from vflow_cli.vision.redact import redact

    takes = Takes("blur hides boxes in", SCALABLE, (1, 3, 4))
    labels = None if classes.strip() == "*" else parse_classes(classes)
    frames = with_objects = with_boxes = hidden = 0
    seen: set[str] = set()  # labels of objects that were not hidden, while none was
    for packet in packets:
        image = packet.get("image")
        if image is None or packet.get("kind") != "frame":
            yield packet
            continue
        frames += 1
        with_objects += "objects" in packet
        found = objects_of(packet)
        boxes = [obj["box"] for obj in found if wanted(obj, labels) and _score(obj) >= min_score]
        if found and not boxes and not with_boxes and not seen:
            log.warning(
                "%s carries %s but none of --classes %s%s: nothing hidden; "
                "--classes person hides people, '*' every object",
                frame_name(packet),
                _labels(found),
                classes,
                f" scoring {min_score:g} or more" if min_score else "",
            )
        if found and not with_boxes:
            seen.update(str(obj.get("label", obj.get("class", "?"))) for obj in found)
        if boxes:
            with_boxes += 1
            picture = pixels(image)
            takes.check(picture, packet)
            if not picture.flags.writeable:
                picture = picture.copy()
            hidden += redact(picture, boxes, method, margin, blocks, colour)
            packet["image"] = picture
        yield packet
    if frames and not with_objects:
        log.warning(
            "no frame carried objects, so nothing was hidden; put a detector before blur, "
            "e.g. `vflow detect --model face | vflow blur`"
        )
    if frames:  # a privacy tool says what it did, by default
        log.warning("hid %d boxes in %d of %d frames", hidden, with_boxes, frames)


def _labels(found: list[dict]) -> str:
    """'3 objects (person, car)'."""
    names = sorted({_printable(obj.get("label", obj.get("class", "?"))) for obj in found})
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"{len(found)} object{'s' if len(found) != 1 else ''} ({shown})"


def _printable(value: object) -> str:
    """A label from the stream, shortened, without control characters (it is hostile)."""
    return "".join(c if c.isprintable() else "?" for c in str(value)[:40])


def _score(obj: dict) -> float:
    score = obj.get("score", 1.0)
    return float(score) if isinstance(score, (int, float)) else 1.0
