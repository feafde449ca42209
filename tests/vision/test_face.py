import cv2
import pytest

from tests.helpers import ROOT
from vflow_cli.runner import StageError
from vflow_cli.vision.face import MODEL, FaceDetector, detect_faces

DATA = ROOT / "tests" / "data"
# where people and other detectors agree the faces are (x, y, w, h): tests/data/README.md
FACES = {"astronaut.png": (178, 62, 90, 110), "camera.png": (197, 109, 62, 85)}


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.mark.parametrize("name", sorted(FACES))
def test_finds_the_one_face(name):
    image = cv2.imread(str(DATA / name), cv2.IMREAD_UNCHANGED)
    faces = detect_faces(image, 0.7, 0.3)
    assert len(faces) == 1, faces
    x, y, w, h = FACES[name]
    assert iou(faces[0]["box"], (x, y, x + w, y + h)) > 0.7
    assert faces[0]["score"] > 0.9
    assert (faces[0]["class"], faces[0]["label"]) == (0, "face")


def test_grey_colour_and_alpha_pictures_give_the_same_face():
    grey = cv2.imread(str(DATA / "camera.png"), cv2.IMREAD_GRAYSCALE)
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    alpha = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGRA)
    boxes = [detect_faces(p, 0.7, 0.3)[0]["box"] for p in (grey, colour, alpha)]
    assert boxes[0] == boxes[1] == boxes[2]


def test_boxes_are_in_the_pixels_of_any_picture_size():
    image = cv2.imread(str(DATA / "astronaut.png"))
    wide = cv2.resize(image, (1024, 512))  # twice as wide: x doubles, y stays
    small, big = detect_faces(image)[0]["box"], detect_faces(wide)[0]["box"]
    assert big[0] == pytest.approx(2 * small[0], abs=6)
    assert big[2] == pytest.approx(2 * small[2], abs=6)
    assert big[1] == pytest.approx(small[1], abs=6)


def test_a_blank_picture_has_no_face_and_score_is_a_threshold():
    import numpy as np

    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []
    image = cv2.imread(str(DATA / "astronaut.png"))
    assert detect_faces(image, score=0.999999) == []


def test_the_model_ships_inside_the_package():
    assert MODEL.is_file()
    assert MODEL.parent.name == "models" and MODEL.parent.parent.name == "vflow_cli"
    licence = MODEL.with_name("version-RFB-320.LICENSE.txt").read_text()
    assert "MIT License" in licence and "Permission is hereby granted" in licence


def test_a_missing_or_corrupt_model_is_one_clear_error(tmp_path):
    with pytest.raises(StageError, match="no such file"):
        FaceDetector(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(StageError, match=r"bad\.onnx: cannot load the model .*; expected the RFB"):
        FaceDetector(bad)
