"""Images left in the input (a lazy PacketReader): passed on by splice(2) between real pipes,
skipped when dropped, loaded when asked; the bytes are counted once whichever way they go."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

from tests.helpers import data, frame, pack, unpack
from vflow_cli.framing import PacketReader, PacketWriter, Pending, StreamCut

TWICE = "^an image left in the input was passed on twice or too late$"
NEEDED_LATE = (
    "^an image was needed after the stage read the next packet; a stage registered with "
    "pixels=False must pass on or drop each packet first$"
)
SKIPPED_LATE = "^an image was skipped after the stage read the next packet$"


class Pipes:
    """stream -> a real pipe -> the reader; the writer -> a real pipe -> `received`."""

    def __init__(self, stream: bytes) -> None:
        in_r, in_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.received = bytearray()
        self.feeder = threading.Thread(target=self._feed, args=(in_w, stream), daemon=True)
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.feeder.start()
        self.drain.start()
        self.input = open(in_r, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self.output = open(out_w, "wb", buffering=0)  # noqa: SIM115 (closed by close())

    @staticmethod
    def _feed(fd: int, stream: bytes) -> None:
        with open(fd, "wb", buffering=0) as f:
            f.write(stream)

    def _drain(self) -> None:
        while chunk := os.read(self.out_r, 1 << 20):
            self.received += chunk
        os.close(self.out_r)

    def close(self) -> bytes:
        self.output.close()
        self.feeder.join(30)
        self.drain.join(30)
        self.input.close()
        return bytes(self.received)


def frames(n: int, shape=(300, 300, 3)) -> list[dict]:
    return [frame(i, shape=shape) for i in range(n)]


def test_passed_on_between_pipes_by_splice_and_counted_once():
    packets = [*frames(3), data(3)]
    stream = pack(packets)
    pipes = Pipes(stream)
    reader = PacketReader(pipes.input, lazy=True)
    writer = PacketWriter(pipes.output)
    for packet in reader:
        if "image" in packet:
            assert isinstance(packet["image"], Pending)
            assert packet["image"].describe() == {
                "format": "raw",
                "dtype": "uint8",
                "shape": [300, 300, 3],
            }
            assert packet["image"].number == reader.packets
        writer.write(packet)
    writer.close()
    out = unpack(pipes.close())
    assert [p["seq"] for p in out] == [0, 1, 2, 3]
    for a, b in zip(packets[:3], out[:3], strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert reader.bytes == len(stream)  # what splice moved, counted once
    assert writer.bytes > 3 * 270_000  # the images went out through this writer


def test_forward_reports_what_splice_moved_and_copies_the_rest():
    pipes = Pipes(pack(frames(1)))
    reader = PacketReader(pipes.input, lazy=True)
    written: list[bytes] = []
    for packet in reader:
        image = packet["image"]
        moved = reader.forward(image, pipes.output.fileno(), lambda b: written.append(bytes(b)))
        assert image.forwarded and image.head == b""
        assert moved + sum(map(len, written)) == 300 * 300 * 3
        assert moved > 0  # pipe to pipe: in the kernel
        with pytest.raises(RuntimeError, match=TWICE):
            reader.forward(image, None, written.append)
        with pytest.raises(RuntimeError, match=NEEDED_LATE):
            image.load()
    received = pipes.close()
    assert b"".join(written) + received == frames(1)[0]["image"].tobytes()


def test_forward_without_a_pipe_copies_everything():
    stream = pack(frames(1))
    reader = PacketReader(io.BytesIO(stream), lazy=True)
    written: list[bytes] = []
    for packet in reader:
        assert reader.forward(packet["image"], None, lambda b: written.append(bytes(b))) == 0
    assert b"".join(written) == frames(1)[0]["image"].tobytes()
    assert reader.bytes == len(stream)


def test_dropped_images_are_skipped_in_the_kernel_and_counted():
    packets = [*frames(3), data(3)]
    stream = pack(packets)
    pipes = Pipes(stream)
    reader = PacketReader(pipes.input, lazy=True)
    assert [p["seq"] for p in reader] == [0, 1, 2, 3]  # nothing kept: each image skipped
    pipes.close()
    assert reader.bytes == len(stream) and reader.ended


def test_skip_reads_past_an_image_now():
    stream = pack([*frames(2), data(2)])
    pipes = Pipes(stream)
    reader = PacketReader(pipes.input, lazy=True)
    seen = []
    for packet in reader:
        seen.append(packet["seq"])
        if "image" in packet:
            image = packet["image"]
            before, left = reader.bytes, image.nbytes - len(image.head)
            image.skip()
            assert image.forwarded and image.head == b""
            assert reader.bytes - before == left  # the rest of the image was read past
            image.skip()  # a second skip does nothing
            with pytest.raises(RuntimeError, match=NEEDED_LATE):
                image.load()
    pipes.close()
    assert seen == [0, 1, 2] and reader.bytes == len(stream)


def test_skip_after_the_next_packet_is_refused():
    reader = PacketReader(io.BytesIO(pack(frames(2))), lazy=True)
    held = []
    for packet in reader:
        held.append(packet["image"])
        if len(held) == 2:
            with pytest.raises(RuntimeError, match=SKIPPED_LATE):
                held[0].skip()


def test_a_loaded_image_is_the_picture_and_loads_once():
    reader = PacketReader(io.BytesIO(pack(frames(2))), lazy=True)
    for packet, original in zip(reader, frames(2), strict=True):
        image = packet["image"]
        first = image.load()
        assert image.load() is first
        np.testing.assert_array_equal(first, original["image"])


def test_a_small_image_is_not_left_in_the_input():
    reader = PacketReader(io.BytesIO(pack(frames(1, shape=(4, 4, 3)))), lazy=True)
    (packet,) = list(reader)
    assert isinstance(packet["image"], np.ndarray)


@pytest.mark.parametrize("how", ["drop", "forward", "skip"])
def test_a_cut_in_an_image_left_in_the_input_names_its_packet(how):
    stream = pack(frames(2))
    cut = stream[: len(stream) - 1000]  # the second image is 1000 bytes short (and no trailer)
    pipes = Pipes(cut)
    reader = PacketReader(pipes.input, lazy=True)
    with pytest.raises(StreamCut) as stopped:
        for packet in reader:
            if how == "forward":
                reader.forward(packet["image"], pipes.output.fileno(), lambda b: None)
            elif how == "skip":
                packet["image"].skip()
    pipes.close()
    assert str(stopped.value).startswith("input ended in the middle of packet 2 (its image was ")
