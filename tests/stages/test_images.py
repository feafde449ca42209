import cv2
import numpy as np
import pytest
from vflow_stages.images import images

from tests.helpers import sh, vflow


@pytest.fixture
def folder(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 12, 3), i * 20, np.uint8))
    cv2.imwrite(str(tmp_path / "grey.jpg"), np.full((8, 12), 99, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_a_directory_in_natural_order(folder):
    out = list(images(str(folder), 10.0, False, None, None))
    assert out[0] == {
        "kind": "stream",
        "source": str(folder),
        "width": 12,
        "height": 8,
        "fps": 10.0,
        "length": 4,
    }
    frames = out[1:]
    assert [p["path"].rsplit("/", 1)[1] for p in frames] == [
        "grey.jpg",
        "img1.png",
        "img2.png",
        "img10.png",
    ]
    assert [p["t"] for p in frames] == [0.0, 0.1, 0.2, pytest.approx(0.3)]
    assert frames[0]["image"].shape == (8, 12)
    assert int(frames[3]["image"][0, 0, 0]) == 200


def test_a_glob_and_one_file(folder):
    out = list(images(str(folder / "img*.png"), 30.0, False, None, None))
    assert len(out) == 4
    one = list(images(str(folder / "img2.png"), 30.0, True, 3, None))
    assert [p["seq"] for p in one[1:]] == [0, 1, 2]
    assert one[1]["image"] is not one[2]["image"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("nothing-*.png", "no files match"),
        ("missing.png", "no such file"),
        ("notes.txt", "not an image"),
    ],
)
def test_errors_are_one_line(folder, pattern, message):
    result = vflow("images", str(folder / pattern))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("vflow images:")


def test_an_empty_directory(tmp_path):
    result = vflow("images", str(tmp_path))
    assert result.returncode == 1 and b"holds no image files" in result.stderr


def test_one_photo_into_a_video(folder, tmp_path):
    out = tmp_path / "still.avi"
    result = sh(
        f"vflow images '{folder}/img2.png' --loop --frames 5 --fps 5 | vflow write '{out}'"
        f" && vflow read '{out}' | vflow print --kind stream"
    )
    assert result.statuses[-2:] == [0, 0], result.stderr
    assert b'"fps":5.0' in result.stdout and b'"length":5' in result.stdout
