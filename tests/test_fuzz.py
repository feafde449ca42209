"""Every stage against streams nobody meant: whatever arrives, a stage ends with 0 or a
one-line error (exit 1), never an internal error (70), a traceback or a hang.

The streams are valid streams of odd packets (images of every dtype and shape, metadata
with bytes and ext keys, deep values) and the bytes of such streams damaged at random
(flipped, cut, spliced). Stages run in this process through click and the same runner as
on a pipe: thousands of runs would take many minutes as processes.

Each bug the fuzzing found is kept as an @example, run first on every run. Under CI=true the
run is derandomized (tests/conftest.py); `make fuzz` draws many more examples
(VFLOW_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os

import msgpack
import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import pack
from vflow_cli.cli import cli
from vflow_cli.framing import Encoded

STAGES = [
    ["identity"],
    ["sum"],
    ["mean", "--field", "x"],
    ["max"],
    ["count"],
    ["every", "2"],
    ["head", "3"],
    ["rate", "10"],
    ["fps", "--draw"],
    ["resize", "8x8"],
    ["resize", "8x-1", "--mode", "pad"],
    ["crop", "1,1,4,4"],
    ["gray"],
    ["flip", "both"],
    ["rotate", "90"],
    ["rotate", "33", "--expand"],
    ["convert", "hsv"],
    ["jpeg"],
    ["unjpeg"],
    ["stamp", "{seq} {x}"],
    ["print"],
    ["print", "-f", "seq"],
    ["null"],
    ["save", "{tmp}/saved"],
    ["write", "{tmp}/out.mkv"],
    ["detect"],
    ["detect", "--model", "motion"],
    ["track"],
    ["line", "door", "4,0,4,8"],
    ["zone", "z", "0,0", "5,0", "5,5"],
    ["annotate"],
    ["blur", "--classes", "person,face"],
    ["mot", "{tmp}/tracks.txt"],
    ["heatmap", "{tmp}/heat.png"],
    ["annotate", "--heatmap", "--decay", "2"],
    ["print", "--format", "csv", "-f", "seq", "-f", "objects.0.box"],
    ["serve", "-p", "0", "-q"],
    ["serve-pass", "-p", "0", "-q"],
    ["select", "len(objects) > 0 and t >= 0"],
    ["tile", "2x2"],
    ["print", "--explode", "objects", "--format", "csv"],
    ["print", "--format", "csv", "-f", "objects.id"],
    ["mot", "{tmp}/tracks.txt", "--pass"],
    ["line", "door", "4,0,4,8", "--report", "1s"],
    ["zone", "z", "0,0", "5,0", "5,5", "--report", "1s"],
    ["annotate", "--grid", "4"],
    ["write", "{tmp}/out.mp4"],
    ["save", "{tmp}/saved", "--name", "{frame}-{t}.{ext}"],
]
DTYPES = [
    "uint8",
    "int8",
    "uint16",
    "int16",
    "int32",
    "uint32",
    "int64",
    "float16",
    "float32",
    "float64",
]

shapes = st.one_of(
    st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 7)),
    st.tuples(st.integers(1, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
)


@st.composite
def images(draw):
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    if draw(st.integers(0, 4)) == 0:  # a compressed picture, real or not
        data = draw(st.binary(max_size=64))
        if draw(st.booleans()) and len(shape) in (2, 3) and 0 not in shape:
            import cv2

            _, real = cv2.imencode(".png", np.zeros(shape[:2], np.uint8))
            data = real.tobytes()
        return Encoded(draw(st.sampled_from(["jpeg", "png", "webp"])), data, shape)
    value = draw(st.sampled_from([0, 1, 255, -1, 1e9]))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.full(shape, value).astype(dtype)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
keys = st.one_of(st.text(max_size=4), st.binary(max_size=4), st.integers(-3, 3))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)


numbers = st.one_of(st.integers(-10, 20), st.floats(-10, 20), st.floats(allow_nan=True))


@st.composite
def objects(draw):
    """Detections and tracks as stages make them, and as they are when damaged."""
    found = {"box": draw(st.one_of(st.lists(numbers, min_size=4, max_size=4), values))}
    for key, strategy in (
        ("id", st.one_of(st.integers(-2, 5), values)),
        ("score", numbers),
        ("class", st.integers(-1, 90)),
        ("label", st.sampled_from(["person", "face", "car", ""])),
        ("velocity", st.lists(numbers, max_size=2)),
    ):
        if draw(st.booleans()):
            found[key] = draw(strategy)
    return found if draw(st.integers(0, 5)) else draw(values)


@st.composite
def packets(draw):
    packet = draw(st.dictionaries(keys, values, max_size=4))
    packet[b"raw key" if draw(st.booleans()) else "kind"] = draw(
        st.sampled_from(["frame", "data", "stream", "event", 7])
    )
    for field in ("seq", "t", "x", "value", "width", "height", "fps", "frame", "objects"):
        if draw(st.booleans()):
            packet[field] = draw(values)
    if draw(st.booleans()):
        packet["objects"] = draw(st.lists(objects(), max_size=3))
    if draw(st.booleans()):
        packet["image"] = draw(images())
    return packet


def encode_ext_keys(stream: bytes, seed: int) -> bytes:
    """Swap a text key for an ext-type key somewhere (msgpack can only make them by hand)."""
    marker = b"\xa4kind"
    at = stream.find(marker, 8 + seed % 16)
    if at < 0:
        return stream
    return stream[:at] + msgpack.packb(msgpack.ExtType(5, b"kind")) + stream[at + len(marker) :]


@st.composite
def streams(draw):
    body = pack(draw(st.lists(packets(), max_size=4)))
    how = draw(st.sampled_from(["whole", "ext keys", "flip", "cut", "splice"]))
    seed = draw(st.integers(0, 1 << 20))
    if how == "ext keys":
        return encode_ext_keys(body, seed)
    if how == "flip" and body:
        at = seed % len(body)
        return body[:at] + bytes([body[at] ^ (1 << (seed % 8))]) + body[at + 1 :]
    if how == "cut":
        return body[: seed % (len(body) + 1)]
    if how == "splice":
        return body[: seed % (len(body) + 1)] + draw(st.binary(max_size=32))
    return body


# -- the bugs the fuzzing found, kept --------------------------------------------------------

INF = float("inf")


def picture(shape: tuple[int, ...] = (8, 8, 3)) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def person(box: list[float]) -> dict:
    return {"box": box, "score": 0.9, "class": 0, "label": "person"}


# stamp: a time no calendar holds (time.localtime of an infinite or huge wall clock)
INFINITE_TIMES = pack(
    [
        {"kind": "frame", "seq": 0, "t": INF, "wall": INF, "x": 1, "image": picture()},
        {"kind": "frame", "seq": 1, "t": -INF, "wall": 1e300, "image": picture()},
        {"kind": "frame", "seq": 2, "t": float("nan"), "wall": float("nan"), "image": picture()},
    ]
)
# detect and track (and every stage that looks at pixels): pictures with no pixels
EMPTY_PICTURES = pack(
    [
        {"kind": "frame", "seq": 0, "t": 0.0, "image": picture((0, 0, 3))},
        {"kind": "frame", "seq": 1, "t": 0.1, "image": picture((0, 8, 3)), "objects": []},
        {"kind": "frame", "seq": 2, "t": 0.2, "image": picture((8, 0))},
    ]
)
# track: boxes far beyond any picture overflowed the Kalman filter's arithmetic
ABSURD_BOXES = pack(
    [
        {"kind": "frame", "seq": n, "t": n / 10, "image": picture(), "objects": [person(box)]}
        for n, box in enumerate(
            [[0, 0, 4, 4], [0, 0, 1e300, 1e300], [-1e300, -1e300, 1e300, 1e300], [1, 1, 5, 5]]
        )
    ]
)
# print (and every stage that shows fields): keys JSON cannot have as text
ODD_KEYS = pack(
    [
        {"kind": "data", "seq": 0, b"raw key": 1, 3: "three", -1: None},
        {"kind": "frame", "seq": 1, "image": picture(), "objects": [{b"box": [1, 2], 7: 7}]},
        {"kind": "data", "seq": 2, "nested": {b"k": [1, {2: b"v"}], True: 1.5}},
    ]
)
EXT_KEYS = encode_ext_keys(pack([{"kind": "data", "seq": 0}, {"kind": "frame"}]), 0)


@example(stream=INFINITE_TIMES)
@example(stream=EMPTY_PICTURES)
@example(stream=ABSURD_BOXES)
@example(stream=ODD_KEYS)
@example(stream=EXT_KEYS)
@settings(
    max_examples=int(os.environ.get("VFLOW_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
def test_no_stream_makes_a_stage_fail_as_a_bug(stream, tmp_path):
    for stage in STAGES:  # every stage on each stream: generating streams is the slow part
        args = [a.replace("{tmp}", str(tmp_path)) for a in stage]
        result = CliRunner().invoke(cli, args, input=stream, prog_name="vflow")
        err = result.stderr
        where = f"vflow {' '.join(stage)}: status {result.exit_code}: {err!r}"
        assert result.exit_code in (0, 1), (where, result.exception)
        assert "Traceback" not in err and "internal error" not in err, where
        if result.exit_code == 1:
            lines = [line for line in err.splitlines() if line.strip()]
            assert lines and lines[-1].startswith(f"vflow {stage[0]}: "), where
