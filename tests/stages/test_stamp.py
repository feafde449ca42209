import click
import numpy as np
import pytest
from vflow_stages.stamp import check_template, render, stamp

from tests.helpers import frame, pack, unpack, vflow


def black(seq=0, **meta):
    return {
        "kind": "frame",
        "seq": seq,
        "t": seq / 10,
        "wall": 0.0,
        "image": np.zeros((120, 200, 3), np.uint8),
        **meta,
    }


def test_render_fills_fields_and_extras():
    packet = black(12, label="cam")
    assert render("{label} #{seq} {t:.1f} {timecode}", packet, 3) == "cam #12 1.2 00:00:01.200"
    assert render("{n} {missing:>4} {missing.x}", packet, 3) == "3 - -"


def test_draws_on_frames_and_passes_the_rest():
    data = {"kind": "data", "x": 1}
    out = list(stamp(iter([data, black(1)]), "#{seq}", "tl", None))
    assert out[0] == {"kind": "data", "x": 1}  # a copy: `data` itself is what stamp got
    assert out[1]["image"].max() > 150 and out[1]["seq"] == 1
    region = out[1]["image"][:60, :100]
    assert region.max() > 150  # text in the top-left corner


@pytest.mark.parametrize("where", ["br", "10,50"])
def test_places(where):
    out = list(stamp(iter([black()]), "XXXX", where, 0.5))
    assert out[0]["image"].max() > 150


def test_bad_templates():
    with pytest.raises(click.BadParameter, match="format string"):
        check_template("{seq")
    with pytest.raises(click.BadParameter, match="name each field"):
        check_template("{}")


def test_a_field_of_the_wrong_type_is_one_line():
    result = vflow("stamp", "{label:.2f}", input=pack([black(label="x")]))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow stamp: cannot fill")


def test_through_a_real_process():
    result = vflow("stamp", "{seq}", "--at", "br", input=pack([black(0), black(1)]))
    assert result.returncode == 0, result.stderr
    assert all(p["image"].max() > 150 for p in unpack(result.stdout))


def test_a_field_no_packet_has_is_named_once():
    stream = pack([frame(i) for i in range(3)])
    result = vflow("stamp", "{nope} {seq}", input=stream)
    assert result.returncode == 0
    assert result.stderr == b"vflow stamp: frame 0 has no field 'nope'; it shows as '-'\n"
