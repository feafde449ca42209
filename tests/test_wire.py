"""framing.wire on its own: sizes and limits, descriptors, one packet encoded alone.

Every message is checked word for word: the runner shows it as the stage's one line."""

from __future__ import annotations

import io

import msgpack
import numpy as np
import pytest

from tests.helpers import frame, pack
from vflow_cli.console import human_bytes
from vflow_cli.framing import Encoded, PacketReader, Pending, StreamError, decode, encode
from vflow_cli.framing.wire import (
    CAREFUL_AT,
    DEFAULT_MAX_META,
    DEFAULT_MAX_PACKET,
    ENCODED_SLACK,
    Unpacker,
    _TooMany,
    check_image,
    default,
    image_wire,
    max_items,
    max_meta_size,
    max_packet_size,
    parse_bytes,
    parse_error,
    too_large,
)

# -- sizes and limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("1.5K", 1536),
        ("512MB", 512 << 20),
        (" 2g ", 2 << 30),
        ("1T", 1 << 40),
        ("1e3", 1000),
        ("3kb", 3 << 10),
    ],
)
def test_parse_size(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lots", "'LOTS' is not a size (e.g. 4096, 512M, 2G)"),
        ("0", "size must be positive, not '0'"),
        ("-1M", "size must be positive, not '-1'"),
        ("inf", "size must be positive, not 'INF'"),
        ("nan", "size must be positive, not 'NAN'"),
    ],
)
def test_parse_size_refuses(text, message):
    with pytest.raises(ValueError) as refused:
        parse_bytes(text)
    assert str(refused.value) == message


def test_the_limits_and_their_variables(monkeypatch):
    monkeypatch.delenv("VFLOW_MAX_PACKET", raising=False)
    monkeypatch.delenv("VFLOW_MAX_META", raising=False)
    assert (max_packet_size(), max_meta_size()) == (DEFAULT_MAX_PACKET, DEFAULT_MAX_META)
    assert (DEFAULT_MAX_PACKET, DEFAULT_MAX_META) == (1 << 30, 16 << 20)
    monkeypatch.setenv("VFLOW_MAX_META", "")  # empty: the default
    assert max_meta_size() == DEFAULT_MAX_META
    monkeypatch.setenv("VFLOW_MAX_META", "2M")
    assert max_meta_size() == 2 << 20
    monkeypatch.setenv("VFLOW_MAX_PACKET", "1M")  # metadata is never above the packet limit
    assert (max_packet_size(), max_meta_size()) == (1 << 20, 1 << 20)
    monkeypatch.setenv("VFLOW_MAX_PACKET", "lots")
    with pytest.raises(StreamError) as refused:
        max_packet_size()
    assert str(refused.value) == "VFLOW_MAX_PACKET: 'LOTS' is not a size (e.g. 4096, 512M, 2G)"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        ((1 << 20) - 1, "1024 KiB"),
        (5 << 30, "5 GiB"),
        (2 << 40, "2048 GiB"),
    ],
)
def test_human_size(n, text):
    assert human_bytes(n, binary=True) == text


def test_too_large_names_the_variable():
    error = too_large("packet 3's metadata", 1 << 20, "VFLOW_MAX_META")
    assert isinstance(error, StreamError)
    assert str(error) == (
        "packet 3's metadata is larger than the 1 MiB limit (set VFLOW_MAX_META to raise it)"
    )


def test_item_budget():
    assert max_items(0) == 1024 and max_items(1 << 20) == 32768
    assert max_items(DEFAULT_MAX_META) == 524288


def test_a_careful_unpacker_counts_items_per_object():
    unpacker = Unpacker(1 << 15, careful=True)  # 1024 items
    assert unpacker.careful and unpacker.items == 1024
    unpacker.raw.feed(msgpack.packb([[0] * 500, [0] * 500]))
    assert next(unpacker.raw) == [[0] * 500, [0] * 500]  # 1002 items: within the budget
    assert unpacker.left == 22
    unpacker.reset()
    assert unpacker.left == 1024
    unpacker.raw.feed(msgpack.packb([[0] * 600, [0] * 600]))
    with pytest.raises(_TooMany):
        next(unpacker.raw)
    fast = Unpacker(1 << 15, careful=False)
    fast.raw.feed(msgpack.packb([[0] * 600, [0] * 600]))
    assert len(next(fast.raw)) == 2  # only each container's own length is limited


