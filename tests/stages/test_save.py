import cv2
import numpy as np
from vflow_stages.jpeg import encode
from vflow_stages.save import save

from tests.helpers import frame, pack, sh, vflow


def test_numbered_pngs_every_n(tmp_path):
    packets = [{"kind": "stream"}] + [frame(i, shape=(4, 6)) for i in range(7)]
    save(iter(packets), str(tmp_path / "out"), "png", 3, 95, "{seq:06d}.{ext}")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["000000.png", "000003.png", "000006.png"]
    back = cv2.imread(str(tmp_path / "out" / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert (back == frame(3, shape=(4, 6))["image"]).all()


def test_jpeg_frames_are_saved_without_re_encoding(tmp_path):
    image = np.full((16, 16, 3), 90, np.uint8)
    coded = encode(image, 70)
    save(
        iter([{"kind": "frame", "seq": 0, "image": coded}]),
        str(tmp_path),
        "jpg",
        1,
        95,
        "shot-{n}.{ext}",
    )
    assert (tmp_path / "shot-0.jpg").read_bytes() == bytes(coded.data)


def test_colour_converted_frames_are_saved_as_colour(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 255  # pure red in RGB order
    save(
        iter([{"kind": "frame", "seq": 0, "image": image, "colorspace": "rgb"}]),
        str(tmp_path),
        "png",
        1,
        95,
        "{seq}.{ext}",
    )
    back = cv2.imread(str(tmp_path / "0.png"))
    assert back[0, 0].tolist() == [0, 0, 255]  # red in BGR


def test_real_pipe(tmp_path):
    result = sh(f"vflow testcard --size small --frames 5 | vflow save '{tmp_path}' --format jpg")
    assert result.statuses == [0, 0], result.stderr
    assert len(list(tmp_path.glob("*.jpg"))) == 5


def test_errors_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = vflow("save", str(tmp_path / "file" / "sub"), input=pack([frame(0)]))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].endswith("/file is not a directory")
    bad = vflow("save", str(tmp_path), "--name", "{seq", input=pack([frame(0)]))
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
    absent = vflow("save", str(tmp_path), "--name", "{oops}.{ext}", input=pack([frame(0)]))
    assert absent.returncode == 1
    assert absent.stderr.decode().splitlines() == [
        "vflow save: frame 0 has no field 'oops' for --name '{oops}.{ext}'"
    ]


def test_names_from_any_field_never_leave_the_directory(tmp_path):
    """--name takes any field as stamp does ({frame}, {t:.1f}, a label); values from the
    stream are hostile: a '/' in one becomes '_'."""
    packets = [
        frame(i, t=i * 0.25, frame=130 + i, label=["../../escape", "a\x1bb"][i]) for i in range(2)
    ]
    result = vflow(
        "save", str(tmp_path / "out"), "--name", "{frame}-{t:.1f}-{label}.{ext}",
        input=pack(packets),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "130-0.0-.._.._escape.png",
        "131-0.2-a_b.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refused_input_creates_no_directory(tmp_path):
    target = tmp_path / "frames"
    result = vflow("save", str(target), input=b"not a stream at all")
    assert result.returncode == 1 and b"not a vflow stream" in result.stderr
    assert not target.exists()
