"""group = "NAME": several nodes in one process (vflow chain), and the bottleneck report."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.graph.util import graph, wait_for, write_spec
from tests.helpers import ENV, ROOT
from vflow_cli.graph.plan import make_plan
from vflow_cli.graph.spec import SpecError, load

SUMS = """
[nodes.src]
run = ["int", "1", "10"]
[nodes.total]
run = ["sum"]
from = ["src"]
group = "maths"
[nodes.thin]
run = ["every", "3"]
from = ["total"]
group = "maths"
[nodes.out]
run = ["print"]
from = ["thin"]
"""


def test_a_group_is_one_node_in_the_plan_and_the_picture(tmp_path: Path) -> None:
    spec = load(write_spec(tmp_path, SUMS))
    assert list(spec.nodes) == ["src", "maths", "out"]
    maths = spec.nodes["maths"]
    assert maths.argv[3:] == ["chain", "sum", ",", "every", "3"]
    assert maths.members == ["total", "thin"] and maths.stateful
    assert spec.nodes["out"].inputs == ["maths"] and maths.inputs == ["src"]
    plan = make_plan(spec)
    assert [(e.src, e.dst, e.transport) for e in plan.edges] == [
        ("src", "maths", "pipe"),
        ("maths", "out", "pipe"),
    ]
    dot = graph(tmp_path, SUMS, "--dot").stdout.decode()
    assert '"maths" [shape=box' in dot and "group of total, thin: one process" in dot
    assert '"total"' not in dot and '"thin"' not in dot


def test_a_group_runs_as_the_same_nodes_would(tmp_path: Path) -> None:
    """Stateful stages keep their meaning: the running sum, then one in three."""
    grouped = graph(tmp_path, SUMS)
    plain = graph(tmp_path, SUMS.replace('group = "maths"\n', ""))
    assert grouped.returncode == 0 and plain.returncode == 0, grouped.stderr

    def values(out: bytes) -> list[int]:
        return [json.loads(line)["value"] for line in out.decode().splitlines()]

    assert values(grouped.stdout) == values(plain.stdout) == [1, 10, 28, 55]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (('run = ["every", "3"]', 'command = ["cat"]'), "only `run` nodes (vflow stages)"),
        (('group = "maths"\n[nodes.out]', "[nodes.out]"), "a group joins two nodes or more"),
        (('from = ["total"]', 'from = ["total", "src"]'), "a group is one line of nodes"),
        (('run = ["every", "3"]', 'run = ["every", "3"]\nqueue = { size = 2 }'), "first node"),
        (('"int", "1", "10"]', '"int", "1", "10"]\ngroup = "maths"'), "neither input nor output"),
        (('group = "maths"', 'group = "out"'), "the name of a node outside it"),
    ],
)  # fmt: skip
def test_a_wrong_group_is_one_clear_line(tmp_path: Path, change: tuple[str, str], says: str):
    text = SUMS.replace(*change, 1)
    if says == "neither input nor output":  # the whole graph in one group
        text = text.replace('run = ["print"]', 'run = ["print"]\ngroup = "maths"')
    assert text != SUMS
    with pytest.raises(SpecError) as caught:
        load(write_spec(tmp_path, text))
    assert any(says in line for line in caught.value.lines), caught.value.lines


def test_the_bottleneck_is_named(tmp_path: Path) -> None:
    """-v: each node's busy and waiting shares, and one line naming the busiest; the same
    numbers in the live page's data and its /metrics."""
    picture = ROOT / "tests" / "data" / "astronaut.png"
    spec = write_spec(
        tmp_path,
        f"""
[nodes.src]
run = ["images", "{picture}", "--loop", "--frames", "6"]
[nodes.det]
run = ["detect", "--model", "hog"]
from = ["src"]
[nodes.small]
run = ["resize", "64x64"]
from = ["det"]
group = "tail"
[nodes.mirror]
run = ["flip"]
from = ["small"]
group = "tail"
[nodes.out]
run = ["null"]
from = ["mirror"]
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "graph", "-v", "--serve", "0", "--linger", "60",
         str(spec)],
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().decode().split()[-1]
        import urllib.request

        def get(path: str) -> bytes:
            with urllib.request.urlopen(url + path, timeout=10) as reply:
                return reply.read()

        wait_for(
            lambda: json.loads(get("status.json"))["graph"]["state"] == "done",
            timeout=200,
            what="the graph to end",
        )
        status = json.loads(get("status.json"))
        nodes = {n["name"]: n for n in status["nodes"]}
        assert [s for s, _ in nodes["tail"]["busy"]["stages"]] == ["resize", "flip"]
        assert status["graph"]["bottleneck"].startswith("det was busy ")
        metrics = get("metrics").decode()
        assert re.search(r'vflow_stage_busy_ratio\{node="det",stage="detect"\} 0\.\d+', metrics)
        assert 'vflow_node_waiting_ratio{node="out",on="input"}' in metrics
    finally:
        proc.send_signal(signal.SIGINT)  # ends the linger
        _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert re.search(r"vflow graph:   tail: busy resize \d+%, flip \d+%; waiting", text), text
    assert re.search(r"vflow graph: det was busy \d+% of the run", text), text


def test_a_chain_node_is_what_its_stages_make_it(tmp_path: Path) -> None:
    """run = ["chain", ...]: a producer when its first stage is one; its stages checked."""
    spec = '[nodes.src]\nrun = ["chain", "int", "1", "4", ",", "sum"]\n'
    spec += '[nodes.out]\nrun = ["print"]\nfrom = ["src"]\n'
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [1, 3, 6, 10]
    bad = graph(tmp_path, spec.replace('"sum"', '"nosuch"'))
    assert bad.returncode != 0
    assert b"vflow chain: 'nosuch' is not a stage that can run in a chain" in bad.stderr
