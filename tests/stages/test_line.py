import json

import pytest
from vflow_stages.line import line

from tests.helpers import pack, sh, unpack, vflow
from tests.scene import DOOR, HALL, SCENE, SCENE_FRAMES, SHORT, Walker, stream, truth


def run(points, walkers=SCENE, frames=SCENE_FRAMES, name="door", **options):
    settings = {"band": 8.0, "classes": None, "forget": 30.0, "events": True, "report": None}
    settings["born"] = 0.0
    settings.update(options)
    return list(line(stream(walkers, frames), name, points, **settings))


def crossings(packets, name="door"):
    return [
        (p["id"], p["direction"])
        for p in packets
        if p.get("kind") == "event" and p.get("line") == name
    ]


def last_frame(packets):
    return [p for p in packets if p.get("kind") == "frame"][-1]


def test_the_scene_counts_exactly_its_crossings():
    out = run(DOOR)
    expected = truth("door")
    assert sorted(crossings(out)) == sorted(expected)
    counts = last_frame(out)["lines"]["door"]
    assert counts == {
        "points": [400, 0, 400, 576],
        "in": sum(d == "in" for _, d in expected),
        "out": sum(d == "out" for _, d in expected),
    }
    assert (counts["in"], counts["out"]) == (3, 4)


@pytest.mark.parametrize(("name", "points"), [("hall", HALL), ("short", SHORT)])
def test_other_lines_of_the_scene(name, points):
    out = run(points, name=name)
    assert crossings(out, name) == truth(name)


def test_a_dithering_id_counts_once_and_the_band_is_what_stops_it():
    dithering = [w for w in SCENE if w.id == 4]
    out = run(DOOR, walkers=dithering)
    assert crossings(out) == [(4, "out")]
    without_band = run(DOOR, walkers=dithering, band=0.0)
    assert len(crossings(without_band)) > 20  # every dither step would count


def test_an_id_first_seen_near_the_line_starts_on_its_side():
    # 3 px right of the picture's line (inside the band): the door's left-hand side, so
    # walking left is "in" (as with an id of MOTChallenge's TUD-Campus, first seen 8 px off)
    near = [Walker(1, [(0, 403, 300), (10, 303, 300)])]
    assert crossings(run(DOOR, walkers=near)) == [(1, "in")]
    on = [Walker(1, [(0, 400, 300), (10, 300, 300)])]  # exactly on it: no side yet
    assert crossings(run(DOOR, walkers=on)) == []


def test_a_path_beside_the_segment_does_not_count():
    beside = [w for w in SCENE if w.id == 6]
    assert crossings(run(SHORT, walkers=beside, name="short"), "short") == []


def test_an_id_lost_and_found_across_the_line_counts():
    lost = [w for w in SCENE if w.id == 8]
    frames = [p for p in stream(lost, SCENE_FRAMES) if p["kind"] == "frame"]
    assert not any("objects" in p for p in frames[16:40])  # really gone meanwhile
    assert crossings(run(DOOR, walkers=lost)) == [(8, "out")]


def test_an_id_gone_longer_than_forget_starts_afresh():
    lost = [w for w in SCENE if w.id == 8]
    assert crossings(run(DOOR, walkers=lost, forget=1.0)) == []  # hidden 2.4 s


def test_the_foot_point_decides_not_the_box():
    straddling = [w for w in SCENE if w.id == 11]
    assert crossings(run(HALL, walkers=straddling, name="hall"), "hall") == []
    # a box whose top crosses HALL while its foot stays above counts nothing; one whose
    # foot crosses counts although most of the box is still above
    stepping = [Walker(20, [(0, 300, 280), (10, 300, 330)])]
    assert crossings(run(HALL, walkers=stepping, name="hall"), "hall") == [(20, "in")]


def test_classes_choose_what_counts():
    out = run(DOOR, classes="person")
    assert sorted(crossings(out)) == sorted(truth("door", label="person"))
    cars = run(DOOR, classes="car")
    assert crossings(cars) == [(10, "in")]


def test_swapping_the_points_swaps_in_and_out():
    out = run("400,576,400,0")
    swapped = {"in": "out", "out": "in"}
    assert sorted(crossings(out)) == sorted((i, swapped[d]) for i, d in truth("door"))