def test_an_unpacker_keeps_keys_of_any_type():
    unpacker = Unpacker(1 << 15, careful=False)
    unpacker.raw.feed(msgpack.packb({1: b"x", b"k": 2.5}))
    assert next(unpacker.raw) == {1: b"x", b"k": 2.5}


def test_parse_errors_say_what_went_wrong():
    limit = 1 << 20
    assert str(parse_error(_TooMany(), 4, limit)) == (
        "packet 4 holds more than 32768 items in its metadata (arrays and maps; VFLOW_MAX_META"
        " / 32); a packet's metadata is for fields, not bulk data (send bulk data as an image)"
    )
    assert "holds more than" in str(parse_error(ValueError("5 exceeds max_map_len(3)"), 1, limit))
    assert str(parse_error(ValueError("9 exceeds max_bin_len(8)"), 2, limit)) == (
        "packet 2's metadata is larger than the 1 MiB limit (set VFLOW_MAX_META to raise it)"
    )
    assert str(parse_error(msgpack.StackError(), 5, limit)) == (
        "packet 5 is nested deeper than msgpack's 1024 levels"
    )
    assert str(parse_error(TypeError("unhashable"), 6, limit)) == (
        "packet 6 is not valid msgpack (TypeError: unhashable)"
    )


# -- images ----------------------------------------------------------------------------------


def test_check_image_gives_format_exact_size_and_most():
    big = 1 << 30
    assert check_image({"shape": [4, 4, 3]}, 1, big) == ("raw", 48, 48)
    assert check_image({"shape": [4, 4], "dtype": "uint16"}, 1, big) == ("raw", 32, 32)
    assert check_image({"format": "raw", "shape": [2], "dtype": "float64"}, 1, big) == (
        "raw",
        16,
        16,
    )
    assert check_image({"format": "jpeg", "shape": [4, 4, 3]}, 1, big) == (
        "jpeg",
        -1,
        2 * 48 + ENCODED_SLACK,
    )
    assert check_image({"format": "png", "shape": [4, 4, 3]}, 1, 100) == ("png", -1, 100)
    assert check_image({"shape": [1, 1, 1, 1]}, 1, big) == ("raw", 1, 1)
    assert check_image({"shape": [0, 5]}, 1, big) == ("raw", 0, 0)
    assert check_image({"shape": [(1 << 31) - 1]}, 1, big << 2)[1] == (1 << 31) - 1


@pytest.mark.parametrize(
    ("desc", "message"),
    [
        ({"shape": []}, "packet 7: image shape [] is not a list of 1-4 sizes"),
        ({"shape": [1, 1, 1, 1, 1]}, "packet 7: image shape [1, 1, 1, 1, 1] is not a list"),
        ({"shape": [4, -1]}, "packet 7: image shape [4, -1] is not"),
        ({"shape": [1 << 31]}, "packet 7: image shape [2147483648] is not"),
        ({"shape": [2, True]}, "packet 7: image shape [2, True] is not"),
        ({"shape": [2.0]}, "packet 7: image shape [2.0] is not"),
        ({"shape": (2, 2)}, "packet 7: image shape (2, 2) is not"),
        ({"shape": [2], "dtype": "complex64"}, "packet 7: image dtype 'complex64' is not one"),
        ({"shape": [2], "format": "gif"}, "packet 7: image format 'gif' is not raw or one of"),
        ("raw", "packet 7: 'image' must be a map, not str"),
        (
            {"shape": [1025, 1024]},
            "packet 7: a 1025x1024 uint8 image is larger than the 1 MiB limit "
            "(set VFLOW_MAX_PACKET to raise it)",
        ),
    ],
)
def test_check_image_refuses(desc, message):
    with pytest.raises(StreamError) as refused:
        check_image(desc, 7, 1 << 20)
    assert str(refused.value).startswith(message)


def test_a_raw_image_exactly_at_the_limit_passes():
    assert check_image({"shape": [1024, 1024]}, 1, 1 << 20) == ("raw", 1 << 20, 1 << 20)


