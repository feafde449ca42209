"""vflow detect: people found in real footage, boxes in the packet's pixels, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vflow_stages.detect import detect

from tests.helpers import frame, pack, sh, unpack, vflow
from tests.quality.detection import labels
from vflow_cli.stage import INFO
from vflow_cli.vision.boxes import fit_input, iou, nms, parse_input_size
from vflow_cli.vision.coco import parse_classes

TRACEBACK = b"Traceback"


@pytest.fixture(scope="module")
def footage():
    """The first 12 frames of the PETS 2009 clip (768x576) as frame packets."""
    import cv2

    from tests.video_support import vtest_avi

    capture = cv2.VideoCapture(str(vtest_avi()))
    packets = []
    for n in range(12):
        ok, image = capture.read()
        assert ok
        packets.append({"kind": "frame", "seq": n, "t": n / 10, "image": image})
    capture.release()
    return packets


def people_at_frame_0():
    return [box[:4] for box in labels()[0]]


def options(**given):
    defaults = {
        "model": "yolox",
        "classes": None,
        "score": None,
        "nms": 0.45,
        "size": None,
        "threads": 0,
        "device": "cpu",
        "upscale": None,
        "min_area": None,
    }
    return {**defaults, **given}


def found(packet, people, at=0.5):
    """How many of `people` a box in the packet's objects overlaps by IoU >= at."""
    boxes = [o["box"] for o in packet["objects"]]
    if not boxes:
        return 0
    return int((iou(people, boxes).max(1) >= at).sum())


def test_finds_the_people_labelled_by_hand(footage):
    (out,) = detect(iter([dict(footage[0])]), **options())
    assert found(out, people_at_frame_0()) == 3
    for obj in out["objects"]:
        assert set(obj) == {"box", "score", "class", "label"}
        assert obj["class"] == 0 and obj["label"] == "person"
        assert all(isinstance(v, float) for v in obj["box"]) and 0.25 <= obj["score"] <= 1
        x1, y1, x2, y2 = obj["box"]
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576


def test_boxes_are_in_the_pixels_of_the_frame_as_it_is(footage):
    import cv2

    small = dict(footage[0])
    small["image"] = cv2.resize(small["image"], (384, 288), interpolation=cv2.INTER_AREA)
    (out,) = detect(iter([small]), **options(size=(640, 480)))  # same detail as the original
    halved = [[v / 2 for v in box] for box in people_at_frame_0()]
    assert found(out, halved) == 3


def test_frames_changing_size_mid_stream(footage):
    import cv2

    small = dict(footage[0])
    small["image"] = cv2.resize(small["image"], (300, 400))  # another size and shape
    out = list(detect(iter([dict(footage[0]), small, dict(footage[0])]), **options()))
    assert out[0]["objects"] == out[2]["objects"]  # nothing of the other frame left over
    assert all(o["box"][2] <= 300 and o["box"][3] <= 400 for o in out[1]["objects"])


def test_grey_and_jpeg_frames(footage):
    import cv2

    from vflow_cli.framing import Encoded

    grey = dict(footage[0])
    grey["image"] = cv2.cvtColor(grey["image"], cv2.COLOR_BGR2GRAY)
    coded = dict(footage[0])
    _, data = cv2.imencode(".jpg", coded["image"], [cv2.IMWRITE_JPEG_QUALITY, 90])
    coded["image"] = Encoded("jpeg", data.tobytes(), coded["image"].shape)
    out = list(detect(iter([grey, coded]), **options()))
    assert [found(p, people_at_frame_0()) for p in out] == [3, 3]
    assert out[1]["image"] is coded["image"]  # still compressed: the pixels are not rewritten


