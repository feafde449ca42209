"""A compressed picture whose own header lies about its size: the stage that decodes it reads
the header first and refuses it in one line, within its memory bound. 700 bytes of JPEG
whose header says 10000x10000 decoded to 286 MiB before. Peak memory is the kernel's,
measured as tests/test_hostile.py does (a launcher's wait4)."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import ENV
from tests.test_hostile import TRACEBACK, run_measured
from vflow_cli.framing import Encoded, encode, header, trailer

SMALL = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)


def _encoded(ext: str, **params: int) -> bytearray:
    flags = [x for pair in params.items() for x in pair]
    ok, data = cv2.imencode(ext, SMALL, [getattr(cv2, k) for k in flags[::2]] + flags[1::2])
    assert ok
    return bytearray(data.tobytes())


def jpeg_saying(width: int, height: int) -> bytes:
    data = _encoded(".jpg")
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_saying(width: int, height: int) -> bytes:
    data = _encoded(".png")
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid chunk
    return bytes(data)


def webp_saying(width: int, height: int) -> bytes:
    data = _encoded(".webp")
    assert data[12:16] == b"VP8L"
    bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
    data[21:25] = (bits | (width - 1) | (height - 1) << 14).to_bytes(4, "little")
    return bytes(data)


def _stream(path: Path, fmt: str, data: bytes, shape=(8, 8, 3)) -> Path:
    packet = {"kind": "frame", "seq": 0, "image": Encoded(fmt, data, shape)}
    path.write_bytes(b"".join(map(encode, (header(), packet, trailer(1)))))
    return path


LIARS = {"jpeg": jpeg_saying, "png": png_saying, "webp": webp_saying}


@pytest.mark.parametrize("fmt", sorted(LIARS))
def test_a_header_that_lies_about_the_size_is_refused_before_decoding(fmt, tmp_path):
    make = LIARS[fmt]
    honest = _stream(tmp_path / "honest.vflow", fmt, make(8, 8))
    status, baseline, err = run_measured(["resize", "4x4"], honest, ENV)
    assert status == 0, err  # the same picture, telling the truth, decodes

    lying = make(10000, 10000)
    assert len(lying) < 1000
    status, peak, err = run_measured(["resize", "4x4"], _stream(tmp_path / "l", fmt, lying), ENV)
    assert status == 1 and TRACEBACK not in err and err.count(b"\n") == 1, err
    assert err.startswith(b"vflow resize: ") and b"10000x10000 by its own header" in err, err
    assert peak < baseline + 64, f"{fmt}: {peak:.0f} MiB, baseline {baseline:.0f}"


def test_a_picture_of_its_declared_size_past_the_packet_limit_is_refused(tmp_path):
    # 2000x2000, declared so, 12 MB decoded: past a 1 MiB packet limit, though 30 KB arrive
    _, data = cv2.imencode(".jpg", np.zeros((2000, 2000, 3), np.uint8))
    stream = _stream(tmp_path / "big.vflow", "jpeg", data.tobytes(), (2000, 2000, 3))
    status, _, err = run_measured(["resize", "4x4"], stream, dict(ENV, VFLOW_MAX_PACKET="1M"))
    assert status == 1 and err.count(b"\n") == 1, err
    assert b"would decode past the packet limit" in err, err
    status, _, err = run_measured(["resize", "4x4"], stream, ENV)
    assert status == 0, err


def test_a_damaged_header_is_one_line(tmp_path):
    cut = jpeg_saying(8, 8)[:100]  # the segments stop before any frame header
    status, _, err = run_measured(["resize", "4x4"], _stream(tmp_path / "c", "jpeg", cut), ENV)
    assert status == 1 and err.count(b"\n") == 1, err
    assert b"jpeg image in the stream is damaged" in err, err


def test_serve_passes_no_lying_jpeg_on_to_browsers(tmp_path):
    """serve sends a JPEG frame to viewers as it came, undecoded: its header is checked
    first, or each browser would decode the 10000x10000 picture."""
    import re
    import subprocess
    import sys

    from tests.web.util import get, wait_for

    stream = _stream(tmp_path / "lie.vflow", "jpeg", jpeg_saying(10000, 10000))
    err = tmp_path / "serve.log"
    with open(stream, "rb") as source, open(err, "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "vflow_cli", "serve", "-p", "0", "--wait", "--timeout", "2"],
            stdin=source,
            stderr=log,
            env=ENV,
        )
    try:
        wait_for(lambda: "serving the last frame" in err.read_text(), what="the end of input")
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", err.read_text()).group(1))
        assert get(port, "/frame.jpg")[0] == 503
        wait_for(lambda: "10000x10000 by its own header" in err.read_text(), what="the line")
        assert "not shown to viewers: a jpeg image" in err.read_text()
    finally:
        serve.terminate()
        serve.wait(20)
