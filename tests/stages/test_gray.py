import numpy as np
from vflow_stages.gray import gray
from vflow_stages.jpeg import encode

from tests.helpers import frame, pack, unpack, vflow


def test_colour_becomes_one_channel_and_grey_passes():
    colour, grey = frame(0), frame(1, shape=(4, 6))
    before = grey["image"].copy()
    out = list(gray(iter([{"kind": "stream", "width": 6, "height": 4}, colour, grey])))
    assert out[0]["channels"] == 1
    assert out[1]["image"].shape == (4, 6)
    assert (out[2]["image"] == before).all()


def test_pure_colours_have_the_expected_grey():
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    out = list(gray(iter([{"kind": "frame", "image": image}])))
    assert abs(int(out[0]["image"][0, 0]) - 76) <= 1  # 0.299 * 255


def test_jpeg_frames_through_a_real_process():
    packet = frame(0, shape=(16, 16, 3))
    packet["image"] = encode(packet["image"], 90)
    result = vflow("gray", input=pack([packet]))
    assert result.returncode == 0, result.stderr
    assert unpack(result.stdout)[0]["image"].shape == (16, 16)