def test_events_follow_their_frame_and_carry_its_time():
    out = run(DOOR)
    for i, p in enumerate(out):
        if p.get("kind") == "event":
            before = [q for q in out[:i] if q.get("kind") == "frame"][-1]
            assert p["seq"] == before["seq"] and p["t"] == before["t"]
            assert p["frame"] == before["frame"] and p["wall"] == before["wall"]
            assert p["event"] == "cross" and p["line"] == "door" and p["label"]
    assert not [p for p in run(DOOR, events=False) if p.get("kind") == "event"]


def test_summary_at_the_end():
    out = run(DOOR)
    assert out[-1]["kind"] == "summary"
    summary = out[-1]["lines"]["door"]
    assert (summary["in"], summary["out"]) == (3, 4)
    assert summary["crossed"] == len({i for i, _ in truth("door")})
    assert summary["ids"] == len([w for w in SCENE if w.id is not None])
    assert summary["frames"] == SCENE_FRAMES


def test_lines_chain_through_real_pipes(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, SCENE_FRAMES)))
    result = sh(
        f"vflow line door {DOOR} < {recording} | vflow line hall {HALL} "
        f"| vflow line short {SHORT} | vflow print --kind frame -f lines | tail -n 1"
    )
    assert result.statuses == [0, 0, 0, 0, 0], result.stderr
    lines = json.loads(result.stdout)["lines"]
    assert set(lines) == {"door", "hall", "short"}
    for name in lines:
        expected = truth(name)
        assert lines[name]["in"] == sum(d == "in" for _, d in expected), name
        assert lines[name]["out"] == sum(d == "out" for _, d in expected), name
    events = sh(
        f"vflow line door {DOOR} < {recording} | vflow line hall {HALL} | vflow print --kind event"
    )
    got = [json.loads(x) for x in events.stdout.splitlines()]
    assert sorted((e["line"], e["id"], e["direction"]) for e in got) == sorted(
        [("door", i, d) for i, d in truth("door")] + [("hall", i, d) for i, d in truth("hall")]
    )


def test_frames_keep_their_pictures_and_other_fields():
    packets = list(stream(SCENE[:2], 5))
    result = vflow("line", "door", DOOR, input=pack(packets))
    assert result.returncode == 0, result.stderr
    out = [p for p in unpack(result.stdout) if p.get("kind") == "frame"]
    assert [p["image"].data for p in out] == [p["image"].data for p in packets[1:]]
    assert out[0]["objects"] == packets[1]["objects"]


def test_the_same_name_twice_is_refused():
    recording = pack(stream(SCENE, 3))
    result = sh(f"vflow line door {DOOR} | vflow line door {HALL} | vflow null", input=recording)
    assert result.statuses[1] == 1
    assert b"already" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["door", "400,10,400,10"], b"length"),
        (["door", "400,10,400"], b"X1,Y1,X2,Y2"),
        (["door", "a,b,c,d"], b"numbers"),
        (["my.door", DOOR], b"name"),
    ],
)
def test_bad_arguments_are_usage_errors(args, message):
    result = vflow("line", *args, input=pack([]))
    assert result.returncode == 2
    assert message in result.stderr and b"Traceback" not in result.stderr


def test_untracked_objects_and_a_line_off_the_picture_are_reported():
    untracked = pack(stream([w for w in SCENE if w.id is None], 20))
    result = vflow("line", "door", DOOR, input=untracked)
    assert result.returncode == 0 and b"vflow track" in result.stderr
    outside = vflow("line", "far", "1000,0,1000,576", input=pack(stream(SCENE, 3)))
    assert outside.returncode == 0 and b"outside the 768x576 picture" in outside.stderr


def test_a_line_through_the_picture_edge_counts():
    # the segment runs from far outside the picture into it; a foot crossing inside counts
    walker = [Walker(1, [(0, 100, 500), (20, 100, 560)])]
    out = run("-500,530,300,530", walkers=walker, name="edge")
    assert crossings(out, "edge") == [(1, "in")]


