import numpy as np
import pytest
from vflow_stages.tile import parse_grid, tile

from tests.helpers import pack, sh, unpack, vflow


def solid(seq, shape=(60, 80, 3)):
    """A frame of one grey level (10 * seq) with a detection in it."""
    image = np.full(shape, 10 * seq, np.uint8)
    box = {"box": [1, 2, 30, 40], "label": "person", "id": seq}
    return {"kind": "frame", "seq": seq, "frame": 100 + seq, "t": seq / 10, "image": image,
            "objects": [box]}  # fmt: skip


def test_a_sheet_holds_each_frame_in_its_tile_and_their_metadata_as_a_list():
    packets = [{"kind": "stream", "width": 80, "height": 60, "fps": 10.0, "length": 13}]
    packets += [solid(i) for i in range(13)]
    out = list(tile(iter(packets), (3, 2), None, True))
    announce, sheets = out[0], out[1:]
    assert (announce["width"], announce["height"], announce["length"]) == (240, 120, 3)
    assert announce["fps"] == pytest.approx(10 / 6)
    assert len(sheets) == 3 and [s["seq"] for s in sheets] == [0, 1, 2]
    first = sheets[0]
    assert first["image"].shape == (120, 240, 3) and first["t"] == 0.0
    for i, meta in enumerate(first["tiles"]):
        x, y, w, h = meta["at"]
        assert (x, y, w, h) == ((i % 3) * 80, (i // 3) * 60, 80, 60)
        assert (first["image"][y : y + h, x : x + w] == 10 * i).all()
        assert meta["seq"] == i and meta["frame"] == 100 + i
        assert meta["objects"] == [{"box": [1, 2, 30, 40], "label": "person", "id": i}]
        assert "image" not in meta
    last = sheets[2]  # 13 = 6 + 6 + 1: the last sheet is partial, black elsewhere
    assert [m["seq"] for m in last["tiles"]] == [12]
    assert (last["image"][:60, :80] == 120).all() and not last["image"][:, 80:].any()
    assert len(list(tile(iter(packets), (3, 2), None, False))) == 3  # no partial sheet


def test_tiles_are_scaled_and_wide_frames_shrink_by_default():
    out = list(tile(iter([solid(i, (1080, 1920, 3)) for i in range(2)]), (2, 1), None, True))
    assert out[0]["image"].shape == (540, 1920, 3)  # halved: two tiles in 1920 pixels
    out = list(tile(iter([solid(i) for i in range(4)]), (2, 2), (40, 30), True))
    assert out[0]["image"].shape == (60, 80, 3) and (out[0]["image"][30:, 40:] == 30).all()


@pytest.mark.parametrize("text", ["5", "0x2", "ax2", "30x30"])
def test_bad_grids_are_refused(text):
    with pytest.raises(Exception, match=r"COLSxROWS|at most"):
        parse_grid(text)


def test_a_contact_sheet_through_real_pipes(tmp_path):
    result = sh(
        "vflow testcard --frames 20 --size 64x48 | vflow select 'seq % 2 == 0' "
        f"| vflow tile 5x2 | vflow save {tmp_path} --name 'sheet{{seq}}.{{ext}}' -v"
    )
    assert result.statuses == [0, 0, 0, 0], result.stderr
    import cv2

    sheet = cv2.imread(str(tmp_path / "sheet0.png"))
    assert sheet.shape == (96, 320, 3)
    card = unpack(sh("vflow testcard --frames 1 --size 64x48").stdout)[1]["image"]
    assert np.abs(sheet[:48, :64].astype(int) - card).max() <= 1  # tile 0 is frame 0
    bad = vflow("tile", "0x0", input=pack([]))
    assert bad.returncode == 2 and b"COLSxROWS" in bad.stderr
