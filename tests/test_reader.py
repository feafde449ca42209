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
from tests.test_framing import Trickle
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


# the edges of reading: exact messages with their packet numbers, input in pieces, and what
# a reader takes from the stream it is given


class Pieces(io.RawIOBase):
    """A stream whose reads return exactly the given pieces, one per read, then the end."""

    def __init__(self, *pieces: bytes) -> None:
        self._pieces = [memoryview(p) for p in pieces]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._pieces and not len(self._pieces[0]):
            self._pieces.pop(0)
        if not self._pieces:
            return 0
        piece = self._pieces[0]
        size = min(len(buffer), len(piece))
        buffer[:size] = piece[:size]
        self._pieces[0] = piece[size:]
        return size


def cut(stream: bytes) -> str:
    with pytest.raises(StreamCut) as stopped:
        read_all(stream)
    return str(stopped.value)


def test_a_fresh_reader_has_read_nothing():
    reader = PacketReader(io.BytesIO(b""))
    assert (reader.packets, reader.bytes, reader.header, reader.ended) == (0, 0, None, False)
    assert reader.ended is False


def test_empty_input_and_a_trailer_first_say_so():
    assert cut(b"") == "no input: the stage before this one wrote nothing (did it fail?)"
    assert refusal(TRAILER) == "stdin ends before it starts (a trailer came first)"


def test_an_object_that_is_not_a_map_names_its_packet():
    stream = HEADER + msgpack.packb(data(0)) + msgpack.packb(7)
    assert refusal(stream) == "packet 2 is a int, not a map"


def test_a_packet_that_cannot_be_parsed_names_its_number():
    unhashable = b"\x81\x91\x01\x01"  # {[1]: 1}
    assert refusal(HEADER + msgpack.packb(data(0)) + unhashable).startswith(
        "packet 2 is not valid msgpack"
    )


@pytest.mark.parametrize("shape", ["one long string", "many short strings"])
def test_metadata_over_the_limit_names_its_packet_and_the_setting(shape):
    # one string over the limit is refused by its length; many within it, once the packet
    # passes CAREFUL_AT and is parsed again whole: more than the unpacker may hold
    pad = "x" * 5000 if shape == "one long string" else ["y" * 300] * 1000
    stream = HEADER + msgpack.packb(data(0)) + msgpack.packb(data(1, pad=pad))
    with pytest.raises(StreamError) as refused:
        list(PacketReader(io.BytesIO(stream), max_packet=2048))
    assert str(refused.value) == (
        "packet 2's metadata is larger than the 2 KiB limit (set VFLOW_MAX_META to raise it)"
    )


def test_a_buffered_stream_is_read_through_its_file():
    r, w = os.pipe()
    os.write(w, pack([data(0)]))
    os.close(w)
    with open(r, "rb") as buffered:
        reader = PacketReader(buffered)
        assert reader._stream is buffered.raw
        assert list(reader) == [data(0)]


def test_a_stream_is_read_with_read1_when_it_has_one():
    """read() of a buffered stream waits for a whole chunk; read1() takes what is there."""

    class OnlyRead1(io.BytesIO):
        def read(self, size=-1):
            raise AssertionError("read() waits for a whole chunk")

    assert list(PacketReader(OnlyRead1(pack([data(0)])))) == [data(0)]


def test_a_bin_header_in_pieces_and_at_the_very_end():
    image = {"kind": "frame", "image": {"shape": [0]}}
    whole = HEADER + msgpack.packb(image) + b"\xc4\x00"
    # the payload's header is the last thing in the input, exactly: the image is whole, the
    # stream only lacks its trailer
    assert cut(whole) == (
        "input ended without an end of stream: a stage before this one stopped early"
    )
    # its header split across reads, exactly: read to the last byte, and no further
    pieces = Pieces(whole[:-1], whole[-1:])
    reader = PacketReader(pieces)
    with pytest.raises(StreamCut, match="without an end of stream"):
        list(reader)
    assert reader.packets == 1 and reader.bytes == len(whole)
    tail = TRAILER
    reader = PacketReader(Pieces(whole[:-2], whole[-2:-1], whole[-1:] + tail))
    (got,) = list(reader)
    assert got["image"].shape == (0,) and reader.bytes == len(whole) + len(tail)


def test_a_compressed_payload_cut_short_names_its_packet():
    png = Encoded("png", b"\x89PNG" + bytes(1000), (8, 8, 3))
    stream = pack([data(0), {"kind": "frame", "image": png}], end=False)[:-10]
    assert cut(stream) == (
        "input ended in the middle of packet 2 (its image was 10 bytes short): "
        "a stage before this one stopped early"
    )


