"""vflow track: ids that last, velocities in pixels a second, scenery left out; real pipes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vflow_stages.track import parse_buffer, track

from tests.helpers import frame, pack, sh, unpack, vflow
from vflow_cli.stage import INFO
from vflow_cli.vision.tracker import Settings, Tracker

FPS = 10.0


def person(x: float, y: float = 100.0, w: float = 30.0, h: float = 80.0, score: float = 0.9):
    return {"box": [x, y, x + w, y + h], "score": score, "class": 0, "label": "person"}


def run(frames: list[list[dict]], **settings) -> list[dict[int, list[float]]]:
    """Track one list of objects per frame at FPS; per frame, {id: box} of what is reported."""
    tracker = Tracker(Settings(**settings))
    out = []
    for n, objects in enumerate(frames):
        tracked = tracker.update(objects, n / FPS, (640, 480))
        out.append({o["id"]: o["box"] for o in tracked})
    return out


def test_an_id_survives_a_miss():
    frames = [[person(100 + 10 * n)] if n not in (4, 5, 6) else [] for n in range(12)]
    out = run(frames, coast=0)  # only what is seen
    assert [sorted(f) for f in out] == [[1]] * 4 + [[]] * 3 + [[1]] * 5
    # by default, reported where it would be for 0.3 s, marked as a guess
    assert [sorted(f) for f in run(frames)] == [[1]] * 12


def test_the_id_comes_back_where_the_motion_says():
    # seen again after 0.3 s, 30 px further on: matched by its predicted box
    frames = [[person(100 + 10 * n)] for n in range(6)] + [[], [], []]
    frames += [[person(100 + 10 * n)] for n in range(9, 14)]
    assert {i for f in run(frames) for i in f} == {1}


def test_a_miss_longer_than_the_buffer_gives_a_new_id():
    frames = [[person(100)] for _ in range(5)] + [[]] * 25 + [[person(100)] for _ in range(3)]
    out = run(frames, buffer=2.0, static=0)
    assert set(out[4]) == {1}
    assert out[30] == {}  # seen once again: not yet confirmed
    assert set(out[31]) == {2}


def test_buffer_in_frames():
    frames = [[person(100)] for _ in range(5)] + [[]] * 4 + [[person(100)] for _ in range(2)]
    assert set(run(frames, buffer=3, buffer_frames=True, static=0)[-1]) == {2}
    assert set(run(frames, buffer=4, buffer_frames=True, static=0)[-1]) == {1}


def test_crossing_people_keep_their_ids():
    # one walks right, one walks left; their boxes overlap for several frames
    frames = [[person(100 + 12 * n, 100), person(340 - 12 * n, 110)] for n in range(21)]
    out = run(frames)
    assert all(set(f) == {1, 2} for f in out)
    rightward = [f[1][0] for f in out]
    leftward = [f[2][0] for f in out]
    assert rightward == sorted(rightward) and rightward[-1] > 300
    assert leftward == sorted(leftward, reverse=True) and leftward[-1] < 140


def test_a_newcomer_gets_a_new_id_once_seen_twice():
    frames = [[person(100 + 5 * n)] + ([person(400, 200)] if n >= 5 else []) for n in range(8)]
    out = run(frames)
    assert set(out[0]) == {1}  # the stream's first frame: confirmed at once
    assert set(out[5]) == {1}  # the newcomer's first sighting
    assert set(out[6]) == set(out[7]) == {1, 2}


def test_weak_detections_continue_tracks_but_start_none():
    frames = [[person(100 + 5 * n), person(400, 300, score=0.3)] for n in range(3)]
    frames += [[person(115 + 5 * n, score=0.3)] for n in range(3)]
    out = run(frames)
    assert [sorted(f) for f in out] == [[1]] * 6


def test_classes_are_never_matched_across():
    car = {"box": [100, 100, 130, 180], "score": 0.9, "class": 2, "label": "car"}
    frames = [[person(100)], [person(100)], [car], [car]]
    out = run(frames, static=0, coast=0)
    assert set(out[1]) == {1}
    assert out[2] == {}  # the car is new; the person is lost
    assert set(out[3]) == {2}


def test_velocity_in_pixels_a_second_of_media_time():
    tracker = Tracker()
    for n in range(20):
        (obj,) = tracker.update([person(100 + 4 * n)], n / 25, (640, 480))
    vx, vy = obj["velocity"]
    assert vx == pytest.approx(100, abs=3) and vy == pytest.approx(0, abs=1)


def test_a_gap_in_time_is_predicted_over():
    # 10 frames a second, then 0.5 s with no frame at all (`vflow every`, a dropped burst)
    tracker = Tracker()
    times = [n / 10 for n in range(10)] + [1.4 + n / 10 for n in range(5)]
    ids = set()
    for t in times:
        ids |= {o["id"] for o in tracker.update([person(100 + 100 * t)], t, (640, 480))}
    assert ids == {1}


def test_time_running_backwards_starts_afresh():
    tracker = Tracker()
    for t in (0.0, 0.1, 0.2):
        first = tracker.update([person(100)], t, None)
    again = tracker.update([person(100)], 0.0, None)
    assert [o["id"] for o in first] == [1] and [o["id"] for o in again] == [2]


def test_a_static_object_too_weak_to_start_a_track_is_never_reported():
    assert all(f == {} for f in run([[person(30, score=0.55)] for _ in range(10)]))


def test_static_weak_objects_are_scenery():
    sign = person(30, 110, 18, 32, score=0.62)
    frames = [[dict(sign)] for _ in range(35)]
    out = run(frames, static=2.0)
    assert all(set(f) == {1} for f in out[:20])  # the first 2 seconds
    assert all(f == {} for f in out[20:])


def test_a_confident_person_standing_still_stays():
    out = run([[person(200, score=0.85)] for _ in range(40)], static=2.0)
    assert all(set(f) == {1} for f in out)


def test_scenery_that_moves_is_back_with_its_id():
    frames = [[person(200, score=0.62)] for _ in range(25)]
    frames += [[person(200 + 15 * n, score=0.62)] for n in range(1, 6)]
    out = run(frames, static=2.0)
    assert out[24] == {}
    assert set(out[-1]) == {1}


def test_static_zero_keeps_scenery():
    out = run([[person(30, score=0.62)] for _ in range(40)], static=0)
    assert all(set(f) == {1} for f in out)


def test_a_track_hidden_behind_a_sign_is_found_by_distance():
    # walking right; behind the sign only the legs show (a box with no overlap with the
    # whole person coming out on the other side)
    frames = [[person(100 + 8 * n)] for n in range(6)]
    frames += [[{**person(148 + 8 * n, 150, 30, 30), "score": 0.35}] for n in range(2)]
    frames += [[], []]
    frames += [[person(185 + 8 * n)] for n in range(4)]
    out = run(frames)
    assert {i for f in out for i in f} == {1}


def test_who_comes_in_where_someone_left_is_someone_else():
    # one walks out at the right edge; another walks in there 0.4 s later
    frames = [[person(560 + 10 * n)] for n in range(6)]  # last box touches x = 640
    frames += [[]] * 3
    frames += [[person(610 - 10 * n)] for n in range(5)]
    out = run(frames)
    assert set(out[5]) == {1}
    assert set(out[-1]) == {2}


def test_coasting_reports_a_lost_track_where_it_would_be():
    frames = [[person(100 + 10 * n)] for n in range(6)] + [[], [], [], []]
    tracker = Tracker(Settings(coast=0.25))
    seen = []
    for n, objects in enumerate(frames):
        seen.append(tracker.update(objects, n / FPS, (640, 480)))
    assert [len(f) for f in seen] == [1] * 6 + [1, 1, 0, 0]
    guess = seen[7][0]
    assert guess["id"] == 1 and guess["predicted"] is True
    assert guess["box"][0] == pytest.approx(170, abs=3)


@pytest.mark.parametrize("fill", [True, False])
def test_a_person_half_hidden_keeps_their_whole_box(fill):
    # seen whole for 5 frames; then someone nearer hides their legs: a weak detection of
    # the top 70% of them
    frames = [[person(100 + 5 * n)] for n in range(5)]
    frames += [[person(100 + 5 * n, h=56, score=0.4)] for n in range(5, 10)]
    out = run(frames, fill=fill)
    (box,) = out[-1].values()
    assert box[1] == pytest.approx(100, abs=3)  # the top, as seen
    if fill:
        assert box[3] - box[1] == pytest.approx(80, abs=2)  # as tall as when seen whole
        assert box[0] == pytest.approx(145, abs=3)
    else:
        assert box[3] - box[1] < 66  # what the detections say


def test_boxes_stay_inside_the_frame():
    tracker = Tracker()
    for n in range(10):
        objects = tracker.update([person(600 + 4 * n, w=40)], n / FPS, (640, 480))
    assert objects[0]["box"][2] <= 640


def test_objects_without_a_usable_box_are_left_out():
    objects = [person(10), {"box": [5, 5, 5, 20]}, {"box": "x"}, {"score": 1}, "text"]
    assert [o["id"] for o in Tracker().update(objects, 0.0, None)] == [1]


# -- appearance ----------------------------------------------------------------------------

RED, BLUE, GREY = (40, 40, 200), (200, 60, 30), (128, 128, 128)


def picture(*people: tuple[float, tuple[int, int, int]]) -> np.ndarray:
    """A grey 640x480 frame with a coloured person-sized box at each x (y = 100)."""
    image = np.full((480, 640, 3), GREY, np.uint8)
    for x, colour in people:
        image[100:180, int(x) : int(x) + 30] = colour
    return image


def test_a_lost_track_is_not_given_someone_who_looks_different():
    # red walks right and vanishes; blue turns up just where red would be
    tracker = Tracker(Settings(coast=0))
    seen = []
    for n in range(12):
        x = 100 + 10 * n
        if n < 5:
            image, objects = picture((x, RED)), [person(x)]
        elif n < 7:
            image, objects = picture(), []
        else:
            image, objects = picture((x, BLUE)), [person(x)]
        seen.append([o["id"] for o in tracker.update(objects, n / FPS, (640, 480), image)])
    assert seen[4] == [1] and seen[7] == [] and seen[-1] == [2]
    # without pixels, boxes alone: the same id goes on (what ByteTrack would do)
    blind = Tracker()
    ids = set()
    for n in range(12):
        objects = [person(100 + 10 * n)] if not 5 <= n < 7 else []
        ids |= {o["id"] for o in blind.update(objects, n / FPS, (640, 480))}
    assert ids == {1}


def test_people_passing_keep_their_ids_when_they_look_different():
    # two people cross at the same height; a third frame of overlap gives one merged
    # detection, after which the boxes alone would be ambiguous
    tracker = Tracker()
    out = []
    for n in range(14):
        a, b = 100 + 14 * n, 282 - 14 * n
        image = picture((a, RED), (b, BLUE)) if abs(a - b) > 30 else picture((a, RED))
        objects = [person(a), person(b)] if abs(a - b) > 30 else [person(min(a, b), w=60)]
        out.append({o["id"]: o["box"][0] for o in tracker.update(objects, n / FPS, None, image)})
    assert out[-1][1] > out[-1][2]  # red (id 1) went right, blue (id 2) left
    assert set(out[-1]) == {1, 2}


# -- the stage function -------------------------------------------------------------------


def stage(packets, **options):
    defaults = {
        "buffer": "2s",
        "static": 2.0,
        "high": 0.5,
        "start": 0.6,
        "coast": 0.0,
        "appearance": True,
    }
    return list(track(iter(packets), **{**defaults, **options}))


def test_stage_keeps_other_packets_and_fields():
    note = {"kind": "data", "value": 3}
    first = frame(0, shape=(48, 64, 3), objects=[{**person(10, 5, 10, 20), "colour": "red"}])
    out = stage([{"kind": "stream", "fps": 25.0}, first, note])
    # compared with copies: out[2] *is* note, and would equal it whatever track did to it
    assert out[0] == {"kind": "stream", "fps": 25.0} and out[2] == {"kind": "data", "value": 3}
    (obj,) = out[1]["objects"]
    assert obj["id"] == 1 and obj["colour"] == "red" and obj["label"] == "person"
    assert obj["velocity"] == [0.0, 0.0]


def test_stage_without_media_time_counts_frames_at_the_announced_rate():
    packets = [{"kind": "stream", "fps": 5.0}]
    for n in range(6):
        p = frame(n, objects=[person(10 * n)])
        del p["t"]
        packets.append(p)
    out = stage(packets)
    assert out[-1]["objects"][0]["velocity"][0] == pytest.approx(50, abs=2)


def test_stage_frames_without_objects_get_an_empty_list():
    out = stage([frame(0), frame(1)])
    assert [p["objects"] for p in out] == [[], []]


@pytest.mark.parametrize(
    ("text", "expect"), [("2", (2.0, False)), ("1.5s", (1.5, False)), ("30f", (30.0, True))]
)
def test_buffer_durations(text, expect):
    assert parse_buffer(text) == expect


@pytest.mark.parametrize("bad", ["", "abc", "-1", "1.5f", "s"])
def test_bad_buffers_are_refused(bad):
    with pytest.raises(ValueError, match="not a duration"):
        parse_buffer(bad)


def test_track_is_declared_stateful(tmp_path):
    assert INFO["track"].keeps_state({})
    from tests.graph.util import graph

    spec = (
        '[nodes.src]\nrun = ["testcard", "--frames", "3"]\n'
        '[nodes.t]\nrun = ["track"]\nfrom = ["src"]\nworkers = 2\n'
        '[nodes.out]\nrun = ["null"]\nfrom = ["t"]\n'
    )
    refused = graph(tmp_path, spec, "--check")
    assert refused.returncode == 1 and b"'track' keeps state across packets" in refused.stderr


# -- real processes ------------------------------------------------------------------------


def walking(n: int, colour=RED) -> dict:
    """Frame n (10 a second) of someone walking right, 10 pixels a frame."""
    x = 100 + 10 * n
    packet = frame(n, shape=(480, 640, 3), objects=[person(x)], t=n / FPS)
    packet["image"] = picture((x, colour))
    return packet


@pytest.mark.parametrize("looks", [[], ["--no-appearance"]])
def test_through_a_real_process(looks):
    packets = [walking(n) for n in range(5)]
    result = vflow("track", *looks, input=pack(packets))
    assert result.returncode == 0, result.stderr
    out = unpack(result.stdout)
    assert [p["objects"][0]["id"] for p in out] == [1] * 5
    assert out[0]["image"].shape == (480, 640, 3)  # pixels passed through untouched
    assert (out[3]["image"] == packets[3]["image"]).all()


def test_through_a_real_process_appearance_tells_people_apart():
    # red is not seen in frames 5 and 6; blue walks on from where red would be
    packets = [walking(n) for n in range(5)] + [walking(n, BLUE) for n in range(7, 12)]
    with_looks = unpack(vflow("track", input=pack(packets)).stdout)
    without = unpack(vflow("track", "--no-appearance", input=pack(packets)).stdout)
    assert {o["id"] for p in with_looks for o in p["objects"]} == {1, 2}
    assert {o["id"] for p in without for o in p["objects"]} == {1}


def test_warns_when_nothing_was_detected():
    result = vflow("track", input=pack([frame(0), frame(1)]))
    assert result.returncode == 0
    assert result.stderr.decode().strip() == (
        "vflow track: no frame had objects to track; put `vflow detect` before `vflow track`"
    )


def test_a_bad_buffer_is_a_usage_error():
    result = vflow("track", "--buffer", "soon", input=pack([]))
    assert result.returncode == 2
    assert b"--buffer" in result.stderr and b"Traceback" not in result.stderr


def test_people_in_real_footage_keep_their_ids(tmp_path):
    from tests.video_support import vtest_avi

    clip = vtest_avi()
    result = sh(
        f"vflow read {clip} --frames 40 | vflow detect | vflow track "
        "| vflow print --kind frame -f seq -f objects",
        timeout=180,
    )
    assert result.statuses == [0, 0, 0, 0], result.stderr
    frames = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(frames) == 40
    # the three people walking at the start (boxes labelled by hand in tests/quality)
    starts = {1: (639, 240), 2: (500, 157), 3: (254, 219)}
    first = {o["id"]: o["box"] for o in frames[0]["objects"]}
    for x, y in starts.values():
        assert any(abs(b[0] - x) < 10 and abs(b[1] - y) < 10 for b in first.values())
    for f in frames[:15]:
        ids = {o["id"] for o in f["objects"]}
        assert ids >= set(first), (f["seq"], ids)
    for f in frames:
        for o in f["objects"]:
            assert isinstance(o["id"], int) and o["id"] >= 1
            assert len(o["velocity"]) == 2 and all(isinstance(v, float) for v in o["velocity"])


def test_a_gap_from_the_camera_starts_the_tracks_afresh():
    # the camera was away 0.4 s (`vflow camera` reconnected): nothing is predicted over it
    times = [n / 10 for n in range(10)] + [1.4 + n / 10 for n in range(5)]
    packets = [
        frame(n, (480, 640, 3), t=t, objects=[person(100 + 100 * t)]) for n, t in enumerate(times)
    ]
    gap = {"kind": "gap", "since": 0.9, "t": 1.4, "seconds": 0.5, "tries": 1, "reason": "x"}
    packets.insert(10, gap)
    result = vflow("track", "--no-appearance", input=pack(packets))
    assert result.returncode == 0, result.stderr
    out = unpack(result.stdout)
    assert out[10] == gap
    ids = [[o["id"] for o in p["objects"]] for p in out if p["kind"] == "frame"]
    assert ids[9] == [1] and ids[10] == [2]
    assert out[11]["objects"][0]["velocity"] == [0.0, 0.0]
