"""vflow clip: one file per incident with the seconds before it, overlapping events in one
file, a ring bounded in bytes, and a disk that fills; real processes, videos really decoded."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.helpers import pack, vflow
from tests.stages.test_write import count_frames, tiny_disk  # noqa: F401 (a fixture)

FPS = 10


def grey(n: int, shape=(48, 64, 3)) -> dict:
    """Frame n: every pixel 2n, so a decoded frame says which it was."""
    image = np.full(shape, 2 * n % 256, np.uint8)
    return {"kind": "frame", "seq": n, "t": n / FPS, "wall": 1e9 + n / FPS, "image": image}


def noise(n: int, shape=(48, 64, 3)) -> dict:
    rng = np.random.default_rng(n)
    return {**grey(n), "image": rng.integers(0, 256, shape, dtype=np.uint8)}


def event(n: int, ident: int, **more) -> dict:
    return {
        "kind": "event",
        "event": "cross",
        "line": "door",
        "direction": "in",
        "id": ident,
        "seq": n,
        "t": n / FPS,
        "wall": 1e9 + n / FPS,
        **more,
    }


def stream(frames: list[dict]) -> bytes:
    announce = {"kind": "stream", "source": "door", "width": 64, "height": 48, "fps": FPS}
    return pack([announce, *frames])


def decoded(path) -> list[int]:
    """Which grey frames a clip holds, in order."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    out = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        out.append(round(float(image.mean()) / 2))
    capture.release()
    return out


def clips(folder) -> list[tuple[object, dict]]:
    videos = sorted(p for p in folder.iterdir() if p.suffix != ".json")
    return [(v, json.loads(v.with_suffix(".json").read_text())) for v in videos]


def run_clip(folder, packets: list[dict], *args: str):
    result = vflow("clip", str(folder), *args, input=stream(packets))
    assert result.returncode == 0, result.stderr
    return result


def with_events(frames: list[dict], events: dict[int, list[dict]]) -> list[dict]:
    out = []
    for f in frames:
        out.append(f)
        out.extend(events.get(f["seq"], []))
    return out


def test_one_clip_per_incident_overlapping_events_in_one(tmp_path):
    frames = [grey(n) for n in range(120)]
    packets = with_events(frames, {30: [event(30, 1)], 35: [event(35, 2)], 80: [event(80, 3)]})
    run_clip(tmp_path, packets, "--pre", "1", "--post", "1", "--ext", "mkv")
    (first, one), (second, two) = clips(tmp_path)
    assert decoded(first) == list(range(20, 46))  # 1 s before the first, 1 s after the last
    assert decoded(second) == list(range(70, 91))
    assert one["frames"] == 26 and one["start"]["t"] == 2.0 and one["end"]["t"] == 4.5
    assert one["ids"] == [1, 2] and [t["id"] for t in one["triggers"]] == [1, 2]
    assert one["triggers"][0]["line"] == "door" and one["triggers"][0]["on"] == "event"
    assert one["complete"] and one["stopped"] == "post"
    assert two["ids"] == [3] and two["start"]["wall"] == pytest.approx(1e9 + 7.0)
    assert first.name.startswith("clip-") and first.suffix == ".mkv"


def test_events_that_keep_coming_extend_the_clip_to_the_end_of_input(tmp_path):
    frames = [grey(n) for n in range(60)]
    packets = with_events(frames, {n: [event(n, n)] for n in range(10, 60, 5)})
    run_clip(tmp_path, packets, "--pre", "0.5", "--post", "1", "--ext", "mkv")
    ((video, info),) = clips(tmp_path)
    assert decoded(video) == list(range(5, 60))
    assert info["stopped"] == "end of input" and info["complete"]
    assert info["ids"] == list(range(10, 60, 5))


def test_objects_of_chosen_classes_trigger(tmp_path):
    def objects(n):
        if 50 <= n <= 55:
            return [{"label": "person", "class": 0, "id": 7, "box": [1, 1, 9, 9], "score": 0.9}]
        if n == 20:
            return [{"label": "car", "class": 2, "id": 8, "box": [1, 1, 9, 9], "score": 0.9}]
        return []

    frames = [{**grey(n), "objects": objects(n)} for n in range(100)]
    run_clip(
        tmp_path, frames, "--pre", "0.5", "--post", "0.5", "--on", "objects:person", "--ext", "mkv"
    )
    ((video, info),) = clips(tmp_path)
    assert decoded(video) == list(range(45, 61))
    assert info["ids"] == [7] and len(info["triggers"]) == 6
    assert info["triggers"][0]["objects"][0]["label"] == "person"