def test_a_compressed_image_keeps_its_dtype():
    png = Encoded("png", b"\x89PNG" + bytes(100), (8, 8), "uint16")
    (got,) = read_all(pack([{"kind": "frame", "image": png}]))
    assert got["image"] == png and got["image"].dtype == "uint16"


def test_a_large_image_stays_in_the_input_from_its_size_on():
    from vflow_cli.framing.reader import LAZY_AT, Pending

    def first_image(size: int, head: int) -> object:
        """A lazy reader's image of `size` bytes, `head` of which came with its map."""
        packet = msgpack.packb({"kind": "frame", "image": {"shape": [size]}})
        bin_head = b"\xc6" + size.to_bytes(4, "big")
        stream = HEADER + packet + bin_head + bytes(size) + TRAILER
        split = len(HEADER + packet + bin_head) + head
        reader = PacketReader(Pieces(stream[:split], stream[split:]), lazy=True)
        image = next(iter(reader))["image"]
        if isinstance(image, Pending):
            assert image.dtype == "uint8" and image.describe() == {
                "format": "raw",
                "dtype": "uint8",
                "shape": [size],
            }
        return type(image).__name__

    assert first_image(LAZY_AT, 0) == "Pending"
    assert first_image(LAZY_AT - 1, 0) == "ndarray"
    assert first_image(LAZY_AT + 100, 100) == "Pending"  # what is still to come counts
    assert first_image(LAZY_AT + 100, 101) == "ndarray"


def test_a_packet_past_careful_at_after_many_small_ones_is_parsed_again_whole():
    # the chunks the reader has let go of before the large packet began shift where it starts
    packets = [data(n) for n in range(300)] + [data(300, pad=["z" * 100] * 3000), data(301)]
    stream = pack(packets)
    for piece in (999, 4096):
        reader = PacketReader(Trickle(stream, piece))
        assert list(reader) == packets, piece
        assert reader.bytes == len(stream)


def test_a_long_stream_of_small_packets_is_parsed_at_full_speed():
    # only a packet over CAREFUL_AT makes the reader count items; a long stream does not
    packets = [data(n, pad="p" * 100) for n in range(5000)]  # about 700 KiB in all
    reader = PacketReader(io.BytesIO(pack(packets)))
    assert list(reader) == packets and not reader._careful


def test_only_a_reader_that_shares_takes_up_an_offer(shared_pipe):
    _offer, _reader, _packets, write_end = shared_pipe  # fd 0 is a pipe an offer is out for
    second = Offer(write_end, 1 << 30)
    try:
        stream = msgpack.packb({"vflow": 1, "shm": second.address}) + msgpack.packb(data(0))
        plain = PacketReader(Pieces(stream + TRAILER), name="a reader that does not share")
        plain._fd = 0  # as if it read fd 0 itself
        assert list(plain) == [data(0)] and plain.rings is None
        assert not second.ready()
        sharing = PacketReader(Pieces(HEADER + msgpack.packb(data(0)) + TRAILER), shared=True)
        assert list(sharing) == [data(0)] and sharing.rings is None  # nothing was offered
    finally:
        second.close()


@pytest.mark.parametrize(
    ("lie", "says"),
    [
        ("dtype", "packet 2: image dtype 'object' is not one of"),
        ("slot", "packet 2: a shared-memory reference out of its ring"),
    ],
)
def test_a_bad_reference_names_its_packet(shared_pipe, lie, says):
    offer, _reader, packets, write_end = shared_pipe
    ref = offer.place(frames(1)[0], lambda: None)
    if lie == "dtype":
        ref = {**ref, "dtype": "object"}
    else:
        ring, _slot, generation = ref["shm"]
        ref = {**ref, "shm": [ring, 99, generation]}
    os.write(write_end, msgpack.packb({"kind": "frame", "image": ref}))
    with pytest.raises(StreamError) as refused:
        next(packets)
    assert str(refused.value).startswith(says)


@pytest.mark.parametrize("kind", ["array", "map", "bin", "ext"])
def test_each_container_is_held_to_the_metadata_limit(kind):
    # a small packet (far below CAREFUL_AT) parsed at C speed: msgpack's own per-container
    # limits are what stop it, each set from the metadata limit
    big = {
        "array": list(range(1500)),
        "map": {str(n): n for n in range(1500)},
        "bin": bytes(3000),
        "ext": msgpack.ExtType(5, bytes(3000)),
    }[kind]
    stream = HEADER + msgpack.packb(data(0)) + msgpack.packb(data(1, pad=big))
    with pytest.raises(StreamError) as refused:
        list(PacketReader(io.BytesIO(stream), max_packet=2048))
    if kind in ("array", "map"):
        assert str(refused.value).startswith("packet 2 holds more than 1024 items")
    else:
        assert str(refused.value) == (
            "packet 2's metadata is larger than the 2 KiB limit (set VFLOW_MAX_META to raise it)"
        )
