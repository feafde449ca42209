import csv
import io
import json

import numpy as np
from vflow_stages.print import MISSING, lookup

from tests.helpers import pack, sh, vflow
from tests.scene import DOOR, SCENE, SCENE_FRAMES, stream, truth

PACKET = {
    "kind": "frame",
    "seq": 7,
    "lines": {"door": {"points": [400, 0, 400, 576], "in": 2, "out": 5}},
    "objects": [{"box": [1.5, 2, 3, 4], "id": 9}],
    "a.b": "a key with a dot",
    "a": {"b": "a path"},
}


def test_dotted_paths_reach_into_maps_and_lists():
    assert lookup(PACKET, "lines.door.in") == 2
    assert lookup(PACKET, "objects.0.id") == 9
    assert lookup(PACKET, "objects.-1.box") == [1.5, 2, 3, 4]
    assert lookup(PACKET, "a.b") == "a key with a dot"  # a whole key wins over a path
    for absent in ("lines.hall.in", "objects.3.id", "objects.x", "seq.0", "nothing"):
        assert lookup(PACKET, absent) is MISSING, absent


def test_json_with_dotted_fields_keeps_their_names():
    result = vflow("print", "-f", "seq", "-f", "lines.door.out", "-f", "nope", input=pack([PACKET]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"seq": 7, "lines.door.out": 5}


def test_csv_rows_with_a_header_empty_cells_and_json_cells():
    other = {"kind": "frame", "seq": 8, "flag": True, "note": "a, b"}
    result = vflow(
        "print",
        "--format",
        "csv",
        "-f",
        "seq",
        "-f",
        "lines.door.in",
        "-f",
        "objects.0.box",
        "-f",
        "flag",
        "-f",
        "note",
        input=pack([PACKET, other, {"kind": "data", "x": 1}]),
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout.decode())))
    assert rows == [
        ["seq", "lines.door.in", "objects.0.box", "flag", "note"],
        ["7", "2", "[1.5,2,3,4]", "", ""],
        ["8", "", "", "true", "a, b"],
    ]  # the data packet has none of the fields: no row
    bare = vflow("print", "--format", "csv", "--no-header", "-f", "seq", input=pack([PACKET]))
    assert bare.stdout == b"7\n"


def test_csv_without_fields_takes_the_first_packet_s_fields_as_columns():
    second = {"kind": "frame", "seq": 8, "image": np.zeros((2, 2), np.uint8), "extra": 1}
    result = vflow("print", "--format", "csv", input=pack([PACKET, second]))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout.decode())))
    assert rows[0] == ["kind", "seq", "lines", "objects", "a.b", "a"]
    assert rows[1][:2] == ["frame", "7"] and rows[1][4] == "a key with a dot"
    assert rows[2] == ["frame", "8", "", "", "", ""]  # its other fields are not columns


def test_counts_over_time_as_csv_from_a_real_pipe(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, SCENE_FRAMES)))
    result = sh(
        f"vflow line door {DOOR} < {recording} | vflow print --kind frame --format csv "
        "-f seq -f t -f lines.door.in -f lines.door.out"
    )
    assert result.statuses == [0, 0], result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    assert len(rows) == SCENE_FRAMES
    ins = [int(r["lines.door.in"]) for r in rows]
    assert ins == sorted(ins)  # running counts never go down
    assert ins[-1] == sum(d == "in" for _, d in truth("door"))
    assert int(rows[-1]["lines.door.out"]) == sum(d == "out" for _, d in truth("door"))


def test_a_name_into_a_list_takes_it_from_every_element():
    two = {**PACKET, "objects": [{"id": 9, "box": [1, 2, 3, 4]}, {"box": [5, 6, 7, 8]}, {"id": 4}]}
    assert lookup(two, "objects.id") == [9, 4]
    assert lookup(two, "objects.box.0") == [1, 5]
    assert lookup({"objects": []}, "objects.id") is MISSING
    result = vflow("print", "--format", "csv", "-f", "seq", "-f", "objects.id", input=pack([two]))
    assert result.stdout.decode().splitlines() == ["seq,objects.id", "7,9;4"]  # not empty
    as_json = vflow("print", "-f", "objects.id", input=pack([two]))
    assert json.loads(as_json.stdout) == {"objects.id": [9, 4]}


def test_explode_objects_gives_one_row_per_object_through_real_pipes(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, 12)))
    result = sh(f"vflow print --explode objects --format csv < {recording}")
    assert result.statuses == [0], result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    assert list(rows[0]) == ["frame", "t", "id", "box", "score", "label", "velocity"]
    expected = [o for p in stream(SCENE, 12) for o in p.get("objects", [])]
    assert len(rows) == len(expected)
    for row, obj in zip(rows, expected, strict=True):
        assert json.loads(row["box"]) == obj["box"] and row["label"] == obj["label"]
        assert row["id"] == str(obj.get("id", ""))
    assert {r["frame"] for r in rows} == {str(n) for n in range(12)}
    one = sh(f"vflow print --explode objects -f frame -f id < {recording} | head -n 1")
    assert json.loads(one.stdout) == {"frame": 0, "id": 1}
