import numpy as np
import pytest
from vflow_stages.convert import convert

from tests.helpers import frame, pack, unpack, vflow


def test_rgb_swaps_channels_and_labels_the_frames():
    source = frame(0)
    want = source["image"][..., ::-1].copy()
    out = list(convert(iter([{"kind": "stream"}, source]), "rgb", None))
    assert out[0]["colorspace"] == "rgb"
    assert (out[1]["image"] == want).all() and out[1]["colorspace"] == "rgb"


@pytest.mark.parametrize("space", ["hsv", "yuv", "lab", "ycrcb", "rgb"])
def test_there_and_back_again(space):
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image[:] = image[:1, :1]  # one flat colour: conversions are near-exact
    there = list(convert(iter([{"kind": "frame", "image": image.copy()}]), space, None))
    back = list(convert(iter(there), "bgr", None))
    assert back[0]["colorspace"] == "bgr"
    assert np.abs(back[0]["image"].astype(int) - image).max() <= 8


def test_gray_and_back_gives_three_equal_channels():
    out = list(convert(iter([frame(0)]), "gray", None))
    assert out[0]["image"].ndim == 2
    back = list(convert(iter(out), "bgr", None))
    image = back[0]["image"]
    assert image.shape == (4, 6, 3) and (image[..., 0] == image[..., 2]).all()


def test_through_a_real_process():
    result = vflow("convert", "hsv", input=pack([frame(0)]))
    assert result.returncode == 0, result.stderr
    assert unpack(result.stdout)[0]["colorspace"] == "hsv"
    bad = vflow("convert", "cmyk", input=pack([frame(0)]))
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
