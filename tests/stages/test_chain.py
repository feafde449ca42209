"""vflow chain: several stages in one process, the same packets as the same pipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.helpers import sh, unpack


def frames(path: Path) -> list[tuple[int, bytes]]:
    return [(p["seq"], p["image"].tobytes()) for p in unpack(path.read_bytes()) if "image" in p]


def test_chain_is_the_pipe_in_one_process(tmp_path: Path) -> None:
    card = "vflow testcard --size 320x240 --frames 6 -q"
    stages = "vflow resize 160x90 | vflow flip v | vflow stamp '{seq}'"
    piped = sh(f"{card} | {stages} > {tmp_path}/a")
    chained = sh(
        f"{card} | vflow chain -v 'resize 160x90' , flip v , 'stamp {{seq}}' > {tmp_path}/b"
    )
    assert piped.statuses == [0, 0, 0, 0] and chained.statuses == [0, 0], chained.stderr
    a, b = frames(tmp_path / "a"), frames(tmp_path / "b")
    assert len(a) == 6 and a == b
    assert np.frombuffer(b[0][1], np.uint8).size == 160 * 90 * 3
    # -v: how busy each stage of the chain was
    report = [line for line in chained.stderr.decode().splitlines() if "busy" in line]
    assert len(report) == 1 and all(f"{n} " in report[0] for n in ("resize", "flip", "stamp"))


def test_stateful_stages_keep_their_meaning() -> None:
    """A running sum, then one in three: each keeps its state, in order, as on a pipe."""
    piped = sh("vflow int 1 10 | vflow sum | vflow every 3 | vflow print")
    chained = sh("vflow chain int 1 10 , sum , every 3 | vflow chain identity , print")
    assert piped.statuses == [0, 0, 0, 0] and chained.statuses == [0, 0], chained.stderr

    def values(out: bytes) -> list[int]:
        return [json.loads(line)["value"] for line in out.decode().splitlines()]

    assert values(chained.stdout) == values(piped.stdout) == [1, 10, 28, 55]


def test_a_chain_may_end_in_a_consumer(tmp_path: Path) -> None:
    result = sh(f"vflow testcard --frames 3 -q | vflow chain gray , 'save {tmp_path}/out'")
    assert result.statuses == [0, 0], result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_usage_errors_name_the_stage() -> None:
    for words, says in (
        ("flip , nosuch", "'nosuch' is not a stage"),
        ("flip , 'resize 10'", "resize: "),
        ("flip , 'int 1 2'", "int is a producer: only the first stage may be"),
        ("print , flip", "print is a consumer: only the last stage may be"),
        ("'int 1 2' , print", "neither input nor output"),
        ("flip , , gray", "separated by a lone ','"),
    ):
        result = sh(f"vflow int 1 2 | vflow chain {words}")
        err = result.stderr.decode()
        assert result.statuses[1] == 2, (words, err)
        assert says in err and "Traceback" not in err, (words, err)