def test_other_packets_pass_and_earlier_objects_stay(footage):
    note = {"kind": "data", "value": 1}
    stream = {"kind": "stream", "width": 768, "height": 576, "fps": 10.0}
    earlier = {"box": [1.0, 2.0, 3.0, 4.0], "score": 0.9, "class": 0, "label": "face"}
    packet = {**footage[0], "objects": [earlier]}
    out = list(detect(iter([stream, packet, note]), **options()))
    # compared with copies: out[0] *is* stream, and would equal it whatever detect did to it
    assert out[0] == {"kind": "stream", "width": 768, "height": 576, "fps": 10.0}
    assert out[2] == {"kind": "data", "value": 1}
    kept = {"box": [1.0, 2.0, 3.0, 4.0], "score": 0.9, "class": 0, "label": "face"}
    assert out[1]["objects"][0] == kept and len(out[1]["objects"]) >= 4


def test_classes(footage):
    (out,) = detect(iter([dict(footage[0])]), **options(classes="person,car", score=0.3))
    labels_seen = {o["label"] for o in out["objects"]}
    assert "person" in labels_seen and labels_seen <= {"person", "car"}
    assert {o["class"] for o in out["objects"]} <= {0, 2}


def test_class_names_and_numbers():
    assert parse_classes("person,car") == (0, 2)
    assert parse_classes("traffic_light, Traffic-Light") == (9,)
    assert parse_classes("all") == tuple(range(80))
    assert parse_classes("3,0", count=5) == (3, 0)
    with pytest.raises(ValueError, match="not a COCO class"):
        parse_classes("persons")
    with pytest.raises(ValueError, match="out of range"):
        parse_classes("7", count=5)


@pytest.mark.parametrize(
    ("frame_size", "size", "expect"),
    [
        ((768, 576), None, (768, 576)),  # its own size: at most 442,368 pixels
        ((640, 480), None, (640, 480)),
        ((320, 240), None, (544, 416)),  # enlarged to about 226,000 pixels
        ((1920, 1080), None, (896, 512)),  # reduced to about 442,000, 16:9
        ((576, 768), None, (576, 768)),  # portrait
        ((768, 576), 640, (640, 480)),  # the long side
        ((768, 576), (416, 416), (416, 416)),  # exactly
    ],
)
def test_input_sizes(frame_size, size, expect):
    assert fit_input(frame_size, size, (544 * 416, 768 * 576)) == expect


@pytest.mark.parametrize("bad", ["400", "416x100", "0x0", "big", "-32"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="multiples of 32"):
        parse_input_size(bad)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [1, 1, 11, 11]]
    scores = [0.8, 0.9, 0.5, 0.7]
    assert list(nms(boxes, scores, 0.45)) == [1, 2]
    assert list(nms(boxes, scores, 0.45, classes=[0, 0, 0, 1])) == [1, 3, 2]


def test_hog_finds_people_when_the_frame_is_enlarged(footage):
    (out,) = detect(iter([dict(footage[0])]), **options(model="hog", score=0.3))
    assert found(out, people_at_frame_0()) >= 2
    assert all(o["label"] == "person" for o in out["objects"])


def test_motion_finds_what_moves(footage):
    out = list(detect(iter([dict(p) for p in footage]), **options(model="motion")))
    assert out[0]["objects"] == []  # the background is not known yet
    (people,) = detect(iter([dict(footage[-1])]), **options())
    walkers = [o["box"] for o in people["objects"] if o["score"] > 0.5]
    assert len(walkers) >= 4
    assert found(out[-1], walkers, 0.5) >= 3  # the people walking, found by their motion
    assert {o["label"] for o in out[-1]["objects"]} == {"motion"}
    assert {o["class"] for o in out[-1]["objects"]} == {-1}


def test_motion_is_stateful_and_the_network_is_not():
    declared = INFO["detect"]
    assert declared.keeps_state({"model": "motion"}) is True
    assert declared.keeps_state({"model": "yolox"}) is False


# -- the command, through real processes ---------------------------------------------------


def test_through_a_real_pipe():
    from tests.video_support import vtest_avi

    result = sh(
        f"vflow read {vtest_avi()} --frames 3 | vflow detect --threads 1 "
        "| vflow print --kind frame -f seq -f objects"
    )
    assert result.statuses == [0, 0, 0], result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [line["seq"] for line in lines] == [0, 1, 2]
    assert found(lines[0], people_at_frame_0()) == 3


