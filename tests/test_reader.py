"""framing.reader on its own: what it says about input that is not a whole stream, large
compressed payloads, and a lone packet handed out while its pipe stays open."""

from __future__ import annotations

import io
import os
import threading

import msgpack
import numpy as np
import pytest

from tests.helpers import data, pack, wait_for
from vflow_cli.framing import Encoded, PacketReader, StreamCut, StreamError
from vflow_cli.framing.shm import HOLD, SLOTS, Offer

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


# shared memory, in this process: the test is the writer (an Offer on a pipe) and the reader
# reads that pipe as its stdin (both checks need it to be fd 0)


@pytest.fixture
def shared_pipe():
    """(offer, reader, write end): a reader on a pipe that is fd 0, offered shared memory.
    The reader has taken the offer up (after one plain packet) and said yes."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    offer = Offer(write_end, 1 << 30)
    reader = PacketReader(io.FileIO(read_end, "rb"), shared=True, name="the pipe")
    try:
        os.write(write_end, msgpack.packb({"vflow": 1, "shm": offer.address}))
        os.write(write_end, msgpack.packb(data(0)))
        packets = iter(reader)
        assert next(packets) == data(0)
        wait_for(offer.ready, 10, "the reader's yes")
        rings = reader.rings
        yield offer, reader, packets, write_end
        rings.close()
    finally:
        offer.close()
        os.dup2(saved, 0)
        os.close(saved)
        os.close(write_end)
        reader._stream.close()


def frames(count: int) -> list[np.ndarray]:
    return [np.full((240, 320, 3), n + 1, np.uint8) for n in range(count)]


def test_images_by_reference_are_the_writers_read_only_and_released(shared_pipe):
    offer, reader, packets, write_end = shared_pipe
    images = frames(SLOTS - 1)
    refs = [offer.place(image, lambda: None) for image in images]
    for n, ref in enumerate(refs):  # all at once: one read, the reader releases as it goes
        os.write(write_end, msgpack.packb({"kind": "frame", "seq": n + 1, "image": ref}))
    read_before = reader.bytes
    for n, image in enumerate(images):
        packet = next(packets)
        got = packet["image"]
        assert packet["seq"] == n + 1 and np.array_equal(got, image)
        assert not got.flags.writeable  # a view of the writer's slot, not a copy
        assert got.shape == (240, 320, 3) and got.dtype == np.uint8
        del packet, got  # the stage dropped it: its slot goes back before the next image
    assert len(reader.rings._held) == 1  # only the last one, still unreleased
    assert reader.rings.shared == SLOTS - 1 and reader.packets == SLOTS
    assert reader.bytes - read_before == len(images) * images[0].nbytes + sum(
        len(msgpack.packb({"kind": "frame", "seq": n + 1, "image": ref}))
        for n, ref in enumerate(refs)
    )


def test_a_stage_that_keeps_images_by_reference_gets_copies_past_its_allowance(shared_pipe):
    offer, _reader, packets, write_end = shared_pipe
    images = frames(HOLD + 1)
    for n, image in enumerate(images):
        ref = offer.place(image, lambda: None)
        os.write(write_end, msgpack.packb({"kind": "frame", "seq": n + 1, "image": ref}))
    kept = [next(packets)["image"] for _ in images]
    assert [k.flags.writeable for k in kept] == [False] * HOLD + [True]
    assert all(np.array_equal(k, i) for k, i in zip(kept, images, strict=True))


@pytest.mark.parametrize("given", ["raw without rings", "jpeg with rings"])
def test_a_reference_the_reader_was_not_given_names_its_packet(shared_pipe, given):
    offer, reader, packets, write_end = shared_pipe
    ref = offer.place(frames(1)[0], lambda: None)
    if given == "jpeg with rings":
        ref = {**ref, "format": "jpeg"}
    else:
        reader.rings = None
    os.write(write_end, msgpack.packb({"kind": "frame", "image": ref}))
    with pytest.raises(StreamError) as refused:
        next(packets)
    assert str(refused.value) == "packet 2 refers to shared memory this reader was not given"
