from vflow_stages.integers import int_

from tests.helpers import sh, unpack
from vflow_cli.cli import cli
from vflow_cli.runner import Progress


def test_counts_up_and_down_with_both_ends_included():
    up = [p for p in int_(0, 4, interval=0) if not isinstance(p, Progress)]
    assert [p["value"] for p in up] == [0, 1, 2, 3, 4]
    assert [p["seq"] for p in up] == [0, 1, 2, 3, 4]
    down = [p["value"] for p in int_(3, -1, interval=0) if not isinstance(p, Progress)]
    assert down == [3, 2, 1, 0, -1]


def test_announces_its_length():
    first = next(int_(5, 9, interval=0))
    assert isinstance(first, Progress) and first.total == 5


def test_cli_round_trip(runner):
    result = runner.invoke(cli, ["int", "0", "2"])
    assert result.exit_code == 0, result.output
    packets = unpack(result.stdout_bytes)
    assert [(p["kind"], p["value"]) for p in packets] == [("data", 0), ("data", 1), ("data", 2)]
    assert all(isinstance(p["t"], float) for p in packets)


def test_videoflows_first_example():
    result = sh("vflow int 0 40 | vflow sum | vflow print")
    lines = result.stdout.decode().splitlines()
    assert result.statuses == [0, 0, 0] and len(lines) == 41
    assert lines[-1].endswith('"value":820}')
