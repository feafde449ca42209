"""The wire format: packets of every shape survive; a damaged stream fails clearly."""

from __future__ import annotations

import contextlib
import io
import logging

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers import data, frame, pack, unpack
from vflow_cli.framing import (
    Encoded,
    PacketReader,
    PacketWriter,
    Pending,
    StreamCut,
    StreamError,
    decode,
    encode,
    parse_bytes,
)
from vflow_cli.framing.wire import DTYPES


class Trickle(io.RawIOBase):
    """A stream that returns at most n bytes per read, as a slow pipe does."""

    def __init__(self, data: bytes, n: int) -> None:
        self._data = memoryview(data)
        self._n = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._n, len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size

    def read1(self, n: int = -1) -> bytes:
        buffer = bytearray(min(n if n > 0 else self._n, self._n))
        return bytes(buffer[: self.readinto(buffer)])


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert b[key].dtype == a[key].dtype and b[key].shape == a[key].shape
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


def test_stream_starts_with_a_header_map():
    stream = pack([data(0)])
    first = next(msgpack.Unpacker(io.BytesIO(stream)))
    assert first == {"vflow": 1}


def test_metadata_and_frames_round_trip():
    packets = [data(0, tags=["a", "b"], nested={"x": 1.5}), frame(1), data(2), frame(3)]
    out = unpack(pack(packets))
    assert len(out) == 4
    for a, b in zip(packets, out, strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 4096])
def test_any_chunking_gives_the_same_packets(n):
    packets = [frame(i, shape=(8, 9, 3)) if i % 2 else data(i) for i in range(12)]
    out = list(PacketReader(Trickle(pack(packets), n)))
    assert [p["seq"] for p in out] == list(range(12))
    for a, b in zip(packets, out, strict=True):
        assert_same(a, b)


def test_many_small_packets_in_one_chunk():
    stream = pack(data(i) for i in range(10_000))
    assert [p["value"] for p in unpack(stream)] == list(range(10_000))


def test_images_of_every_dtype_and_layout():
    rng = np.random.default_rng(1)
    packets = []
    for i, name in enumerate(sorted(DTYPES)):
        image = (rng.random((5, 7)) * 100).astype(name)
        packets.append({"kind": "frame", "seq": i, "image": image})
    packets.append({"kind": "frame", "seq": 99, "image": np.zeros((0, 4, 3), np.uint8)})
    wide = np.arange(40, dtype=">u2").reshape(5, 8)  # big-endian: sent little-endian
    packets.append({"kind": "frame", "seq": 100, "image": wide[:, ::2]})  # not contiguous
    out = unpack(pack(packets))
    for a, b in zip(packets[:-1], out[:-1], strict=True):
        assert_same(a, b)
    np.testing.assert_array_equal(out[-1]["image"], wide[:, ::2])


def test_encoded_images_round_trip():
    jpeg = Encoded("jpeg", b"\xff\xd8fake jpeg bytes\xff\xd9", (480, 640, 3))
    (out,) = unpack(pack([{"kind": "frame", "seq": 0, "image": jpeg}]))
    assert out["image"] == jpeg


def test_numpy_values_in_metadata_become_plain_values():
    (out,) = unpack(pack([data(0, score=np.float32(0.5), box=np.array([1, 2, 3, 4]))]))
    assert out["score"] == 0.5 and out["box"] == [1, 2, 3, 4]


def test_a_packet_over_100_mib_passes_when_the_limit_allows():
    image = np.full((6000, 6000, 3), 7, np.uint8)  # 108 MB
    (out,) = unpack(pack([{"kind": "frame", "seq": 0, "image": image}]))
    assert out["image"].shape == image.shape and out["image"][5999, 5999, 2] == 7


def test_garbage_is_named():
    with pytest.raises(StreamError, match=r"not a vflow stream \(it starts with b'root:x:0:0"):
        unpack(b"root:x:0:0:root:/root:/bin/bash\n")


def test_a_map_without_header_is_refused():
    with pytest.raises(StreamError, match="no 'vflow' key"):
        unpack(msgpack.packb({"kind": "data"}))


def test_a_future_version_is_refused_by_name():
    stream = msgpack.packb({"vflow": 2}) + msgpack.packb({"kind": "data"})
    with pytest.raises(StreamError, match="version 2; this vflow reads version 1"):
        unpack(stream)


def test_concatenated_streams_read_as_one():
    stream = pack([data(0)]) + pack([data(1)])
    assert [p["seq"] for p in unpack(stream)] == [0, 1]


def test_a_truncated_stream_delivers_whole_packets_then_fails():
    stream = pack([data(0), data(1), frame(2, shape=(50, 50, 3))])
    reader = PacketReader(io.BytesIO(stream[:-100]))
    got = []
    with pytest.raises(StreamError, match="ended in the middle of packet 3"):
        for packet in reader:
            got.append(packet["seq"])
    assert got == [0, 1]


def test_a_truncated_map_is_reported():
    stream = pack([data(0), data(1)], end=False)
    with pytest.raises(StreamCut, match="ended in the middle of packet 2"):
        unpack(stream[:-3])


