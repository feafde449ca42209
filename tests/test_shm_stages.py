"""Every stage on a real pipe with shared memory (the default) and without (VFLOW_SHM=0): the
same packets come out, and with it the stage's frames really went by shared memory.

Not here: camera (a device), recv and send (a NATS server), serve, serve-pass and show (a
browser or a display); their own tests run them with shared memory on, the default.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import ENV, ROOT, sh, unpack
from vflow_cli.catalogue import stage_info

# more frames than a pipe holds: the stage after takes up the offer when it reads the
# header, and the frames written before it did went inline
CARD = "vflow testcard --size 320x240 --frames 12 -q"
PEOPLE = "vflow images {data}/astronaut.png --loop --frames 6 -q"

# stage -> (its arguments, the producer before it); frames reach it from `flip`, which
# writes straight into shared memory
PROCESSORS: dict[str, tuple[str, str]] = {
    "annotate": ("", PEOPLE + " | vflow detect --model hog --score 0.3 -q"),
    "blur": ("--classes person", PEOPLE + " | vflow detect -q"),
    "convert": ("hsv", CARD),
    "count": ("", CARD),
    "crop": ("10,20,200,100", CARD),
    "detect": ("--model yolox", PEOPLE),
    "every": ("2", CARD),
    "flip": ("v", CARD),
    "fps": ("--draw", CARD),
    "gray": ("", CARD),
    "head": ("3", CARD),
    "identity": ("", CARD),
    "jpeg": ("", CARD),
    "line": ("door 0,100,320,100", PEOPLE + " | vflow detect -q | vflow track -q"),
    "max": ("--field seq", CARD),
    "mean": ("--field seq", CARD),
    "min": ("--field seq", CARD),
    "mul": ("--field seq", CARD),
    "rate": ("1000", CARD),
    "resize": ("100x60", CARD),
    "rotate": ("90", CARD),
    "stamp": ("{{seq}}", CARD),
    "sum": ("--field seq", CARD),
    "track": ("--appearance", PEOPLE + " | vflow detect -q"),
    "unjpeg": ("", CARD + " | vflow jpeg -q"),
    "zone": ("hall 0,0 300,0 300,200", PEOPLE + " | vflow detect -q | vflow track -q"),
}
TIMED = ("wall", "fps", "elapsed")  # fields that depend on the clock, not on the pixels


def comparable(packets: list[dict[str, Any]], timed: tuple[str, ...] = TIMED) -> list[Any]:
    out = []
    for packet in packets:
        image = packet.get("image")
        meta = {k: v for k, v in packet.items() if k not in (*timed, "image")}
        if isinstance(image, np.ndarray):
            meta["image"] = (image.shape, image.dtype.str, image.tobytes())
        elif image is not None:
            meta["image"] = (image.format, image.shape, bytes(image.data))
        out.append(meta)
    return out


def run_both(pipeline: str, tmp_path: Path, out: str) -> dict[str, tuple[Any, str]]:
    results = {}
    for shm in ("1", "0"):
        (tmp_path / shm).mkdir()
        target = tmp_path / shm / out
        result = sh(
            pipeline.format(out=target, data=ROOT / "tests" / "data"),
            env={**ENV, "VFLOW_SHM": shm},
            timeout=200,
        )
        err = result.stderr.decode()
        # 141: the stages before `head` stop when it has had enough
        assert set(result.statuses) <= {0, 141} and result.statuses[-1] == 0, err
        results[shm] = (target, err)
    return results


@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_processor(name: str, tmp_path: Path) -> None:
    args, source = PROCESSORS[name]
    pipeline = f"{source} | vflow flip -q | vflow {name} {args} -v | vflow flip -q > {{out}}"
    got = run_both(pipeline, tmp_path, "out.vflow")
    with_shm, without = (comparable(unpack(got[s][0].read_bytes())) for s in ("1", "0"))
    assert any("image" in p for p in with_shm) or name == "head"
    if name == "fps":  # the drawn rate depends on the clock: compare all but the pixels
        with_shm = [{k: v for k, v in p.items() if k != "image"} for p in with_shm]
        without = [{k: v for k, v in p.items() if k != "image"} for p in without]
    assert with_shm == without
    shared, inline = got["1"][1], got["0"][1]
    assert "shared memory" not in inline, inline
    info = stage_info(name)
    assert info is not None
    if info.looks_at_pixels(info.parse(shlex.split(args))):
        assert "by shared memory: " in shared, shared


CONSUMERS = {
    "print": "vflow print > {out}",
    "save": "vflow save {out}",
    "write": "vflow write {out}.avi -q && vflow read {out}.avi -q | vflow print > {out}",
    "mot": "vflow mot {out}",
    "null": "vflow null && echo ended > {out}",
}


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_consumer(name: str, tmp_path: Path) -> None:
    source = PEOPLE + " | vflow detect -q | vflow track -q" if name == "mot" else CARD
    got = run_both(f"{source} | vflow flip -q | {CONSUMERS[name]}", tmp_path, "out")

    def content(path: Path) -> Any:
        if path.is_dir():
            return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
        if name in ("print", "write"):
            return [
                {k: v for k, v in json.loads(line).items() if k not in (*TIMED, "file")}
                for line in path.read_text().splitlines()
            ]
        return path.read_text()

    assert content(got["1"][0]) == content(got["0"][0])
    assert content(got["1"][0])


@pytest.mark.parametrize(
    "source",
    ["vflow testcard --size 320x240 --frames 12 -q", "vflow int 1 5", PEOPLE, "read"],
)
def test_producer(source: str, tmp_path: Path) -> None:
    if source == "read":
        video = tmp_path / "in.avi"
        made = sh(f"{CARD} | vflow write {video} -q")
        assert made.statuses == [0, 0]
        source = f"vflow read {video} -q"
    got = run_both(f"{source} -v | vflow gray -v > {{out}}", tmp_path, "out.vflow")
    timed = (*TIMED, "t") if "int" in source else TIMED  # int stamps packets with a clock
    with_shm, without = (comparable(unpack(got[s][0].read_bytes()), timed) for s in ("1", "0"))
    assert with_shm == without
    if "int" not in source:
        assert "by shared memory: " in got["1"][1], got["1"][1]
