"""Stages that move pixels move the boxes, lines and zones that packets carry with them: a box
drawn on a frame still frames the drawing after resize, crop, flip or rotate (real pipes)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import pack, unpack, vflow

W, H = 160, 120
BOX = [40.0, 30.0, 70.0, 90.0]  # x1, y1, x2, y2: pixels from the top-left corner
DOT = (120.0, 20.0)  # a line's end and a zone's corner, drawn as a 2x2 dot


def marked_frame() -> dict:
    image = np.zeros((H, W, 3), np.uint8)
    x1, y1, x2, y2 = (int(v) for v in BOX)
    image[y1:y2, x1:x2] = (255, 255, 255)  # what the box marks
    dx, dy = (int(v) for v in DOT)
    image[dy - 1 : dy + 1, dx - 1 : dx + 1] = (0, 0, 255)  # the dot, in red
    return {
        "kind": "frame",
        "seq": 0,
        "image": image,
        "objects": [{"box": BOX, "score": 0.9, "label": "person", "velocity": [10.0, 0.0]}],
        "lines": {"door": {"points": [*DOT, 0.0, 0.0], "in": 0, "out": 0}},
        "zones": {"z": {"polygon": [list(DOT), [0.0, 0.0], [0.0, 10.0]], "occupancy": 0}},
    }


def white_box(image: np.ndarray) -> list[float]:
    ys, xs = np.nonzero((image > 200).all(axis=2))
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def red_dot(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero((image[:, :, 2] > 150) & (image[:, :, 0] < 80) & (image[:, :, 1] < 80))
    return xs.mean() + 0.5, ys.mean() + 0.5


@pytest.mark.parametrize(
    "stage",
    [
        ["resize", "320x240"],
        ["resize", "100x100", "--mode", "pad"],
        ["resize", "100x100", "--mode", "fill"],
        ["resize", "80x-1", "--interpolation", "nearest"],
        ["crop", "20,10,120,100"],
        ["flip", "h"],
        ["flip", "v"],
        ["flip", "both"],
        ["rotate", "90"],
        ["rotate", "180"],
        ["rotate", "270"],
        ["rotate", "20", "--expand"],
    ],
    ids=lambda s: " ".join(s),
)
def test_geometry_moves_with_the_pixels(stage):
    result = vflow(*stage, input=pack([marked_frame(), {"kind": "summary", **_summary()}]))
    assert result.returncode == 0, result.stderr
    frame, summary = unpack(result.stdout)
    image = frame["image"]
    (obj,) = frame["objects"]
    tolerance = 2.5 if stage[0] != "rotate" or stage[1] in ("90", "180", "270") else 4
    assert np.allclose(obj["box"], white_box(image), atol=tolerance), (obj["box"], white_box(image))
    dot = red_dot(image)
    assert np.allclose(frame["lines"]["door"]["points"][:2], dot, atol=tolerance)
    assert np.allclose(frame["zones"]["z"]["polygon"][0], dot, atol=tolerance)
    assert summary["lines"]["door"]["points"] == frame["lines"]["door"]["points"]  # as the frame's
    assert obj["label"] == "person" and obj["score"] == 0.9


def _summary() -> dict:
    return {"lines": {"door": {"points": [*DOT, 0.0, 0.0], "in": 3}}}


def test_an_object_cropped_away_is_dropped_and_velocity_turns():
    result = vflow("crop", "100,0,60,60", input=pack([marked_frame()]))
    (frame,) = unpack(result.stdout)
    assert frame["objects"] == []  # the box lies wholly left of the cut
    turned = unpack(vflow("rotate", "90", input=pack([marked_frame()])).stdout)[0]
    assert turned["objects"][0]["velocity"] == [0.0, 10.0]  # rightwards becomes downwards
