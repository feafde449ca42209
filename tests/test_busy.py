"""busy: the bottleneck line, and the shares a stage reports with -v."""

from __future__ import annotations

import re

from tests.helpers import sh
from vflow_cli.busy import bottleneck


def test_the_bottleneck_line_names_the_busiest_stage() -> None:
    line = bottleneck({"read": 0.1, "detect": 0.97, "track": 0.05})
    assert line == "detect was busy 97% of the run; every other stage waited on it"
    close = bottleneck({"a": 0.9, "b": 0.85})
    assert close == "a was busy 90% of the run, the most of any stage"
    idle = bottleneck({"a": 0.2, "b": 0.1})
    assert idle.startswith("no stage was busy more than 20% of the run (the busiest: a)")
    assert bottleneck({}) == "no stage reported how busy it was"


def test_a_stage_reports_busy_and_waiting_with_v() -> None:
    """A paced producer waits on its clock; the stage after it waits for input."""
    result = sh("vflow int 1 20 --interval 0.05 -v | vflow sum -v | vflow null")
    assert result.statuses == [0, 0, 0], result.stderr
    err = result.stderr.decode()
    pattern = r"vflow {}: busy (\d+)% of [\d.]+ s; waiting for input (\d+)%"
    producer = re.search(pattern.format("int"), err)
    processor = re.search(pattern.format("sum") + r", for output (\d+)%", err)
    assert producer and processor, err
    # the shares of one run add up to at most the whole run
    assert int(producer[1]) + int(producer[2]) <= 101
    assert sum(int(processor[i]) for i in (1, 2, 3)) <= 102
