"""vflow_cli.testing: stages run in memory through the runner, one reason per assertion."""

from __future__ import annotations

from tests.helpers import data, frame
from vflow_cli.testing import run_stage


def test_a_processor_in_memory_ends_its_stream():
    result = run_stage("every", ["2"], [data(i) for i in range(5)])
    assert result.status == 0 and result.ended is True
    assert [p["seq"] for p in result.packets] == [0, 2, 4]


def test_a_stage_error_is_status_1_and_a_cut_stream():
    result = run_stage("sum", [], [data(0), data(1, value="x")])
    assert result.status == 1 and result.ended is False
    assert [p["value"] for p in result.packets] == [0]  # what came before the error


def test_frames_through_resize():
    result = run_stage("resize", ["8x4"], [frame(0), frame(1)])
    assert [p["image"].shape for p in result.packets] == [(4, 8, 3), (4, 8, 3)]


def test_a_producer_in_memory():
    result = run_stage("int", ["3", "5"])
    assert [p["value"] for p in result.packets] == [3, 4, 5] and result.ended is True
