"""vflow graph: specs are checked whole before anything starts; each problem is one line."""

from __future__ import annotations

import shutil

import pytest

from tests.graph.util import EXAMPLES, graph
from vflow_cli.graph import devices
from vflow_cli.graph import spec as specs
from vflow_cli.graph.dot import to_dot
from vflow_cli.graph.plan import make_plan


def problems(text: str) -> list[str]:
    with pytest.raises(specs.SpecError) as info:
        specs.load("spec.toml", text=text)
    return info.value.lines


def one(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


SUM = """\
[nodes.src]
run = ["int", "0", "40"]

[nodes.total]
run = ["sum"]
from = ["src"]

[nodes.out]
run = ["print"]
from = ["total"]
"""


def test_a_good_spec_loads():
    spec = specs.load("spec.toml", text=SUM)
    assert list(spec.nodes) == ["src", "total", "out"]
    assert [n.kind for n in spec.nodes.values()] == ["producer", "processor", "consumer"]
    assert spec.nodes["src"].readers == ["total"]
    assert spec.nodes["total"].argv[-1] == "sum"


def test_unknown_stage_names_node_and_line():
    text = SUM.replace('run = ["sum"]', 'run = ["summ"]')
    assert one(text).startswith("spec.toml:5: node 'total': unknown stage 'summ'")


def test_unknown_input():
    text = SUM.replace('from = ["total"]', 'from = ["totl"]')
    assert one(text) == "spec.toml:10: node 'out': unknown input 'totl' (nodes: src, total)"


def test_cycle_names_the_nodes_on_it():
    text = SUM + '[nodes.a]\nrun = ["identity"]\nfrom = ["b"]\n[nodes.b]\nrun = ["identity"]\n'
    text += 'from = ["a"]\n'
    message = one(text)
    assert message.startswith("spec.toml:13: node 'a': cycle ")
    assert "a -> b -> a" in message or "b -> a -> b" in message


def test_cycle_through_a_join():
    text = """\
[nodes.src]
run = ["int", "0", "9"]
[nodes.join]
run = ["identity"]
from = ["src", "back"]
join = "zip"
[nodes.back]
run = ["every", "2"]
from = ["join"]
"""
    message = one(text)
    assert "cycle" in message and "join -> back -> join" in message
    assert message.startswith("spec.toml:5: node 'join':")


def test_inputs_that_never_reach_a_producer():
    text = """\
[nodes.src]
run = ["int", "0", "9"]
[nodes.out]
run = ["print"]
from = ["src"]
[nodes.a]
run = ["identity"]
from = ["b"]
[nodes.b]
run = ["identity"]
from = ["a"]
[nodes.orphan]
run = ["null"]
from = ["a"]
"""
    found = problems(text)
    assert len(found) == 2
    assert "cycle" in found[0]
    assert found[1] == "spec.toml:14: node 'orphan': its inputs never reach a producer"


def test_producer_given_an_input():
    text = SUM.replace('run = ["int", "0", "40"]', 'run = ["int", "0", "40"]\nfrom = ["out"]')
    found = problems(text)
    assert any(
        p.startswith("spec.toml:3: node 'src': 'int' is a producer; it takes no input")
        for p in found
    )


@pytest.mark.parametrize(("stage", "kind"), [("sum", "processor"), ("print", "consumer")])
def test_processor_or_consumer_without_input(stage, kind):
    text = f'[nodes.src]\nrun = ["int", "0", "4"]\n[nodes.x]\nrun = ["{stage}"]\n'
    assert one(text) == (
        f"spec.toml:3: node 'x': '{stage}' is a {kind} and needs an input: add from = [\"NODE\"]"
    )


def test_duplicate_node_names_are_one_line_with_the_line():
    text = SUM + '\n[nodes.total]\nrun = ["max"]\nfrom = ["src"]\n'
    assert one(text) == "spec.toml:12: node 'total': defined twice (first at line 4)"


def test_a_key_set_twice_names_the_node_and_the_key():
    text = SUM.replace('run = ["sum"]', 'run = ["sum"]\nrun = ["max"]')
    assert one(text) == "spec.toml:6: node 'total': `run` is set twice (first at line 5)"
    text = SUM.replace('from = ["total"]', 'from = ["total"]\nfrom = ["src"]')
    assert one(text) == "spec.toml:11: node 'out': `from` is set twice (first at line 10)"


def test_bad_toml_is_one_line():
    assert one("[nodes.a\nrun = 1").startswith("spec.toml:1: not valid TOML:")


def test_an_unclosed_array_on_the_last_line_is_found_there():
    text = SUM + '[nodes.more]\nrun = ["null"]\nfrom = ["out"'
    assert one(text).startswith("spec.toml:13: not valid TOML: Unclosed array")


def test_workers_on_a_stage_that_keeps_state_are_refused():
    text = SUM.replace('run = ["sum"]', 'run = ["sum"]\nworkers = 2')
    assert one(text) == (
        "spec.toml:6: node 'total': 'sum' keeps state across packets (each worker would see "
        "only some of them and keep its own); run it once, without workers"
    )


def test_optional_is_a_flag():
    spec = specs.load(
        "spec.toml", text=SUM.replace('run = ["print"]', 'run = ["print"]\noptional = true')
    )
    assert spec.nodes["out"].optional and not spec.nodes["total"].optional
    assert "optional must be true or false" in one(
        SUM.replace('run = ["print"]', 'run = ["print"]\noptional = "yes"')
    )


def test_reading_from_a_consumer():
    text = SUM + '[nodes.more]\nrun = ["null"]\nfrom = ["out"]\n'
    assert one(text) == (
        "spec.toml:13: node 'more': reads from 'out', a consumer, which writes no packets"
    )


def test_unknown_key_and_bad_values():
    text = SUM.replace('run = ["sum"]', 'run = ["sum"]\nform = ["src"]\nworkers = 0')
    found = problems(text)
    assert found[0].startswith("spec.toml:6: node 'total': unknown key 'form'")
    assert found[1] == "spec.toml:7: node 'total': workers must be a whole number >= 1"


def test_bad_queue():
    text = SUM.replace('from = ["src"]', 'from = ["src"]\nqueue = { size = 4, leaky = "yes" }')
    assert one(text).startswith("spec.toml:7: node 'total': queue: leaky must be")


def test_bad_stage_arguments_are_caught_before_starting():
    text = SUM.replace('run = ["int", "0", "40"]', 'run = ["int", "zero"]')
    assert one(text).startswith("spec.toml:2: node 'src': vflow int: ")


def test_two_nodes_cannot_both_write_packets_to_stdout():
    text = SUM.replace('run = ["print"]', 'run = ["identity"]') + (
        '[nodes.other]\nrun = ["identity"]\nfrom = ["src"]\n'
    )
    assert "would all write packets to the graph's stdout" in one(text)


def test_nothing_to_run():
    assert "give exactly one of `run`" in one('[nodes.a]\nfrom = ["b"]\n')


def test_external_commands_take_their_kind_from_the_graph():
    text = SUM.replace('run = ["sum"]', 'command = ["cat", "-u"]')
    spec = specs.load("spec.toml", text=text)
    assert spec.nodes["total"].kind == "processor"
    assert spec.nodes["total"].argv == ["cat", "-u"]


def test_a_missing_program_or_script():
    text = SUM.replace('run = ["sum"]', 'command = ["no-such-filter"]')
    assert one(text).startswith("spec.toml:5: node 'total': program 'no-such-filter' not found")
    text = SUM.replace('run = ["sum"]', 'python = ["nope.py"]\ncwd = "."')
    assert one(text).startswith("spec.toml:5: node 'total': no Python script 'nope.py' in ")


# -- devices


GPUS = """\
[nodes.src]
run = ["int", "0", "3"]
[nodes.det]
run = ["identity"]
from = ["src"]
device = "gpu"
workers = 2
[nodes.track]
run = ["identity"]
from = ["det"]
device = "prefer-gpu"
[nodes.out]
run = ["null"]
from = ["track"]
device = "cpu"
"""


def test_gpus_one_per_worker_required_first():
    spec = specs.load("spec.toml", text=GPUS)
    assert devices.allocate_gpus(spec, ["0", "1", "2"]) == {
        "src": [None], "det": ["0", "1"], "track": ["2"], "out": [""],
    }  # fmt: skip
    assert devices.allocate_gpus(spec, ["0", "1"])["track"] == [""]  # none left: the CPU


def test_a_required_gpu_that_is_missing_refuses_the_graph():
    spec = specs.load("spec.toml", text=GPUS)
    with pytest.raises(specs.SpecError) as info:
        devices.allocate_gpus(spec, ["0"])
    assert info.value.lines[0].startswith("spec.toml:3: node 'det': needs 2 GPUs")


def test_visible_gpus(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: what the variables say, only
    monkeypatch.delenv("VFLOW_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert devices.visible_gpus(None) == ["3", "5"]
    monkeypatch.setenv("VFLOW_GPUS", "1")
    assert devices.visible_gpus(None) == ["1"]
    assert devices.visible_gpus("0,1") == ["0", "1"]
    monkeypatch.delenv("VFLOW_GPUS")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert devices.visible_gpus(None) == []


# -- the command line


def test_check_reports_one_line_and_no_traceback(tmp_path):
    bad = SUM.replace('run = ["sum"]', 'run = ["summ"]')
    result = graph(tmp_path, bad, "--check")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"vflow graph: {tmp_path / 'spec.toml'}:5: node 'total': unknown stage")


def test_a_missing_spec_file(tmp_path):
    result = graph(tmp_path, tmp_path / "nope.toml")
    assert result.returncode == 1
    assert "cannot read the spec" in result.stderr.decode()


def test_check_starts_nothing(tmp_path):
    text = SUM.replace('run = ["print"]', 'run = ["print"]\nstdout = "out.jsonl"')
    result = graph(tmp_path, text, "--check")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_checks(tmp_path, example):
    result = graph(tmp_path, EXAMPLES / example, "--check", "--gpus", "0,1")
    assert result.returncode == 0, result.stderr


def test_help(tmp_path):
    from tests.helpers import vflow

    result = vflow("graph", "-h")
    assert result.returncode == 0
    assert b"SPEC.toml" in result.stdout and b"--stats" in result.stdout


def test_dot():
    spec = specs.load("spec.toml", text=GPUS)
    dot = to_dot(make_plan(spec, devices.allocate_gpus(spec, ["0", "1", "2"])))
    assert dot.startswith("digraph vflow {")
    assert '"src" -> "det" [label="queue 16"];' in dot  # relayed: workers
    assert '"det" -> "track" [label="queue 16"];' in dot  # workers' output: relayed too
    assert '"track" -> "out";' in dot  # a direct pipe
    assert "x2 workers" in dot and "gpu (GPU 0,1)" in dot


def test_dot_draws_what_it_cannot_place_without_needing_the_hardware(tmp_path):
    result = graph(tmp_path, GPUS, "--dot", "--gpus", "")
    assert result.returncode == 0, result.stderr
    assert b"x2 workers, gpu (2 not placed: no GPU left)" in result.stdout
    result = graph(tmp_path, GPUS, "--check", "--gpus", "")
    assert result.returncode == 1 and b"needs 2 GPUs" in result.stderr


def test_render_needs_graphviz(tmp_path):
    result = graph(tmp_path, SUM, "--dot", "--render", str(tmp_path / "g.png"))
    if shutil.which("dot") is None:
        assert result.returncode == 1
        err = result.stderr.decode()
        assert err.count("\n") == 1 and "Graphviz's `dot` program" in err
    else:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "g.png").stat().st_size > 0


def test_render_without_dot_is_a_usage_error(tmp_path):
    result = graph(tmp_path, SUM, "--render", "g.png")
    assert result.returncode == 2


def _man_examples() -> list[str]:
    from tests.helpers import ROOT

    page = (ROOT / "man" / "vflow-graph.5").read_text()
    blocks = page.split(".nf\n.RS 2\n")[1:]
    texts = [b.split("\n.RE\n")[0].replace("\\-", "-") for b in blocks]
    return [t for t in texts if "[nodes." in t]


@pytest.mark.parametrize("index", range(5))
def test_the_man_page_examples_are_valid_specs(index):
    examples = _man_examples()
    assert len(examples) == 5
    spec = specs.load(EXAMPLES / "man.toml", text=examples[index])  # burn.py is there
    devices.allocate_gpus(spec, [])


def test_the_help_example_is_a_valid_spec():
    from vflow_cli.graph.command import graph as command

    help_text = command.help or ""
    example = help_text.split("\b\n")[1].split("\n\n")[0]
    spec = specs.load("help.toml", text="\n".join(line.strip() for line in example.splitlines()))
    assert list(spec.nodes) == ["src", "total", "out"]
