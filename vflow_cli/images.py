"""images: what stages share about a packet's picture (decode on demand, draw a label)."""

from __future__ import annotations

from typing import Any

from vflow_cli.framing import Encoded, Pending
from vflow_cli.runner import StageError


def pixels(image: Any) -> Any:
    """The image as a numpy array, decoding it when it travels compressed (`vflow jpeg`)."""
    if type(image) is Pending:
        image = image.load()
    if isinstance(image, Encoded):
        import cv2
        import numpy as np

        flags = cv2.IMREAD_UNCHANGED
        decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), flags)
        if decoded is None:
            raise StageError(f"a {image.format} image in the stream could not be decoded")
        return decoded
    return image


def jpeg(image: Any, quality: int) -> Encoded:
    """A raw picture as an Encoded JPEG (8-bit grey or BGR; alpha is dropped)."""
    import cv2
    import numpy as np

    if image.dtype != np.uint8:
        raise StageError(
            f"JPEG holds 8-bit pictures, not {image.dtype}; convert the frames to 8 bits first"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StageError(f"could not JPEG-encode a {'x'.join(map(str, image.shape))} picture")
    return Encoded("jpeg", data.tobytes(), image.shape)


def jsonable(value: Any) -> Any:
    """json.dumps fallback for packet metadata (`print`, `write --meta`): images are
    described by format, dtype and shape, never dumped."""
    if type(value) is Pending:
        return value.describe()
    if isinstance(value, Encoded):
        return {
            "format": value.format,
            "dtype": value.dtype,
            "shape": list(value.shape),
            "bytes": len(value.data),
        }
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "ndim", 0) > 0:
        return {"format": "raw", "dtype": str(value.dtype), "shape": list(shape)}
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)  # msgpack ext types and the like: readable, never a crash


def draw_label(image: Any, text: str, origin: tuple[int, int], scale: float | None = None) -> None:
    """White text with a dark outline, readable on any picture; sized to the frame."""
    import cv2

    if scale is None:
        scale = max(0.4, image.shape[0] / 720)
    thickness = max(1, round(scale * 2))
    font = cv2.FONT_HERSHEY_SIMPLEX
    white = (255,) * (image.shape[2] if image.ndim == 3 else 1)
    black = (0,) * len(white)
    # the outline lies under the white text: LINE_8 looks the same there and costs a seventh
    cv2.putText(image, text, origin, font, scale, black, thickness + 2, cv2.LINE_8)
    cv2.putText(image, text, origin, font, scale, white, thickness, cv2.LINE_AA)


def line_height(image: Any) -> int:
    return int(max(0.4, image.shape[0] / 720) * 34)
