"""images: frames from still image files (a glob pattern, a directory, one file). Streaming."""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import frames_option, name_option, rate_option
from vflow_cli.stage import Packet, StageError, log, producer

EXTENSIONS = frozenset(
    ".png .jpg .jpeg .bmp .tif .tiff .webp .pgm .ppm .pbm .pnm .jp2 .exr .hdr .avif".split()  # noqa: SIM905
)


def _natural(path: str) -> list[Any]:
    """frame2.png before frame10.png."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]


def find(pattern: str) -> list[str]:
    """The image files a pattern, directory or file names, in natural order."""
    if os.path.isdir(pattern):
        names = [os.path.join(pattern, n) for n in os.listdir(pattern)]
        paths = [
            p for p in names if os.path.splitext(p)[1].lower() in EXTENSIONS and os.path.isfile(p)
        ]
        if not paths:
            raise StageError(f"{pattern} holds no image files ({', '.join(sorted(EXTENSIONS))})")
    elif os.path.isfile(pattern):
        paths = [pattern]
    else:
        paths = [p for p in glob.glob(pattern) if os.path.isfile(p)]
        if not paths:
            if glob.has_magic(pattern):
                raise StageError(
                    f"no files match {pattern} (quote the pattern so vflow expands it)"
                )
            raise StageError(f"{pattern}: no such file or directory")
    return sorted(paths, key=_natural)


def load(path: str) -> Any:
    """An image file as a uint8 BGR (or grey) array; StageError if it is not one."""
    import cv2
    import numpy as np

    from vflow_cli.opencv import native_stderr_to_log

    data = np.fromfile(path, np.uint8) if os.access(path, os.R_OK) else None
    if data is None:
        raise StageError(f"cannot read {path}: permission denied")
    with native_stderr_to_log():  # libpng's and libjpeg's warnings: -vv shows them
        image: Any = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise StageError(f"{path} is not an image OpenCV can decode")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, image.copy(), 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


@producer
@click.argument("pattern", metavar="PATTERN|DIR")
@rate_option("The frame rate the timestamps (t) follow; frames are not paced.", 30.0)
@click.option("--loop", is_flag=True, help="Start again after the last image (with --frames).")
@frames_option("every image once (forever with --loop)")
@name_option(None, "PATTERN")
def images(
    pattern: str, fps: float, loop: bool, frames: int | None, name: str | None
) -> Iterator[Packet]:
    """Produce frames from image files: a glob pattern, a directory, or a single file.

    Files are taken in natural order (2 before 10). Each frame carries its 'path'; the
    stream's size is the first image's. Quote a glob so vflow, not the shell, expands it.

    \b
      vflow images 'shots/*.jpg' --fps 2 | vflow write slideshow.mp4
      vflow images photo.png | vflow resize 640x-1 | vflow save small/
    """
    from vflow_cli import packets

    paths = find(pattern)
    first = load(paths[0])
    height, width = first.shape[:2]
    once = len(paths)
    length = frames if frames is not None else (None if loop else once)
    yield packets.stream(name or pattern, width, height, fps, length)
    names = itertools.cycle(paths) if loop else iter(paths)
    for seq, path in enumerate(names):
        if frames is not None and seq >= frames:
            break
        image = first.copy() if once == 1 else (first if seq == 0 else load(path))
        if image.shape[:2] != (height, width) and seq < once:
            log.info("%s is %dx%d, unlike the first image", path, image.shape[1], image.shape[0])
        yield packets.frame(seq, seq / fps, image, path=path)