def run_detect(*args, packets=None):
    return vflow("detect", *args, input=pack(packets if packets is not None else [frame(0)]))


def one_line_error(result, *words: str) -> str:
    assert result.returncode == 1, result.stderr
    text = result.stderr.decode()
    assert TRACEBACK.decode() not in text and text.count("\n") == 1, text
    for word in words:
        assert word in text, text
    return text


def test_a_missing_model_file(tmp_path):
    path = tmp_path / "nothere.onnx"
    text = one_line_error(run_detect("--model", str(path)), str(path), "no such file")
    assert "YOLOX-format" in text


def test_a_corrupt_model_file(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage" * 50)
    one_line_error(run_detect("--model", str(path)), str(path), "cannot load", "YOLOX-format")


def test_a_model_of_another_shape(tmp_path):
    path = tmp_path / "vector.onnx"
    path.write_bytes(onnx_identity([1, 4]))
    one_line_error(run_detect("--model", str(path)), str(path), "[1, 4]", "[1, 3, H, W]")


def test_a_model_whose_output_is_not_yolox(tmp_path):
    path = tmp_path / "image.onnx"
    path.write_bytes(onnx_identity([1, 3, "h", "w"]))
    one_line_error(run_detect("--model", str(path)), str(path), "not [1, ", "5 + classes")


def test_a_model_of_fixed_size_refuses_another(tmp_path):
    path = tmp_path / "fixed.onnx"
    path.write_bytes(onnx_identity([1, 3, 64, 64]))
    one_line_error(run_detect("--model", str(path), "--size", "96x64"), "fixed at 64x64")


def test_usage_errors_name_the_option():
    for args, option in (
        (["--size", "100x100"], b"--size"),
        (["--device", "tpu"], b"--device"),
        (["--score", "2"], b"--score"),
    ):
        result = run_detect(*args)
        assert result.returncode == 2 and option in result.stderr, result.stderr
        assert TRACEBACK not in result.stderr


def test_options_of_other_models_are_refused():
    one_line_error(run_detect("--upscale", "2"), "--upscale does not apply to --model yolox")
    one_line_error(run_detect("--model", "hog", "--size", "640"), "--size does not apply")


def test_an_unknown_class_is_one_line():
    one_line_error(run_detect("--classes", "unicorn"), "--classes", "'unicorn'")


def test_cuda_without_a_gpu_runs_on_the_cpu_with_one_warning():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    result = run_detect("--device", "cuda", packets=[frame(0, shape=(64, 64, 3))])
    assert result.returncode == 0, result.stderr
    text = result.stderr.decode()
    assert text.count("\n") == 1 and "running on the CPU" in text, text
    assert unpack(result.stdout)[0]["objects"] == []


def test_cuda_hidden_by_cuda_visible_devices():
    from tests.helpers import ENV

    env = {**ENV, "CUDA_VISIBLE_DEVICES": ""}
    result = vflow("detect", "--device", "cuda:0", input=pack([frame(0)]), env=env)
    assert result.returncode == 0, result.stderr
    assert b"running on the CPU" in result.stderr


def test_faces_are_found_and_blurred(tmp_path):
    from tests.helpers import ROOT, sh

    face = ROOT / "tests" / "data" / "astronaut.png"  # one face near x=178, y=62, w=90, h=110
    found = sh(f"vflow images {face} | vflow detect --model face | vflow print -f objects")
    assert found.statuses == [0, 0, 0], found.stderr
    (obj,) = json.loads(found.stdout)["objects"]
    assert obj["label"] == "face" and obj["score"] >= 0.7
    x1, y1, x2, y2 = obj["box"]
    assert abs(x1 - 178) < 15 and abs(y1 - 62) < 15 and abs(x2 - 268) < 15 and abs(y2 - 172) < 15
    out = tmp_path / "blurred"
    hidden = sh(f"vflow images {face} | vflow detect --model face | vflow blur | vflow save {out}")
    assert hidden.statuses == [0, 0, 0, 0], hidden.stderr
    import cv2

    before, after = cv2.imread(str(face)), cv2.imread(str(out / "000000.png"))
    inside = (slice(int(y1) + 10, int(y2) - 10), slice(int(x1) + 10, int(x2) - 10))
    assert abs(before[inside].astype(int) - after[inside]).mean() > 5  # the face changed
    assert (before[300:, 300:] == after[300:, 300:]).all()  # far from it, nothing did


# -- a tiny ONNX file written by hand (the onnx package is not a dependency) -----------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, shape: list[int | str]) -> bytes:
    dims = b"".join(_field(1, _field(1 if isinstance(d, int) else 2, d)) for d in shape)
    tensor_type = _field(1, 1) + _field(2, dims)  # elem_type FLOAT, shape
    return _field(1, name) + _field(2, _field(1, tensor_type))


def onnx_identity(shape: list[int | str]) -> bytes:
    """An ONNX model (ModelProto) whose one float input of `shape` is its output."""
    node = _field(1, "x") + _field(2, "y") + _field(4, "Identity")
    graph = _field(1, node) + _field(2, "g") + _field(11, _tensor("x", shape))
    graph += _field(12, _tensor("y", shape))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 7) + _field(7, graph) + _field(8, opset)


