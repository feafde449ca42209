import numpy as np
from vflow_stages.jpeg import encode, jpeg, unjpeg

from tests.helpers import frame, pack, unpack, vflow
from vflow_cli.framing import Encoded


def smooth(seq=0, shape=(32, 48, 3)):
    y, x = np.mgrid[: shape[0], : shape[1]]
    image = ((x * 5 + y * 3) % 256).astype(np.uint8)
    if len(shape) == 3:
        image = np.dstack([image] * shape[2])
    return {"kind": "frame", "seq": seq, "t": seq / 30, "image": image}


def test_compresses_and_keeps_metadata():
    source = smooth()
    out = list(jpeg(iter([{"kind": "stream"}, source]), 90))
    image = out[1]["image"]
    assert isinstance(image, Encoded) and image.format == "jpeg"
    assert image.shape == (32, 48, 3) and out[1]["seq"] == 0
    assert len(image.data) < 32 * 48 * 3


def test_unjpeg_gives_back_close_pixels():
    source = smooth()
    original = source["image"].copy()
    back = list(unjpeg(jpeg(iter([source]), 95)))
    assert back[0]["image"].shape == original.shape
    assert np.abs(back[0]["image"].astype(int) - original).mean() < 3


def test_grey_frames_stay_grey():
    back = list(unjpeg(jpeg(iter([smooth(shape=(16, 16))]), 90)))
    assert back[0]["image"].shape == (16, 16)


def test_jpeg_frames_pass_and_raw_frames_pass_unjpeg():
    coded = encode(smooth()["image"], 50)
    out = list(jpeg(iter([{"kind": "frame", "image": coded}]), 90))
    assert out[0]["image"] is coded
    raw = frame(0)
    assert next(unjpeg(iter([raw])))["image"] is raw["image"]


def test_round_trip_through_real_pipes():
    result = vflow("jpeg", "--quality", "80", input=pack([smooth(0), smooth(1)]))
    assert result.returncode == 0, result.stderr
    coded = unpack(result.stdout)
    assert all(isinstance(p["image"], Encoded) for p in coded)
    back = vflow("unjpeg", input=result.stdout)
    assert [p["image"].shape for p in unpack(back.stdout)] == [(32, 48, 3)] * 2


def test_non_8_bit_frames_are_one_line():
    result = vflow("jpeg", input=pack([frame(0, dtype="float32")]))
    assert result.returncode == 1
    assert result.stderr == (
        b"vflow jpeg: frame 0 is a 4x6x3 float32 image; JPEG holds height x width pictures "
        b"with 1 or 3 or 4 channels, of uint8; convert the frames to 8 bits first\n"
    )
