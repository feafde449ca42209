import numpy as np
import pytest
from vflow_stages.rotate import rotate, rotated_size

from tests.helpers import frame, pack, unpack, vflow


@pytest.mark.parametrize(
    ("angle", "expect"),
    [
        (90, lambda a: np.rot90(a, -1)),
        (180, lambda a: a[::-1, ::-1]),
        (270, lambda a: np.rot90(a)),
        (-90, lambda a: np.rot90(a)),
        (360, lambda a: a),
    ],
)
def test_right_angles_are_exact_and_clockwise(angle, expect):
    source = frame(0)
    want = expect(source["image"]).copy()
    out = list(rotate(iter([{"kind": "stream", "width": 6, "height": 4}, source]), angle, False, 0))
    assert (out[1]["image"] == want).all()
    assert (out[0]["width"], out[0]["height"]) == want.shape[1::-1]


def test_any_angle_keeps_the_size_or_expands():
    image = np.full((40, 80, 3), 200, np.uint8)
    same = list(rotate(iter([{"kind": "frame", "image": image.copy()}]), 30, False, 0))
    grown = list(
        rotate(
            iter(
                [
                    {"kind": "stream", "width": 80, "height": 40},
                    {"kind": "frame", "image": image.copy()},
                ]
            ),
            30,
            True,
            0,
        )
    )
    assert same[0]["image"].shape == (40, 80, 3)
    w, h = rotated_size(80, 40, 30, True)
    assert (grown[0]["width"], grown[0]["height"]) == (w, h) and w > 80 and h > 40
    assert grown[1]["image"].shape == (h, w, 3)
    assert same[0]["image"][0, 0].tolist() == [0, 0, 0]  # an uncovered corner


def test_through_a_real_process():
    result = vflow("rotate", "90", input=pack([frame(0)]))
    assert result.returncode == 0, result.stderr
    assert unpack(result.stdout)[0]["image"].shape == (6, 4, 3)
