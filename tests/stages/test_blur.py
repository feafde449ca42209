import cv2
import numpy as np
import pytest

from tests.helpers import ROOT, pack, sh, unpack, vflow
from vflow_cli.vision.face import detect_faces
from vflow_cli.vision.redact import region

DATA = ROOT / "tests" / "data"


def face_frame(name):
    image = cv2.imread(str(DATA / name))
    return {"kind": "frame", "seq": 0, "image": image, "objects": detect_faces(image)}


def blurred(packets, *options):
    result = vflow("blur", *options, input=pack(packets))
    assert result.returncode == 0, result.stderr
    return [p for p in unpack(result.stdout) if p.get("kind") == "frame"], result.stderr


def split(before, after, box, margin):
    """(pixels changed inside the grown box, pixels changed outside it)."""
    height, width = before.shape[:2]
    x1, y1, x2, y2 = region(box, margin, width, height)
    diff = (before != after).any(axis=2)
    inside = diff[y1:y2, x1:x2]
    outside = diff.copy()
    outside[y1:y2, x1:x2] = False
    return inside.mean(), int(outside.sum())


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png"])
@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_the_face_changes_and_nothing_else(name, method):
    packet = face_frame(name)
    assert len(packet["objects"]) == 1
    before = packet["image"].copy()
    (out,), _ = blurred([packet], "--method", method)
    share, outside = split(before, out["image"], packet["objects"][0]["box"], 0.15)
    assert share > 0.8  # most of the face's pixels changed
    assert outside == 0  # and not one pixel elsewhere


def test_a_blurred_face_is_no_longer_found():
    packet = face_frame("astronaut.png")
    (out,), _ = blurred([packet])
    assert detect_faces(out["image"]) == []


def test_pixelate_makes_cells_and_fill_uses_the_colour():
    packet = face_frame("astronaut.png")
    box = packet["objects"][0]["box"]
    x1, y1, x2, y2 = region(box, 0.0, 512, 512)
    (cells,), _ = blurred(
        [dict(packet, image=packet["image"].copy())],
        "--method",
        "pixelate",
        "--blocks",
        "4",
        "--margin",
        "0",
    )
    patch = cells["image"][y1:y2, x1:x2].reshape(-1, 3)
    assert len(np.unique(patch, axis=0)) <= 4 * 5  # 4 cells across, about 5 down
    (filled,), _ = blurred([packet], "--method", "fill", "--colour", "ff8000", "--margin", "0")
    assert (filled["image"][y1:y2, x1:x2] == (0, 128, 255)).all()  # BGR


def test_margin_grows_the_hidden_region():
    packet = face_frame("astronaut.png")
    box = packet["objects"][0]["box"]
    (tight,), _ = blurred([dict(packet, image=packet["image"].copy())], "--margin", "0")
    (wide,), _ = blurred([packet], "--margin", "0.5")
    before = cv2.imread(str(DATA / "astronaut.png"))
    changed = [(before != p["image"]).any(axis=2).sum() for p in (tight, wide)]
    w, h = box[2] - box[0], box[3] - box[1]
    assert changed[1] > changed[0] * 1.8  # (1 + 2 * 0.5)^2 = 4x the area, less the edges
    assert changed[0] <= (w + 2) * (h + 2)


def test_classes_choose_what_is_hidden():
    image = np.random.default_rng(1).integers(0, 255, (200, 300, 3), np.uint8)
    objects = [
        {"box": [10, 10, 60, 90], "score": 0.9, "class": 0, "label": "person"},
        {"box": [150, 20, 190, 60], "score": 0.8, "class": 0, "label": "face"},
    ]

    def hidden(*options):
        (out,), _ = blurred(
            [{"kind": "frame", "seq": 0, "image": image, "objects": objects}],
            "--margin",
            "0",
            *options,
        )
        diff = (out["image"] != image).any(axis=2)
        return bool(diff[10:90, 10:60].any()), bool(diff[20:60, 150:190].any())

    assert hidden() == (False, True)  # faces by default
    assert hidden("--classes", "person") == (True, False)
    assert hidden("--classes", "*") == (True, True)
    assert hidden("--classes", "face", "--min-score", "0.85") == (False, False)


