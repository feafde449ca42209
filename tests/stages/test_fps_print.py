import json

import msgpack
import numpy as np
from vflow_stages.fps import fps

from tests.helpers import data, frame, pack, sh, vflow
from vflow_cli.cli import cli
from vflow_cli.framing import Encoded


def test_fps_records_a_rate_after_the_first_packet():
    out = list(
        fps(
            iter([{"kind": "stream"}, *[frame(i) for i in range(5)]]),
            window=3,
            into="fps",
            draw=False,
            kinds=(),
        )
    )
    assert "fps" not in out[0]
    assert out[1]["fps"] is None
    assert all(p["fps"] > 0 for p in out[2:])


def test_fps_draws_on_frames():
    blank = {"kind": "frame", "seq": 0, "image": np.zeros((120, 320, 3), np.uint8)}
    out = list(
        fps(
            iter([dict(blank), {**blank, "image": blank["image"].copy()}]),
            window=5,
            into="fps",
            draw=True,
            kinds=(),
        )
    )
    assert out[0]["image"].max() == 0  # no rate yet, nothing drawn
    assert out[1]["image"][:, 160:].max() > 0  # the rate, top right


def test_print_describes_images_and_keeps_metadata(runner):
    jpeg = Encoded("jpeg", b"1234", (10, 20, 3))
    stream = pack(
        [
            frame(0, shape=(2, 3)),
            data(1, label="ok", box=[1, 2]),
            {"kind": "frame", "seq": 2, "image": jpeg},
        ]
    )
    result = runner.invoke(cli, ["print"], input=stream)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[0]["image"] == {"format": "raw", "dtype": "uint8", "shape": [2, 3]}
    assert lines[1] == {"kind": "data", "seq": 1, "value": 1, "label": "ok", "box": [1, 2]}
    assert lines[2]["image"] == {
        "format": "jpeg",
        "dtype": "uint8",
        "shape": [10, 20, 3],
        "bytes": 4,
    }


def test_print_selects_fields_and_kinds(runner):
    stream = pack([frame(0), data(1), frame(2)])
    result = runner.invoke(cli, ["print", "--kind", "frame", "-f", "seq"], input=stream)
    assert result.output == '{"seq":0}\n{"seq":2}\n'


def test_fps_and_print_through_real_pipes_for_jq():
    result = sh(
        "vflow testcard --size hd --frames 10 | vflow fps --draw | vflow print --kind frame"
    )
    assert result.statuses == [0, 0, 0]
    packets = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(packets) == 10
    assert packets[0]["image"]["shape"] == [1080, 1920, 3]
    assert packets[0]["fps"] is None and packets[-1]["fps"] > 0


def test_print_prints_only_frames_that_fully_arrived():
    stream = pack([frame(0, shape=(200, 200, 3)), frame(1, shape=(200, 200, 3))], end=False)
    result = vflow("print", "-f", "seq", input=stream[:-1000])  # the second image is cut
    assert result.returncode == 1
    assert result.stdout == b'{"seq":0}\n'
    assert b"input ended in the middle of packet 2" in result.stderr


def test_print_tolerates_keys_json_cannot_have():
    raw = msgpack.packb({"vflow": 1}) + msgpack.packb({"kind": "data", b"bytes": 1, 7: 2})
    raw += msgpack.packb({"kind": "data", "x": {msgpack.ExtType(3, b"k"): 1}})
    raw += msgpack.packb({"vflow": 1, "end": True, "packets": 2})
    result = vflow("print", input=raw)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        '{"kind":"data","bytes":1,"7":2}',
        '{"kind":"data","x":{"ExtType(code=3, data=b\'k\')":1}}',
    ]
