"""detect: find people (or other objects) in every frame; boxes go into the packet. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, StageError, processor


def _check(parse: Any) -> Any:
    """A click callback: parse at parse time, so a usage error names the option."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _size(text: str) -> Any:
    from vflow_cli.vision.boxes import parse_input_size

    return parse_input_size(text)


def _device(text: str) -> str:
    from vflow_cli.vision.runtime import parse_device

    parse_device(text)
    return text


@processor(stateful=lambda options: options.get("model") == "motion")
@click.option(
    "-m",
    "--model",
    default="yolox",
    show_default=True,
    metavar="NAME|FILE.onnx",
    help="yolox: YOLOX-Nano, shipped with vflow (80 COCO classes); hog: OpenCV's HOG people "
    "detector (slow; frames are enlarged for small people); motion: moving regions by "
    "background subtraction (class -1, label motion; keeps state); face: faces; or a "
    "YOLOX-format ONNX file of your own (see below).",
)
@click.option(
    "--classes",
    metavar="NAMES",
    default=None,
    help="COCO class names to keep, comma-separated (person,car,dog; traffic_light for "
    "'traffic light'), 'all', or class numbers for a model of other classes. Default: person.",
)
@click.option(
    "--score",
    type=click.FloatRange(0, 1),
    default=None,
    help="Lowest score kept. Default: 0.25 for YOLOX models (low enough for `vflow track` "
    "to bridge short occlusions; it starts tracks only from confident boxes), 0.5 for hog, "
    "0.7 for face, 0 for motion (where the score is the share of the box that moved).",
)
@click.option(
    "--nms",
    type=click.FloatRange(0, 1),
    default=0.45,
    show_default=True,
    help="Overlap (IoU) above which the weaker of two boxes of one class is dropped.",
)
@click.option(
    "--size",
    metavar="auto|N|WxH",
    default=None,
    callback=_check(_size),
    help="YOLOX input size, in multiples of 32. auto (the default): the frame's own size, "
    "between 226,000 and 442,000 pixels (768x576 stays 768x576; smaller frames are "
    "enlarged, 320x240 to 544x416; larger ones reduced, 1080p to 896x512), shaped like the "
    "frame so no work goes into padding; N: the long side N, the other in proportion "
    "(640 -> 640x480 for 4:3); WxH: exactly, letterboxed. Fewer pixels run faster and "
    "find fewer small people: 544x416 runs about 1.6 times as fast as 768x576.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Threads for the network (ONNX Runtime); 0: one per core this process may use.",
)
@click.option(
    "--device",
    metavar="cpu|cuda[:N]",
    default="cpu",
    show_default=True,
    callback=_check(_device),
    help="cuda runs the network on a GPU through onnxruntime-gpu (installed in place of "
    "onnxruntime; N counts the GPUs CUDA_VISIBLE_DEVICES leaves visible). Without a usable "
    "GPU: the CPU, and one warning.",
)
@click.option(
    "--upscale",
    type=click.FloatRange(min=1.0),
    default=None,
    metavar="FACTOR",
    help="hog only: enlarge frames by FACTOR first (its window is 128 pixels tall). "
    "Default: towards 1080 lines, at most 2.",
)
@click.option(
    "--min-area",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="FRACTION",
    help="motion only: the smallest region kept, as a fraction of the frame. Default: 0.0005.",
)
def detect(
    packets: Iterator[Packet],
    model: str,
    classes: str | None,
    score: float | None,
    nms: float,
    size: Any,
    threads: int,
    device: str,
    upscale: float | None,
    min_area: float | None,
) -> Iterator[Packet]:
    """Find people (or other objects) in every frame; write their boxes into the packet.

    Each frame packet gets "objects": a list of {"box": [x1, y1, x2, y2], "score", "class",
    "label"}, the box in pixels of the frame as it is in that packet (vflow-packet(5)).
    Objects already in the packet are kept and the new ones added after them, so two
    detectors can be chained. The model loads once, before the first frame; frames of any
    size, grey or compressed (`vflow jpeg`), are accepted. Other packets pass unchanged.

    A model file of your own must be YOLOX-format ONNX, as YOLOX's export_onnx.py writes
    it: one float input [1, 3, H, W] (BGR, 0-255, the frame letterboxed at the top-left on
    grey 114), one output [1, anchors, 5 + classes] for the cells of the grids at strides
    8, 16 and 32 (x, y, w, h, objectness, class scores): raw (the default export) or
    decoded to pixels (--decode_in_inference); which one is found out on loading. A
    symbolic H and W let --size choose; fixed ones are used as they are. A missing,
    unreadable or differently shaped file is one error line.

    Something that never moves can look like a person frame after frame (a signpost
    scoring about 0.5 in the PETS 2009 footage). detect reports what the network sees in
    each frame; `vflow track`, which sees time, leaves out by default what stands still
    while scoring low (see its --static).

    \b
      vflow camera 0 | vflow detect | vflow show
      vflow read lobby.mp4 | vflow detect | vflow track | vflow print -f seq -f objects
      vflow read street.mp4 | vflow detect --classes person,car,bicycle --size 640 | ...
    """
    from vflow_cli.images import viewable_picture
    from vflow_cli.vision.detectors import Settings, open_detector

    settings = Settings(
        model=model,
        classes=classes,
        score=score,
        nms=nms,
        size=size,
        threads=threads,
        device=device,
        upscale=upscale,
        min_area=min_area,
    )
    detector = open_detector(settings)
    for packet in packets:
        image = packet.get("image")
        if image is None or packet.get("kind", "frame") != "frame":
            yield packet
            continue
        found = detector(viewable_picture(packet))
        earlier = packet.get("objects")
        if isinstance(earlier, list):
            found = earlier + found
        elif earlier is not None:
            raise StageError(
                f"packet {packet.get('seq', '?')} has an 'objects' field that is not a list; "
                "see vflow-packet(5)"
            )
        packet["objects"] = found
        yield packet
