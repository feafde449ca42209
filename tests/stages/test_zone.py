import json

import pytest
from vflow_stages.zone import zone

from tests.helpers import pack, sh, vflow
from tests.scene import (
    DOOR,
    LOBBY,
    SCENE,
    SCENE_FRAMES,
    ZONE_FRAMES,
    ZONE_SCENE,
    ZONE_VISITS,
    Walker,
    stream,
    truth,
)


def run(walkers=ZONE_SCENE, frames=ZONE_FRAMES, corners=LOBBY, name="lobby", **options):
    settings = {"band": 8.0, "timeout": 3.0, "classes": None, "events": True, "report": None}
    settings.update(options)
    return list(zone(stream(walkers, frames), name, tuple(corners), **settings))


def frames_of(packets):
    return [p for p in packets if p.get("kind") == "frame"]


def events_of(packets, name="lobby"):
    return [p for p in packets if p.get("kind") == "event" and p.get("zone") == name]


def test_occupancy_on_every_frame_is_the_truth():
    out = frames_of(run())
    for packet in out:
        f = packet["seq"]
        inside = sorted(
            v.id for v in ZONE_VISITS if v.enter <= f and (v.exit is None or f < v.exit)
        )
        counts = packet["zones"]["lobby"]
        assert [i["id"] for i in counts["inside"]] == inside, f
        assert counts["occupancy"] == len(inside), f
        assert counts["entries"] - counts["exits"] == counts["occupancy"]


def test_entries_and_exits_happen_on_the_right_frames_with_their_dwell():
    events = events_of(run())
    enters = [(e["id"], e["seq"]) for e in events if e["event"] == "enter"]
    exits = [(e["id"], e["seq"], e["dwell"], e["lost"]) for e in events if e["event"] == "exit"]
    assert sorted(enters) == sorted((v.id, v.enter) for v in ZONE_VISITS)
    assert sorted(exits) == sorted(
        (v.id, v.exit, pytest.approx(v.dwell), v.lost) for v in ZONE_VISITS if v.exit is not None
    )


def test_a_dithering_id_never_enters_and_the_band_is_what_stops_it():
    dithering = [w for w in ZONE_SCENE if w.id == 2]
    assert events_of(run(walkers=dithering)) == []
    assert len(events_of(run(walkers=dithering, band=0.0))) > 20


def test_the_notch_of_a_concave_zone_is_outside():
    notch = [w for w in ZONE_SCENE if w.id == 5]
    assert events_of(run(walkers=notch)) == []


def test_a_short_loss_is_not_an_exit_but_a_long_one_is():
    briefly = [w for w in ZONE_SCENE if w.id == 4]  # hidden 2 s
    assert [e["event"] for e in events_of(run(walkers=briefly))] == ["enter", "exit"]
    impatient = events_of(run(walkers=briefly, timeout=1.0))
    assert [(e["event"], e.get("lost")) for e in impatient] == [
        ("enter", None),
        ("exit", True),
        ("enter", None),
        ("exit", False),
    ]


def test_inside_lists_each_id_with_its_dwell_so_far():
    out = frames_of(run())
    at = out[50]["zones"]["lobby"]["inside"]
    assert {i["id"]: i["dwell"] for i in at} == pytest.approx(
        {1: 5.0 - 1.6, 3: 5.0 - 1.0, 4: 5.0, 6: 5.0 - 2.4}
    )


def test_summary_has_peak_dwell_statistics_and_each_id():
    summary = run()[-1]
    assert summary["kind"] == "summary"
    lobby = summary["zones"]["lobby"]
    finished = [v.dwell for v in ZONE_VISITS if v.exit is not None]
    open_dwell = (ZONE_FRAMES - 1 - 24) / 10  # id 6's second visit, until last seen
    assert lobby["entries"] == len(ZONE_VISITS) and lobby["exits"] == len(finished)
    assert lobby["occupancy"] == 1
    peak = max(
        sum(v.enter <= f and (v.exit is None or f < v.exit) for v in ZONE_VISITS)
        for f in range(ZONE_FRAMES)
    )
    assert lobby["peak"] == peak
    dwell = lobby["dwell"]
    everything = [*finished, open_dwell]
    assert dwell["visits"] == 5 and dwell["open"] == 1
    assert dwell["max"] == pytest.approx(max(everything))
    assert dwell["min"] == pytest.approx(min(everything))
    assert dwell["total"] == pytest.approx(sum(everything))
    ids = {i["id"]: (i["visits"], i["dwell"]) for i in lobby["ids"]}
    assert ids[6] == (2, pytest.approx(2.0 + open_dwell))
    assert ids[3] == (1, pytest.approx(2.0))
    assert lobby["polygon"][0] == [450, 380] and len(lobby["polygon"]) == 6