def test_image_wire_without_copies():
    array = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    desc, payload = image_wire(array)
    assert desc == {"format": "raw", "dtype": "uint16", "shape": [2, 3, 4]}
    assert payload.obj is not None and np.shares_memory(np.asarray(payload), array)
    assert bytes(payload) == array.astype("<u2").tobytes()
    swapped = array.astype(">u2")  # big-endian and a view: made little-endian, contiguous
    desc, payload = image_wire(swapped[:, ::2])
    assert desc == {"format": "raw", "dtype": "uint16", "shape": [2, 2, 4]}
    assert bytes(payload) == array[:, ::2].astype("<u2").tobytes()
    desc, payload = image_wire(swapped)  # big-endian alone, contiguous: made little-endian
    assert bytes(payload) == array.astype("<u2").tobytes()
    coded = Encoded("png", b"\x89PNG", (2, 2), "uint16")
    desc, payload = image_wire(coded)
    assert desc == {"format": "png", "dtype": "uint16", "shape": [2, 2]}
    assert bytes(payload) == b"\x89PNG" and payload.format == "B"


def test_image_wire_refuses_what_is_no_image():
    with pytest.raises(TypeError, match="must be a numpy array, not list"):
        image_wire([1, 2])
    with pytest.raises(TypeError, match="cannot have dtype complex64"):
        image_wire(np.zeros(2, np.complex64))


def test_encoded_equality():
    a = Encoded("jpeg", b"abc", [2, 2, 3])
    assert a == Encoded("jpeg", bytearray(b"abc"), (2, 2, 3))
    assert a.shape == (2, 2, 3) and a.dtype == "uint8"
    assert a != Encoded("png", b"abc", (2, 2, 3))
    assert a != Encoded("jpeg", b"abd", (2, 2, 3))
    assert a != Encoded("jpeg", b"abc", (2, 3, 3))
    assert a != Encoded("jpeg", b"abc", (2, 2, 3), "uint16")
    assert a != b"abc"
    assert repr(a) == "Encoded('jpeg', 3 bytes, shape=(2, 2, 3))"
    with pytest.raises(TypeError):
        hash(a)


def test_default_turns_numpy_and_sets_into_msgpack():
    assert default(np.float32(1.5)) == 1.5 and type(default(np.int64(3))) is int
    assert default(np.arange(3)) == [0, 1, 2]
    assert sorted(default({3, 1})) == [1, 3] and default(frozenset()) == []
    with pytest.raises(TypeError) as refused:
        default(object())
    assert str(refused.value) == "cannot send a object in a packet"


# -- one packet alone --------------------------------------------------------------------------


def test_numpy_metadata_encodes_as_plain_values():
    packet = {"kind": "data", "score": np.float32(0.5), "ids": {np.int64(2).item(), 3}}
    assert decode(encode(packet)) == {"kind": "data", "score": 0.5, "ids": [2, 3]}


def test_an_image_still_in_the_input_is_encoded_from_it():
    big = frame(1, shape=(400, 400, 3))  # 480000 bytes: left in the input by a lazy reader
    reader = PacketReader(io.BytesIO(pack([big])), lazy=True)
    for packet in reader:
        assert isinstance(packet["image"], Pending)
        back = decode(encode(packet))
        np.testing.assert_array_equal(back["image"], big["image"])
    assert reader.packets == 1


def test_decode_copies_or_views():
    packet = frame(2, shape=(3, 4))
    data = bytearray(encode(packet))
    copied, viewed = decode(data), decode(data, copy=False)
    assert not np.shares_memory(copied["image"], np.frombuffer(data, np.uint8))
    assert np.shares_memory(viewed["image"], np.frombuffer(data, np.uint8))
    assert viewed["image"].flags.writeable and copied["image"].flags.writeable
    coded = encode({"kind": "frame", "image": Encoded("jpeg", b"\xff\xd8xyz", (2, 2, 3))})
    assert type(decode(coded)["image"].data) is bytes
    assert type(decode(coded, copy=False)["image"].data) is memoryview