def test_declared_stateful():
    from vflow_cli.catalogue import all_commands
    from vflow_cli.stage import INFO

    all_commands()  # imports every stage
    stateful = {name for name, info in INFO.items() if info.stateful}
    assert {"line", "zone", "annotate"} <= stateful
    assert not {"blur", "mot", "print"} & stateful


def test_report_counts_each_direction_per_interval_empty_ones_included():
    out = run(DOOR, report=2.0)
    reports = [p for p in out if p.get("kind") == "report"]
    assert [(r["t0"], r["t1"]) for r in reports] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    events = [p for p in out if p.get("kind") == "event"]
    for r in reports:
        assert r["line"] == "door" and r["frames"] == 20
        for direction in ("in", "out"):
            inside = [e for e in events if r["t0"] <= e["t"] < r["t1"]]
            assert r[direction] == sum(e["direction"] == direction for e in inside)
    assert sum(r["in"] for r in reports) == 3 and sum(r["out"] for r in reports) == 4
    assert any(r["in"] == r["out"] == 0 for r in reports)  # a quiet interval is a row too


def test_report_as_a_csv_table_through_real_pipes(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, SCENE_FRAMES)))
    result = sh(
        f"vflow line door {DOOR} --report 5s < {recording} | vflow print --kind report --format csv"
    )
    assert result.statuses == [0, 0], result.stderr
    rows = result.stdout.decode().splitlines()
    assert rows[0] == "kind,line,t0,t1,in,out,frames"
    assert [row.split(",")[2:4] for row in rows[1:]] == [["0.0", "5.0"], ["5.0", "10.0"]]
    assert sum(int(row.split(",")[4]) for row in rows[1:]) == 3


def test_a_huge_jump_in_time_is_one_report_not_millions():
    from vflow_cli.vision.counting import Intervals

    intervals = Intervals("line", "door", 1.0, lambda: {"in": 0})
    assert intervals.tick(0.5) == []
    reports = intervals.tick(1e12)
    assert [(r["t0"], r["t1"]) for r in reports] == [(0, 1), (1, 1e12)]
    assert [(r["t0"], r["t1"]) for r in intervals.finish()] == [(1e12, 1e12 + 1)]


def test_an_id_born_just_past_the_line_walking_away_has_crossed():
    """The tracker lost someone at the line and found them a step later under a new id:
    the crossing fell between the two ids. Born within --born pixels past the line (after
    the first frame), walking away: a crossing; otherwise not."""
    lost = Walker(1, [(0, 200, 300), (20, 390, 300)])  # walks right, lost 10 px before DOOR
    found = Walker(2, [(22, 410, 300), (40, 600, 300)])  # found 10 px past it, walking on
    assert crossings(run(DOOR, walkers=[lost, found])) == []  # neither id saw both sides
    assert crossings(run(DOOR, walkers=[lost, found], born=24.0)) == [(2, "out")]
    far = Walker(2, [(22, 440, 300), (40, 600, 300)])  # born 40 px past: not counted
    assert crossings(run(DOOR, walkers=[lost, far], born=24.0)) == []
    back = Walker(2, [(22, 410, 300), (30, 380, 300), (40, 200, 300)])  # walks back across
    assert crossings(run(DOOR, walkers=[lost, back], born=24.0)) == [(2, "in")]
    along = Walker(2, [(22, 410, 300), (40, 410, 500)])  # along the line, not away
    assert crossings(run(DOOR, walkers=[lost, along], born=24.0)) == []
    there = Walker(2, [(0, 410, 300), (40, 600, 300)])  # in the very first frame: not born
    assert crossings(run(DOOR, walkers=[there], born=24.0)) == []
    below = Walker(2, [(22, 110, 110), (40, 110, 300)])  # 10 px under the short segment
    assert crossings(run(SHORT, walkers=[below], name="short", born=24.0), "short") == [
        (2, "in")
    ]  # born over the segment on its "in" side, walking down, away from it
    aside = Walker(2, [(22, 320, 110), (40, 320, 300)])  # beside the segment's end
    assert crossings(run(SHORT, walkers=[aside], name="short", born=24.0), "short") == []


def test_the_shipped_default_counts_born_ids():
    result = vflow("line", "door", DOOR, "--help")
    assert b"[default: 24.0" in result.stdout