def test_a_filter_picks_the_events(tmp_path):
    frames = [grey(n) for n in range(100)]
    packets = with_events(
        frames,
        {
            20: [{"kind": "event", "event": "enter", "zone": "yard", "id": 4, "t": 2.0}],
            60: [{"kind": "event", "event": "enter", "zone": "porch", "id": 5, "t": 6.0}],
        },
    )
    run_clip(tmp_path, packets, "--pre", "0", "--post", "0.5", "--on", "event:porch")
    ((video, info),) = clips(tmp_path)
    assert info["ids"] == [5] and info["start"]["t"] == 6.0
    assert count_frames(video)[0] == 6 == info["frames"]


def test_the_ring_is_bounded_in_bytes(tmp_path):
    frames = [noise(n) for n in range(100)]
    packets = with_events(frames, {80: [event(80, 1)]})
    result = run_clip(tmp_path, packets, "--pre", "5", "--post", "0", "--ring-bytes", "65536")
    ((video, info),) = clips(tmp_path)
    kept = info["frames"] - 1  # the frames before the event's own
    per_frame = len(cv2.imencode(".jpg", frames[0]["image"], [cv2.IMWRITE_JPEG_QUALITY, 90])[1])
    assert 0 < kept < 50 and kept * per_frame <= 65536
    assert count_frames(video)[0] == info["frames"]
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "raise --ring-bytes" in lines[0]


def test_a_full_disk_ends_the_clip_cleanly(tiny_disk):  # noqa: F811 (the fixture)
    frames = [noise(n, (240, 320, 3)) for n in range(200)]
    packets = with_events(frames, {5: [event(5, 1)]})
    result = vflow("clip", str(tiny_disk), "--pre", "0", "--post", "100", input=stream(packets))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vflow clip: no space left in {tiny_disk}")
    assert "finalised" in lines[0]
    ((video, info),) = clips(tiny_disk)
    assert info["stopped"] == "disk full" and not info["complete"]
    assert 0 < info["frames"] < 195 and count_frames(video)[0] == info["frames"]


def test_bad_trigger_and_directory():
    result = vflow("clip", "/proc/nope", input=stream([]))
    assert result.returncode == 1
    assert result.stderr.decode().startswith("vflow clip: cannot make /proc/nope")
    result = vflow("clip", "x", "--on", ":person", input=stream([]))
    assert result.returncode == 2 and b"give a KIND" in result.stderr


def test_damaged_metadata_is_survived(tmp_path):
    frames = [grey(n) for n in range(30)]
    frames[3]["t"] = "soon"
    frames[4]["objects"] = [{"label": ["x"], "id": {"a": 1}}, "junk", {"id": [1]}]
    damaged = [
        {"kind": "event", "id": [1, 2], b"raw": 1, "t": float("nan"), "x": {b"k": b"\x00"}},
        {"kind": "event", "id": 5, "t": 1e300, "wall": "later"},
    ]
    packets = with_events(frames, {5: damaged})
    result = vflow(
        "clip",
        str(tmp_path),
        "--on",
        "event",
        "--on",
        "objects",
        "--ext",
        "mkv",
        input=stream(packets),
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    ((video, info),) = clips(tmp_path)
    assert info["ids"] == [5] and count_frames(video)[0] == info["frames"] > 0


def test_a_clip_keeps_real_time_when_frames_were_dropped_before_it(tmp_path):
    frames = [grey(n) for n in range(0, 60, 2)]  # 5 a second, in a stream announced at 10
    packets = with_events(frames, {30: [event(30, 1)]})
    run_clip(tmp_path, packets, "--pre", "1", "--post", "1", "--ext", "mkv")
    ((video, info),) = clips(tmp_path)
    assert decoded(video) == list(range(20, 42, 2))
    assert count_frames(video)[1] == pytest.approx(5.0) and info["fps"] == pytest.approx(5.0)