def test_a_stream_without_its_trailer_was_cut():
    reader = PacketReader(io.BytesIO(pack([data(0), data(1)], end=False)))
    got = []
    with pytest.raises(StreamCut, match="ended without an end of stream"):
        got.extend(p["seq"] for p in reader)
    assert got == [0, 1]  # every whole packet first
    assert not reader.ended


def test_a_stream_with_its_trailer_ended():
    reader = PacketReader(io.BytesIO(pack([data(0)])))
    assert [p["seq"] for p in reader] == [0] and reader.ended


def test_empty_input_is_no_stream():
    with pytest.raises(StreamCut, match="no input"):
        unpack(b"")


@pytest.mark.parametrize("count", [0, 2, "many", None])
def test_a_trailer_with_another_count_still_ends_the_stream(count, debug_lines):
    # a filter that drops or adds packets and forwards the trailer it got (vflow-packet(5))
    stream = msgpack.packb({"vflow": 1}) + msgpack.packb({"kind": "data", "seq": 0})
    stream += msgpack.packb({"vflow": 1, "end": True, "packets": count})
    reader = PacketReader(io.BytesIO(stream))
    assert [p["seq"] for p in reader] == [0]
    assert reader.ended
    if type(count) is int:
        assert debug_lines == [
            f"stdin: its trailer counts {count} packets, 1 arrived (a filter "
            "that does not count forwarded it)"
        ]
    else:
        assert debug_lines == []


def test_a_trailer_with_the_right_count_says_nothing(debug_lines):
    assert unpack(pack([data(0), data(1)])) == [data(0), data(1)]
    assert debug_lines == []


@pytest.fixture
def debug_lines():
    """The messages of the vflow logger at debug level, while the test runs."""
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("vflow")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield lines
    log.removeHandler(handler)
    log.setLevel(level)


def test_old_readers_skip_the_trailer_as_a_header():
    # the rule of vflow-packet(5) before trailers: any map with "vflow" 1 is a header
    objects = list(msgpack.Unpacker(io.BytesIO(pack([data(0)])), raw=False))
    assert [o for o in objects if "vflow" not in o] == [data(0)]
    assert all(o["vflow"] == 1 for o in objects if "vflow" in o)


def test_an_image_header_cannot_allocate_more_than_the_limit(monkeypatch):
    monkeypatch.setenv("VFLOW_MAX_PACKET", "1M")
    huge = {"kind": "frame", "image": {"format": "raw", "dtype": "uint8", "shape": [4096] * 3}}
    stream = msgpack.packb({"vflow": 1}) + msgpack.packb(huge)
    with pytest.raises(StreamError, match="larger than the 1 MiB limit"):
        unpack(stream)


def test_a_big_metadata_packet_is_refused_over_the_limit(monkeypatch):
    monkeypatch.setenv("VFLOW_MAX_PACKET", "64K")
    stream = pack([data(0, blob="x" * 200_000)])
    with pytest.raises(StreamError, match="metadata is larger than the 64 KiB limit"):
        unpack(stream)


def test_metadata_has_its_own_limit_below_the_packet_limit(monkeypatch):
    monkeypatch.setenv("VFLOW_MAX_META", "100K")
    with pytest.raises(StreamError, match="metadata is larger than the 100 KiB limit"):
        unpack(pack([data(0, blob="x" * 200_000)]))
    assert unpack(pack([frame(0, shape=(200, 200, 3))]))[0]["image"].shape == (200, 200, 3)


def test_item_count_is_bounded_whatever_the_shape(monkeypatch):
    # 2 MiB of empty maps would be ~150 MB of Python objects: refused by count
    stream = pack([data(0, blob=[[{}] * 60_000 for _ in range(40)])])
    with pytest.raises(StreamError, match=r"more than 524288 items"):
        unpack(stream)


def test_nesting_depth_is_named():
    deep = b"\x91" * 2000 + b"\x90"  # [[[...[]...]]], 2000 arrays deep (msgpack cannot pack it)
    stream = msgpack.packb({"vflow": 1}) + b"\x82\xa4kind\xa4data\xa1x" + deep
    with pytest.raises(StreamError, match="nested deeper than msgpack's 1024 levels"):
        unpack(stream)


def test_a_compressed_image_cannot_claim_more_than_its_raw_size():
    desc = {"format": "jpeg", "dtype": "uint8", "shape": [4, 4, 3]}
    stream = msgpack.packb({"vflow": 1}) + msgpack.packb({"kind": "frame", "image": desc})
    stream += b"\xc6" + (1 << 30).to_bytes(4, "big") + b"\xff\xd8"
    with pytest.raises(StreamError, match=r"jpeg payload .* is larger than the 64\.09 KiB limit"):
        unpack(stream)