def test_zones_and_lines_chain_through_real_pipes(tmp_path):
    moved = [Walker(w.id + 100, w.keys, hidden=w.hidden, crossings=w.crossings) for w in ZONE_SCENE]
    both = [*SCENE, *moved]
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(both, SCENE_FRAMES)))
    whole = "0,0 768,0 768,576 0,576"
    result = sh(
        f"vflow zone lobby {' '.join(LOBBY)} < {recording} | vflow line door {DOOR} "
        f"| vflow zone all {whole} | vflow print --kind frame --kind summary -f zones -f lines"
    )
    assert result.statuses == [0, 0, 0, 0], result.stderr
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    last = [r for r in rows if "lines" in r and "zones" in r][-1]
    assert set(last["zones"]) == {"lobby", "all"}
    lobby_ids = {w.id + 100 for w in ZONE_SCENE}
    inside = {i["id"] for i in last["zones"]["lobby"]["inside"]}
    assert inside & lobby_ids == {106}  # the zone scene's ids, moved up by 100
    assert last["zones"]["all"]["entries"] >= len([w for w in both if w.id is not None])
    door = truth("door", both)
    assert last["lines"]["door"]["out"] == sum(d == "out" for _, d in door)
    assert last["lines"]["door"]["in"] == sum(d == "in" for _, d in door)
    summaries = [r for r in rows if "zones" in r and "lines" not in r]
    assert {name for s in summaries for name in s["zones"]} == {"lobby", "all"}


def test_zone_events_through_a_real_pipe_for_scripts():
    result = sh(
        f"vflow zone lobby {' '.join(LOBBY)} | vflow print --kind event",
        input=pack(stream(ZONE_SCENE, ZONE_FRAMES)),
    )
    assert result.statuses == [0, 0], result.stderr
    events = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(events) == len(ZONE_VISITS) + sum(v.exit is not None for v in ZONE_VISITS)
    assert all(e["kind"] == "event" and e["zone"] == "lobby" and "t" in e for e in events)


@pytest.mark.parametrize(
    ("corners", "message"),
    [
        (["0,0", "10,10"], b"at least 3"),
        (["0,0", "10,10", "20,20"], b"one line"),
        (["0,0", "10,10", "x"], b"X,Y"),
    ],
)
def test_bad_polygons_are_usage_errors(corners, message):
    result = vflow("zone", "z", *corners, input=pack([]))
    assert result.returncode == 2
    assert message in result.stderr and b"Traceback" not in result.stderr


def test_classes_choose_what_counts():
    walkers = [
        Walker(1, [(0, 700, 420), (5, 700, 420)]),
        Walker(2, [(0, 700, 430), (5, 700, 430)], label="car"),
    ]
    inside = frames_of(run(walkers=walkers, frames=3, classes="car"))[-1]["zones"]["lobby"]
    assert [i["id"] for i in inside["inside"]] == [2]


def test_report_gives_entries_exits_peak_and_mean_occupancy_per_interval():
    out = run(report=2.0)
    reports = [p for p in out if p.get("kind") == "report"]
    assert [(r["t0"], r["t1"]) for r in reports] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    for r in reports:
        frames = range(int(r["t0"] * 10), int(r["t1"] * 10))
        occupancy = [
            sum(v.enter <= f and (v.exit is None or f < v.exit) for v in ZONE_VISITS)
            for f in frames
        ]
        assert r["kind"] == "report" and r["zone"] == "lobby"
        assert r["entries"] == sum(v.enter in frames for v in ZONE_VISITS)
        assert r["exits"] == sum(v.exit in frames for v in ZONE_VISITS)
        assert r["peak"] == max(occupancy)
        assert r["mean"] == pytest.approx(sum(occupancy) / len(occupancy), abs=1e-3)
        assert r["frames"] == 20
    assert [r["entries"] for r in reports] == [4, 1, 0, 0, 0]  # quiet intervals included
    # each report comes before the first frame after its interval
    order = [(p["kind"], p.get("t", p.get("t1"))) for p in out if p["kind"] != "event"]
    assert order.index(("report", 2.0)) == order.index(("frame", 2.0)) - 1


def test_report_through_a_gap_in_time_and_as_a_csv_table(tmp_path):
    """Intervals without frames are reported too (occupancy as it stood); print makes the
    reports a table without -f."""
    stay = [Walker(1, [(0, 700, 420), (99, 700, 420)])]
    packets = [p for p in stream(stay, 10) if p["kind"] != "frame" or p["seq"] in (0, 1, 9)]
    packets[-1] = dict(packets[-1], t=7.5)  # 0.0, 0.1, then 7.5: 1 s intervals 1-7 empty
    recording = tmp_path / "gap.vflow"
    recording.write_bytes(pack(packets))
    result = sh(
        f"vflow zone lobby {' '.join(LOBBY)} --report 1s < {recording} "
        "| vflow print --kind report --format csv"
    )
    assert result.statuses == [0, 0], result.stderr
    rows = result.stdout.decode().splitlines()
    assert rows[0] == "kind,zone,t0,t1,entries,exits,peak,mean,frames"
    assert rows[1] == "report,lobby,0.0,1.0,1,0,1,1.0,2"
    assert rows[2:8] == [f"report,lobby,{t:.1f},{t + 1:.1f},0,0,1,1.0,0" for t in range(1, 7)]
    assert rows[8] == "report,lobby,7.0,8.0,0,0,1,1.0,1" and len(rows) == 9


def test_report_needs_a_positive_duration():
    result = vflow("zone", "lobby", *LOBBY, "--report", "0s", input=pack([]))
    assert result.returncode == 2 and b"longer than 0" in result.stderr
