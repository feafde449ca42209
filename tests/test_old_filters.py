"""vflow-packet(5)'s promise: a plain msgpack filter written before trailers keeps working.

tests/oldfilter.py forwards every header-shaped map as it came (so the trailer too, with the
count of what it received) and drops or adds packets. Its stream still ends cleanly: the
trailer's count may say so on a debug line, it never fails a stream.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.graph.util import graph
from tests.helpers import sh

FILTER = shlex.join([sys.executable, str(Path(__file__).with_name("oldfilter.py"))])


def seqs(out: bytes) -> list[int]:
    return [json.loads(line)["seq"] for line in out.decode().splitlines()]


def test_a_filter_that_drops_packets_ends_its_stream_cleanly():
    result = sh(f"vflow int 0 9 | {FILTER} dropodd | vflow print")
    assert result.statuses == [0, 0, 0], result.stderr
    assert seqs(result.stdout) == [0, 2, 4, 6, 8]
    assert result.stderr == b""


def test_the_trailers_count_is_a_debug_line_only():
    result = sh(f"vflow int 0 9 | {FILTER} dropodd | vflow print -vv")
    assert result.statuses == [0, 0, 0], result.stderr
    assert b"its trailer counts 10 packets, 5 arrived" in result.stderr


def test_a_filter_that_adds_packets_ends_its_stream_cleanly():
    # and a vflow stage after it writes a trailer of its own, with its own count
    result = sh(f"vflow int 0 4 | {FILTER} double | vflow identity -vv | vflow print -vv")
    assert result.statuses == [0, 0, 0, 0], result.stderr
    assert seqs(result.stdout) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    err = result.stderr.decode()
    assert "vflow identity: stdin: its trailer counts 5 packets, 10 arrived" in err
    assert "vflow print: stdin: its trailer" not in err  # identity's own trailer counts right


def test_a_forwarded_trailer_still_tells_a_cut_stream_from_an_ended_one():
    # the filter forwards no trailer when none came: print still sees the cut
    half = len(sh("vflow int 0 9").stdout) // 2  # past the header, in the middle of a packet
    result = sh(f"vflow int 0 9 | head -c {half} | {FILTER} dropodd | vflow print")
    assert result.statuses[-1] == 1
    assert b"input ended" in result.stderr


SPEC = """\
[nodes.src]
run = ["int", "0", "{last}"]
[nodes.filter]
python = {filter}
{workers}
from = ["src"]
[nodes.out]
run = ["print", "--field", "seq", "--field", "copy"]
from = ["filter"]
"""


def spec(mode: str, last: int, workers: int | None) -> str:
    filter_ = json.dumps([str(Path(__file__).with_name("oldfilter.py")), mode])
    extra = f"workers = {workers}\nwindow = 4" if workers else ""
    return SPEC.format(last=last, filter=filter_, workers=extra)


@pytest.mark.parametrize("workers", [None, 1, 3])
def test_a_worker_stage_dropping_odd_packets_delivers_the_evens_in_order(tmp_path, workers):
    # the Videoflow test, with a filter that forwards its trailer as it came
    result = graph(tmp_path, spec("dropodd", 199, workers))
    assert result.returncode == 0, result.stderr
    assert seqs(result.stdout) == list(range(0, 200, 2))


@pytest.mark.parametrize("workers", [None, 2])
def test_a_graph_node_that_adds_packets_forwarding_its_trailer(tmp_path, workers):
    result = graph(tmp_path, spec("double", 99, workers))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [p["seq"] for p in out] == [s for s in range(100) for _ in (0, 1)]
    assert [p.get("copy", False) for p in out] == [False, True] * 100