def test_one_packet_encodes_and_decodes_alone():
    packet = frame(3, shape=(5, 7, 3), objects=[{"box": [1.0, 2.0, 3.0, 4.0]}])
    back = decode(encode(packet))
    assert back["objects"] == packet["objects"] and back["seq"] == 3
    np.testing.assert_array_equal(back["image"], packet["image"])
    assert back["image"].flags.writeable
    assert decode(encode(data(1))) == data(1)
    coded = {"kind": "frame", "image": Encoded("jpeg", b"\xff\xd8abc", (2, 2, 3))}
    assert decode(encode(coded)) == coded


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-1], "payload of"),
        (lambda b: b + b"x", "expected"),
        (lambda b: b[:3], "cut short"),
        (lambda b: msgpack.packb([1, 2]), "a packet is a map, not a list"),
    ],
)
def test_a_damaged_single_packet_is_refused(damage, message):
    with pytest.raises(StreamError, match=message):
        decode(damage(encode(frame(0))))


@pytest.mark.parametrize(
    "image, message",
    [
        ({"shape": "big"}, "not a list of 1-4 sizes"),
        ({"shape": [2, 2], "dtype": "object"}, "dtype 'object'"),
        ({"shape": [2, 2], "format": "gif"}, "format 'gif'"),
        ([1, 2], "'image' must be a map"),
    ],
)
def test_bad_image_descriptors(image, message):
    stream = msgpack.packb({"vflow": 1}) + msgpack.packb({"kind": "frame", "image": image})
    with pytest.raises(StreamError, match=message):
        unpack(stream + msgpack.packb(b"\0" * 4))


def test_an_image_without_its_payload():
    desc = {"format": "raw", "dtype": "uint8", "shape": [2, 2]}
    stream = msgpack.packb({"vflow": 1}) + msgpack.packb({"kind": "frame", "image": desc})
    with pytest.raises(StreamError, match="no bin payload"):
        unpack(stream + msgpack.packb({"kind": "data"}))
    with pytest.raises(StreamError, match="needs 4 bytes but its payload has 3"):
        unpack(stream + msgpack.packb(b"abc"))


def test_a_non_map_packet_is_refused():
    with pytest.raises(StreamError, match="packet 1 is a int, not a map"):
        unpack(msgpack.packb({"vflow": 1}) + msgpack.packb(5))


def test_lazy_reader_forwards_loads_or_skips_images():
    packets = [frame(i, shape=(500, 500, 3)) for i in range(4)]
    reader = PacketReader(io.BytesIO(pack(packets)), lazy=True)
    out = io.BytesIO()
    writer = PacketWriter(out)
    loaded, late = [], []
    for packet in reader:
        assert isinstance(packet["image"], Pending)
        assert packet["image"].shape == (500, 500, 3)
        if packet["seq"] == 0:
            writer.write(packet)  # passed on unread
        elif packet["seq"] == 1:
            loaded.append(packet["image"].load())  # loaded before the next packet
        elif packet["seq"] == 2:
            late.append(packet)  # neither: dropped, its image skipped
    writer.close()
    np.testing.assert_array_equal(loaded[0], packets[1]["image"])
    (forwarded,) = unpack(out.getvalue())
    np.testing.assert_array_equal(forwarded["image"], packets[0]["image"])
    with pytest.raises(RuntimeError, match="needed after the stage read the next packet"):
        late[0]["image"].load()


def test_the_array_pool_reuses_only_arrays_nobody_holds():
    from vflow_cli.framing import ArrayPool

    pool = ArrayPool()
    u8 = np.dtype("uint8")
    a = pool.get([4, 4], u8)
    first = id(a)  # the pool keeps the array alive, so its id stays its own
    b = pool.get([4, 4], u8)
    assert b is not a  # a is held here
    view = a[1:]
    del a
    c = pool.get([4, 4], u8)
    assert id(c) != first and c is not b  # a view keeps its array in use
    del view
    d = pool.get([4, 4], u8)
    assert id(d) == first  # free again: handed out again
    assert pool.get([4, 4], u8) is not d


def test_parse_size():
    assert parse_bytes("4096") == 4096
    assert parse_bytes("512M") == 512 << 20
    assert parse_bytes("2g") == 2 << 30
    with pytest.raises(ValueError):
        parse_bytes("lots")


# -- properties ----------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("image", "vflow"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
images = hnp.arrays(
    dtype=st.sampled_from(sorted(DTYPES)),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
)


@st.composite
def packets(draw):
    packet = draw(st.dictionaries(keys, values, max_size=6))
    packet["kind"] = draw(st.sampled_from(["frame", "data", "stream", "x-custom"]))
    if draw(st.booleans()):
        packet["image"] = draw(images)
    return packet


@given(st.lists(packets(), max_size=5), st.integers(min_value=1, max_value=64))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_packet_survives_a_round_trip(sent, chunk):
    got = list(PacketReader(Trickle(pack(sent), chunk)))
    assert len(got) == len(sent)
    for a, b in zip(sent, got, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key == "image":
                np.testing.assert_array_equal(a[key], b[key])
                assert a[key].dtype == b[key].dtype
            else:
                assert a[key] == b[key]


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_the_reader(noise):
    for stream in (noise, pack([data(0)]) + noise):
        with contextlib.suppress(StreamError):
            list(PacketReader(io.BytesIO(stream)))
