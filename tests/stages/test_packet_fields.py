"""vflow-packet(5) documents the fields the producers really send, and what they mean."""

import re

from tests.helpers import ROOT, sh, unpack

PAGE = (ROOT / "man" / "vflow-packet.5").read_text()
FIELDS = PAGE.split(".SS Well-known fields")[1].split(".SS Objects")[0]


def documented() -> set[str]:
    """Every field named in a `.BR a ", " b` heading of the well-known fields."""
    names: set[str] = set()
    for line in FIELDS.splitlines():
        if line.startswith(".BR "):
            names.update(re.findall(r'(?:^\.BR |", " )([a-z_]+)', line))
    return names


def entry(name: str) -> str:
    """The text of one field's entry."""
    return FIELDS.split(f".BR {name} ")[1].split(".TP")[0]


def test_every_field_read_and_images_send_is_documented(tmp_path):
    clip = tmp_path / "card.mkv"
    assert sh(f"vflow testcard --frames 140 | vflow write {clip}").statuses == [0, 0]
    sh(f"vflow testcard --size 8x4 --frames 2 | vflow save {tmp_path}/png").check_returncode()
    keys: set[str] = set()
    for source in (f"read {clip} --start 130", f"images {tmp_path}/png"):
        for packet in unpack(sh(f"vflow {source}").stdout):
            keys.update(packet)
    missing = keys - documented() - {"kind", "image", "wall"} - {"vflow", "end", "packets"}
    assert not missing, f"vflow-packet(5) does not document {sorted(missing)}"


def test_seq_is_the_stream_s_count_and_frame_the_file_s_number(tmp_path):
    clip = tmp_path / "card.mkv"
    assert sh(f"vflow testcard --frames 140 | vflow write {clip}").statuses == [0, 0]
    out = unpack(sh(f"vflow read {clip} --start 130").stdout)
    stream, frames = out[0], out[1:]
    assert (stream["frames"], stream["length"]) == (140, 10)
    assert [p["seq"] for p in frames] == list(range(10))
    assert [p["frame"] for p in frames] == list(range(130, 140))
    # and the page says so: seq is not the file's frame number, frame is
    assert "source frame number" not in entry("seq") and "\\-\\-start 130" in entry("seq")
    assert "number in the file" in entry("frame")
