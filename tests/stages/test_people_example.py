"""examples/people.toml, run as written on the first 15 s of the pedestrian clip."""

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ENV, ROOT, sh
from tests.video_support import vtest_avi

FRAMES = 150  # 15 s at 10 fps: two 10 s intervals, the second one partial


@pytest.mark.skipif(not shutil.which("ffprobe"), reason="ffprobe is not installed")
def test_the_people_example_counts_records_and_serves(tmp_path):
    made = sh(f"vflow read {vtest_avi()} --frames {FRAMES} | vflow write {tmp_path}/people.avi")
    assert made.statuses == [0, 0], made.stderr
    result = subprocess.run(
        [sys.executable, "-m", "vflow_cli", "graph", str(ROOT / "examples" / "people.toml")],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        timeout=200,
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    # the serve node served, or (port 8080 taken on this machine) failed as optional
    assert "serving on http://127.0.0.1:8080/" in err or "node 'serve' (serve) failed" in err
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames,width,height", "-of", "json",
         str(tmp_path / "people.mp4")],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264" and int(stream["nb_read_frames"]) == FRAMES
    assert (stream["width"], stream["height"]) == (768, 576)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "counts.csv").read_text())))
    walkway = [r for r in rows if r["line"] == "walkway"]
    square = [r for r in rows if r["zone"] == "square"]
    assert [(r["t0"], r["t1"]) for r in walkway] == [("0.0", "10.0"), ("10.0", "20.0")]
    assert [(r["t0"], r["t1"]) for r in square] == [("0.0", "10.0"), ("10.0", "20.0")]
    assert len(rows) == 4
    # people walk through the square in those 15 s: it was never empty all along
    assert int(square[0]["entries"]) > 0 and int(square[0]["peak"]) > 0
    assert float(square[0]["mean"]) > 0
    assert sum(int(r["in"]) + int(r["out"]) for r in walkway) > 0
