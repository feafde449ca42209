"""images: what stages share about a packet's picture (decode on demand, check what a stage
can take, draw a label)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vflow_cli.errors import StageError
from vflow_cli.framing import Encoded, Pending
from vflow_cli.framing.wire import DTYPES


def pixels(image: Any) -> Any:
    """The image as a numpy array, decoding it when it travels compressed (`vflow jpeg`)."""
    if type(image) is Pending:
        image = image.load()
    if isinstance(image, Encoded):
        import cv2
        import numpy as np

        from vflow_cli.framing import max_packet_size
        from vflow_cli.image_headers import check_encoded
        from vflow_cli.opencv import native_stderr_to_log

        check_encoded(image, max_packet_size())  # its header's size, before any allocation
        with native_stderr_to_log():  # libjpeg's "Corrupt JPEG data": -vv shows it
            decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise StageError(f"a {image.format} image in the stream could not be decoded")
        return decoded
    return image


def settle(packet: dict[str, Any]) -> None:
    """For a stage that never looks at pixels: make sure the packet's image has fully
    arrived (skipping it in the input) before acting on the packet."""
    image = packet.get("image")
    if type(image) is Pending:
        image.skip()


def frame_name(packet: dict[str, Any]) -> str:
    """'frame 12' (its seq), for messages about one frame."""
    seq = packet.get("seq")
    return f"frame {seq}" if isinstance(seq, int) else "a frame"


def describe(image: Any) -> str:
    """'a 480x640x3 uint8 image'."""
    shape = getattr(image, "shape", ())
    dtype = getattr(image, "dtype", "?")
    return f"a {'x'.join(map(str, shape)) or 'shapeless'} {dtype} image"


# what OpenCV's main functions take, measured on opencv-python 4.x
SCALABLE = ("uint8", "uint16", "int16", "float32", "float64")  # resize, warpAffine
DRAWABLE = ("uint8", "int8", "uint16", "int16", "int32", "float16", "float32", "float64")
COLOUR = ("uint8", "uint16", "float32")  # cvtColor
ANY_DTYPE = tuple(DTYPES)


@dataclass(frozen=True)
class Takes:
    """The pictures a stage can work on. check() raises a StageError that names the frame,
    what it is, what the stage takes and what to do, instead of an OpenCV assertion."""

    what: str  # "resize scales", "JPEG holds"
    dtypes: tuple[str, ...] = SCALABLE
    channels: tuple[int, ...] | None = (1, 2, 3, 4)  # None: any number
    hint: str = "send frames of one of those types"

    def check(self, image: Any, packet: dict[str, Any]) -> None:
        shape: tuple[int, ...] = tuple(getattr(image, "shape", ()))
        channels = 1 if len(shape) == 2 else shape[2] if len(shape) == 3 else 0
        if (
            len(shape) in (2, 3)
            and 0 not in shape
            and str(image.dtype) in self.dtypes
            and (self.channels is None or channels in self.channels)
        ):
            return
        if self.channels is None:
            counts = "any number of channels"
        else:
            low, high = self.channels[0], self.channels[-1]
            if len(self.channels) > 2 and self.channels == tuple(range(low, high + 1)):
                counts = f"{low}-{high} channels"
            else:
                plural = "s" * (len(self.channels) > 1 or low > 1)
                counts = f"{' or '.join(map(str, self.channels))} channel{plural}"
        kinds = "any type" if self.dtypes == ANY_DTYPE else ", ".join(self.dtypes)
        raise StageError(
            f"{frame_name(packet)} is {describe(image)}; {self.what} height x width "
            f"pictures with {counts}, of {kinds}; {self.hint}"
        )


DRAWS = Takes("drawing takes", DRAWABLE, (1, 2, 3, 4))
VIEWS = Takes("a window or a video file takes", ANY_DTYPE, (1, 3, 4))


def viewable_picture(packet: dict[str, Any]) -> Any:
    """The packet's picture as 8-bit BGR for a window or an encoder (checked first)."""
    from vflow_cli.colors import viewable

    picture = pixels(packet["image"])
    VIEWS.check(picture, packet)
    return viewable(packet, picture)


JPEG = Takes("JPEG holds", ("uint8",), (1, 3, 4), "convert the frames to 8 bits first")


def jpeg(image: Any, quality: int, packet: dict[str, Any] | None = None) -> Encoded:
    """A raw picture as an Encoded JPEG (8-bit grey or BGR; alpha is dropped); `vflow jpeg`
    and `vflow send` compress with it."""
    import cv2

    JPEG.check(image, packet or {})
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StageError(f"could not JPEG-encode a {'x'.join(map(str, image.shape))} picture")
    return Encoded("jpeg", data.tobytes(), image.shape)
