"""colors: colour spaces, and a viewable 8-bit BGR picture of any frame."""

from __future__ import annotations

from typing import Any

from vflow_cli.errors import StageError
from vflow_cli.opencv import cv2_module

COLORSPACES = ("bgr", "rgb", "gray", "hsv", "yuv", "lab", "ycrcb")


def _codes(cv2: Any) -> tuple[dict[str, int], dict[str, int]]:
    from_bgr = {
        "rgb": cv2.COLOR_BGR2RGB,
        "gray": cv2.COLOR_BGR2GRAY,
        "hsv": cv2.COLOR_BGR2HSV,
        "yuv": cv2.COLOR_BGR2YUV,
        "lab": cv2.COLOR_BGR2Lab,
        "ycrcb": cv2.COLOR_BGR2YCrCb,
    }
    to_bgr = {
        "rgb": cv2.COLOR_RGB2BGR,
        "gray": cv2.COLOR_GRAY2BGR,
        "hsv": cv2.COLOR_HSV2BGR,
        "yuv": cv2.COLOR_YUV2BGR,
        "lab": cv2.COLOR_Lab2BGR,
        "ycrcb": cv2.COLOR_YCrCb2BGR,
    }
    return from_bgr, to_bgr


def colorspace_of(packet: dict[str, Any], image: Any) -> str:
    """What a frame's channels mean: its 'colorspace' field, else gray or bgr by shape."""
    space = packet.get("colorspace")
    if isinstance(space, str) and space in COLORSPACES:
        return space
    return "gray" if image.ndim == 2 or image.shape[2] == 1 else "bgr"


def convert_colors(image: Any, source: str, target: str) -> Any:
    """A picture converted between colour spaces (through BGR when neither end is BGR)."""
    cv2 = cv2_module()
    if source == target:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    is_grey = image.ndim == 2 or image.shape[2] == 1
    if is_grey and source != "gray":
        source = "gray"  # a one-channel picture is grey whatever the label says
        if source == target:
            return image
    if not is_grey and source == "gray":
        source = "bgr"
    from_bgr, to_bgr = _codes(cv2)
    if source != "bgr":
        image = cv2.cvtColor(image, to_bgr[source])
    if target != "bgr":
        image = cv2.cvtColor(image, from_bgr[target])
    return image


def viewable(packet: dict[str, Any], image: Any) -> Any:
    """A 3-channel uint8 BGR picture for a window or an encoder, whatever the frame holds."""
    space = colorspace_of(packet, image)
    if space not in ("bgr", "gray"):
        image = convert_colors(image, space, "bgr")
    return bgr8(image)


def bgr8(image: Any) -> Any:
    """A 3-channel uint8 BGR picture of any frame (grey, BGRA, 16-bit), for encoders."""
    cv2 = cv2_module()
    import numpy as np

    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype.kind == "f":
            # 0-1 pictures are scaled; NaN shows as black, infinities as black or white
            image = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
            image = np.clip(image * (255.0 if image.max(initial=0) <= 1.0 else 1.0), 0, 255)
            image = image.astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise StageError(f"cannot encode an image of shape {tuple(image.shape)} as video")
    return image