def test_decode_reads_any_bin_width_and_a_missing_dtype():
    head = msgpack.packb({"kind": "frame", "image": {"shape": [2, 3]}})
    for bin_header in (b"\xc4\x06", b"\xc5\x00\x06", b"\xc6\x00\x00\x00\x06"):
        back = decode(head + bin_header + bytes(range(6)))
        assert back["image"].dtype == np.uint8 and back["image"].tolist() == [[0, 1, 2], [3, 4, 5]]
    wide = msgpack.packb({"kind": "frame", "image": {"shape": [2], "dtype": "uint16"}})
    back = decode(wide + b"\xc4\x04\x01\x00\x00\x01")  # little-endian on the wire
    assert back["image"].tolist() == [1, 256]
    coded = msgpack.packb({"kind": "frame", "image": {"format": "png", "shape": [2]}})
    assert decode(coded + b"\xc4\x02ab")["image"] == Encoded("png", b"ab", (2,), "uint8")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (msgpack.packb({"kind": "data"})[:-2], "packet 1 is cut short (its map is incomplete)"),
        (b"\xc1", "packet 1 is not valid msgpack"),
        (msgpack.packb({"kind": "data"}) + b"xy", "2 bytes follow the packet"),
        (msgpack.packb([1]), "a packet is a map, not a list"),
        (msgpack.packb({"image": {"shape": [2]}}), "packet 1 has an 'image' but no bin payload"),
        (
            msgpack.packb({"image": {"shape": [2]}}) + b"\x00",
            "packet 1 has an 'image' but no bin payload",
        ),
        (
            msgpack.packb({"image": {"shape": [2]}}) + b"\xc4\x03abc",
            "packet 1: image payload of 3 bytes, expected 2",
        ),
        (
            msgpack.packb({"image": {"shape": [2]}}) + b"\xc4\x02a",
            "packet 1: image payload of 1 bytes, expected 2",
        ),
        (
            msgpack.packb({"image": {"format": "jpeg", "shape": [1]}})
            + b"\xc6"
            + (3 + ENCODED_SLACK).to_bytes(4, "big")
            + bytes(3 + ENCODED_SLACK),
            f"packet 1: image payload of {3 + ENCODED_SLACK} bytes, expected {3 + ENCODED_SLACK}",
        ),
        (
            msgpack.packb({"image": {"shape": "x"}}) + b"\xc4\x00",
            "packet 1: image shape 'x' is not",
        ),
    ],
)
def test_decode_refuses(data, message):
    with pytest.raises(StreamError) as refused:
        decode(data)
    assert str(refused.value).startswith(message)


def test_decode_holds_the_metadata_limit(monkeypatch):
    monkeypatch.setenv("VFLOW_MAX_META", "64K")
    with pytest.raises(StreamError) as refused:
        decode(msgpack.packb({"kind": "data", "pad": "x" * (100 << 10)}))
    assert str(refused.value) == (
        "packet 1's metadata is larger than the 64 KiB limit (set VFLOW_MAX_META to raise it)"
    )


def test_decode_counts_the_items_of_a_large_packet():
    many = [[0]] * 300_000  # 600000 items in 600 KB: past CAREFUL_AT, so counted
    data = msgpack.packb({"kind": "data", "x": many})
    assert len(data) > CAREFUL_AT
    with pytest.raises(StreamError, match="holds more than 524288 items"):
        decode(data)
    fewer = msgpack.packb({"kind": "data", "x": [[0]] * 200_000})
    assert len(decode(fewer)["x"]) == 200_000


def test_decode_keeps_a_compressed_images_dtype_and_checks_an_empty_one():
    coded = msgpack.packb(
        {"kind": "frame", "image": {"format": "png", "shape": [2], "dtype": "uint16"}}
    )
    assert decode(coded + b"\xc4\x02ab")["image"] == Encoded("png", b"ab", (2,), "uint16")
    empty = msgpack.packb({"kind": "frame", "image": {"shape": [0, 3]}})
    assert decode(empty + b"\xc4\x00")["image"].shape == (0, 3)
    with pytest.raises(StreamError) as refused:
        decode(empty + b"\xc4\x01x")
    assert str(refused.value) == "packet 1: image payload of 1 bytes, expected 0"
