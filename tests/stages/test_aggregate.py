import pytest
from vflow_stages.aggregate import count, max_, mean, min_, mul, sum_

from tests.helpers import data, frame, pack, sh, unpack
from vflow_cli.cli import cli
from vflow_cli.runner import StageError

VALUES = [3, 1, 4, 1, 5]


def run(stage, **options):
    packets = [data(i, v) for i, v in enumerate(VALUES)]
    return [p["value"] for p in stage(iter(packets), field="value", into=None, **options)]


def test_running_values():
    assert run(sum_) == [3, 4, 8, 9, 14]
    assert run(mul) == [3, 3, 12, 12, 60]
    assert run(min_) == [3, 1, 1, 1, 1]
    assert run(max_) == [3, 3, 4, 4, 5]
    assert run(mean) == pytest.approx([3, 2, 8 / 3, 2.25, 2.8])


def test_into_another_field_keeps_the_original():
    out = list(sum_(iter([data(0, 2), data(1, 3)]), field="value", into="total"))
    assert [(p["value"], p["total"]) for p in out] == [(2, 2), (3, 5)]


def test_packets_without_the_field_pass_untouched():
    f = frame(0)
    out = list(sum_(iter([data(0, 1), f, data(1, 2)]), field="value", into=None))
    assert out[1] is f and "value" not in f
    assert out[2]["value"] == 3


def test_a_non_number_is_a_user_error():
    with pytest.raises(StageError, match="field 'value' is 'x', not a number"):
        list(sum_(iter([data(0, "x")]), field="value", into=None))


def test_count_counts_packets_of_a_kind():
    packets = [{"kind": "stream"}, frame(0), data(1), frame(2)]
    out = list(count(iter(packets), kinds=("frame",), field=None, into="count"))
    assert [p.get("count") for p in out] == [None, 1, None, 2]
    out = list(count(iter([{"kind": "stream"}, frame(0), data(1)]), kinds=(), field=None, into="n"))
    assert [p.get("n") for p in out] == [None, 1, 2]


def test_cli_round_trip_on_a_named_field(runner):
    stream = pack(data(i, score=i * 0.5) for i in range(4))
    result = runner.invoke(cli, ["max", "--field", "score", "--into", "best"], input=stream)
    assert result.exit_code == 0, result.output
    assert [p["best"] for p in unpack(result.stdout_bytes)] == [0, 0.5, 1.0, 1.5]


def test_every_aggregate_through_a_real_pipe():
    for stage, last in [
        ("sum", 55),
        ("mul", 3628800),
        ("min", 1),
        ("max", 10),
        ("mean", 5.5),
        ("count --into value", 10),
    ]:
        result = sh(f"vflow int 1 10 | vflow {stage} | vflow print | tail -n 1")
        assert result.statuses == [0, 0, 0, 0], stage
        assert f'"value":{last}' in result.stdout.decode(), stage
