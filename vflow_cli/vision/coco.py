"""coco: the 80 COCO class names in the order YOLOX (and most COCO detectors) number them."""

from __future__ import annotations

NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip


def _key(name: str) -> str:
    return name.strip().lower().replace("_", " ").replace("-", " ")


_BY_NAME = {_key(name): i for i, name in enumerate(NAMES)}


def parse_classes(text: str, count: int = len(NAMES)) -> tuple[int, ...]:
    """'person,car' or '0,2' (or 'all') -> class ids; ValueError naming what is not known.

    Names are COCO's; traffic_light and traffic-light also match 'traffic light'. Numbers
    are class ids, for models whose classes are not COCO's (`count` of them)."""
    if _key(text) == "all":
        return tuple(range(count))
    ids: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        key = _key(part)
        if key.isdigit():
            number = int(key)
            if number >= count:
                raise ValueError(f"class {number} is out of range (the model has {count})")
            ids.append(number)
        elif key in _BY_NAME and count == len(NAMES):
            ids.append(_BY_NAME[key])
        else:
            raise ValueError(
                f"{part.strip()!r} is not a COCO class name (person, car, bicycle, dog, ...; "
                "see vflow-detect(1)); for a model of other classes, give class numbers"
            )
    if not ids:
        raise ValueError("no class given; e.g. --classes person,car")
    return tuple(dict.fromkeys(ids))


def label(class_id: int, count: int = len(NAMES)) -> str:
    """The label of a class id: its COCO name for an 80-class model, else the number."""
    return NAMES[class_id] if count == len(NAMES) and 0 <= class_id < count else str(class_id)
