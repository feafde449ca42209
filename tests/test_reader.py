"""framing.reader on its own: what it says about input that is not a whole stream, large
compressed payloads, and a lone packet handed out while its pipe stays open."""

from __future__ import annotations

import io
import os
import threading

import msgpack
import pytest

from tests.helpers import data, pack, wait_for
from vflow_cli.framing import Encoded, PacketReader, StreamCut, StreamError

HEADER = msgpack.packb({"vflow": 1})
TRAILER = msgpack.packb({"vflow": 1, "end": True, "packets": 1})


def read_all(stream: bytes) -> list[dict]:
    return list(PacketReader(io.BytesIO(stream)))


def refusal(stream: bytes) -> str:
    with pytest.raises(StreamError) as refused:
        read_all(stream)
    return str(refused.value)


def test_what_is_not_a_stream_is_shown_by_its_first_24_bytes():
    text = b"hello, this is plain text and not a vflow stream"
    assert refusal(text) == (
        "stdin is not a vflow stream (it starts with b'hello, this is plain tex'...)"
    )
    assert refusal(b"\x01\x02") == "stdin is not a vflow stream (it starts with b'\\x01\\x02')"
    exactly = b"x" * 24
    assert refusal(exactly) == f"stdin is not a vflow stream (it starts with {exactly!r})"


def test_an_image_map_without_its_payload_names_the_packet():
    frame = msgpack.packb({"kind": "frame", "image": {"shape": [2]}})
    message = refusal(HEADER + msgpack.packb(data(0)) + frame)
    assert message == (
        "input ended in the middle of packet 2: a stage before this one stopped early"
    )
    message = refusal(HEADER + frame + b"\xc6\x00")  # its bin header cut
    assert message == (
        "input ended in the middle of packet 1: a stage before this one stopped early"
    )
    assert refusal(HEADER + frame + b"\x01") == (
        "packet 1 has an 'image' but no bin payload after it"
    )


def test_a_raw_payload_must_have_the_images_size():
    empty = msgpack.packb({"kind": "frame", "image": {"shape": [0, 4]}})
    assert refusal(HEADER + empty + b"\xc4\x03abc" + TRAILER) == (
        "packet 1: image needs 0 bytes but its payload has 3"
    )
    assert read_all(HEADER + empty + b"\xc4\x00" + TRAILER)[0]["image"].shape == (0, 4)


def test_a_bad_descriptor_names_its_packet():
    bad = msgpack.packb({"kind": "frame", "image": {"shape": [2], "dtype": "object"}})
    message = refusal(HEADER + msgpack.packb(data(0)) + bad + b"\xc4\x02ab")
    assert message.startswith("packet 2: image dtype 'object' is not one of")


def test_a_compressed_payload_over_its_allowance_is_refused_before_it_is_read():
    claim = msgpack.packb({"kind": "frame", "image": {"format": "jpeg", "shape": [4, 4, 3]}})
    stream = HEADER + claim + b"\xc6" + (1 << 30).to_bytes(4, "big") + b"\xff\xd8"
    assert refusal(stream) == (
        "packet 1's jpeg payload (1073741824 bytes for a 4x4x3 image) is larger than the "
        "64.09 KiB limit (set VFLOW_MAX_PACKET to raise it)"
    )


def test_a_large_compressed_payload_arrives_whole():
    payload = bytes(range(256)) * (40 << 10)  # 10 MiB: more than one buffer's worth
    big = Encoded("png", payload, (2048, 2048, 3))
    (packet,) = read_all(pack([{"kind": "frame", "image": big}]))
    assert packet["image"] == big
    cut = pack([{"kind": "frame", "image": big}], end=False)[:-1000]
    with pytest.raises(StreamCut) as stopped:
        read_all(cut)
    assert str(stopped.value) == (
        "input ended in the middle of packet 1 (its image was 1000 bytes short): "
        "a stage before this one stopped early"
    )


def test_a_lone_packet_is_handed_out_while_its_pipe_stays_open():
    r, w = os.pipe()
    got: list[dict] = []
    with open(r, "rb") as buffered:  # a BufferedReader, as sys.stdin.buffer is
        reader = PacketReader(buffered)
        thread = threading.Thread(target=lambda: got.extend(reader), daemon=True)
        thread.start()
        os.write(w, HEADER + msgpack.packb(data(0)))  # and no more: no EOF, no 64 KiB
        wait_for(lambda: got == [data(0)], 10, "the packet, without the end of input")
        os.write(w, TRAILER)
        os.close(w)
        thread.join(10)
    assert got == [data(0)] and reader.ended


def test_a_packet_past_careful_at_arriving_in_pieces_is_parsed_again_whole():
    # metadata over 256 KiB switches the reader to counting items, from the packet's first
    # byte, which may lie in any of the pieces it has held since
    from tests.test_framing import Trickle

    packets = [data(0), data(1, pad=["x" * 100] * 3000), data(2), data(3, pad=["y" * 50] * 6000)]
    stream = pack(packets)
    for piece in (999, 4096, 70_000):
        assert list(PacketReader(Trickle(stream, piece))) == packets, piece
