import numpy as np

from tests.helpers import pack, sh, vflow
from tests.scene import SCENE, SCENE_FRAMES, stream


def tracked_rows(packets, offset_key="frame"):
    """What the file must hold, made from the packets themselves."""
    rows = []
    for p in packets:
        for obj in p.get("objects", []):
            if "id" in obj:
                x1, y1, x2, y2 = obj["box"]
                rows.append((p[offset_key] + 1, obj["id"], x1, y1, x2 - x1, y2 - y1, obj["score"]))
    return rows


def test_writes_every_tracked_object_in_motchallenge_format(tmp_path):
    packets = list(stream(SCENE, SCENE_FRAMES))
    for p in packets:  # frame numbers of a file read from its 5th frame on
        if "frame" in p:
            p["frame"] += 4
    out = tmp_path / "tracks.txt"
    result = vflow("mot", str(out), input=pack(packets))
    assert result.returncode == 0, result.stderr
    table = np.loadtxt(out, delimiter=",", ndmin=2)
    assert table.shape[1] == 10
    assert (table[:, 7:] == -1).all()
    expected = np.array(tracked_rows(packets))
    assert table.shape[0] == len(expected)
    np.testing.assert_allclose(table[:, :7], expected, atol=0.006)
    assert table[:, 0].min() == 5  # frame 4 of the file is MOT frame 5
    assert set(table[:, 1].astype(int)) == {w.id for w in SCENE if w.id is not None}


def test_seq_numbers_frames_when_there_is_no_frame_field_and_dash_is_stdout():
    packets = list(stream(SCENE[:1], 10))  # walker 1 alone, on every frame
    for p in packets:
        p.pop("frame", None)
    result = sh("vflow mot - | head -n 3", input=pack(packets))
    assert result.statuses[1] == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("1,1,") and lines[0].endswith(",0.9000,-1,-1,-1")
    assert [line.split(",")[:2] for line in lines] == [["1", "1"], ["2", "1"], ["3", "1"]]


def test_untracked_objects_are_not_written_and_that_is_said(tmp_path):
    untracked = pack(stream([w for w in SCENE if w.id is None], 10))
    out = tmp_path / "none.txt"
    result = vflow("mot", str(out), input=untracked)
    assert result.returncode == 0 and out.read_text() == ""
    assert b"vflow track" in result.stderr


def test_an_unwritable_file_is_one_line(tmp_path):
    result = vflow("mot", str(tmp_path / "no" / "such" / "dir.txt"), input=pack([]))
    assert result.returncode == 1
    assert b"does not exist" in result.stderr and b"Traceback" not in result.stderr


def test_pass_sits_mid_pipe_writing_the_same_file_and_passing_every_packet(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, SCENE_FRAMES)))
    alone, passing = tmp_path / "alone.txt", tmp_path / "passing.txt"
    assert vflow("mot", str(alone), input=recording.read_bytes()).returncode == 0
    result = sh(f"vflow mot {passing} --pass < {recording} | vflow print --kind frame -f seq")
    assert result.statuses == [0, 0], result.stderr
    assert len(result.stdout.decode().splitlines()) == SCENE_FRAMES
    assert passing.read_text() == alone.read_text() != ""
    refused = vflow("mot", "-", "--pass", input=pack([]))
    assert refused.returncode == 1 and b"give mot a FILE" in refused.stderr


def test_pass_makes_mot_a_processor_in_a_graph(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, 20)))
    (tmp_path / "spec.toml").write_text(
        f'[nodes.src]\ncommand = ["cat", "{recording}"]\nkind = "producer"\n'
        '[nodes.mot]\nrun = ["mot", "t.txt", "--pass"]\nfrom = ["src"]\n'
        '[nodes.out]\nrun = ["print", "--kind", "frame", "-f", "seq"]\nfrom = ["mot"]\n'
    )
    result = sh(f"cd {tmp_path} && vflow graph spec.toml")
    assert result.statuses == [0], result.stderr
    assert result.stdout.decode().count('"seq"') == 20
    assert (tmp_path / "t.txt").read_text().count("\n") > 20
    plain = tmp_path / "plain.toml"
    plain.write_text((tmp_path / "spec.toml").read_text().replace(', "--pass"', ""))
    refused = sh(f"cd {tmp_path} && vflow graph --check plain.toml")
    assert refused.statuses == [1] and b"'mot', a consumer, which writes no packets" in (
        refused.stderr
    )
