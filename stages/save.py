"""save: write frames as numbered still images (png, jpg) into a directory. Streaming."""

from __future__ import annotations

import os
from collections.abc import Iterator

import click

from vflow_cli.framing import Encoded
from vflow_cli.options import checked, quality_option
from vflow_cli.stage import Packet, StageError, consumer, log

FORMATS = ("png", "jpg")


def check_name(text: str) -> str:
    from vflow_cli.template import check_template

    check_template(text)
    if os.sep in text:
        raise click.BadParameter(f"{text!r}: a name, not a path (DIR is given separately)")
    return text


def file_name(template: str, packet: Packet, number: int, saved: int, ext: str) -> str:
    """The file name for a frame: the template filled from its fields. A value from the
    stream never makes a path: '/', NUL and control characters become '_'."""
    from vflow_cli.images import frame_name
    from vflow_cli.template import render

    missing: set[str] = set()
    fields = {**packet, "seq": number, "ext": ext}
    name = render(template, fields, saved, missing)
    if missing:
        raise StageError(
            f"{frame_name(packet)} has no field {sorted(missing)[0]!r} for --name {template!r}"
        )
    name = "".join("_" if c in (os.sep, "\0") or not c.isprintable() else c for c in name)
    if name in ("", ".", "..") or len(name.encode()) > 255:
        raise StageError(f"--name {template!r} makes {name[:60]!r} for {frame_name(packet)}")
    return name


@consumer
@click.argument("directory", metavar="DIR")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="png",
    show_default=True,
    help="Image format: png (lossless) or jpg.",
)
@click.option(
    "--every", type=click.IntRange(min=1), default=1, show_default=True, help="Save one frame in N."
)
@quality_option(95, "JPEG quality (jpg only)")
@click.option(
    "--name",
    "template",
    default="{seq:06d}.{ext}",
    show_default=True,
    callback=checked(check_name),
    help="File name template: any field of the packet as `vflow stamp` takes it ({seq}, "
    "{frame}, {t:.1f}, {time}), {n} (saved so far) and {ext}.",
)
def save(
    packets: Iterator[Packet],
    directory: str,
    format_: str,
    every: int,
    quality: int,
    template: str,
) -> None:
    """Save frames as numbered image files in DIR (created if missing).

    JPEG frames from `vflow jpeg` are saved as they are when --format is jpg (no
    re-encoding). Files already in DIR with the same names are overwritten. A frame that
    lacks a field --name uses stops the stage (it would overwrite one file); a '/' in a
    field's value becomes '_' (a name never leaves DIR).

    \b
      vflow read talk.mp4 | vflow save frames/ --every 25
      vflow camera 0 --frames 1 | vflow save . --format jpg --name snapshot.{ext}
      vflow read walk.mp4 | vflow detect | vflow select 'len(objects) >= 8' \\
          | vflow save busy/ --name 'f{frame:05d}-t{t:.1f}.{ext}'
    """
    import cv2

    from vflow_cli.colors import colorspace_of, convert_colors
    from vflow_cli.framing import StreamError
    from vflow_cli.images import Takes, pixels

    _check_directory(directory)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if format_ == "jpg" else []
    takes = Takes(
        f"{format_.upper()} holds",
        ("uint8", "uint16") if format_ == "png" else ("uint8",),
        (1, 3, 4),
        "convert the frames to 8 bits first"
        + (", or save them with --format png, which holds 16 bits" if format_ == "jpg" else ""),
    )
    seen = saved = 0
    try:
        for packet in packets:
            image = packet.get("image")
            if image is None:
                continue
            seen += 1
            if (seen - 1) % every:
                continue
            if saved == 0:
                _make_directory(directory)  # only once a frame is there to save
            seq = packet.get("seq")
            number = seq if isinstance(seq, int) else seen - 1
            path = os.path.join(directory, file_name(template, packet, number, saved, format_))
            if (
                format_ == "jpg"
                and isinstance(image, Encoded)
                and image.format == "jpeg"
                and (packet.get("colorspace") in (None, "bgr", "gray"))
            ):
                data: bytes = bytes(image.data)
            else:
                picture = pixels(image)
                takes.check(picture, packet)
                space = colorspace_of(packet, picture)
                if space not in ("bgr", "gray"):
                    picture = convert_colors(picture, space, "bgr")
                ok, encoded = cv2.imencode("." + format_, picture, params)
                if not ok:
                    raise StageError(
                        f"cannot encode a {picture.shape} {picture.dtype} frame as {format_}"
                    )
                data = encoded.tobytes()
            try:
                with open(path, "wb") as f:
                    f.write(data)
            except OSError as exc:
                raise StageError(
                    f"cannot write {path}: {exc.strerror}; {directory} holds the "
                    f"{saved} frames saved before it"
                ) from None
            saved += 1
    except StreamError as exc:
        raise StreamError(f"{exc}; {directory} holds the {saved} frames saved") from None
    log.info("saved %d of %d frames in %s", saved, seen, directory)


def _check_directory(directory: str) -> None:
    """Refuse now what would fail at the first frame: a file in the way, no permission."""
    existing = directory
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing.rstrip(os.sep))
    existing = existing or "."
    if not os.path.isdir(existing):
        raise StageError(f"cannot save into {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StageError(f"cannot save into {directory}: {existing} is not writable")


def _make_directory(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise StageError(f"cannot create directory {directory}: {exc.strerror}") from None
