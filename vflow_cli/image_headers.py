"""image_headers: a compressed picture's own size, read from its header before decoding.

A packet declares the shape of its compressed image, but the decoder believes the picture's
header: 700 bytes of JPEG whose header says 10000x10000 decode to 286 MiB. So the header
is read first (JPEG SOF, PNG IHDR, WebP VP8/VP8L/VP8X), by hand and without allocating,
and a picture is decoded only when its size is the declared one and fits the packet limit.

    JPEG  FF D8, then segments FF xx LEN ...; the frame header (SOF0-SOF15 but DHT, JPG,
          DAC) holds precision, height, width, components; every SOF before the scan counts
    PNG   the signature, then the IHDR chunk: width, height, bit depth, colour type
    WebP  RIFF....WEBP, then VP8 (lossy: 14-bit sizes after 9D 01 2A), VP8L (lossless:
          14-bit sizes minus one) or VP8X (extended: 24-bit canvas sizes minus one, then
          the VP8/VP8L chunk, which must agree)
"""

from __future__ import annotations

from typing import Any

from vflow_cli.errors import StageError

# SOF markers: C0-CF but C4 (DHT), C8 (JPG) and CC (DAC)
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length follows
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}  # colour type -> channels at most (palette: BGRA)


class BadPicture(ValueError):
    """The header is missing, cut short or says something impossible."""


def _u16(data: Any, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def jpeg_size(data: Any) -> tuple[int, int, int, int]:
    """(width, height, channels, bytes per sample) from a JPEG's frame header(s)."""
    if data[:2] != b"\xff\xd8":
        raise BadPicture("it does not start as a JPEG does")
    size: tuple[int, int, int, int] | None = None
    at = 2
    while True:
        while at < len(data) and data[at] == 0xFF and at + 1 < len(data) and data[at + 1] == 0xFF:
            at += 1  # fill bytes
        if at + 2 > len(data) or data[at] != 0xFF:
            raise BadPicture("its segments are cut short or garbled before the picture")
        marker = data[at + 1]
        at += 2
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI, or SOS: the picture's data begins
            break
        length = _u16(data, at)
        if length < 2 or at + length > len(data):
            raise BadPicture("a segment's length runs past its end")
        if marker in _SOF:
            if length < 8:
                raise BadPicture("its frame header is cut short")
            precision, height, width = data[at + 2], _u16(data, at + 3), _u16(data, at + 5)
            found = (width, height, data[at + 7], 2 if precision > 8 else 1)
            if size is not None and found != size:
                raise BadPicture("two frame headers disagree")
            size = found
        at += length
    if size is None:
        raise BadPicture("it has no frame header")
    return size


def png_size(data: Any) -> tuple[int, int, int, int]:
    if data[:8] != _PNG_SIGNATURE or len(data) < 29 or data[12:16] != b"IHDR":
        raise BadPicture("it does not start with a PNG signature and IHDR")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    return width, height, _PNG_CHANNELS.get(colour, 4), 2 if depth > 8 else 1


def webp_size(data: Any) -> tuple[int, int, int, int]:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise BadPicture("it does not start as a WebP does")
    canvas: tuple[int, int] | None = None
    at = 12
    while at + 8 <= len(data):
        kind, length = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        body = data[at + 8 : at + 8 + length]
        if kind == b"VP8X" and len(body) >= 10:
            canvas = (
                1 + int.from_bytes(body[4:7], "little"),
                1 + int.from_bytes(body[7:10], "little"),
            )
        elif kind in (b"VP8 ", b"VP8L"):
            if kind == b"VP8 ":
                if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
                    raise BadPicture("its VP8 frame header is cut short or garbled")
                size = (
                    int.from_bytes(body[6:8], "little") & 0x3FFF,
                    int.from_bytes(body[8:10], "little") & 0x3FFF,
                )
            else:
                if len(body) < 5 or body[0] != 0x2F:
                    raise BadPicture("its VP8L header is cut short or garbled")
                bits = int.from_bytes(body[1:5], "little")
                size = (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
            if canvas is not None and canvas != size:
                raise BadPicture("its canvas and its picture differ in size")
            return size[0], size[1], 4, 1
        at += 8 + length + (length & 1)
    raise BadPicture("it has no VP8 or VP8L picture")


SIZES = {"jpeg": jpeg_size, "png": png_size, "webp": webp_size}


def check_encoded(image: Any, max_bytes: int) -> None:
    """Raise a StageError unless the compressed `image` (an Encoded) says in its own header
    the height and width its packet declares, and decodes within `max_bytes`."""
    reader = SIZES.get(image.format)
    if reader is None:
        return  # a format the decoder is not asked to read: it fails on its own
    declared = tuple(image.shape[:2])
    try:
        width, height, channels, sample = reader(memoryview(image.data).cast("B"))
    except BadPicture as exc:
        raise StageError(f"a {image.format} image in the stream is damaged: {exc}") from None
    if (height, width) != declared or 0 in (width, height):
        raise StageError(
            f"a {image.format} image in the stream is {width}x{height} by its own header, "
            f"but its packet declares {'x'.join(map(str, declared[::-1]))} (width x height)"
        )
    if width * height * channels * sample > max_bytes:
        raise StageError(
            f"a {width}x{height} {image.format} image in the stream would decode past "
            f"the packet limit of {max_bytes} bytes (VFLOW_MAX_PACKET)"
        )
