"""The plan: the topology decided once, from the spec alone, without starting anything; the
runner wires exactly the plan, and --dot draws exactly the plan."""

from __future__ import annotations

import re

import pytest

from tests.graph import test_run
from tests.graph.util import EXAMPLES, graph
from vflow_cli.graph import devices
from vflow_cli.graph import spec as specs
from vflow_cli.graph.dot import to_dot
from vflow_cli.graph.plan import make_plan
from vflow_cli.graph.run import Graph


def plan_of(text: str, **kw):
    return make_plan(specs.load("spec.toml", text=text), **kw)


def transports(plan) -> dict[tuple[str, str], str]:
    return {(e.src, e.dst): e.transport for e in plan.edges}


LINE = """\
[nodes.a]
run = ["int", "0", "9"]
[nodes.b]
run = ["identity"]
from = ["a"]
[nodes.c]
run = ["print"]
from = ["b"]
"""


def test_a_line_is_plain_pipes():
    plan = plan_of(LINE)
    assert transports(plan) == {("a", "b"): "pipe", ("b", "c"): "pipe"}
    assert not any(p.relayed_in or p.relayed_out for p in plan.nodes.values())
    assert not plan.relay_lines and plan.warnings == []


def test_stats_relays_every_edge():
    plan = plan_of(LINE, relay_all=True)
    assert set(transports(plan).values()) == {"queue"}


def test_workers_relay_their_input_and_their_output():
    plan = plan_of(LINE.replace('run = ["identity"]', 'run = ["identity"]\nworkers = 2'))
    assert transports(plan) == {("a", "b"): "queue", ("b", "c"): "queue"}
    assert plan.nodes["b"].pool and plan.nodes["b"].relayed_out


def test_fan_out_fan_in_and_leaky_queues():
    text = LINE + (
        '[nodes.d]\nrun = ["null"]\nfrom = ["a"]\nqueue = { size = 2, leaky = "old" }\n'
        '[nodes.e]\nrun = ["int", "0", "3"]\n'
        '[nodes.f]\nrun = ["null"]\nfrom = ["b", "e"]\njoin = "zip"\n'
    )
    plan = plan_of(text)
    assert transports(plan) == {
        ("a", "b"): "queue", ("b", "c"): "queue", ("a", "d"): "queue",
        ("b", "f"): "queue", ("e", "f"): "queue",
    }  # fmt: skip
    assert plan.nodes["f"].join == "zip" and plan.nodes["b"].join is None
    (leaky,) = plan.edges_into("d")
    assert (leaky.size, leaky.leaky) == (2, "old")


def test_check_warns_of_packets_that_go_to_stdout(tmp_path):
    text = LINE + '[nodes.dead]\nrun = ["identity"]\nfrom = ["a"]\n'
    result = graph(tmp_path, text, "--check")
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "warning" in err and "node 'dead': nobody in the graph reads its packets" in err
    assert "mixed with what c print" in err


def _specs() -> list[tuple[str, str]]:
    """Every example and every spec the runner's tests run."""
    found = [(p.name, p.read_text()) for p in sorted(EXAMPLES.glob("*.toml"))]
    for name, value in vars(test_run).items():
        if isinstance(value, str) and "[nodes." in value and "{" not in value:
            found.append((name, value))
    return found


@pytest.mark.parametrize(("name", "text"), _specs(), ids=lambda v: v if "\n" not in v else "")
@pytest.mark.parametrize("relay_all", [False, True])
def test_the_runner_and_the_drawing_follow_the_plan(name, text, relay_all, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outlets to `stdout = "FILE"` open their files
    spec = specs.load(EXAMPLES / name if name.endswith(".toml") else "spec.toml", text=text)
    plan = make_plan(spec, devices.allocate_gpus(spec, ["0", "1"]), relay_all=relay_all)
    runner = Graph(plan).launch
    runner.wire()  # the runner's own queues and fan-outs, built from the plan; no process
    relayed = {(e.src, e.dst) for e in runner.edges}
    drawn = re.findall(r'"([^"]+)" -> "([^"]+)"( \[label="queue)?', to_dot(plan))
    drawn_queues = {(a, b) for a, b, queue in drawn if queue}
    drawn_pipes = {(a, b) for a, b, queue in drawn if not queue}
    assert relayed == drawn_queues == {(e.src, e.dst) for e in plan.edges if e.transport == "queue"}
    assert drawn_pipes == {(e.src, e.dst) for e in plan.edges if e.transport == "pipe"}
    assert set(runner.fanouts) == {n for n, p in plan.nodes.items() if p.relayed_out}
    assert set(runner.inboxes) == {n for n, p in plan.nodes.items() if p.relayed_in}
    for fanout in runner.fanouts.values():
        fanout.close()


def test_the_drawing_and_a_real_run_agree_on_a_workers_output(tmp_path):
    # the case --dot once drew as a pipe while the runner relayed it
    text = LINE.replace('run = ["identity"]', 'run = ["identity"]\nworkers = 2')
    drawn = graph(tmp_path, text, "--dot").stdout.decode()
    assert '"b" -> "c" [label="queue 16"];' in drawn
    ran = graph(tmp_path, text, "-v")
    assert ran.returncode == 0, ran.stderr
    assert "edge b -> c: queue" in ran.stderr.decode()