def test_frames_without_boxes_pass_unchanged_and_a_missing_detector_is_named():
    frames = [
        {"kind": "frame", "seq": i, "image": np.full((256, 256, 3), i, np.uint8)} for i in range(3)
    ]
    out, stderr = blurred(frames)
    assert [p["image"].tolist() for p in out] == [p["image"].tolist() for p in frames]
    assert b"vflow detect --model face" in stderr


def test_a_face_pipeline_through_real_pipes(tmp_path):
    packet = face_frame("camera.png")
    box = packet["objects"][0]["box"]
    recording = tmp_path / "faces.vflow"
    recording.write_bytes(pack([{"kind": "stream", "width": 512, "height": 512}, packet] * 2))
    result = sh(f"vflow blur --method pixelate < {recording} | vflow jpeg > {tmp_path}/out")
    assert result.statuses == [0, 0], result.stderr
    frames = [p for p in unpack((tmp_path / "out").read_bytes()) if p.get("kind") == "frame"]
    assert len(frames) == 2
    decoded = cv2.imdecode(np.frombuffer(frames[0]["image"].data, np.uint8), cv2.IMREAD_COLOR)
    assert detect_faces(decoded) == []
    assert frames[0]["objects"][0]["box"] == box


def test_bad_colour_is_a_usage_error():
    result = vflow("blur", "--method", "fill", "--colour", "red", input=pack([]))
    assert result.returncode == 2 and b"RRGGBB" in result.stderr


def test_objects_of_other_classes_are_named_and_the_hidden_boxes_counted():
    """`detect | blur` once hid nothing and said nothing: the person detector's boxes are no
    faces. It warns (once) naming what the frames carry, and counts what it hid at the end."""
    image = np.random.default_rng(2).integers(0, 255, (64, 96, 3), np.uint8)
    person = {"box": [10, 10, 40, 60], "score": 0.9, "class": 0, "label": "person\x1b[2J"}
    frames = [{"kind": "frame", "seq": i, "image": image, "objects": [person]} for i in range(3)]
    out, stderr = blurred(frames)
    assert [p["image"].tolist() for p in out] == [image.tolist()] * 3  # nothing hidden ...
    lines = stderr.decode().splitlines()
    warned = [line for line in lines if "none of --classes face" in line]
    assert len(warned) == 1 and "frame 0 carries 1 object (person?[2J)" in warned[0]
    assert "--classes person" in warned[0] and "\x1b" not in stderr.decode()
    assert lines[-1] == "vflow blur: hid 0 boxes in 0 of 3 frames"
    out, stderr = blurred(frames, "--classes", "*")
    assert (out[0]["image"] != image).any()
    assert stderr.decode().splitlines() == ["vflow blur: hid 3 boxes in 3 of 3 frames"]
    _, quiet = blurred(frames, "-q")
    assert quiet == b""


def test_detect_then_blur_warns_then_hides_every_person_through_real_pipes(tmp_path):
    """The bug as a user met it (`detect | blur`: the default --classes face matches no box
    of the person detector), then the documented recipe that hides every person."""
    source = f"vflow images {DATA / 'astronaut.png'} | vflow detect"
    result = sh(f"{source} | vflow blur | vflow null")
    assert result.statuses == [0, 0, 0, 0], result.stderr
    assert b"vflow blur: frame 0 carries 1 object (person) but none of --classes face" in (
        result.stderr
    )
    assert b"vflow blur: hid 0 boxes in 0 of 1 frames\n" in result.stderr
    result = sh(f"{source} | vflow blur --classes person > {tmp_path}/out")
    assert result.statuses == [0, 0, 0], result.stderr
    assert result.stderr == b"vflow blur: hid 1 boxes in 1 of 1 frames\n"
    (out,) = [p for p in unpack((tmp_path / "out").read_bytes()) if p.get("kind") == "frame"]
    assert (out["image"] != cv2.imread(str(DATA / "astronaut.png"))).any()