def onnx_constant(input_shape: list[int | str], output: np.ndarray) -> bytes:
    """An ONNX model that ignores its input and always outputs `output` (float32)."""
    data = output.astype("<f4").tobytes()
    tensor = b"".join(_field(1, d) for d in output.shape) + _field(2, 1) + _field(9, data)
    attribute = _field(1, "value") + _field(5, tensor) + _field(20, 4)  # type TENSOR
    node = _field(2, "y") + _field(4, "Constant") + _field(5, attribute)
    graph = _field(1, node) + _field(2, "g") + _field(11, _tensor("x", input_shape))
    graph += _field(12, _tensor("y", list(output.shape)))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 7) + _field(7, graph) + _field(8, opset)


def yolox_output(decoded: bool) -> np.ndarray:
    """What a YOLOX model with a 64x64 input says: one person 16x32 centred at (28, 20),
    in the cell (3, 2) of the stride-8 grid, scoring 0.9 x 0.9; nothing anywhere else."""
    rows = []
    for stride in (8, 16, 32):
        for y in range(64 // stride):
            for x in range(64 // stride):
                if decoded:
                    rows.append([(x + 0.5) * stride, (y + 0.5) * stride, stride, stride, 0.001])
                else:
                    rows.append([0.5, 0.5, 0.0, 0.0, 0.001])
    out = np.zeros((1, len(rows), 85), np.float32)
    out[0, :, :5] = rows
    out[0, :, 5:] = 0.001
    person = 2 * 8 + 3
    out[0, person, :6] = [28, 20, 16, 32, 0.9, 0.9] if decoded else [0.5, 0.5, 0.0, 0.0, 0.9, 0.9]
    if not decoded:
        out[0, person, 2:4] = np.log([2.0, 4.0])  # 16 and 32 pixels: exp(log 2) x 8, ...
    return out


@pytest.mark.parametrize("decoded", [False, True])
def test_a_yolox_format_model_of_your_own(tmp_path, decoded):
    path = tmp_path / "mine.onnx"
    path.write_bytes(onnx_constant([1, 3, 64, 64], yolox_output(decoded)))
    big = frame(0, shape=(128, 128, 3))  # twice the input: boxes twice as large
    result = run_detect("--model", str(path), packets=[frame(0, shape=(64, 64, 3)), big])
    assert result.returncode == 0, result.stderr
    small, large = (p["objects"] for p in unpack(result.stdout))
    (person,) = small
    assert person["box"] == [20.0, 4.0, 36.0, 36.0]
    assert person["score"] == pytest.approx(0.81) and person["label"] == "person"
    assert large[0]["box"] == [40.0, 8.0, 72.0, 72.0]


def test_the_hand_made_model_runs():
    import onnxruntime

    session = onnxruntime.InferenceSession(
        onnx_identity([1, 4]), providers=["CPUExecutionProvider"]
    )
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    assert (session.run(None, {"x": x})[0] == x).all()
