import pytest
from vflow_stages.select import select

from tests.helpers import frame, pack, sh, unpack, vflow
from vflow_cli.expr import Expression, Refused
from vflow_cli.stage import StageError

PERSON = {"box": [0, 0, 10, 20], "score": 0.9, "label": "person", "id": 3}
CAR = {"box": [5, 5, 50, 30], "score": 0.6, "label": "car"}
PACKET = {
    "kind": "frame",
    "seq": 4,
    "frame": 130,
    "t": 61.5,
    "objects": [PERSON, CAR],
    "lines": {"door": {"in": 2, "out": 5}},
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("len(objects) >= 2", True),
        ("t >= 60", True),
        ("frame % 10 == 0", True),
        ("seq * 2 + 1", 9),
        ("lines.door['in'] - lines.door.out", -3),
        ("objects[0].label", "person"),
        ("objects[-1]['score'] < 0.7", True),
        ("any(o.label == 'car' and o.score > 0.5 for o in objects)", True),
        ("all(o.score > 0.7 for o in objects)", False),
        ("max(o.box[2] for o in objects)", 50),
        ("'person' in [o.label for o in objects if o.score > 0.8]", True),
        ("60 <= t < 120 and not seq == 3", True),
        ("abs(-seq) if t > 100 else round(t / 2)", 31),
        ("sum(o.id for o in objects if 'id' in o)", 3),
    ],
)
def test_expressions_over_packet_fields(text, value):
    assert Expression(text)(PACKET) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os')", "can be called"),
        ("__import__('os').system('true')", "can be called"),
        ("seq.__class__", "starting with _"),
        ("objects.__class__.__mro__", "starting with _"),
        ("_hidden", "starting with _"),
        ("(lambda: 1)()", "lambda"),
        ("lambda x: x", "lambda"),
        ("open('/etc/passwd')", "can be called"),
        ("len(objects, **{})", "keyword"),
        ("2 ** 1000000", "**"),
        ("[x := 1]", "NamedExpr"),
        ("{o: 1 for o in objects}", "DictComp"),
        ("t >=", "not an expression"),
        ("t; 1", "not an expression"),
    ],
)
def test_anything_else_is_refused(text, why):
    with pytest.raises(Refused, match=None) as caught:
        Expression(text)
    assert why in str(caught.value)


def test_a_missing_field_or_wrong_type_makes_it_false_not_an_error():
    assert Expression("len(objects) == 0").test({"kind": "frame"})  # no detections: []
    for text in ("t >= 60", "lines.door.out > 1", "seq + 'a'", "objects[5].id", "seq / 0"):
        assert not Expression(text).test({"kind": "frame", "seq": 1, "objects": []}), text
    # a packet's own string key that starts with _ is not reachable either
    assert not Expression("lines['_x'] == 1").test({"lines": {"_x": 1}})


def test_the_stage_keeps_matching_frames_and_passes_other_kinds():
    packets = [{"kind": "stream"}, *[frame(i, t=i / 10) for i in range(30)], {"kind": "data"}]
    out = list(select(iter(packets), "seq % 10 == 0", ("frame",)))
    assert [p.get("seq") for p in out] == [None, 0, 10, 20, None]
    with pytest.raises(StageError, match="refused"):
        list(select(iter(packets), "__import__('os')", ("frame",)))


def test_through_real_pipes_and_refusals_are_one_line(tmp_path):
    result = sh("vflow testcard --frames 40 --size 16x8 | vflow select 't >= 1 and seq % 3 == 0' "
                "| vflow print --kind frame -f seq")  # fmt: skip
    assert result.statuses == [0, 0, 0], result.stderr
    assert result.stdout.decode().split() == [f'{{"seq":{n}}}' for n in (30, 33, 36, 39)]
    for text in ("__import__('os')", "seq.__class__", "lambda: 0"):
        refused = vflow("select", text, input=pack([frame(0)]))
        lines = refused.stderr.decode().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr
        assert lines[0].startswith("vflow select: refused")
    assert unpack(vflow("select", "seq == 0", input=pack([frame(0)])).stdout)[0]["seq"] == 0
